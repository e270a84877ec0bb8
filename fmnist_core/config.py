"""Paths, training configuration and presets. Pure data: nothing here touches disk at import time."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Bounds that keep one request from occupying the server for days (checked in TrainConfig.validate).
MAX_EPOCHS = 100
BATCH_SIZE_RANGE = (8, 1024)
LEARNING_RATE_RANGE = (1e-5, 0.1)
VALIDATION_SPLIT_RANGE = (0.0, 0.5)
MAX_PATIENCE = 50
# The bounds TrainConfig.validate enforces on each numeric field (None, where allowed, means "not set").
FIELD_RANGES = {
    "epochs": (1, MAX_EPOCHS), "batch_size": BATCH_SIZE_RANGE, "learning_rate": LEARNING_RATE_RANGE,
    "validation_split": VALIDATION_SPLIT_RANGE, "random_erasing": (0, 1), "finetune_epochs": (0, MAX_EPOCHS),
    "finetune_learning_rate": LEARNING_RATE_RANGE, "shoe_pairs": (0, 1), "early_stopping_patience": (0, MAX_PATIENCE),
    "subset": (32, 60000), "test_subset": (10, 10000), "label_smoothing": (0, 0.5), "weight_decay": (0, 0.1),
    "weight_averaging": (0, 0.9999),
}
# The optimizers a run can use: Adam; SGD with Nesterov momentum 0.9, the usual choice for residual networks
# on small images; each with the decoupled weight decay of `weight_decay` (Loshchilov & Hutter 2019).
OPTIMIZERS = ("adam", "sgd")
# Test-time augmentation, as recorded in a model's meta.json: none; the image and its mirror image; the
# image moved one pixel up, down, left and right; the mirror and the shifts of both (10 views); or the
# mirror first and the shifts only where the model is still unsure (fmnist_core.predict.tta_averaged).
TTA_MODES = ("off", "flip", "shift", "flip+shift", "flip-then-shift")
# How training computes: "auto" is bfloat16 (weights kept in float32) on CPUs with bfloat16 matrix units,
# where it took 0.6x the CPU time per step, and float32 elsewhere, where bfloat16 is emulated and slow.
PRECISIONS = ("auto", "float32", "mixed_bfloat16")


def models_dir() -> Path:
    """The model registry directory (FMNIST_MODELS_DIR overrides the repo's models/)."""
    return Path(os.environ.get("FMNIST_MODELS_DIR", REPO_ROOT / "models"))


def runs_dir() -> Path:
    """Where background training jobs keep their progress files (FMNIST_RUNS_DIR overrides)."""
    return Path(os.environ.get("FMNIST_RUNS_DIR", REPO_ROOT / "runs"))


def tta_mode(value: str | bool | None) -> str:
    """A TTA setting as one of TTA_MODES; older meta.json files recorded True (flip) or False (off)."""
    if value is True:
        return "flip"
    if value is False or value is None:
        return "off"
    if value in TTA_MODES:
        return value
    raise ValueError(f"unknown test-time augmentation {value!r} (choose from {', '.join(TTA_MODES)})")


def tta_summary(value: str | bool | None) -> str:
    """A model's test-time augmentation in a few words, for people (an unknown value is named, not raised)."""
    try:
        mode = tta_mode(value)
    except ValueError:
        return f"unknown ({value!r})"
    return {"off": "none", "flip": "the mirror image averaged in where the model is unsure",
            "shift": "the image moved one pixel up, down, left and right (5 views) averaged in where the model "
                     "is unsure",
            "flip+shift": "the mirror image and one-pixel shifts (10 views) averaged in where the model is unsure",
            "flip-then-shift": "the mirror image averaged in where the model is unsure, and one-pixel shifts of "
                               "both (10 views) where it still is",
            }[mode]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how a model is trained; stored in every model's meta.json."""

    architecture: str = "fmnist-net"
    epochs: int = 12
    batch_size: int = 256
    learning_rate: float = 3e-3
    validation_split: float = 0.05
    augmentation: bool = False
    # Without augmentation: each image mirrored in every other epoch (half of them from the first), so that a
    # short run sees every image both ways; with augmentation the random flips do that already.
    alternating_flips: bool = False
    random_erasing: float = 0.0  # with augmentation: the share of images that get a random patch erased
    early_stopping_patience: int = 0  # 0 = off
    # Share of each target spread evenly over the ten classes (Szegedy et al. 2016); 0 = plain cross-entropy.
    label_smoothing: float = 0.0
    optimizer: str = "adam"  # one of OPTIMIZERS
    # Each step shrinks the weights (not batch-norm scales and shifts, not biases) by learning rate x this;
    # 0 = none. With SGD's momentum 0.9 a value of 5e-3 matches the common "L2 5e-4".
    weight_decay: float = 0.0
    # The main stage ends with an exponential moving average of its weights instead of its last weights, this
    # the momentum per step (Polyak averaging; batch-norm statistics are re-estimated after); 0 = off.
    weight_averaging: float = 0.0
    # A last stage at a low learning rate in which some shoe images are shown as pairs, as phone photos of
    # shoes mostly are (fmnist_core.augment); 0 epochs = none.
    finetune_epochs: int = 0
    finetune_learning_rate: float = 3e-4
    shoe_pairs: float = 0.0  # in the last stage: the share of sandal, sneaker and ankle-boot images paired
    init_from: str | None = None  # a registry model to start from: only the last stage runs
    seed: int = 42
    subset: int | None = None  # train on the first N training images (fast tests)
    test_subset: int | None = None  # evaluate on the first N test images (fast tests)
    preset: str | None = None
    precision: str = "auto"  # one of PRECISIONS; the saved model always computes in float32

    def validate(self) -> TrainConfig:
        """Raise ValueError with a readable reason when a field is out of bounds; return self."""
        from fmnist_core.models import ARCHITECTURES

        problems = []
        if self.architecture not in ARCHITECTURES:
            problems.append(f"unknown architecture {self.architecture!r} (choose from {', '.join(ARCHITECTURES)})")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"unknown optimizer {self.optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
        if self.precision not in PRECISIONS:
            problems.append(f"unknown precision {self.precision!r} (choose from {', '.join(PRECISIONS)})")
        out_of_range = [name for name, (low, high) in FIELD_RANGES.items()
                        if getattr(self, name) is not None and not low <= getattr(self, name) <= high]
        problems += [f"{name} must be {FIELD_RANGES[name][0]}..{FIELD_RANGES[name][1]}" for name in out_of_range]
        # Settings that only act together with another one (told once the value itself is in range).
        if self.alternating_flips and self.augmentation:
            problems.append("alternating_flips is for runs without augmentation (which flips at random already)")
        if self.random_erasing and not self.augmentation and "random_erasing" not in out_of_range:
            problems.append("random_erasing is part of the augmentation: turn augmentation on, or set it to 0")
        if self.shoe_pairs and not self.finetune_epochs and "shoe_pairs" not in out_of_range:
            problems.append("shoe_pairs applies in the last stage: set finetune_epochs too, or set it to 0")
        if self.init_from and not self.finetune_epochs:
            problems.append("init_from runs only the last stage: set finetune_epochs too")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))
        return self

    @property
    def total_epochs(self) -> int:
        """Epochs this run trains: the main stage (unless it starts from a model) and the last stage."""
        return (0 if self.init_from else self.epochs) + self.finetune_epochs

    def augmentation_summary(self) -> str:
        """The training-time augmentation in a few words, for people ("off" when there is none)."""
        if not self.augmentation:
            return "off"
        erasing = f", random erasing in {self.random_erasing:.0%} of images" if self.random_erasing else ""
        pairs = (f"; in the last {self.finetune_epochs} epochs {self.shoe_pairs:.0%} of shoes shown as pairs"
                 if self.finetune_epochs and self.shoe_pairs else "")
        return f"flips and shifts{erasing}{pairs}"

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (older or newer meta.json files)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


PRESETS: dict[str, TrainConfig] = {
    # quick: the cheapest net that reaches 92 % (a frozen patch-whitening conv at full resolution, flatten
    # head), 3 epochs, no augmentation: the whitening gained 0.6 points over a learned first conv at the same
    # time (92.71 vs 92.08 %, median of 3 seeds; 16 s on a Zen 5 EPYC; BENCHMARKS.md, "Training presets").
    "quick": TrainConfig(architecture="fmnist-lite-whitened", epochs=3, batch_size=256, learning_rate=4e-3,
                         augmentation=False, validation_split=0.0, preset="quick"),
    # standard: the Train page's default, sized to 10 minutes on a 2-core CPU with bfloat16 units: the wide net
    # with BN after pooling and the frozen whitening conv at 28x28 (12 % faster per step than a learned one),
    # flips and shifts, label smoothing and all 60,000 images, 21 epochs: 94.15 % in 513 s on a 2-core Zen 5
    # EPYC, where the earlier recipe (a learned first conv, 22 epochs) took about 12 minutes (BENCHMARKS.md,
    # "Training presets").
    "standard": TrainConfig(architecture="fmnist-wide-whitened-pooled", epochs=21, batch_size=256, learning_rate=3e-3,
                            augmentation=True, label_smoothing=0.1, validation_split=0.0, preset="standard"),
    # best: the shipped model; a wider net, long, with flips, shifts and random erasing, all 60,000 images,
    # then 4 epochs at a tenth of the rate in which 30 % of the shoes are shown as pairs. Erasing lifted both
    # the test score and the real photos; more epochs without it did not, and 70 epochs with it scored
    # higher on the test set but classified 7 fewer of the 56 real photos; the pairs stage taught the net
    # the pairs of shoes that phone photos show (BENCHMARKS.md).
    "best": TrainConfig(architecture="fmnist-wide", epochs=50, batch_size=256, learning_rate=3e-3,
                        augmentation=True, random_erasing=0.5, validation_split=0.0, finetune_epochs=4,
                        finetune_learning_rate=3e-4, shoe_pairs=0.3, preset="best"),
}


def preset(name: str) -> TrainConfig:
    """Look up a preset by name with a clear error."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None


# What a preset run reaches at the least here (BENCHMARKS.md, a little below the measured figures); a run of
# the unchanged preset that ends further below is reported as suspect on the Train page.
PRESET_FLOORS = {"quick": 0.915, "standard": 0.935, "best": 0.94}
CHANCE_LEVEL = 1 / 10
NEAR_CHANCE = 0.5  # any model scoring under this is not a working Fashion-MNIST classifier


def accuracy_warning(config: TrainConfig, accuracy: float | None) -> str | None:
    """A sentence for a finished run whose test accuracy is far below what it should reach, else None."""
    if accuracy is None:
        return None
    if accuracy < NEAR_CHANCE:
        return (f"This model scores {accuracy:.1%} on the test set, close to chance ({CHANCE_LEVEL:.0%}): it is "
                "broken. Do not activate it; try more epochs or training images.")
    unchanged = config.preset in PRESETS and PRESETS[config.preset].replace(seed=config.seed) == config
    floor = PRESET_FLOORS.get(config.preset) if unchanged else None
    if floor is not None and accuracy < floor - 0.01:
        return (f"This run of the '{config.preset}' preset scores {accuracy:.2%}, well below the "
                f"{floor:.1%} that preset reaches: something went wrong (check the curves and the log).")
    return None
