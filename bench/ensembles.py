"""Ensembles: how far averaging several trained models gets on the test set, as a ceiling for one model.

    python -m bench.ensembles --models models/20261122-162430-fmnist-wide-160b,/tmp/trial/models/ID,...

Each model (a model directory, or a registry id in the active registry) scores the 10,000 test images, their
mirror images and the one-pixel shifts of both (10 views). Every model alone and every combination of two or
more is then scored by the mean of its members' probabilities: over the plain images, the image and its
mirror, and all 10 views (TTA on every image, not only the unsure ones as the app does). An average of
several networks is not one network of their size: the figures say what training recipes at this scale can
still gain, not what one model reaches.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from fmnist_core import registry
from fmnist_core.data import load_dataset, to_model_input
from fmnist_core.predict import tta_views

REPO_ROOT = Path(__file__).resolve().parent.parent
VIEW_SETS = {"plain": 1, "flip": 2, "flip+shift": 10}  # how many of the views (plain, mirror, shifts) each uses


def load(model: str):
    """A model from a directory holding model.keras, or from the registry by id; with its parameter count."""
    path = Path(model)
    keras_model = (registry.load_model(path.name, root=path.parent) if path.is_dir()
                   else registry.load_model(model))
    return keras_model, keras_model.count_params()


def view_probabilities(keras_model, images: np.ndarray) -> np.ndarray:
    """Probabilities for every view: 10 x N x 10 (plain, mirror, then the eight shifts)."""
    views = [images] + tta_views(images, "flip+shift")
    return np.stack([keras_model.predict(view, batch_size=1000, verbose=0) for view in views])


def accuracies(probabilities: list[np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Accuracy of the members' mean probabilities over each set of views."""
    return {name: float((np.mean([p[:count].mean(0) for p in probabilities], 0).argmax(1) == labels).mean())
            for name, count in VIEW_SETS.items()}


def main() -> None:
    """Score every model and every combination; print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="comma-separated model directories or registry ids")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "ensembles.json")
    args = parser.parse_args()
    dataset = load_dataset()
    images, labels = to_model_input(dataset.x_test), dataset.y_test
    models = args.models.split(",")
    names = [Path(model).name for model in models]
    # By position, not by name: two directories may hold models of the same id.
    probabilities, params = [], []
    for model in models:
        keras_model, count = load(model)
        probabilities.append(view_probabilities(keras_model, images))
        params.append(count)
    rows = []
    for size in range(1, len(models) + 1):
        for members in itertools.combinations(range(len(models)), size):
            rows.append({"members": [names[m] for m in members], "params": sum(params[m] for m in members),
                         **accuracies([probabilities[m] for m in members], labels)})
    print("| members | parameters | plain | flip | flip+shift |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {' + '.join(row['members'])} | {row['params']:,} | {row['plain']:.2%} | {row['flip']:.2%} "
              f"| {row['flip+shift']:.2%} |")
    args.out.write_text(json.dumps({"test_images": len(labels), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
