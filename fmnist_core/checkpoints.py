"""Epoch checkpoints of a training run, so that a run whose process died can go on where it stopped.

At the end of every epoch the run directory gets the network's weights with the optimizer's state
(`checkpoint-epoch-NNNN.weights.h5`) and then `checkpoint.json`, which names that file and holds what the
weights file cannot: the stage, the epochs done, the training time spent and the augmentation layers'
random-generator states (so that a resumed run draws the same flips, shifts and erasings as one that never
stopped). The weights file is complete before the json names it, so a crash at any moment leaves the last
complete checkpoint in force. A finished or cancelled run removes its checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmnist_core.fsutil import atomic_write_json, read_json

CHECKPOINT_FILE = "checkpoint.json"
WEIGHTS_PATTERN = "checkpoint-epoch-*.weights.h5"
MAIN_STAGE, FINETUNE_STAGE = "main", "finetune"
UNRECORDED_PRECISION = "unrecorded"


@dataclass(frozen=True)
class Checkpoint:
    """What a run had done when its last checkpoint was written."""

    run_dir: Path
    epoch: int  # epochs completed, over both stages
    stage: str  # the stage whose optimizer state the weights file holds
    weights_file: str
    train_seconds: float
    train_cpu_seconds: float
    config: dict
    seed_states: list[list[int]]  # in the model's variable order (names depend on what else the process built)
    # How many of the epochs were trained in each precision: a run may go on on another kind of CPU.
    epochs_by_precision: dict[str, int] = field(default_factory=dict)

    @property
    def weights_path(self) -> Path:
        """The weights file, optimizer state included."""
        return self.run_dir / self.weights_file


def read_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The run's last complete checkpoint, or None when it has none (or it cannot be read)."""
    run_dir = Path(run_dir)
    try:
        data = read_json(run_dir / CHECKPOINT_FILE)
        checkpoint = Checkpoint(run_dir=run_dir, epoch=int(data["epoch"]), stage=str(data["stage"]),
                                weights_file=str(data["weights_file"]), train_seconds=float(data["train_seconds"]),
                                train_cpu_seconds=float(data["train_cpu_seconds"]), config=dict(data["config"]),
                                seed_states=[list(state) for state in data.get("seed_states", [])],
                                # Checkpoints from before this field existed say nothing of their precision.
                                epochs_by_precision={str(k): int(v) for k, v in data.get(
                                    "epochs_by_precision", {UNRECORDED_PRECISION: data["epoch"]}).items()})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return checkpoint if checkpoint.weights_path.is_file() else None


def seed_generator_variables(model) -> list:
    """The model's random-generator state variables (augmentation, dropout), in its variable order."""
    return [variable for variable in model.non_trainable_variables if variable.path.endswith("seed_generator_state")]


def seed_generator_states(model) -> list[list[int]]:
    """The values of the model's random-generator states."""
    return [[int(value) for value in variable.numpy().ravel()] for variable in seed_generator_variables(model)]


def write_checkpoint(model, run_dir: Path, epoch: int, stage: str, train_seconds: float, train_cpu_seconds: float,
                     config: dict, epochs_by_precision: dict[str, int] | None = None) -> Checkpoint:
    """Save weights and optimizer state after `epoch` epochs, then point checkpoint.json at them."""
    run_dir = Path(run_dir)
    weights_file = f"checkpoint-epoch-{epoch:04d}.weights.h5"
    partial = run_dir / f".partial-{weights_file}"  # Keras insists on the .weights.h5 ending
    model.save_weights(partial)
    os.replace(partial, run_dir / weights_file)
    checkpoint = Checkpoint(run_dir=run_dir, epoch=epoch, stage=stage, weights_file=weights_file,
                            train_seconds=round(train_seconds, 2), train_cpu_seconds=round(train_cpu_seconds, 2),
                            config=config, seed_states=seed_generator_states(model),
                            epochs_by_precision=dict(epochs_by_precision or {}))
    atomic_write_json(run_dir / CHECKPOINT_FILE, {
        "epoch": epoch, "stage": stage, "weights_file": weights_file, "train_seconds": checkpoint.train_seconds,
        "train_cpu_seconds": checkpoint.train_cpu_seconds, "config": config, "seed_states": checkpoint.seed_states,
        "epochs_by_precision": checkpoint.epochs_by_precision})
    for older in run_dir.glob(WEIGHTS_PATTERN):
        if older.name != weights_file:
            older.unlink(missing_ok=True)
    return checkpoint


def restore_checkpoint(model, checkpoint: Checkpoint) -> None:
    """Load weights and optimizer state into a model compiled for the checkpoint's stage, and its generators."""
    model.optimizer.build(model.trainable_variables)  # so that its saved state has variables to load into
    model.load_weights(checkpoint.weights_path)
    variables = seed_generator_variables(model)
    if len(variables) != len(checkpoint.seed_states):
        raise ValueError(f"the checkpoint holds {len(checkpoint.seed_states)} random-generator states and the model "
                         f"has {len(variables)}: it is not this network's")
    for variable, state in zip(variables, checkpoint.seed_states):
        variable.assign(np.asarray(state, dtype=variable.dtype).reshape(variable.shape))


def remove_checkpoints(run_dir: Path) -> None:
    """Delete a run's checkpoint files (after it finished or was cancelled)."""
    run_dir = Path(run_dir)
    (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    for path in [*run_dir.glob(WEIGHTS_PATTERN), *run_dir.glob(f".partial-{WEIGHTS_PATTERN}")]:
        path.unlink(missing_ok=True)


def add_epochs(epochs_by_precision: dict[str, int], precision: str, epochs: int) -> dict[str, int]:
    """A copy of a per-precision epoch count with `epochs` more trained in `precision`."""
    counts = dict(epochs_by_precision)
    if epochs > 0:
        counts[precision] = counts.get(precision, 0) + epochs
    return counts
