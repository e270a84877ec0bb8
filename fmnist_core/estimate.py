"""How long a training run will take on this machine: a few timed steps of its network, refined by finished runs.

The Train page shows "about N minutes on this machine" before Start. The figure comes from this machine
alone: the chosen architecture is built as training builds it (precision, augmentation, fused batch norm),
a few optimizer steps are timed, and the per-step time is cached in runs/step-timings.json (keyed by the
CPU model, the architecture, the batch size, the precision and augmentation). A run that finishes writes
its own measured per-step time under the same key, which then replaces the timed steps.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fmnist_core.config import TrainConfig, runs_dir
from fmnist_core.fsutil import atomic_write_json, read_json

TIMINGS_FILE = "step-timings.json"
WARMUP_STEPS = 2  # a first fit traces and compiles the step
TIMED_STEPS = 13  # then one fit of these many steps: the median of its 12 step-to-step intervals
# What a run spends outside its optimizer steps: starting the process and TensorFlow, reading the data, the
# whitening conv's statistics, re-estimating batch norm and scoring the 10,000 test images (with flips and
# shifts when the run augments). Measured on a 2-core EPYC (BENCHMARKS.md, "Estimates").
FIXED_SECONDS = 12.0
TEST_SCORING_STEPS = 8.0  # the test set's scoring costs about this many training steps' time (more with TTA)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class StepTiming:
    """Seconds per optimizer step of one network on this machine, and where the figure came from."""

    seconds_per_step: float
    source: str  # "timed steps" or "finished run <run id>"
    cpu: str
    measured_at: float


def cpu_model() -> str:
    """This machine's CPU model name and core count (the key of its timings)."""
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def timing_key(config: TrainConfig, batch_size: int, precision: str) -> str:
    """The cache key of a run's per-step time."""
    return "|".join([cpu_model(), config.architecture, str(batch_size), precision,
                     f"augment={config.augmentation}", f"erasing={config.random_erasing > 0}"])


def _read(path: Path) -> dict:
    try:
        data = read_json(path)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def cached_timing(key: str, root: Path | None = None) -> StepTiming | None:
    """A cached timing for this key, or None."""
    entry = _read(Path(root or runs_dir()) / TIMINGS_FILE).get(key)
    try:
        return StepTiming(**entry) if entry else None
    except TypeError:
        return None


def store_timing(key: str, timing: StepTiming, root: Path | None = None) -> None:
    """Write one timing into the cache (atomically; the last writer of a key wins)."""
    path = Path(root or runs_dir()) / TIMINGS_FILE
    with _LOCK:
        data = _read(path)
        data[key] = asdict(timing)
        atomic_write_json(path, data)


def time_steps(config: TrainConfig, batch_size: int, precision: str) -> float:
    """Seconds of one optimizer step of the config's network on random images, built as training builds it.

    Timed inside one `fit`, as training runs it: the median interval between the ends of consecutive steps
    (one slow step does not move it). Calls of `train_on_batch` one at a time cost about 40 % more per step.
    """
    import keras

    from fmnist_core.data import to_model_input
    from fmnist_core.models import build_model
    from fmnist_core.train import dtype_policy, make_optimizer, training_loss

    rng = np.random.default_rng(0)
    images = to_model_input(rng.integers(0, 256, (batch_size * TIMED_STEPS, 28, 28), dtype=np.uint8))
    labels = rng.integers(0, 10, len(images))
    with dtype_policy(precision):
        model = build_model(config.architecture, augment=config.augmentation, erasing=config.random_erasing,
                            fused_batch_norm=True)
        model.compile(optimizer=make_optimizer(config, config.learning_rate), loss=training_loss(config))

    class StepClock(keras.callbacks.Callback):
        ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    model.fit(images[:WARMUP_STEPS * batch_size], labels[:WARMUP_STEPS * batch_size], batch_size=batch_size,
              epochs=1, shuffle=False, verbose=0)  # traces and compiles the step
    clock = StepClock()
    clock.ends = []
    model.fit(images, labels, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
    keras.backend.clear_session(free_memory=False)
    return float(np.median(np.diff(clock.ends)))


@dataclass(frozen=True)
class Estimate:
    """A run's expected wall time on this machine, and what it rests on."""

    seconds: float
    steps: int
    timing: StepTiming

    def describe(self) -> str:
        """'about 9 minutes on this machine (…)'."""
        minutes = self.seconds / 60
        amount = (f"about {self.seconds:.0f} seconds" if self.seconds < 90 else
                  f"about {minutes:.0f} minutes" if minutes < 90 else f"about {minutes / 60:.1f} hours")
        return (f"{amount} on this machine ({self.steps:,} steps at {self.timing.seconds_per_step * 1000:.0f} ms, "
                f"from {self.timing.source})")


def estimate(config: TrainConfig, root: Path | None = None, images: int = 60_000,
             time_if_missing: bool = True) -> Estimate | None:
    """The expected wall time of a run: its steps at this machine's per-step time (timed once, then cached).

    time_if_missing=False: None instead of timing (a running job would slow the timing, and it would be cached).
    """
    from fmnist_core.train import fit_split, resolve_precision

    n_images = min(images, config.subset or images)
    _, _, batch_size, steps_per_epoch = fit_split(n_images, config)
    precision = resolve_precision(config.precision)
    key = timing_key(config, batch_size, precision)
    timing = cached_timing(key, root)
    if timing is None and not time_if_missing:
        return None
    if timing is None:
        timing = StepTiming(time_steps(config, batch_size, precision), "timed steps", cpu_model(), time.time())
        store_timing(key, timing, root)
    steps = steps_per_epoch * config.total_epochs
    scoring = TEST_SCORING_STEPS * (2.5 if config.augmentation else 1.0)
    return Estimate(FIXED_SECONDS + (steps + scoring) * timing.seconds_per_step, steps, timing)


def record_finished_run(config: TrainConfig, batch_size: int, precision: str, steps: int, train_seconds: float,
                        run_id: str, root: Path | None = None) -> None:
    """Keep a finished run's measured seconds per step as this machine's figure for its network."""
    if steps <= 0 or train_seconds <= 0:
        return
    store_timing(timing_key(config, batch_size, precision),
                 StepTiming(train_seconds / steps, f"finished run {run_id}", cpu_model(), time.time()), root)
