"""Real photos, side by side: the Fashion-MNIST CNN's 28x28 path vs the photo model, in one run.

    python -m bench.photo_model                    # held-out split of ../shared/clothing + ../shared/photos
    python -m bench.photo_model --limit 100        # a quick look

Both models answer every photo through fmnist_core.answer (decode, the model's own view, the model):
the CNN with choice "cnn", the photo model with choice "photo" and without the CNN's view beside it.
The held-out split is the fixed rule of fmnist_core.photo_train.split_of ("test": 15 %, never fitted or
calibrated on); accuracy is counted on the labels the team checks with (CHECKED_LABELS, Longsleeve right
as T-shirt/top or Pullover, Shoes as any shoe), "flagged" on Hat / Shorts / Skirt. Also: the time per
photo (median, p95) of each path and of the page's full answer (photo model + the CNN's view beside it,
made in parallel), model load times, and the peak memory of this process with both models loaded.
Writes bench/results/photo_model.json and prints the table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
CLOTHING = REPO_ROOT.parent / "shared" / "clothing"
SHARED_PHOTOS = REPO_ROOT.parent / "shared" / "photos"
FOLDER_TO_CLASS = {"tshirt_top": 0, "trouser": 1, "pullover": 2, "dress": 3, "coat": 4, "sandal": 5, "shirt": 6,
                   "sneaker": 7, "bag": 8, "ankle_boot": 9}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def held_out_clothing(limit: int | None) -> list[tuple[Path, str]]:
    """(path, source label) of the held-out test split whose labels the checks use."""
    from fmnist_core.photo_train import CHECKED_LABELS, NOT_OF_THE_TEN, split_of

    with open(CLOTHING / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = [(CLOTHING / row["file"], row["source_label"]) for row in csv.DictReader(handle)]
    rows = [(path, label) for path, label in rows
            if split_of(path.name) == "test" and label in (*CHECKED_LABELS, *NOT_OF_THE_TEN)]
    return rows[:limit] if limit else rows


def shared_photos() -> list[tuple[Path, int]]:
    """(path, class index) of the 56 real test photos."""
    return [(path, index) for folder, index in FOLDER_TO_CLASS.items()
            for path in sorted((SHARED_PHOTOS / folder).glob("*.jpg"))]


def timed_answers(items, answer) -> tuple[list, list[float]]:
    """answer(path) for each item, and the milliseconds each took (the first one warms up, not timed twice)."""
    answer(items[0][0])
    results, times = [], []
    for path, _ in items:
        started = time.perf_counter()
        results.append(answer(path))
        times.append((time.perf_counter() - started) * 1000)
    return results, times


def summary(right: np.ndarray, sure: np.ndarray, times: list[float], flagged: np.ndarray | None = None) -> dict:
    """Accuracy, sure coverage and accuracy, time median and p95 (right/sure over the checked photos)."""
    result = {"photos": int(len(right)), "accuracy": round(float(right.mean()), 4),
              "sure_coverage": round(float(sure.mean()), 4),
              "sure_accuracy": round(float(right[sure].mean()), 4) if sure.any() else None,
              "ms_median": round(float(np.median(times)), 1), "ms_p95": round(float(np.percentile(times, 95)), 1)}
    if flagged is not None:
        result["not_of_the_ten_flagged"] = round(float(flagged.mean()), 4) if len(flagged) else None
    return result


def main() -> None:
    """Run both paths on both photo sets; write the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="at most this many held-out clothing photos")
    args = parser.parse_args()

    from fmnist_core.answer import answer_image
    from fmnist_core.photo import NONE_INDEX, PhotoModel
    from fmnist_core.photo_train import NOT_OF_THE_TEN, SOURCE_LABEL_TARGETS
    from fmnist_core.predict import Classifier

    started = time.perf_counter()
    classifier = Classifier.load()
    cnn_load = time.perf_counter() - started
    started = time.perf_counter()
    photo_model = PhotoModel.load()
    photo_load = time.perf_counter() - started

    def cnn(path):
        return answer_image(path, classifier, None, "cnn")

    def photo(path):
        return answer_image(path, classifier, photo_model, "photo", cnn_view=False)

    def page(path):
        return answer_image(path, classifier, photo_model, "auto")

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or 'cpu'}",
               "cnn_model": classifier.model_id, "photo_model": photo_model.model_id,
               "load_seconds": {"cnn": round(cnn_load, 2), "photo_model": round(photo_load, 2)}}

    clothing = held_out_clothing(args.limit)
    allowed = [set(SOURCE_LABEL_TARGETS[label]) for _, label in clothing]
    checked = np.array([label not in NOT_OF_THE_TEN for _, label in clothing])
    for name, answer in (("cnn", cnn), ("photo_model", photo)):
        answers, times = timed_answers(clothing, answer)
        outputs = [NONE_INDEX if a.class_index is None else a.class_index for a in answers]
        right = np.array([output in options for output, options in zip(outputs, allowed)])
        sure = np.array([a.sure for a in answers])
        flagged = right[~checked] if name == "photo_model" else np.zeros((~checked).sum(), bool)
        results.setdefault("clothing_held_out", {})[name] = summary(right[checked], sure[checked], times, flagged)
    photos = shared_photos()
    for name, answer in (("cnn", cnn), ("photo_model", photo), ("page_answer", page)):
        answers, times = timed_answers(photos, answer)
        right = np.array([a.class_index == index for a, (_, index) in zip(answers, photos)])
        results.setdefault("shared_photos", {})[name] = summary(right, np.array([a.sure for a in answers]), times)
        if name == "photo_model":
            results["shared_photos"]["photo_model_per_class"] = {
                folder: int(sum(r for r, (_, i) in zip(right, photos) if i == index))
                for folder, index in FOLDER_TO_CLASS.items()}
    results["peak_rss_mb_both_models"] = round(peak_rss_mb(), 0)
    out = REPO_ROOT / "bench" / "results" / "photo_model.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))
    print("\n| photos | model | right | sure answers right | answered sure | hats/shorts/skirts flagged | "
          "ms median | ms p95 |\n|---|---|---|---|---|---|---|---|")
    for group, label in (("clothing_held_out", f"../shared/clothing held out ({checked.sum()})"),
                         ("shared_photos", "../shared/photos (56)")):
        for name, row in results[group].items():
            if name.endswith("per_class"):
                continue
            flagged = row.get("not_of_the_ten_flagged")
            print(f"| {label} | {name} | {row['accuracy']:.1%} | "
                  f"{row['sure_accuracy'] or 0:.1%} | {row['sure_coverage']:.0%} | "
                  f"{'-' if flagged is None else f'{flagged:.0%}'} | {row['ms_median']} | {row['ms_p95']} |")


if __name__ == "__main__":
    main()
