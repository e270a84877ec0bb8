"""Keras callbacks of a run: progress into the run's files, the cancel flag, a checkpoint after each epoch.

A new callback goes here and into make_callbacks (or beside checkpoint_callback when it needs the clock).
"""

from __future__ import annotations

import time

import numpy as np

from fmnist_core.checkpoints import (
    FINETUNE_STAGE,
    MAIN_STAGE,
    Checkpoint,
    add_epochs,
    write_checkpoint,
)
from fmnist_core.config import TrainConfig
from fmnist_core.fsutil import atomic_write_text
from fmnist_core.train.progress import (
    BATCHES_FILE,
    CANCEL_FILE,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    MAX_BATCH_POINTS,
    RunReporter,
    csv_text,
    rows_up_to,
)


def make_callbacks(reporter: RunReporter, steps_per_epoch: int, resumed_epochs: int = 0):
    """Keras callbacks: file progress (throttled), per-epoch history, cancel flag.

    A resumed run keeps the curves of the epochs it had done and times its remaining work by its own pace.
    """
    import keras

    class FileProgress(keras.callbacks.Callback):
        """Writes status.json at most every 0.5 s, batches.csv samples, history.csv each epoch."""

        def __init__(self):
            super().__init__()
            self.history_rows = rows_up_to(reporter.run_dir, HISTORY_FILE, resumed_epochs)
            self.batch_rows = rows_up_to(reporter.run_dir, BATCHES_FILE, resumed_epochs)
            self.steps_before = resumed_epochs * steps_per_epoch
            self.seconds_before = (self.history_rows[-1].get("elapsed_s") or 0.0) if self.history_rows else 0.0
            self.last_write = 0.0
            self.epoch = 0
            self.total_steps = max(1, steps_per_epoch * reporter.status["epochs"])
            self.sample_every = max(1, self.total_steps // MAX_BATCH_POINTS)
            self.train_started = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            done = self.epoch * steps_per_epoch + batch + 1
            if done % self.sample_every == 0 and logs:
                self.batch_rows.append({"step": done, "epoch": self.epoch + (batch + 1) / steps_per_epoch,
                                        "loss": float(logs.get("loss", np.nan)),
                                        "accuracy": float(logs.get("accuracy", np.nan))})
            now = time.time()
            if now - self.last_write >= 0.5:
                self.last_write = now
                elapsed = now - self.train_started
                eta = elapsed / max(1, done - self.steps_before) * (self.total_steps - done)
                atomic_write_text(reporter.run_dir / BATCHES_FILE,
                                  csv_text(("step", "epoch", "loss", "accuracy"), self.batch_rows))
                reporter.write(state="running", epoch=self.epoch + 1, batch=batch + 1,
                               batches_per_epoch=steps_per_epoch, progress=round(done / self.total_steps, 4),
                               eta_s=round(eta, 1), message="training")

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            learning_rate = self.model.optimizer.learning_rate
            row = {"epoch": epoch + 1, "elapsed_s": round(self.seconds_before + time.time() - self.train_started, 2),
                   "learning_rate": float(np.asarray(learning_rate))}
            row.update({key: float(logs[key]) for key in HISTORY_COLUMNS if key in logs})
            self.history_rows.append(row)
            atomic_write_text(reporter.run_dir / HISTORY_FILE, csv_text(HISTORY_COLUMNS, self.history_rows))

    class CancelOnRequest(keras.callbacks.Callback):
        """Stops between batches once the cancel flag file appears."""

        cancelled = False

        def on_train_batch_end(self, batch, logs=None):
            if (reporter.run_dir / CANCEL_FILE).exists():
                self.cancelled = True
                self.model.stop_training = True

    progress, cancel = FileProgress(), CancelOnRequest()
    return [progress, cancel], cancel


def checkpoint_callback(reporter: RunReporter, config: TrainConfig, cancel, clock, precision: str,
                        resumed_from: Checkpoint | None = None):
    """A Keras callback that writes a checkpoint after every complete epoch (not after a cancelled one).

    `clock()` gives the training wall and CPU seconds spent so far, earlier processes of the run included;
    `precision` is this process's, added to what the checkpoint it resumed from counted per precision.
    """
    import keras

    main_epochs = config.total_epochs - config.finetune_epochs

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if cancel.cancelled:  # a cancelled epoch ended early: it is not a point to resume from
                return
            seconds, cpu_seconds = clock()
            write_checkpoint(self.model, reporter.run_dir, epoch + 1, MAIN_STAGE if epoch < main_epochs else
                             FINETUNE_STAGE, seconds, cpu_seconds, config.to_dict(),
                             epochs_by_precision(resumed_from, precision, epoch + 1))

    return EpochCheckpoint()


def epochs_by_precision(resumed_from: Checkpoint | None, precision: str, epochs_done: int) -> dict[str, int]:
    """How many of a run's first `epochs_done` epochs were trained in each precision (this process's last)."""
    before = resumed_from.epochs_by_precision if resumed_from else {}
    return add_epochs(before, precision, epochs_done - (resumed_from.epoch if resumed_from else 0))
