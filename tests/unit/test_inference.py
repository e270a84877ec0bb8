"""Inference shortcuts give the same answers (batch norm folded into convolutions); TTA views and when they are used."""

from __future__ import annotations

import numpy as np
import pytest
from keras import layers

from fmnist_core.config import tta_mode, tta_summary
from fmnist_core.models import build_model
from fmnist_core.predict import TTA_BELOW, folded_batch_norm, shifted, tta_averaged, tta_views


def randomised_batch_norm(model):
    """Give every batch norm non-trivial statistics, as a trained model has."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2, variance.shape)])
    return model


@pytest.mark.parametrize(("architecture", "left"), [("fmnist-net", 0), ("fmnist-wide-pooled", 2),
                                                     ("fmnist-resnet", 1)])
def test_folding_removes_batch_norm_and_keeps_the_answers(architecture, left):
    """Every batch norm right after a conv folds; those after a pooling (pooled stage ends, the stem) stay."""
    model = randomised_batch_norm(build_model(architecture))
    folded = folded_batch_norm(model)
    assert folded is not model
    assert len([layer for layer in folded.layers if isinstance(layer, layers.BatchNormalization)]) == left
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
    result = tta_averaged(score, images, "flip", plain)
    assert mirrored_batches == [1], "only the unsure image is mirrored"
    np.testing.assert_allclose(result[0], plain[0])
    assert result[1].argmax() == 5
    everything = tta_averaged(score, images, "flip", plain, below=np.inf)
    assert mirrored_batches[-1] == 2, "below=np.inf mirrors every image"
    np.testing.assert_allclose(everything[0], (plain[0] + score(images[:1])[0]) / 2)


def test_shifted_moves_by_one_pixel_and_fills_black():
    images = np.zeros((1, 5, 5, 1), np.float32)
    images[0, 2, 2, 0] = 1.0
    assert shifted(images, 1, 0)[0, 3, 2, 0] == 1.0 and shifted(images, -1, 0)[0, 1, 2, 0] == 1.0
    assert shifted(images, 0, 1)[0, 2, 3, 0] == 1.0 and shifted(images, 0, -1)[0, 2, 1, 0] == 1.0
    edge = np.ones((1, 5, 5, 1), np.float32)
    assert shifted(edge, 1, 0)[0, 0].sum() == 0 and shifted(edge, 1, 0)[0, 1:].min() == 1.0


def test_flip_and_shift_tta_scores_ten_views_of_each_unsure_image():
    images = np.random.default_rng(3).random((2, 28, 28, 1), np.float32)
    views = tta_views(images, "flip+shift")
    assert len(views) == 9 and all(view.shape == images.shape for view in views)
    np.testing.assert_array_equal(views[0], images[:, :, ::-1])
    calls = []

    def score(batch):  # the mean brightness as the probability of class 0: the average is checkable
        calls.append(len(batch))
        brightness = batch.mean(axis=(1, 2, 3))
        return np.stack([brightness, 1 - brightness] + [np.zeros_like(brightness)] * 8, axis=1)

    plain = score(images)
    plain[0] = np.eye(10)[1]  # the first image is sure: it keeps its plain score
    result = tta_averaged(score, images, "flip+shift", plain)
    assert calls[-1] == 9, "nine extra views of the one unsure image, scored in one batch"
    np.testing.assert_allclose(result[0], plain[0])
    expected = np.mean([images[1].mean()] + [view[1].mean() for view in views])
    assert result[1][0] == pytest.approx(expected, rel=1e-5)


def test_shift_tta_scores_four_moved_copies_and_only_below_its_own_threshold():
    images = np.random.default_rng(4).random((1, 28, 28, 1), np.float32)
    views = tta_views(images, "shift")
    assert len(views) == 4
    for view, (down, right) in zip(views, ((-1, 0), (1, 0), (0, -1), (0, 1))):
        np.testing.assert_array_equal(view, shifted(images, down, right))
    batches = []

    def score(batch):
        batches.append(len(batch))
        return np.tile(np.eye(10, dtype=np.float32)[2], (len(batch), 1))

    fairly_sure = np.full((1, 10), 0.3 / 9, np.float32)
    fairly_sure[0, 7] = TTA_BELOW["shift"] + 0.05  # under flip's threshold, over shift's
    assert fairly_sure.max() < TTA_BELOW["flip"]
    np.testing.assert_allclose(tta_averaged(score, images, "shift", fairly_sure), fairly_sure)
    assert batches == [], "an image above shift's threshold is not augmented"
    fairly_sure[0, 7] = TTA_BELOW["shift"] - 0.05
    result = tta_averaged(score, images, "shift", fairly_sure)
    assert batches == [4] and result[0, 2] == pytest.approx((fairly_sure[0, 2] + 4) / 5)


def test_flip_then_shift_adds_the_shifted_views_only_where_the_mirror_did_not_settle_it():
    images = np.random.default_rng(5).random((3, 28, 28, 1), np.float32)
    images[1, :, :14] = 1.0  # bright on the left: its mirror is bright on the right
    batches = []

    def score(batch):  # class 0: brightness on the left, 1: on the right, 2: the rest; checkable averages
        batches.append(len(batch))
        left, right = batch[:, :, :14].mean(axis=(1, 2, 3)) / 3, batch[:, :, 14:].mean(axis=(1, 2, 3)) / 3
        return np.stack([left, right, 1 - left - right] + [np.zeros_like(left)] * 7, axis=1)

    plain = np.zeros((3, 10), np.float32)
    plain[0, 4] = 1.0                    # sure: left alone
    plain[1, 0], plain[1, 1] = 0.25, 0.75  # unsure; its mirror (right side bright, ~1/3) settles it at ~0.54
    plain[2, 0], plain[2, 1], plain[2, 2] = 0.4, 0.35, 0.25  # unsure, and with its mirror still under 0.5
    result = tta_averaged(score, images, "flip-then-shift", plain)
    assert batches == [2, 8], "both unsure images mirrored in one batch, then eight shifted views of one"
    np.testing.assert_allclose(result[0], plain[0])
    mirrored = score(images[1:2, :, ::-1])[0]
    np.testing.assert_allclose(result[1], (plain[1] + mirrored) / 2, rtol=1e-5)
    assert result[1].max() >= 0.5 and result[1].argmax() == 1
    views = tta_views(images[2:3], "flip+shift")
    expected = (plain[2] + sum(score(view)[0] for view in views)) / 10
    np.testing.assert_allclose(result[2], expected, rtol=1e-5, err_msg="the mean of all ten views")


def test_tta_mode_reads_old_and_new_meta_values():
    assert tta_mode(True) == "flip" and tta_mode(False) == "off" and tta_mode(None) == "off"
    assert tta_mode("flip+shift") == "flip+shift" and tta_mode("shift") == "shift"
    assert tta_mode("flip-then-shift") == "flip-then-shift"
    assert len({tta_summary(mode) for mode in (True, "shift", "flip+shift", "flip-then-shift")}) == 4
    assert tta_summary(False) == "none"
    assert tta_summary("sideways") == "unknown ('sideways')"
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        tta_mode("sideways")
