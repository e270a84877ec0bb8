"""The files a person can download, built in memory: models, figures and tables (the pages only offer them)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from fmnist_core import registry
from fmnist_core.data import CLASS_NAMES
from fmnist_core.evaluate import Evaluation
from fmnist_core.figures import confusion_figure, curves_figure, png_bytes

MODEL_README = """A Fashion-MNIST classifier from the Fashion-MNIST workbench.

    import keras
    model = keras.saving.load_model("model.keras", safe_mode=True)
    probabilities = model.predict(images)   # images: N x 28 x 28 x 1, float32 in [0, 1], item bright on black

Classes, in output order: {classes}.
meta.json records how it was trained (config, metrics, timings, library versions).
"""
PHOTO_README = """The Fashion-MNIST workbench's photo model: an ImageNet-pretrained EfficientNet-Lite0 (ONNX) and a head
trained on real phone photos.

    backbone: efficientnet-lite0.onnx, input N x 224 x 224 x 3 RGB floats 0..255, outputs "features"
              (N x 1280 x 7 x 7) and "logits" (ImageNet-1k); run once per view of the photo
    views:    the head's array "views", in order: "whole" = the photo padded to a square with its border
              colour; "centre" = its centre square (the shorter side's length); "item" and "item-centre" =
              the same of the photo trimmed to its item when it lies on a plain page
              (fmnist_core.preprocess.item_box)
    head:     head.npz, arrays weights (views*1280 x 11), bias (11), mean, scale (views*1280), temperature,
              power, views; with f = sign(p) |p| ** power of the views' features.mean((2, 3)) side by side,
              probabilities = softmax((((f - mean) / scale) @ weights + bias) / temperature)
    outputs:  {outputs}
    ImageNet: the bag and the shoe types (times the head's own where taught_shoe_types) are folded in
              from ImageNet's classes, and worn things none of the ten (socks, belts, hats) go to the last
              output (fmnist_core.photo.fold_in_imagenet,
              efficientnet-lite0-kept-imagenet.npz); garment_floor: under this ImageNet mass of worn or
              carried things the photo does not look like clothing (PhotoHead.clothing_share)
    sure:     class_thresholds (2 x 11: a phone photo, an item on a white page), or sure_threshold for all;
              cnn_weight: the Fashion-MNIST CNN's weight on a white page (fmnist_core.photo.mix_with_cnn)

Weights: Apache License 2.0 (NOTICE.md, LICENSE-efficientnet-lite0-weights.txt). meta.json: how the head was
trained and how it scores on held-out real photos.
"""


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def model_zip(model_id: str, root: Path | None = None) -> bytes:
    """A registry model as one zip: model.keras, meta.json and a README on how to load it."""
    directory = registry.model_dir(model_id, root)
    try:
        files = {name: (directory / name).read_bytes() for name in (registry.MODEL_FILE, registry.META_FILE)}
    except OSError as error:
        raise registry.RegistryError(f"model {model_id} cannot be packed: {error.strerror or error}") from error
    files["README.txt"] = MODEL_README.format(classes=", ".join(CLASS_NAMES)).encode()
    return _zip(files)


def photo_model_zip(head_id: str, root: Path | None = None) -> bytes:
    """A photo model as one zip: the head, its meta.json, the ONNX backbone and its notices."""
    from fmnist_core.photo import BACKBONE_DIR, HEAD_FILE, OUTPUT_NAMES, photo_models_dir

    directory = registry.model_dir(head_id, photo_models_dir(root))
    try:
        files = {name: (directory / name).read_bytes() for name in (HEAD_FILE, registry.META_FILE)}
        files.update({f"backbone/{path.name}": path.read_bytes() for path in sorted(BACKBONE_DIR.iterdir())
                      if path.is_file()})
    except OSError as error:
        raise registry.RegistryError(f"photo model {head_id} cannot be packed: {error.strerror or error}") from error
    files["README.txt"] = PHOTO_README.format(outputs=", ".join(OUTPUT_NAMES)).encode()
    return _zip(files)


def csv_bytes(header: list[str], rows) -> bytes:
    """Rows as UTF-8 CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def confusion_matrix_png(evaluation: Evaluation, normalise: bool = False, title: str | None = None) -> bytes:
    """The confusion matrix as the Evaluate page draws it, as PNG."""
    return png_bytes(confusion_figure(evaluation.confusion, normalise, title))


def classification_report_csv(evaluation: Evaluation) -> bytes:
    """scikit-learn's per-class report (precision, recall, f1, support) plus accuracy per class, as CSV."""
    rows = [[name, *(round(evaluation.report[name][key], 6) for key in ("precision", "recall", "f1-score")),
             int(evaluation.report[name]["support"]), round(evaluation.per_class_accuracy[index], 6)]
            for index, name in enumerate(CLASS_NAMES)]
    for average in ("macro avg", "weighted avg"):
        rows.append([average, *(round(evaluation.report[average][key], 6) for key in ("precision", "recall",
                                                                                      "f1-score")),
                     int(evaluation.report[average]["support"]), ""])
    return csv_bytes(["class", "precision", "recall", "f1", "support", "accuracy"], rows)


def predictions_csv(evaluation: Evaluation, labels: np.ndarray) -> bytes:
    """One row per test image: index, true class, predicted class, confidence."""
    labels = np.asarray(labels).astype(int)
    rows = ((index, CLASS_NAMES[truth], CLASS_NAMES[int(guess)], f"{float(confidence):.6f}")
            for index, (truth, guess, confidence) in enumerate(zip(labels, evaluation.predicted,
                                                                   evaluation.confidence)))
    return csv_bytes(["index", "true", "predicted", "confidence"], rows)


def history_csv(history: list[dict], columns: tuple[str, ...]) -> bytes:
    """A training run's per-epoch history as CSV, written as the run's own history.csv is."""
    from fmnist_core.train import csv_text

    return csv_text(columns, history).encode("utf-8")


def curves_png(history: list[dict], title: str | None = None) -> bytes:
    """A training run's loss and accuracy curves as PNG."""
    return png_bytes(curves_figure(history, title))


ANSWER_COLUMNS = ["file", "class", "confidence", "sure", "model", "cnn_class", "cnn_confidence", "error"]


def answers_csv(records: list[dict]) -> bytes:
    """The Classify page's answers for a batch of images (records as fmnist_core.answer.Answer.to_json, plus file)."""
    rows = []
    for record in records:
        cnn = record.get("cnn") or {}
        rows.append([record.get("file", ""), record.get("class_name", ""),
                     "" if record.get("confidence") is None else f"{record['confidence']:.6f}",
                     "" if "sure" not in record else ("yes" if record["sure"] else "no"), record.get("model", ""),
                     cnn.get("class_name", ""), "" if cnn.get("confidence") is None else f"{cnn['confidence']:.6f}",
                     record.get("error", "")])
    return csv_bytes(ANSWER_COLUMNS, rows)


def json_bytes(data) -> bytes:
    """Pretty JSON as bytes."""
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")
