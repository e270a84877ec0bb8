"""Training a CNN: train(config, run_dir) fits, evaluates and registers a model, reporting progress to files.

One concern per module:
  loop.py        train() and its stages (the main fit, the last stage with shoe pairs), evaluation, meta.json
  progress.py    the run directory's files: status.json, history.csv, batches.csv, the cancel flag
  callbacks.py   Keras callbacks: progress into those files, cancel between batches, a checkpoint per epoch
  precision.py   the tf.distribute strategy, the CPU's bfloat16 units, dtype policies ("auto" is decided here)
  optimizer.py   Adam or SGD with decoupled weight decay, the warm-up + cosine schedule, weight averaging, the loss
  batch_norm.py  a batch-norm momentum that fits the run's length; statistics re-estimated at the end
  batches.py     the endless shuffled batch stream, the validation tail, smaller batches for short runs
Epoch checkpoints (what a resumed run goes on from) are fmnist_core.checkpoints.
"""

from fmnist_core.train.batch_norm import (
    RECALIBRATION_IMAGES,
    batch_norm_layers,
    recalibrate_batch_norm,
    run_length_momentum,
    set_batch_norm_momentum,
)
from fmnist_core.train.batches import (
    MIN_RUN_STEPS,
    batch_count,
    endless_batches,
    fit_arguments,
    fit_split,
    run_length_batch_size,
)
from fmnist_core.train.loop import library_versions, resumable_checkpoint, train
from fmnist_core.train.optimizer import learning_rate_schedule, make_optimizer, run_length_averaging, training_loss
from fmnist_core.train.precision import (
    cpu_bfloat16_units,
    cpu_has_bfloat16,
    dtype_policy,
    pick_strategy,
    resolve_precision,
)
from fmnist_core.train.progress import (
    BATCHES_FILE,
    CANCEL_FILE,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    STATUS_FILE,
    RunReporter,
    TrainingCancelled,
    csv_text,
    read_history,
    read_status,
    request_cancel,
)

__all__ = [
    "BATCHES_FILE", "CANCEL_FILE", "HISTORY_COLUMNS", "HISTORY_FILE", "MIN_RUN_STEPS", "RECALIBRATION_IMAGES",
    "STATUS_FILE", "RunReporter", "TrainingCancelled", "batch_count", "batch_norm_layers", "cpu_bfloat16_units",
    "cpu_has_bfloat16", "csv_text", "dtype_policy", "endless_batches", "fit_arguments", "fit_split",
    "learning_rate_schedule", "library_versions", "make_optimizer", "pick_strategy", "read_history", "read_status",
    "recalibrate_batch_norm", "request_cancel", "resolve_precision", "resumable_checkpoint", "run_length_averaging",
    "run_length_batch_size", "run_length_momentum", "set_batch_norm_momentum", "train", "training_loss",
]
