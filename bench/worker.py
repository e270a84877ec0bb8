"""One benchmark entry in its own process (so peak memory is its own): train, evaluate, time inference.

Prints one JSON object on the last line of stdout. Run by bench/run.py; not meant to be called by hand.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from fmnist_core.config import TrainConfig, preset
from fmnist_core.data import load_dataset, to_model_input
from fmnist_core.evaluate import evaluate_probabilities


def product_photo(image28: np.ndarray, rng: np.random.Generator, size: int = 400) -> bytes:
    """A 400x400 product-style JPEG (tinted item on an off-white page) made from a dataset image."""
    from PIL import Image

    item = Image.fromarray(image28).resize((size * 3 // 5, size * 3 // 5), Image.Resampling.BICUBIC)
    tint = rng.integers(0, 160, 3)
    alpha = np.asarray(item, np.float32)[..., None] / 255.0
    page = np.full((size * 3 // 5, size * 3 // 5, 3), 242.0)
    tile = page * (1 - alpha) + tint * alpha
    canvas = np.full((size, size, 3), 242.0)
    top, left = rng.integers(0, size * 2 // 5, 2)
    canvas[top:top + tile.shape[0], left:left + tile.shape[1]] = tile
    buffer = io.BytesIO()
    Image.fromarray(np.clip(canvas + rng.normal(0, 3, canvas.shape), 0, 255).astype(np.uint8)).save(
        buffer, "JPEG", quality=88)
    return buffer.getvalue()


def latency_ms(function, calls: int) -> dict:
    """Median and p95 of single calls, after a warm-up call."""
    function()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median": float(np.median(samples)), "p95": float(np.percentile(samples, 95))}


def train_tutorial_baseline(dataset, epochs: int, batch_size: int, subset: int | None):
    """The seed tutorials' recipe, verbatim: classic CNN, Adam(1e-3), model.fit, no schedule, no augmentation."""
    import keras

    from fmnist_core.models import seed_basic

    keras.utils.set_random_seed(42)
    x_train, y_train = dataset.x_train, dataset.y_train
    if subset:
        x_train, y_train = x_train[:subset], y_train[:subset]
    model = seed_basic()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started, started_cpu = time.perf_counter(), time.process_time()
    model.fit(to_model_input(x_train), y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    return model, time.perf_counter() - started, time.process_time() - started_cpu, len(x_train) * epochs


def main() -> None:
    """Run one entry and print its figures as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("entry", help="'baseline' or a preset name")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--subset", type=int)
    parser.add_argument("--latency-calls", type=int, default=300)
    parser.add_argument("--photos", type=int, default=200)
    args = parser.parse_args()

    from fmnist_core.predict import Classifier

    dataset = load_dataset()
    x_test = to_model_input(dataset.x_test)
    if args.entry == "baseline":
        model, train_seconds, train_cpu_seconds, images_seen = train_tutorial_baseline(
            dataset, args.epochs or 5, 32, args.subset)
        params, config = model.count_params(), {"architecture": "seed-basic", "epochs": args.epochs or 5,
                                                "batch_size": 32, "learning_rate": 1e-3, "augmentation": False}
        started = time.perf_counter()
        probabilities = model.predict(x_test, verbose=0)  # the tutorial way
        eval_seconds = time.perf_counter() - started
        tutorial_latency = latency_ms(lambda: model.predict(x_test[:1], verbose=0), min(args.latency_calls, 100))
        classifier = Classifier(model, "baseline")
    else:
        from fmnist_core.registry import read_meta
        from fmnist_core.train import train

        config_obj: TrainConfig = preset(args.entry).replace(epochs=args.epochs, subset=args.subset)
        with tempfile.TemporaryDirectory() as scratch:
            status = train(config_obj, Path(scratch) / "run", dataset=dataset, models_root=Path(scratch) / "models")
            meta = read_meta(status["model_id"], Path(scratch) / "models")
            classifier = Classifier.load(status["model_id"], Path(scratch) / "models")
        train_seconds, params, config = status["train_seconds"], meta["params"], config_obj.to_dict()
        train_cpu_seconds = status["train_cpu_seconds"]
        images_seen = meta["epochs_run"] * meta["dataset"]["train_images"]
        started = time.perf_counter()
        probabilities = classifier.probabilities(x_test)
        eval_seconds = time.perf_counter() - started
        tutorial_latency = None

    evaluation = evaluate_probabilities(probabilities, dataset.y_test)
    rng = np.random.default_rng(0)
    photos = [product_photo(dataset.x_test[i], rng) for i in range(args.photos)]
    single_array = latency_ms(lambda: classifier.classify_array(dataset.x_test[0]), args.latency_calls)
    single_photo = latency_ms(lambda: classifier.classify_image(photos[0]), min(args.latency_calls, 200))

    def page_upload():  # what the Classify page does server-side for one upload
        prediction = classifier.classify_image(photos[1])
        classifier.grad_cam(prediction.preprocessed.image, prediction.class_index)

    page_latency = latency_ms(page_upload, min(args.latency_calls, 100))
    started = time.perf_counter()
    classifier.classify_many(photos)
    batch_photo_ms = (time.perf_counter() - started) * 1000 / len(photos)
    result = {
        "entry": args.entry, "config": config, "params": int(params),
        "test_accuracy": evaluation.accuracy, "test_loss": evaluation.loss,
        "train_seconds": round(train_seconds, 2), "train_cpu_seconds": round(train_cpu_seconds, 2),
        "images_per_second": round(images_seen / train_seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "eval_10k_seconds": round(eval_seconds, 3),
        "latency_array_ms": single_array, "latency_photo_ms": single_photo,
        "batch_photo_ms_per_image": round(batch_photo_ms, 3), "page_upload_ms": page_latency,
        "tutorial_predict_ms": tutorial_latency,
    }
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
