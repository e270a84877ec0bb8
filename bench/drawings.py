"""Drawings benchmark: Fashion-MNIST test images redrawn the way people draw on the Classify page's canvas.

    python -m bench.drawings --models 20261122-162430-fmnist-wide-160b,OTHER_ID --count 1000

No set of real drawings exists, so each test image is drawn twice on a 280x280 canvas, white on nothing
(RGBA, as the canvas returns): its silhouette filled in, as the page asks ("draw a garment filled in"),
and its outline traced with the page's default 18 px brush. Both are flat white, with a hand's wobble
(a small random rotation and shear), a rounded brush edge and a random size and place on the canvas, and
go through fmnist_core.preprocess.preprocess_drawing, the page's path. The same drawings (a fixed seed)
are scored by every model named, side by side, each with its own test-time augmentation.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from fmnist_core.data import CLASS_NAMES, load_dataset
from fmnist_core.predict import Classifier
from fmnist_core.preprocess import preprocess_drawing

CANVAS_SIZE = 280
BRUSH = 18  # the Classify page's default stroke width
STYLES = ("filled", "outline")


def drawing_of(image28: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """One test image as a canvas drawing (280x280 RGBA): white strokes, the rest transparent."""
    size = int(rng.integers(150, 250))
    mask = cv2.resize((image28 > 40).astype(np.uint8) * 255, (size, size), interpolation=cv2.INTER_LINEAR)
    wobble = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-8, 8)), 1.0)
    wobble[0, 1] += float(rng.uniform(-0.1, 0.1))
    mask = cv2.warpAffine(mask, wobble, (size, size), flags=cv2.INTER_NEAREST) > 127
    brush = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (BRUSH, BRUSH))
    strokes = np.zeros((size, size), np.uint8)
    if style == "filled":  # a filled shape has the brush's rounded edge, not the pixel-sharp one
        strokes = cv2.morphologyEx(mask.astype(np.uint8) * 255, cv2.MORPH_CLOSE, brush)
    else:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(strokes, contours, -1, 255, thickness=BRUSH, lineType=cv2.LINE_AA)
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), np.uint8)
    top, left = (int(rng.integers(0, CANVAS_SIZE - size + 1)) for _ in range(2))
    ink = strokes > 127
    canvas[top:top + size, left:left + size][ink] = (255, 255, 255, 255)
    return canvas


def drawing_set(count: int, seed: int = 7) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The model inputs (N x 28 x 28 x 1) of each style for `count` test images taken evenly over the classes."""
    dataset = load_dataset()
    rng = np.random.default_rng(seed)
    per_class = count // len(CLASS_NAMES)
    picks = np.concatenate([rng.choice(np.flatnonzero(dataset.y_test == label), per_class, replace=False)
                            for label in range(len(CLASS_NAMES))])
    inputs = {style: np.stack([preprocess_drawing(drawing_of(dataset.x_test[index], style, rng)).model_input()
                               for index in picks]) for style in STYLES}
    return inputs, dataset.y_test[picks]


def main() -> None:
    """Score each model on the same drawings; print a table and per-class accuracy as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="comma-separated registry ids")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    inputs, labels = drawing_set(args.count)
    results = {}
    print(f"| model | TTA | {' | '.join(STYLES)} | both |\n|---|---|{'---|' * (len(STYLES) + 1)}")
    for model_id in args.models.split(","):
        classifier = Classifier.load(model_id)
        right = {style: classifier.probabilities(inputs[style]).argmax(1) == labels for style in STYLES}
        both = np.concatenate(list(right.values())).mean()
        results[model_id] = {style: {"accuracy": float(hits.mean()),
                                     "per_class": {CLASS_NAMES[c]: float(hits[labels == c].mean())
                                                   for c in range(len(CLASS_NAMES))}}
                             for style, hits in right.items()}
        print(f"| {model_id} | {classifier.tta} | {' | '.join(f'{right[s].mean():.1%}' for s in STYLES)} "
              f"| {both:.1%} |", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
