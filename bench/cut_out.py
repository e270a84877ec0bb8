"""The CNN's view of a busy phone photo (GrabCut) at several working sizes, side by side: time and accuracy.

    python -m bench.cut_out                         # sizes 200,160,128,100; writes bench/results/cut_out.json
    python -m bench.cut_out --sizes 200,128 --repeats 3

A photo whose background is not a plain page is cut out by OpenCV's GrabCut (preprocess.grabcut_mask) before
it is shrunk to the CNN's 28x28; GrabCut's cost grows with the pixels it works on. For each size, in one
process and in turn (the sizes interleaved `--repeats` times, medians over the repeats): the time of the whole
28x28 preprocessing of each busy photo, and the CNN's accuracy on the held-out phone photos of
../shared/clothing (fmnist_core.photo_train.split_of "test") and on ../shared/photos. The photos are decoded
once, as answer.answer_image does, so only the cut-out differs. The page waits for this view beside the photo
model's answer (answer.answer_image runs both at once).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.photo_model import REPO_ROOT, domains, machine

DOMAINS = ("phone, held out", "phone, ../shared/photos")


def measure(sizes: list[int], repeats: int) -> dict:
    """Per size: busy photos' preprocessing time (median, p95 over photos; median over repeats) and accuracy."""
    from fmnist_core import preprocess
    from fmnist_core.photo import NONE_INDEX
    from fmnist_core.predict import Classifier

    classifier = Classifier.load()
    found = domains(None)
    photos = [(preprocess.decode(source, draft=preprocess.PHOTO_SIZE), allowed, name)
              for name in DOMAINS if name in found for source, allowed in found[name] if NONE_INDEX not in allowed]
    kept = preprocess.GRABCUT_SIZE
    runs: dict[int, list] = {size: [] for size in sizes}
    try:
        for _ in range(repeats):
            for size in sizes:
                preprocess.GRABCUT_SIZE = size
                times, right = [], {name: [] for name in DOMAINS}
                for image, allowed, name in photos:
                    started = time.perf_counter()
                    try:
                        prepared = preprocess.preprocess(image)
                    except preprocess.EmptyImageError:
                        right[name].append(False)
                        continue
                    if prepared.background == "cluttered":
                        times.append((time.perf_counter() - started) * 1000)
                    answer = classifier.classify_array(prepared.model_input(), 1, prepared)
                    right[name].append(answer.class_index in allowed)
                runs[size].append({"median": float(np.median(times)), "p95": float(np.percentile(times, 95)),
                                   "busy": len(times), "right": {k: float(np.mean(v)) for k, v in right.items() if v}})
    finally:
        preprocess.GRABCUT_SIZE = kept
    return {"machine": machine(), "cnn_model": classifier.model_id, "repeats": repeats, "sizes": {
        size: {"ms_median": round(float(np.median([r["median"] for r in rs])), 1),
               "ms_p95": round(float(np.median([r["p95"] for r in rs])), 1),
               "ms_median_spread": [round(min(r["median"] for r in rs), 1), round(max(r["median"] for r in rs), 1)],
               "busy_photos": rs[0]["busy"],
               "cnn_right": {name: round(value, 4) for name, value in rs[0]["right"].items()}}
        for size, rs in runs.items()}}


def main() -> None:
    """Measure, write the JSON, print the table for BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,160,128,100", help="GrabCut working sizes (px), comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = measure([int(size) for size in args.sizes.split(",")], args.repeats)
    out = REPO_ROOT / "bench" / "results" / "cut_out.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    first = next(iter(result["sizes"].values()))
    print(f"\n{result['machine']}, {result['repeats']} repeats\n\n| GrabCut size | busy photo, ms median (spread) "
          "| p95 | " + " | ".join(f"CNN right, {name}" for name in first["cnn_right"]) + " |\n|---|---|---|"
          + "---|" * len(first["cnn_right"]))
    for size, figures in result["sizes"].items():
        low, high = figures["ms_median_spread"]
        print(f"| {size} px | {figures['ms_median']} ({low}-{high}) | {figures['ms_p95']} | "
              + " | ".join(f"{value:.1%}" for value in figures["cnn_right"].values()) + " |")


if __name__ == "__main__":
    main()
