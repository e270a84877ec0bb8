"""Photo benchmark: Fashion-MNIST test images rendered as product photos, and the real photos in ../shared.

    python -m bench.photos                   # 300 rendered photos + the real photos, active model
    python -m bench.photos --count 60 --model ID

Renders each test image as a file a shop or a phone might produce (item tinted in colour on an
off-white page, 4-12x larger, off-centre, noise, JPEG; some transparent PNGs; some stored sideways
with an EXIF orientation tag), classifies them all through the CLI (`python -m fmnist_core predict
--json`), and compares with the same model on the raw 28x28 images and with a naive whole-image
resize. Then does the same for ../shared/photos/<class>/*.jpg, per class.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_PHOTOS = REPO_ROOT.parent / "shared" / "photos"
FOLDER_TO_CLASS = {"tshirt_top": 0, "trouser": 1, "pullover": 2, "dress": 3, "coat": 4, "sandal": 5, "shirt": 6,
                   "sneaker": 7, "bag": 8, "ankle_boot": 9}


def render_product_photo(image28: np.ndarray, rng: np.random.Generator, path_stem: Path) -> Path:
    """One test image as a product-style photo file; returns the path written."""
    scale = int(rng.integers(4, 13))
    item = Image.fromarray(image28).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    ink = np.asarray(item, np.float32)[..., None] / 255.0
    colour = rng.integers(0, 170, 3).astype(np.float32)
    page_level = float(rng.uniform(215, 250))
    margin = int(rng.integers(scale * 6, scale * 20))
    height, width = 28 * scale + 2 * margin, 28 * scale + 2 * margin + int(rng.integers(0, scale * 20))
    top = int(rng.integers(margin // 3, height - 28 * scale - margin // 3))
    left = int(rng.integers(margin // 3, width - 28 * scale - margin // 3))
    kind = rng.choice(["jpeg", "jpeg", "jpeg", "png_alpha", "jpeg_exif"])
    if kind == "png_alpha":
        rgba = np.zeros((height, width, 4), np.uint8)
        rgba[top:top + 28 * scale, left:left + 28 * scale, :3] = colour
        rgba[top:top + 28 * scale, left:left + 28 * scale, 3] = (ink[..., 0] * 255).astype(np.uint8)
        path = path_stem.with_suffix(".png")
        Image.fromarray(rgba, "RGBA").save(path)
        return path
    # Uneven page: a gentle left-to-right lighting gradient, plus sensor noise.
    gradient = np.linspace(-8, 8, width)[None, :, None]
    canvas = np.full((height, width, 3), page_level, np.float32) + gradient
    patch = canvas[top:top + 28 * scale, left:left + 28 * scale]
    canvas[top:top + 28 * scale, left:left + 28 * scale] = patch * (1 - ink) + colour * ink
    canvas += rng.normal(0, 4, canvas.shape)
    photo = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    path = path_stem.with_suffix(".jpg")
    if kind == "jpeg_exif":
        exif = Image.Exif()
        exif[0x0112] = 6  # viewer rotates 90 degrees clockwise
        photo.rotate(90, expand=True).save(path, "JPEG", quality=int(rng.integers(70, 95)), exif=exif.tobytes())
    else:
        photo.save(path, "JPEG", quality=int(rng.integers(70, 95)))
    return path


def naive_resize(path: Path) -> np.ndarray:
    """What a naive app does: the whole picture squashed to 28x28 gray."""
    return np.asarray(Image.open(path).convert("L").resize((28, 28), Image.Resampling.BILINEAR))


def cli_predict(paths: list[Path], model: str | None) -> tuple[list[dict], float]:
    """Classify files through the real CLI; returns records and the seconds each further image adds."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}

    def command(files: list[Path]) -> list[str]:
        # --use cnn: this benchmark measures the Fashion-MNIST CNN's 28x28 path (bench.photo_model the photo model).
        return [sys.executable, "-m", "fmnist_core", "predict", "--json", "--use", "cnn", *map(str, files)] + (
            ["--model", model] if model else [])

    # Start-up (Python, TensorFlow, model load) varies by a second or more from run to run, and a batch
    # has one-time costs of its own (thread pool, oneDNN kernels for a new batch shape): so the slope
    # between all the files and a third of them, medians of three interleaved runs of each.
    third = paths[: max(1, len(paths) // 3)]
    totals, thirds = [], []
    for _ in range(3):
        started = time.perf_counter()
        completed = subprocess.run(command(paths), capture_output=True, text=True, env=env, cwd=REPO_ROOT)
        totals.append(time.perf_counter() - started)
        if completed.returncode not in (0, 2):
            raise RuntimeError(completed.stderr[-2000:])
        started = time.perf_counter()
        subprocess.run(command(third), capture_output=True, env=env, cwd=REPO_ROOT)
        thirds.append(time.perf_counter() - started)
    slope = (float(np.median(totals)) - float(np.median(thirds))) / max(1, len(paths) - len(third))
    return json.loads(completed.stdout), max(0.0, slope)


def in_process_ms_per_photo(classifier, paths: list[Path], repeats: int = 3) -> float:
    """What the CLI does after start-up (threaded preprocessing, one batched model call): median of repeats."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.classify_many([str(path) for path in paths])
        samples.append((time.perf_counter() - started) * 1000 / len(paths))
    return round(float(np.median(samples)), 2)


def accuracy(records: list[dict], labels: list[int]) -> float:
    """Share of records whose class_index equals the label (errors count as wrong)."""
    return float(np.mean([r.get("class_index") == label for r, label in zip(records, labels)]))


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--model", help="model id (default: the active model)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "photos.json")
    args = parser.parse_args(argv)

    from fmnist_core.data import CLASS_NAMES, load_dataset
    from fmnist_core.predict import Classifier

    dataset = load_dataset()
    rng = np.random.default_rng(7)
    indices = rng.choice(len(dataset.x_test), args.count, replace=False)
    labels = [int(dataset.y_test[i]) for i in indices]
    classifier = Classifier.load(args.model)
    report: dict = {"model": classifier.model_id}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        raw_paths, photo_paths = [], []
        for n, index in enumerate(indices):
            raw = scratch / f"raw_{n:04d}.png"
            Image.fromarray(dataset.x_test[index]).save(raw)
            raw_paths.append(raw)
            photo_paths.append(render_product_photo(dataset.x_test[index], rng, scratch / f"photo_{n:04d}"))
        raw_records, _ = cli_predict(raw_paths, args.model)
        photo_records, seconds_per_photo = cli_predict(photo_paths, args.model)
        naive = classifier.probabilities(
            np.stack([naive_resize(p) for p in photo_paths]).astype(np.float32)[..., None] / 255.0).argmax(axis=1)
        report["rendered"] = {
            "count": args.count,
            "raw_accuracy": accuracy(raw_records, labels),
            "photo_accuracy": accuracy(photo_records, labels),
            "naive_resize_accuracy": float(np.mean(naive == np.array(labels))),
            "cli_ms_per_photo": round(seconds_per_photo * 1000, 2),
            "in_process_ms_per_photo": in_process_ms_per_photo(classifier, photo_paths),
            "kinds": {suffix: sum(p.suffix == suffix for p in photo_paths) for suffix in (".jpg", ".png")},
        }
    if SHARED_PHOTOS.is_dir():
        paths = sorted(SHARED_PHOTOS.glob("*/*.jpg"))
        truth = [FOLDER_TO_CLASS[p.parent.name] for p in paths]
        records, seconds = cli_predict(paths, args.model)
        naive = classifier.probabilities(
            np.stack([naive_resize(p) for p in paths]).astype(np.float32)[..., None] / 255.0).argmax(axis=1)
        per_class = {}
        for index in FOLDER_TO_CLASS.values():
            chosen = [i for i, t in enumerate(truth) if t == index]
            per_class[CLASS_NAMES[index]] = {
                "n": len(chosen), "correct": int(sum(records[i].get("class_index") == index for i in chosen)),
                "predicted": [records[i].get("class_name", "error") for i in chosen]}
        timings: dict[str, list[float]] = {}
        for path in paths:  # in-process latency, preprocessing + inference, by the path the image took
            classifier.classify_image(path)
            started = time.perf_counter()
            kind = classifier.classify_image(path).preprocessed.background
            timings.setdefault("cluttered" if kind == "cluttered" else "plain", []).append(
                (time.perf_counter() - started) * 1000)
        report["real_latency_ms"] = {kind: {"n": len(values), "median": float(np.median(values)),
                                            "p95": float(np.percentile(values, 95))} for kind, values in timings.items()}
        report["real"] = {"count": len(paths), "accuracy": accuracy(records, truth),
                          "naive_resize_accuracy": float(np.mean(naive == np.array(truth))),
                          "cli_ms_per_photo": round(seconds * 1000, 1), "per_class": per_class}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    rendered = report["rendered"]
    print(f"Model: {report['model']}\n")
    print("| set | n | raw 28x28 | through the pipeline | naive whole-image resize | gap (raw - pipeline) "
          "| CLI ms/photo | in-process ms/photo |\n|---|---|---|---|---|---|---|---|")
    print(f"| rendered product photos | {rendered['count']} | {rendered['raw_accuracy']:.1%} "
          f"| {rendered['photo_accuracy']:.1%} | {rendered['naive_resize_accuracy']:.1%} "
          f"| {(rendered['raw_accuracy'] - rendered['photo_accuracy']) * 100:.1f} points "
          f"| {rendered['cli_ms_per_photo']:.1f} | {rendered['in_process_ms_per_photo']:.1f} |")
    if "real" in report:
        real = report["real"]
        print(f"| real photos (../shared) | {real['count']} | – | {real['accuracy']:.1%} "
              f"| {real['naive_resize_accuracy']:.1%} | – | {real['cli_ms_per_photo']:.1f} | – |")
        for kind, row in report["real_latency_ms"].items():
            print(f"\nReal photos on a {kind} background: {row['n']} photos, preprocessing + inference "
                  f"{row['median']:.0f} ms median, {row['p95']:.0f} ms p95 (in-process, warm).")
        print("\n| class | correct / n | predicted as |\n|---|---|---|")
        for name, row in real["per_class"].items():
            print(f"| {name} | {row['correct']} / {row['n']} | {', '.join(row['predicted'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
