"""How long each download takes to build for the shipped models (the target: at most 2 s each).

    python -m bench.downloads

Builds every file the pages offer, in memory, with fmnist_core.exports, the code the download buttons
call; the evaluation itself (scoring the 10,000 test images) is computed once beforehand, as the Evaluate
page's cache holds it. Medians of three. Writes bench/results/downloads.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


def median_seconds(build, repeats: int = 3) -> tuple[float, int]:
    """Median seconds of build() and the size of what it returned."""
    times, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        size = len(build())
        times.append(time.perf_counter() - started)
    return float(np.median(times)), size


def main() -> None:
    """Time each export and print a table."""
    from fmnist_core import exports, photo, registry
    from fmnist_core.data import load_dataset
    from fmnist_core.evaluate import evaluate_test_set
    from fmnist_core.predict import Classifier
    from fmnist_core.train import HISTORY_COLUMNS

    model_id = registry.get_active_id()
    classifier = Classifier.load(model_id)
    dataset = load_dataset()
    evaluation = evaluate_test_set(classifier.probabilities, dataset)
    history = registry.read_meta(model_id).get("history") or []
    records = [{"file": f"{i}.jpg", "class_name": "Coat", "confidence": 0.9, "sure": True, "model": "photo",
                "cnn": {"class_name": "Shirt", "confidence": 0.5}} for i in range(20)]
    builds = {
        "model (.zip)": lambda: exports.model_zip(model_id),
        "photo model (.zip, with the ONNX backbone)": lambda: exports.photo_model_zip(photo.active_photo_head_id()),
        "confusion matrix (PNG)": lambda: exports.confusion_matrix_png(evaluation, title=model_id),
        "classification report (CSV)": lambda: exports.classification_report_csv(evaluation),
        "test-set predictions (CSV, 10,000 rows)": lambda: exports.predictions_csv(evaluation, dataset.y_test),
        "training curves (PNG)": lambda: exports.curves_png(history, model_id),
        "training history (CSV)": lambda: exports.history_csv(history, HISTORY_COLUMNS),
        "batch answers (CSV, 20 images)": lambda: exports.answers_csv(records),
    }
    rows = []
    for name, build in builds.items():
        seconds, size = median_seconds(build)
        rows.append({"download": name, "seconds": round(seconds, 3), "bytes": size})
        print(f"| {name} | {seconds:.3f} | {size / 1e6:.2f} MB |", flush=True)
    (REPO_ROOT / "bench" / "results" / "downloads.json").write_text(
        json.dumps({"model": model_id, "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
