"""Inference shortcuts give the same answers: batch norm folded into convolutions, flips only when unsure."""

from __future__ import annotations

import numpy as np
from keras import layers

from fmnist_core.models import build_model
from fmnist_core.predict import flip_averaged, folded_batch_norm


def randomised_batch_norm(model):
    """Give every batch norm non-trivial statistics, as a trained model has."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2, variance.shape)])
    return model


def test_folding_removes_batch_norm_and_keeps_the_answers():
    model = randomised_batch_norm(build_model("fmnist-net"))
    folded = folded_batch_norm(model)
    assert folded is not model
    assert not [layer for layer in folded.layers if isinstance(layer, layers.BatchNormalization)]
    assert "last_conv" in [layer.name for layer in folded.layers], "Grad-CAM still finds its layer"
    images = np.random.default_rng(2).random((16, 28, 28, 1), np.float32)
    np.testing.assert_allclose(folded(images, training=False), model(images, training=False), atol=1e-5)


def test_a_model_without_batch_norm_is_used_as_it_is():
    model = build_model("seed-basic")
    assert folded_batch_norm(model) is model


def test_flip_tta_mirrors_only_the_unsure_images():
    confident = np.eye(10, dtype=np.float32)[[3]] * 0.9 + 0.01
    unsure = np.full((1, 10), 0.1, np.float32)
    plain = np.concatenate([confident, unsure])
    mirrored_batches = []

    def score(batch):
        mirrored_batches.append(len(batch))
        return np.full((len(batch), 10), 0.1, np.float32) + np.eye(10, dtype=np.float32)[[5]] * 0.5

    images = np.zeros((2, 28, 28, 1), np.float32)
    result = flip_averaged(score, images, plain)
    assert mirrored_batches == [1], "only the unsure image is mirrored"
    np.testing.assert_allclose(result[0], plain[0])
    assert result[1].argmax() == 5
    everything = flip_averaged(score, images, plain, below=None)
    assert mirrored_batches[-1] == 2, "below=None mirrors every image"
    np.testing.assert_allclose(everything[0], (plain[0] + score(images[:1])[0]) / 2)
