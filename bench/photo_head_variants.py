"""The photo head's recipe, one change at a time: feature power and the rule for "sure", side by side in one run.

    python -m bench.photo_head_variants            # four fits of the head on the cached features (~4 min)

Each variant is fmnist_core.photo_train.train_photo_head (what the Train page's job and `train-photo` run)
with one PhotoTrainConfig field changed. The choice follows the cross-validated columns (5 folds over the
3,419 fitted photos); the held-out split (492 checked photos, the fixed rule of split_of) is printed beside
them. Writes bench/results/photo_head_variants.json and prints the table for BENCHMARKS.md.
"""

from __future__ import annotations

import json

from fmnist_core.config import REPO_ROOT
from fmnist_core.photo_train import PhotoTrainConfig, train_photo_head

FIGURES = ("accuracy", "sure_accuracy", "sure_coverage", "not_of_the_ten_flagged")  # of each split, from the meta
VARIANTS = {
    "features as they are, sure = observed >= 95 % (the rule before the confidence bound)":
        PhotoTrainConfig(feature_power=1.0, sure_confidence=None),
    "features as they are, sure = Wilson bound >= 95 %": PhotoTrainConfig(feature_power=1.0),
    "square-rooted features, sure = observed >= 95 %": PhotoTrainConfig(sure_confidence=None),
    "square-rooted features, sure = Wilson bound >= 95 % (shipped)": PhotoTrainConfig(),
}


def row(name: str, meta: dict) -> dict:
    """The figures of one variant's head from its meta."""
    figures = {"variant": name, "threshold": meta["calibration"]["sure_threshold"],
               "temperature": meta["calibration"]["temperature"]}
    for prefix, split in (("cv", "cross_validated"), ("test", "test")):
        figures.update({f"{prefix}_{key}": meta["metrics"][split][key] for key in FIGURES})
    return figures


def main() -> None:
    """Fit every variant, write the JSON, print the table."""
    rows = [row(name, train_photo_head(config).meta) for name, config in VARIANTS.items()]
    out = REPO_ROOT / "bench" / "results" / "photo_head_variants.json"
    out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print("| variant | threshold | cross-validated right | CV sure right / answered sure | held-out right | "
          "held-out sure right / answered sure | held-out hats, shorts, skirts flagged |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['threshold']:.2f} | {r['cv_accuracy']:.1%} | {r['cv_sure_accuracy']:.1%} / "
              f"{r['cv_sure_coverage']:.1%} | {r['test_accuracy']:.1%} | {r['test_sure_accuracy']:.1%} / "
              f"{r['test_sure_coverage']:.1%} | {r['test_not_of_the_ten_flagged']:.1%} |")


if __name__ == "__main__":
    main()
