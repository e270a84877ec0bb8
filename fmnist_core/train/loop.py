"""train(config, run_dir): fit a model in its stages, evaluate it, register it.

The stages are the main one (one `fit`) and the last one (finetune: shoes shown as pairs); a new stage goes
beside finetune and is called from _train, with its checkpoints marked by a stage name (fmnist_core.checkpoints).
"""

from __future__ import annotations

import contextlib
import gc
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
    read_checkpoint,
    remove_checkpoints,
    restore_checkpoint,
)
from fmnist_core.config import TrainConfig
from fmnist_core.data import Dataset, load_dataset, to_model_input
from fmnist_core.estimate import record_finished_run
from fmnist_core.train.batch_norm import (
    RECALIBRATION_IMAGES,
    recalibrate_batch_norm,
    run_length_momentum,
    set_batch_norm_momentum,
)
from fmnist_core.train.batches import fit_arguments, fit_split
from fmnist_core.train.callbacks import checkpoint_callback, epochs_by_precision, make_callbacks
from fmnist_core.train.optimizer import learning_rate_schedule, make_optimizer, run_length_averaging, training_loss
from fmnist_core.train.precision import dtype_policy, pick_strategy, resolve_precision
from fmnist_core.train.progress import RunReporter, TrainingCancelled, read_history


def library_versions() -> dict:
    """Versions recorded in meta.json so a figure can be traced to its software."""
    import keras
    import sklearn
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__}


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
    with contextlib.suppress(OSError):  # the Train page's next estimate for this network uses this run's pace
        record_finished_run(config, batch_size, precision, len(history) * steps_per_epoch, train_seconds,
                            reporter.run_dir.name, reporter.run_dir.parent)
    reporter.write(message="saving the model")
    model_id = registry.save_model(network, meta, root=models_root)
    if activate:
        registry.set_active(model_id, root=models_root)
    reporter.write(state="finished", message="finished", model_id=model_id, epoch=len(history),
                   test_accuracy=evaluation.accuracy,
                   test_loss=evaluation.loss, train_seconds=round(train_seconds, 2),
                   train_cpu_seconds=round(train_cpu_seconds, 2))
    return reporter.status
