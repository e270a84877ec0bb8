"""Shoe pairs: two copies of a shoe made into one picture the way an upload is converted."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.augment import SHOE_CLASSES, shoe_pair, with_shoe_pairs
from fmnist_core.data import CLASS_NAMES


def a_shoe() -> np.ndarray:
    """A flat, wide shoe-like block low in the frame (as the dataset's sneakers are)."""
    image = np.zeros((28, 28), np.uint8)
    image[16:24, 2:26] = 200
    return image


def test_shoe_classes_are_the_three_kinds_of_shoe():
    assert sorted(CLASS_NAMES[index] for index in SHOE_CLASSES) == ["Ankle boot", "Sandal", "Sneaker"]


@pytest.mark.parametrize("seed", range(12))
def test_a_pair_is_one_centred_28px_item_in_the_datasets_form(seed):
    pair = shoe_pair(a_shoe(), np.random.default_rng(seed))
    assert pair.shape == (28, 28) and pair.dtype == np.uint8
    assert pair.max() == 255, "intensities stretched like every converted image"
    rows, columns = np.nonzero(pair > 8)
    height, width = np.ptp(rows) + 1, np.ptp(columns) + 1
    assert max(height, width) >= 27, "the longest edge of the pair is refitted to 28 px"
    # One shoe refitted alone is 28 wide and 9 tall; a second one at least 6 px beside or behind the
    # first makes the pair taller, or wider so that each shoe shrinks to fewer than 9 rows.
    assert (height, width) != (9, 28), "a second shoe is part of the picture"
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 1 and abs((columns.min() + columns.max()) / 2 - 13.5) <= 1


def test_an_empty_image_is_left_as_it_is():
    blank = np.zeros((28, 28), np.uint8)
    np.testing.assert_array_equal(shoe_pair(blank, np.random.default_rng(0)), blank)


def test_only_the_given_share_of_shoes_is_paired_and_nothing_else_changes():
    labels = np.array([0, 5, 7, 9, 1, 5, 7, 9, 8, 5] * 4)
    images = np.stack([a_shoe()] * len(labels))
    images[labels == 0] = 77
    mixed = with_shoe_pairs(images, labels, 0.5, np.random.default_rng(1))
    changed = np.flatnonzero((mixed != images).any(axis=(1, 2)))
    assert np.isin(labels[changed], SHOE_CLASSES).all(), "only shoes are paired"
    assert len(changed) == round(0.5 * np.isin(labels, SHOE_CLASSES).sum())
    assert (images[labels == 0] == 77).all(), "the input is not modified"
    again = with_shoe_pairs(images, labels, 0.5, np.random.default_rng(1))
    np.testing.assert_array_equal(mixed, again)
