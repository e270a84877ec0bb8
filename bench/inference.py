"""Inference figures of a registry model (the shipped, active one by default), without training anything.

    python -m bench.inference [--model ID]        # writes bench/results/inference.json

The training benchmark (bench.run) times the models it trains; the shipped model is trained once, by the
`best` preset, so its inference speed is measured here: the 10,000 test images with each kind of TTA,
one 28x28 image, one 400x400 product JPEG, a Classify-page upload with its heat map, and a batch of photos.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from bench.worker import latency_ms, product_photo
from fmnist_core.config import REPO_ROOT, TTA_MODES
from fmnist_core.data import load_dataset, to_model_input


def measure(model_id: str | None, calls: int, photos: int) -> dict:
    """All the figures for one model, as a dict."""
    from fmnist_core.predict import Classifier

    dataset = load_dataset()
    x_test = to_model_input(dataset.x_test)
    classifier = Classifier.load(model_id)
    rng = np.random.default_rng(0)
    jpegs = [product_photo(dataset.x_test[i], rng) for i in range(photos)]

    def page_upload():  # what the Classify page does server-side for one upload
        prediction = classifier.classify_image(jpegs[1])
        classifier.grad_cam(prediction.preprocessed.image, prediction.class_index)

    scored = {}  # the timed calls' own answers, so the accuracy needs no extra pass

    def score_test_set(mode):
        scored[mode] = classifier.probabilities(x_test, tta=mode)

    eval_seconds, eval_accuracy = {}, {}
    for mode in TTA_MODES:
        eval_seconds[mode] = round(latency_ms(lambda mode=mode: score_test_set(mode), 3)["median"] / 1000, 2)
        eval_accuracy[mode] = float((scored[mode].argmax(axis=1) == dataset.y_test).mean())
    classifier.classify_many(jpegs[:8])  # warm the thread pool
    started = time.perf_counter()
    classifier.classify_many(jpegs)
    batch_ms = (time.perf_counter() - started) * 1000 / len(jpegs)
    return {
        "model": classifier.model_id, "tta": classifier.tta, "params": int(classifier.model.count_params()),
        "eval_10k_seconds": eval_seconds, "eval_10k_accuracy": eval_accuracy,
        "latency_array_ms": latency_ms(lambda: classifier.classify_array(dataset.x_test[0]), calls),
        "latency_photo_ms": latency_ms(lambda: classifier.classify_image(jpegs[0]), calls),
        "page_upload_ms": latency_ms(page_upload, min(calls, 100)),
        "batch_photo_ms_per_image": round(batch_ms, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print a Markdown row."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model id (default: the active model)")
    parser.add_argument("--calls", type=int, default=200, help="single calls per latency figure")
    parser.add_argument("--photos", type=int, default=200, help="photos in the batch figure")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "inference.json")
    args = parser.parse_args(argv)
    result = measure(args.model, args.calls, args.photos)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    seconds, accuracy = result["eval_10k_seconds"], result["eval_10k_accuracy"]
    print(f"| model (its TTA) | params | eval 10k: accuracy, seconds ({' / '.join(TTA_MODES)}) | 1 image (ms, "
          "median / p95) | 400px photo (ms) | Classify page upload incl. heat map (ms) | batch of photos (ms/image) "
          "| peak RSS (MB) |\n|---|---|---|---|---|---|---|---|")
    print(f"| {result['model']} ({result['tta']}) | {result['params']:,} | "
          + " / ".join(f"{accuracy[mode]:.2%}, {seconds[mode]:.2f}" for mode in TTA_MODES)
          + f" | {result['latency_array_ms']['median']:.1f} / {result['latency_array_ms']['p95']:.1f} | "
          f"{result['latency_photo_ms']['median']:.1f} | {result['page_upload_ms']['median']:.0f} | "
          f"{result['batch_photo_ms_per_image']:.1f} | {result['peak_rss_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
