"""train(config, run_dir): fit a model, report progress to files, honour cancel, evaluate, register."""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fmnist_core import registry
from fmnist_core.checkpoints import (
    FINETUNE_STAGE,
    MAIN_STAGE,
    Checkpoint,
    add_epochs,
    read_checkpoint,
    remove_checkpoints,
    restore_checkpoint,
    write_checkpoint,
)
from fmnist_core.config import TrainConfig
from fmnist_core.data import NUM_CLASSES, Dataset, load_dataset, to_model_input, to_model_input_tensor
from fmnist_core.fsutil import atomic_write_json, atomic_write_text, read_json

STATUS_FILE = "status.json"
HISTORY_FILE = "history.csv"
BATCHES_FILE = "batches.csv"
CANCEL_FILE = "cancel"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "elapsed_s")
MAX_BATCH_POINTS = 400  # keeps batches.csv small however long the run


class TrainingCancelled(RuntimeError):
    """The user asked the run to stop; nothing was registered."""


def request_cancel(run_dir: Path) -> None:
    """Ask a running training to stop at the next batch boundary."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / CANCEL_FILE).touch()


def read_status(run_dir: Path) -> dict | None:
    """The run's status.json, or None when absent or unreadable."""
    try:
        return read_json(Path(run_dir) / STATUS_FILE)
    except (OSError, ValueError):
        return None


def read_history(run_dir: Path, name: str = HISTORY_FILE) -> list[dict]:
    """Rows of history.csv (or batches.csv) as dicts of floats; [] while none exist."""
    try:
        text = (Path(run_dir) / name).read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        rows.append({key: float(value) if value not in ("", None) else None for key, value in row.items()})
    return rows


def csv_text(columns: tuple[str, ...], rows: list[dict]) -> str:
    """Rows (dicts) as CSV text with a header; missing or None values are empty cells."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class RunReporter:
    """Owns a run directory's status.json; every write is atomic and carries a timestamp."""

    def __init__(self, run_dir: Path, config: TrainConfig):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self.status: dict = {
            "run_id": self.run_dir.name, "state": "starting", "pid": os.getpid(), "config": config.to_dict(),
            "started_at": datetime.now(UTC).isoformat(), "epoch": 0, "epochs": config.total_epochs,
            "batch": 0, "batches_per_epoch": 0, "progress": 0.0, "elapsed_s": 0.0, "eta_s": None,
            "message": "loading data", "model_id": None, "error": None,
        }
        self.write()

    def write(self, **changes) -> None:
        """Merge changes into the status and write it."""
        self.status.update(changes)
        self.status["elapsed_s"] = round(time.time() - self.started, 2)
        self.status["updated_at"] = datetime.now(UTC).isoformat()
        atomic_write_json(self.run_dir / STATUS_FILE, self.status)


def rows_up_to(run_dir: Path, name: str, epochs: int) -> list[dict]:
    """The rows of history.csv or batches.csv that belong to the first `epochs` epochs (a resumed run's past)."""
    return [row for row in read_history(run_dir, name) if row.get("epoch") is not None and row["epoch"] <= epochs]


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


def pick_strategy():
    """MirroredStrategy when several GPUs (or logical devices via FMNIST_DEVICES) exist, else the default."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    wanted = os.environ.get("FMNIST_DEVICES")  # e.g. "/cpu:0,/cpu:1" for tests of the multi-device path
    if wanted:
        return tf.distribute.MirroredStrategy(devices=wanted.split(","))
    return tf.distribute.get_strategy()


# /proc/cpuinfo names of the bfloat16 matrix instructions, by kind: with AMX tiles (Intel) `standard` trained
# 2.4x faster than with AVX-512 BF16 alone (AMD Zen 4) (BENCHMARKS.md, sessions 12 and 17-18).
BFLOAT16_CPU_FLAGS = {"amx_bf16": "amx", "avx512_bf16": "avx512_bf16"}


def cpu_bfloat16_units(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """Which bfloat16 matrix instructions this CPU has: "amx", "avx512_bf16", or None (none, or unknown)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return next((kind for flag, kind in BFLOAT16_CPU_FLAGS.items() if flag in flags), None)


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AMX or AVX-512 BF16); False where unknown."""
    return cpu_bfloat16_units(cpuinfo) is not None


def resolve_precision(precision: str) -> str:
    """The dtype policy a run trains with: "auto" becomes bfloat16 on a CPU with bfloat16 units, else float32."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return "float32"  # not measured on GPUs: keep what the shipped models were trained with
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Build layers under a Keras dtype policy, restoring the previous one after (Keras keeps it per thread)."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def learning_rate_schedule(config: TrainConfig, total_steps: int):
    """Linear warm-up over the first 10 % of steps, then cosine decay to zero."""
    import keras

    warmup = max(1, total_steps // 10)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10, decay_steps=max(1, total_steps - warmup),
        warmup_target=config.learning_rate, warmup_steps=warmup)


SGD_MOMENTUM = 0.9
# Decoupled weight decay shrinks the convolution and dense kernels only: batch norm's scale and shift set each
# channel's size and offset, and decaying them (or the biases) only fights the normalisation.
NOT_DECAYED = ("gamma", "beta", "bias")


def make_optimizer(config: TrainConfig, learning_rate, averaging: float = 0.0):
    """The configured optimizer (Adam, or SGD with Nesterov momentum) with its weight decay, at a rate or schedule.

    With averaging, it keeps a moving average of the weights (that momentum per step), which Keras's `fit`
    writes into the model when it ends.
    """
    import keras

    decay = config.weight_decay or None
    ema = {"use_ema": True, "ema_momentum": averaging} if averaging else {}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate, momentum=SGD_MOMENTUM, nesterov=True, weight_decay=decay,
                                         **ema)
    else:
        optimizer = keras.optimizers.Adam(learning_rate, weight_decay=decay, **ema)
    if decay:
        optimizer.exclude_from_weight_decay(var_names=list(NOT_DECAYED))
    return optimizer


def library_versions() -> dict:
    """Versions recorded in meta.json so a figure can be traced to its software."""
    import keras
    import sklearn
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__}


RECALIBRATION_IMAGES = 5000  # training images whose batch statistics become the saved batch-norm statistics
RECALIBRATION_BATCH = 500


def batch_norm_layers(model) -> list:
    """Every BatchNormalization layer of a model, nested models included."""
    import keras

    from fmnist_core.models import all_layers

    return [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def run_length_momentum(steps_per_epoch: int, default: float = 0.99) -> float:
    """A batch-norm momentum whose moving statistics forget their start within one epoch (at most `default`).

    Keras's 0.99 keeps 0.99^steps of the initial (mean 0, variance 1) statistics: after a 23-step epoch
    (6,000 images) that is 79 %, so validation in inference mode sees nonsense; momentum^steps = 1 % here.
    """
    return float(min(default, 0.01 ** (1.0 / max(1, steps_per_epoch))))


def run_length_averaging(requested: float, steps: int, share: float = 0.25) -> float:
    """The weight-average momentum used: at most `requested`, and short enough to average the last `share` of the steps.

    An average over a window longer than the run keeps the untrained start: 0.99 over a 24-step run leaves
    0.99^24 = 79 % of the first step's weights in it (a model at 68 % where the plain one reached 80 %).
    """
    if not requested:
        return 0.0
    return float(min(requested, 1.0 - 1.0 / max(1.0, share * steps)))


def set_batch_norm_momentum(model, momentum: float) -> None:
    """Set the momentum of every batch-norm layer (before compiling, so the traced step uses it)."""
    for layer in batch_norm_layers(model):
        layer.momentum = momentum


def recalibrate_batch_norm(model, images: np.ndarray, batch_size: int = RECALIBRATION_BATCH) -> int:
    """Replace each batch-norm layer's moving mean and variance by their average over batches of images.

    Moving averages lag the weights: after a short run, a fine-tune or any weight swap they describe an
    older network, and inference-mode answers can fall to chance (a 6,000-image, 3-epoch run scored 10 %).
    Here each statistic becomes the plain mean over the batches (momentum k/(k+1) at batch k), measured
    on the final weights in training mode, one layer's input at a time as the network computes it.
    Returns how many layers were recalibrated.
    """
    layers = batch_norm_layers(model)
    if not layers or not len(images):
        return 0
    saved = [layer.momentum for layer in layers]
    try:
        for step, start in enumerate(range(0, len(images), batch_size)):
            for layer in layers:
                layer.momentum = step / (step + 1)  # the first batch replaces, the k-th counts 1/k
            model(images[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return len(layers)


def training_loss(config: TrainConfig):
    """Cross-entropy on the integer labels, with the configured label smoothing.

    Keras's sparse loss has no smoothing, so a smoothed loss takes the labels as integers and smooths
    their one-hot form itself: the arrays given to fit stay the same in both cases.
    """
    import keras

    if not config.label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy()
    smoothing = config.label_smoothing

    def smoothed_cross_entropy(labels, probabilities):
        targets = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32"), NUM_CLASSES)
        return keras.losses.categorical_crossentropy(targets, probabilities, label_smoothing=smoothing)

    return smoothed_cross_entropy


VALIDATION_BATCH = 1000


def batch_count(images: int, batch_size: int) -> int:
    """Batches in one pass over `images` images (the last one may be short)."""
    return -(-images // batch_size)


def endless_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None = None,
                    first_pass: int = 0, alternating_flips: bool = False, flip_phase: int = 0):
    """uint8 images and labels as an endless tf.data stream of model-input batches, reshuffled each pass if seeded.

    Endless, with fit told the steps per epoch, so that Keras keeps one iterator for the whole fit: with
    arrays it starts a new one each epoch, and here both cores then sat idle for about 8 s at every epoch
    boundary (BENCHMARKS.md). Each pass draws a permutation of the indices (from the seed and the pass
    number) and gathers whole batches from it: tf.data's own shuffle moved the images one at a time and
    took 15 % of the CPU of a training step. Scaling per batch spares a 188 MB float copy of the images.
    A resumed run starts at the pass (epoch) where it stopped, so it sees the same order as one that never did.
    With alternating flips (seeded only), a random half of the images is mirrored in even passes and the
    other half in odd ones, so that every two epochs show each image both ways (Jordan 2024, "airbench");
    `flip_phase` counts the epochs of earlier streams (the last stage starts a stream per epoch).
    """
    import tensorflow as tf

    count = len(images)
    all_images, all_labels = tf.constant(images), tf.constant(labels)
    batches_per_pass = batch_count(count, batch_size)

    def one_pass(pass_number):
        if seed is None:
            order = tf.range(count)
        else:
            keys = tf.random.stateless_uniform([count], seed=tf.stack([tf.constant(seed, tf.int64), pass_number]))
            order = tf.argsort(keys)
        return tf.data.Dataset.range(batches_per_pass).map(
            lambda batch: (order[batch * batch_size:(batch + 1) * batch_size], pass_number))

    flip_parity = (None if seed is None or not alternating_flips else
                   tf.random.stateless_uniform([count], seed=[seed, -1], maxval=2, dtype=tf.int64))

    def gathered(indices, pass_number):
        batch = tf.gather(all_images, indices)
        if flip_parity is not None:
            mirrored = tf.equal((tf.gather(flip_parity, indices) + pass_number + flip_phase) % 2, 1)
            batch = tf.where(mirrored[:, None, None], tf.reverse(batch, axis=[2]), batch)
        return to_model_input_tensor(batch), tf.gather(all_labels, indices)

    data = tf.data.Dataset.range(first_pass, 2**62).flat_map(one_pass).map(gathered).prefetch(2)
    # Without tf.data's autotuning thread: tearing down an iterator waits for it, and here that wait
    # took from seconds to half a minute of idle cores at the end of a fit (BENCHMARKS.md).
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


# A run shorter than this many optimizer steps trains with smaller batches (run_length_batch_size).
MIN_RUN_STEPS = 200
MIN_RUN_LENGTH_BATCH = 32


def run_length_batch_size(n_fit: int, config: TrainConfig) -> int:
    """The batch size a run trains with: the configured one, halved (not below 32) until the run takes 200 steps.

    6,000 images for 3 epochs in batches of 256 are 66 steps: too few for the tutorial net (78 %; 83.7 % in
    batches of 64, 267 steps), and the batch-norm nets ended 2-3 points under their batch-64 runs in about
    the same time (BENCHMARKS.md). Full-size runs and the presets keep their batch size.
    """
    batch_size = config.batch_size
    while batch_size > MIN_RUN_LENGTH_BATCH and batch_count(n_fit, batch_size) * config.total_epochs < MIN_RUN_STEPS:
        batch_size = max(MIN_RUN_LENGTH_BATCH, batch_size // 2)
    return batch_size


def fit_split(n_images: int, config: TrainConfig) -> tuple[int, int, int, int]:
    """Images fitted and held out for validation (the tail), the batch size trained with, and batches per epoch."""
    n_val = int(n_images * config.validation_split)
    n_fit = n_images - n_val
    batch_size = run_length_batch_size(n_fit, config)
    return n_fit, n_val, batch_size, batch_count(n_fit, batch_size)


def fit_arguments(images: np.ndarray, labels: np.ndarray, config: TrainConfig, seed: int, first_pass: int = 0,
                  flip_phase: int = 0) -> dict:
    """fit's data arguments: the training stream and, when the config holds out a share, the validation one."""
    n_fit, n_val, batch_size, steps_per_epoch = fit_split(len(images), config)
    arguments = {"x": endless_batches(images[:n_fit], labels[:n_fit], batch_size, seed, first_pass,
                                      alternating_flips=config.alternating_flips, flip_phase=flip_phase),
                 "steps_per_epoch": steps_per_epoch,
                 "shuffle": False}  # the stream shuffles itself (Keras would only warn that it cannot)
    if n_val:  # the tail, as Keras's validation_split would take it
        arguments["validation_data"] = endless_batches(images[n_fit:], labels[n_fit:], VALIDATION_BATCH)
        arguments["validation_steps"] = batch_count(n_val, VALIDATION_BATCH)
    return arguments


def inference_copy(model, config: TrainConfig):
    """The same architecture, uncompiled, with the trained weights, without the training-only layers.

    Saved without optimizer state (1/3 the size) and without the augmentation layers (they hold no
    weights and do nothing at inference), so the file holds only the network itself.
    """
    from fmnist_core.models import build_model

    with dtype_policy("float32"):  # the saved model answers in float32 whatever the run computed in
        copy = build_model(config.architecture)
    copy.set_weights(model.get_weights())
    return copy


def start_from(model, config: TrainConfig, models_root: Path | None) -> None:
    """Load a registry model's weights into the (augmentation-wrapped) model; a clear error if they differ."""
    source = registry.load_model(config.init_from, models_root)
    try:
        model.set_weights(source.get_weights())
    except ValueError as error:
        raise ValueError(f"model {config.init_from} is not a {config.architecture} network, so training cannot "
                         f"start from it ({error})") from None


def finetune(model, config: TrainConfig, strategy, x_train, y_train, callbacks, cancel, console, reporter,
             steps_per_epoch: int, checkpoint: Checkpoint | None = None) -> None:
    """The last stage: cosine decay from the fine-tune rate, each epoch with freshly paired shoe images.

    From a checkpoint written in this stage it goes on with that epoch's weights and optimizer state.
    """
    import keras

    from fmnist_core.augment import with_shoe_pairs

    with strategy.scope():
        schedule = keras.optimizers.schedules.CosineDecay(config.finetune_learning_rate,
                                                          steps_per_epoch * config.finetune_epochs)
        model.compile(optimizer=make_optimizer(config, schedule), loss=training_loss(config), metrics=["accuracy"])
        if checkpoint and checkpoint.stage == FINETUNE_STAGE:
            restore_checkpoint(model, checkpoint)
    rng = np.random.default_rng(config.seed + 1)
    first = config.total_epochs - config.finetune_epochs
    done = checkpoint.epoch if checkpoint else 0
    reporter.write(state="running", message="training (last stage: shoes shown as pairs)")
    for epoch in range(first, config.total_epochs):
        # The previous fit's input pipeline sits in reference cycles until collected: free it before the next.
        gc.collect()
        images = with_shoe_pairs(x_train, y_train, config.shoe_pairs, rng) if config.shoe_pairs else x_train
        if epoch < done:  # done before the restart: drawn only to keep the pairing generator in step
            continue
        model.fit(initial_epoch=epoch, epochs=epoch + 1, callbacks=callbacks, verbose=1 if console else 0,
                  **fit_arguments(images, y_train, config, seed=config.seed + epoch, flip_phase=epoch))
        del images
        if cancel.cancelled:
            return


def train(config: TrainConfig, run_dir: Path, dataset: Dataset | None = None, console: bool = False,
          activate: bool = False, models_root: Path | None = None, resume: bool = False) -> dict:
    """Train, evaluate on the test set, register the model; returns the final status dict.

    With resume, go on from the run directory's last checkpoint (its config must be this one).
    """
    config.validate()
    checkpoint = resumable_checkpoint(run_dir, config) if resume else None
    reporter = RunReporter(run_dir, config)
    if checkpoint:
        reporter.write(epoch=checkpoint.epoch, resumed_from_epoch=checkpoint.epoch,
                       message=f"resuming after epoch {checkpoint.epoch}")
    try:
        status = _train(config, reporter, dataset, console, activate, models_root, checkpoint)
    except TrainingCancelled:
        remove_checkpoints(run_dir)
        reporter.write(state="cancelled", message="cancelled by the user; nothing was saved")
        raise
    except Exception as error:
        reporter.write(state="failed", message="failed", error=f"{type(error).__name__}: {error}")
        raise
    remove_checkpoints(run_dir)
    return status


def resumable_checkpoint(run_dir: Path, config: TrainConfig) -> Checkpoint:
    """The run's last checkpoint, or ValueError saying why the run cannot be resumed."""
    checkpoint = read_checkpoint(run_dir)
    if checkpoint is None:
        raise ValueError(f"run {Path(run_dir).name} has no checkpoint to resume from (it finished, was cancelled, "
                         "or stopped before its first epoch ended)")
    if TrainConfig.from_dict(checkpoint.config) != config:
        raise ValueError(f"run {Path(run_dir).name} was trained with another configuration; resume it with its own")
    return checkpoint


def _train(config, reporter, dataset, console, activate, models_root, checkpoint: Checkpoint | None = None) -> dict:
    import keras

    from fmnist_core.evaluate import evaluate_probabilities
    from fmnist_core.models import build_model, whiten_first_layer
    from fmnist_core.predict import tta_averaged

    dataset = dataset or load_dataset()
    keras.utils.set_random_seed(config.seed)
    x_train, y_train = dataset.x_train, dataset.y_train
    if config.subset:
        x_train, y_train = x_train[: config.subset], y_train[: config.subset]
    x_test, y_test = dataset.x_test, dataset.y_test
    if config.test_subset:
        x_test, y_test = x_test[: config.test_subset], y_test[: config.test_subset]
    # Shuffle once with the seed so the validation tail is a random sample, not the file's last rows.
    order = np.random.default_rng(config.seed).permutation(len(x_train))
    x_train, y_train = x_train[order], y_train[order]

    _, n_val, batch_size, steps_per_epoch = fit_split(len(x_train), config)
    main_steps = steps_per_epoch * config.epochs
    averaging = run_length_averaging(config.weight_averaging, main_steps)
    strategy = pick_strategy()
    precision = resolve_precision(config.precision)
    with strategy.scope(), dtype_policy(precision):
        model = build_model(config.architecture, augment=config.augmentation, erasing=config.random_erasing,
                            fused_batch_norm=True)
        set_batch_norm_momentum(model, run_length_momentum(steps_per_epoch))
        whiten_first_layer(model, x_train)  # a resumed or fine-tuned run then loads the saved whitening
        if config.init_from:
            start_from(model, config, models_root)
    reporter.write(batch_size=batch_size)  # where it is smaller than asked, the Train page says why
    done = checkpoint.epoch if checkpoint else 0
    callbacks, cancel = make_callbacks(reporter, steps_per_epoch, resumed_epochs=done)
    started, started_cpu = time.perf_counter(), time.process_time()
    seconds_before, cpu_seconds_before = (checkpoint.train_seconds, checkpoint.train_cpu_seconds) if checkpoint else (0, 0)

    def clock() -> tuple[float, float]:
        # Processor time of the whole process (all its threads): on a shared 2-core machine the wall time of
        # the same run varies by 2x while this stays within a few per cent (BENCHMARKS.md).
        return (seconds_before + time.perf_counter() - started, cpu_seconds_before + time.process_time() - started_cpu)

    callbacks.append(checkpoint_callback(reporter, config, cancel, clock, precision, checkpoint))
    main_stage_left = not config.init_from and (checkpoint is None or checkpoint.stage == MAIN_STAGE)
    if main_stage_left:
        with strategy.scope():
            # The main stage is one `fit` (from wherever a resumed run left off), so its weight average, kept in
            # the optimizer's checkpointed state, is written into the model once, at its end.
            optimizer = make_optimizer(config, learning_rate_schedule(config, main_steps), averaging=averaging)
            model.compile(optimizer=optimizer, loss=training_loss(config), metrics=["accuracy"])
            if checkpoint:
                restore_checkpoint(model, checkpoint)
        # A resumed run's stopping callback starts afresh: its patience counts from the restart.
        stopping = ([keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.early_stopping_patience,
                                                   restore_best_weights=True)]
                    if config.early_stopping_patience and n_val else [])
        reporter.write(state="running", message="training", batches_per_epoch=steps_per_epoch)
        if done < config.epochs:
            model.fit(initial_epoch=done, epochs=config.epochs, callbacks=callbacks + stopping,
                      verbose=1 if console else 0, **fit_arguments(x_train, y_train, config, seed=config.seed,
                                                                   first_pass=done))
    if config.finetune_epochs and not cancel.cancelled:
        finetune(model, config, strategy, x_train, y_train, callbacks, cancel, console, reporter, steps_per_epoch,
                 checkpoint)
    train_seconds, train_cpu_seconds = clock()
    if cancel.cancelled:
        raise TrainingCancelled("cancelled by the user")

    reporter.write(message="re-estimating batch-norm statistics", progress=1.0, eta_s=0)
    network = inference_copy(model, config)
    recalibrated = recalibrate_batch_norm(network, to_model_input(x_train[:RECALIBRATION_IMAGES]))
    reporter.write(message="evaluating on the test set")
    def score(images):
        return network.predict(images, batch_size=1000, verbose=0)

    test_images = to_model_input(x_test)
    plain_probabilities = score(test_images)
    plain = evaluate_probabilities(plain_probabilities, y_test)
    # A model trained on flipped and shifted images answers, where it is unsure, with the mean over the image
    # and its mirror, and where it still is, their one-pixel shifts too, as the app does: on the fmnist-wide
    # runs measured, most of what all ten views gain for a sixth of a pass more (BENCHMARKS.md).
    tta = "flip-then-shift" if config.augmentation else "off"
    evaluation = (evaluate_probabilities(tta_averaged(score, test_images, tta, plain_probabilities), y_test)
                  if tta != "off" else plain)
    history = read_history(reporter.run_dir)
    meta = {
        "architecture": config.architecture,
        "config": config.to_dict(),
        "test_metrics": evaluation.summary(),
        "tta": tta,
        "test_metrics_without_tta": {"accuracy": plain.accuracy, "loss": plain.loss},
        "train_seconds": round(train_seconds, 2),
        "train_cpu_seconds": round(train_cpu_seconds, 2),
        "epochs_run": len(history),
        "images_per_second": round(len(history) * steps_per_epoch * batch_size / train_seconds, 1),
        "batch_size_used": batch_size,
        "history": history,
        "params": int(network.count_params()),
        "batch_norm": {"momentum": run_length_momentum(steps_per_epoch), "recalibrated_layers": recalibrated,
                       "recalibration_images": int(min(RECALIBRATION_IMAGES, len(x_train)))},
        "weight_averaging": averaging,
        "dataset": {"checksum": dataset.checksum(), "source": dataset.source,
                    "train_images": int(len(x_train)), "test_images": int(len(x_test))},
        "versions": library_versions(),
        "precision": precision,
        "epochs_by_precision": epochs_by_precision(checkpoint, precision, len(history)),
        "resumed_from_epoch": checkpoint.epoch if checkpoint else None,
        "strategy": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync),
        "created_at": datetime.now(UTC).isoformat(),
        "run_id": reporter.run_dir.name,
    }
    if config.init_from:  # the model's training is the earlier run's and this one's together
        base = registry.read_meta(config.init_from, models_root)
        meta["started_from"] = {key: base.get(key) for key in ("train_seconds", "epochs_run", "config")}
        meta["started_from"]["model_id"] = config.init_from
        meta["last_stage_seconds"] = meta["train_seconds"]
        meta["train_seconds"] = round(train_seconds + (base.get("train_seconds") or 0), 2)
        meta["train_cpu_seconds"] = round(train_cpu_seconds + (base.get("train_cpu_seconds") or 0), 2)
        meta["epochs_run"] = len(history) + (base.get("epochs_run") or 0)
    reporter.write(message="saving the model")
    model_id = registry.save_model(network, meta, root=models_root)
    if activate:
        registry.set_active(model_id, root=models_root)
    reporter.write(state="finished", message="finished", model_id=model_id, epoch=len(history),
                   test_accuracy=evaluation.accuracy,
                   test_loss=evaluation.loss, train_seconds=round(train_seconds, 2),
                   train_cpu_seconds=round(train_cpu_seconds, 2))
    return reporter.status
