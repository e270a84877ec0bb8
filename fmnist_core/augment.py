"""Training images that imitate what converted photos look like: shoes photographed as a pair."""

from __future__ import annotations

import numpy as np

from fmnist_core.data import CLASS_NAMES, IMAGE_SIZE
from fmnist_core.preprocess import centre_on_canvas, fit_longest_edge, scale_intensities

SHOE_CLASSES = tuple(CLASS_NAMES.index(name) for name in ("Sandal", "Sneaker", "Ankle boot"))
# Offsets of the second shoe, in pixels of the 28 px original: beside it, behind it or both, overlapping
# as in a phone photo of a pair; the whole picture is then shrunk back to 28 px like any upload.
MAX_SIDEWAYS, MAX_UPDOWN, MIN_APART = 18, 14, 6
VISIBLE = 8  # pixel value above which a pixel belongs to the item when trimming


def shoe_pair(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 shoe and a copy of it (mirrored half the time, as left and right shoes are) as one item.

    One of the two is in front and hides the other where they overlap. The pair goes through the same
    trim, longest-edge resize, centring and intensity scaling as an uploaded photo.
    """
    second = image[:, ::-1] if rng.random() < 0.5 else image
    sideways, updown = int(rng.integers(-MAX_SIDEWAYS, MAX_SIDEWAYS + 1)), int(rng.integers(-MAX_UPDOWN, MAX_UPDOWN + 1))
    if abs(sideways) < MIN_APART and abs(updown) < MIN_APART:
        sideways = MIN_APART + 2  # nearly on top of each other would just be one shoe
    size = IMAGE_SIZE
    canvas = np.zeros((3 * size, 3 * size), np.uint8)
    first_at, second_at = (size, size), (size + updown, size + sideways)
    in_front, behind = (image, first_at), (second, second_at)
    if rng.random() < 0.5:
        in_front, behind = behind, in_front
    for picture, (top, left) in (behind, in_front):
        region = canvas[top:top + size, left:left + size]
        region[picture > VISIBLE] = picture[picture > VISIBLE]
    ys, xs = np.nonzero(canvas > VISIBLE)
    if not len(ys):  # nothing visible: there is no shoe to pair
        return image.copy()
    trimmed = canvas[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return scale_intensities(centre_on_canvas(fit_longest_edge(trimmed)))


def with_shoe_pairs(images: np.ndarray, labels: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of uint8 N x 28 x 28 images in which `share` of the shoe images are shown as pairs (same label)."""
    mixed = images.copy()
    shoes = np.flatnonzero(np.isin(labels, SHOE_CLASSES))
    for index in rng.choice(shoes, int(round(share * len(shoes))), replace=False):
        mixed[index] = shoe_pair(images[index], rng)
    return mixed
