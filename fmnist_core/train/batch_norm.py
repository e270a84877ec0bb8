"""Batch normalisation over a run: a momentum that fits the run's length, and statistics re-estimated at its end."""

from __future__ import annotations

import numpy as np

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
