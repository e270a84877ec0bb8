"""Shoes photographed as a pair: registry models side by side on the test set's shoes, alone and paired.

    python -m bench.pairs                          # the active model and the model it started from
    python -m bench.pairs --models ID1,ID2         # writes bench/results/pairs.json

Every sandal, sneaker and ankle boot of the 10,000 test images (never trained on) is made into a pair
with fmnist_core.augment.shoe_pair (its own seed, not the training one) and classified with each model's
own test-time augmentation. "As a non-shoe" is the share called a garment or a bag: the complaint this
answers is a pair of sneakers coming back as "Bag".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fmnist_core.config import REPO_ROOT
from fmnist_core.data import load_dataset, to_model_input

SEED = 123


def default_models() -> list[str]:
    """The active model, preceded by the model it was fine-tuned from when it was."""
    from fmnist_core import registry

    active = registry.resolve_model_id(None)
    base = registry.read_meta(active).get("config", {}).get("init_from")
    return [base, active] if base else [active]


def measure(model_ids: list[str], limit: int | None = None) -> dict:
    """Accuracy on the test shoes alone and paired, per model."""
    from fmnist_core.augment import SHOE_CLASSES, with_shoe_pairs
    from fmnist_core.predict import Classifier

    dataset = load_dataset()
    shoes = np.flatnonzero(np.isin(dataset.y_test, SHOE_CLASSES))[:limit]
    images, labels = dataset.x_test[shoes], dataset.y_test[shoes]
    sets = {"single": images, "paired": with_shoe_pairs(images, labels, 1.0, np.random.default_rng(SEED))}
    rows = []
    for model_id in model_ids:
        classifier = Classifier.load(model_id)
        row = {"model": classifier.model_id, "tta": classifier.tta}
        for name, pictures in sets.items():
            predicted = classifier.probabilities(to_model_input(pictures)).argmax(axis=1)
            row[f"{name}_accuracy"] = float((predicted == labels).mean())
            row[f"{name}_non_shoe"] = float((~np.isin(predicted, SHOE_CLASSES)).mean())
        rows.append(row)
    return {"n": int(len(shoes)), "seed": SEED, "results": rows}


def main(argv: list[str] | None = None) -> int:
    """Measure, write the JSON, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated model ids (default: the active one and its base)")
    parser.add_argument("--limit", type=int, help="only the first N test shoes (a quick check)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "pairs.json")
    args = parser.parse_args(argv)
    result = measure(args.models.split(",") if args.models else default_models(), args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"Test-set shoes: {result['n']}, each also as a pair (seed {result['seed']})\n")
    print("| model (its TTA) | shoes alone | as a non-shoe | paired | as a non-shoe |\n|---|---|---|---|---|")
    for row in result["results"]:
        print(f"| {row['model']} ({row['tta']}) | {row['single_accuracy']:.2%} | {row['single_non_shoe']:.2%} | "
              f"{row['paired_accuracy']:.2%} | {row['paired_non_shoe']:.2%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
