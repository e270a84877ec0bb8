"""Teaching the photo model: corrections of a class it gets wrong, then a retrained head, side by side.

    python -m bench.teaching                 # socks (../shared/shop/none) and sneakers (../shared/shop/sneaker)

For each taught group, the shop photos are split in two by file name (every other one): one half is
added as accepted corrections (fmnist_core.feedback.add, into a private database) and the other half is
held back. Two heads are trained on the same pool in the same run: without corrections, and with them
(PhotoTrainConfig(with_feedback=True)). Reported: the held-back half right before and after (for socks:
flagged "not one of the ten"), the held-out CC0 split before and after, the whole shop's ten classes
before and after (the taught half included), the milliseconds to store one correction in a warm process
(median of 20), and the head's training time with 500 accepted corrections.
Writes bench/results/teaching.json and prints the table for BENCHMARKS.md.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SHOP = REPO_ROOT.parent / "shared" / "shop"
CLOTHING = REPO_ROOT.parent / "shared" / "clothing"


def shop_group(product_type: str) -> list[Path]:
    """The shop photos of one product type (labels.csv), sorted by file name."""
    with open(SHOP / "labels.csv", newline="", encoding="utf-8") as handle:
        return sorted(SHOP / row["file"]
                      for row in csv.DictReader(handle) if row["shop_product_type"] == product_type)


def halves(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(taught, held back): every other photo by file name."""
    return paths[0::2], paths[1::2]


def right_share(model, paths: list[Path], label: str) -> float:
    """Share of the photos the photo model answers with this label ('none': not one of the ten)."""
    from fmnist_core.feedback import NONE_LABEL
    from fmnist_core.photo import NONE_NAME
    from fmnist_core.preprocess import decode

    wanted = NONE_NAME if label == NONE_LABEL else label
    return float(np.mean([model.answer_photo(decode(path)).name == wanted for path in paths]))


def shop_accuracy(model) -> float:
    """Share of the shop's photos of the ten classes the photo model answers with their class (the whole shop)."""
    from fmnist_core.data import CLASS_NAMES
    from fmnist_core.preprocess import decode

    folders = ["tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle_boot"]
    right = [model.answer_photo(decode(path)).name == CLASS_NAMES[index]
             for index, folder in enumerate(folders) for path in sorted((SHOP / folder).glob("*.jpg"))]
    return float(np.mean(right))


def main() -> None:
    """Teach each group, retrain, compare; then time a correction and a head with 500 corrections."""
    from fmnist_core import feedback
    from fmnist_core.estimate import cpu_model
    from fmnist_core.photo import Backbone, PhotoModel
    from fmnist_core.photo_train import PhotoTrainConfig, split_of, train_photo_head

    backbone = Backbone()
    results = {"machine": cpu_model(), "date": time.strftime("%Y-%m-%d"),
               "command": "python -m bench.teaching", "groups": {}}
    started = time.perf_counter()
    baseline = train_photo_head(PhotoTrainConfig())
    results["baseline_train_seconds"] = round(time.perf_counter() - started, 1)
    before_model = PhotoModel(backbone, baseline)
    results["shop_ten_classes_before"] = round(shop_accuracy(before_model), 4)
    groups = {"socks": ("Socks", feedback.NONE_LABEL), "sneakers": ("Sneakers", "Sneaker")}
    for name, (product_type, label) in groups.items():
        taught, held_back = halves(shop_group(product_type))
        with tempfile.TemporaryDirectory() as scratch:
            db = Path(scratch) / "feedback.sqlite3"
            for path in taught:
                feedback.add(path.read_bytes(), feedback.Correction(label, source="cli"), backbone, accept=True,
                             path=db)
            config = PhotoTrainConfig(with_feedback=True)
            started = time.perf_counter()
            taught_head = train_photo_head(config, feedback_path=db)
            seconds = time.perf_counter() - started
        after_model = PhotoModel(backbone, taught_head)
        before, after = right_share(before_model, held_back, label), right_share(after_model, held_back, label)
        results["groups"][name] = {
            "label": label, "taught": len(taught), "held_back": len(held_back),
            "feedback_weight": config.feedback_weight,
            "held_back_right_before": round(before, 4), "held_back_right_after": round(after, 4),
            "gain_points": round((after - before) * 100, 1),
            "cc0_held_out_before": baseline.meta["metrics"]["test"]["accuracy"],
            "cc0_held_out_after": taught_head.meta["metrics"]["test"]["accuracy"],
            "cc0_loss_points": round((baseline.meta["metrics"]["test"]["accuracy"]
                                      - taught_head.meta["metrics"]["test"]["accuracy"]) * 100, 2),
            "corrections_cross_validated": taught_head.meta["corrections"]["cross_validated_accuracy"],
            "shop_ten_classes_after": round(shop_accuracy(after_model), 4),
            "train_seconds": round(seconds, 1)}
        print(name, json.dumps(results["groups"][name]), flush=True)

    with open(CLOTHING / "labels.csv", newline="", encoding="utf-8") as handle:
        pool = [CLOTHING / row["file"] for row in csv.DictReader(handle)
                if split_of(Path(row["file"]).name) == "train" and row["source_label"] == "T-Shirt"]
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "feedback.sqlite3"
        feedback.add(pool[0].read_bytes(), feedback.Correction("T-shirt/top", source="cli"), backbone, path=db)
        add_ms = [feedback.timed_add(path.read_bytes(), feedback.Correction("T-shirt/top", token="bench"),
                                     backbone, path=db)[1] for path in pool[1:21]]
        for path in pool[21:521]:
            feedback.add(path.read_bytes(), feedback.Correction("T-shirt/top", source="cli"), backbone,
                         accept=True, path=db)
        started = time.perf_counter()
        head = train_photo_head(PhotoTrainConfig(with_feedback=True), feedback_path=db)
        results["train_seconds_500_corrections"] = round(time.perf_counter() - started, 1)
        results["corrections_used"] = head.meta["corrections"]["count"]
    results["add_ms_median"] = round(float(np.median(add_ms)), 1)
    results["add_ms_p95"] = round(float(np.percentile(add_ms, 95)), 1)
    out = REPO_ROOT / "bench" / "results" / "teaching.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))
    print("\n| taught | corrections (weight) | held back | held back right before → after | CC0 held-out before → after "
          "| whole shop, ten classes, before → after |\n|---|---|---|---|---|---|")
    for name, row in results["groups"].items():
        print(f"| {name} as {row['label']} | {row['taught']} ({row['feedback_weight']:g}) | {row['held_back']} | "
              f"{row['held_back_right_before']:.0%} → {row['held_back_right_after']:.0%} | "
              f"{row['cc0_held_out_before']:.1%} → {row['cc0_held_out_after']:.1%} | "
              f"{results['shop_ten_classes_before']:.1%} → {row['shop_ten_classes_after']:.1%} |")


if __name__ == "__main__":
    main()
