"""Downloads built in memory by fmnist_core.exports, checked without Streamlit; and the model comparison."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from fmnist_core import exports
from fmnist_core.data import CLASS_NAMES
from fmnist_core.evaluate import compare_evaluations, evaluate_probabilities, evaluate_test_set
from fmnist_core.predict import Classifier
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def evaluation(trained_registry, dataset):
    classifier = Classifier.load(root=trained_registry)
    return evaluate_test_set(classifier.probabilities, dataset)


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_model_zip_loads_elsewhere_with_safe_mode(trained_registry, dataset, tmp_path):
    import keras

    from fmnist_core import registry

    model_id = registry.get_active_id(trained_registry)
    archive = zipfile.ZipFile(io.BytesIO(exports.model_zip(model_id, trained_registry)))
    assert set(archive.namelist()) == {"model.keras", "meta.json", "README.txt"}
    archive.extractall(tmp_path)
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    images = dataset.x_test[:64, ..., None].astype(np.float32) / 255
    original = Classifier.load(model_id, trained_registry).probabilities(images, tta="off")
    assert np.allclose(loaded.predict(images, verbose=0), original, atol=1e-4)


def test_photo_model_zip_holds_head_backbone_and_notices():
    from fmnist_core import photo

    head_id = photo.active_photo_head_id(REPO_ROOT / "models")
    names = zipfile.ZipFile(io.BytesIO(exports.photo_model_zip(head_id, REPO_ROOT / "models"))).namelist()
    assert {"head.npz", "meta.json", "README.txt", "backbone/efficientnet-lite0.onnx", "backbone/NOTICE.md",
            "backbone/LICENSE-efficientnet-lite0-weights.txt"} <= set(names)


def test_confusion_matrix_png_decodes(evaluation):
    image = Image.open(io.BytesIO(exports.confusion_matrix_png(evaluation, title="model")))
    assert image.format == "PNG" and image.size[0] > 500 and image.size[1] > 400


def test_report_and_predictions_csv(evaluation, dataset):
    report = rows_of(exports.classification_report_csv(evaluation))
    assert report[0] == ["class", "precision", "recall", "f1", "support", "accuracy"]
    assert [row[0] for row in report[1:11]] == list(CLASS_NAMES) and len(report) == 13
    assert sum(int(row[4]) for row in report[1:11]) == 10000
    predictions = rows_of(exports.predictions_csv(evaluation, dataset.y_test))
    assert predictions[0] == ["index", "true", "predicted", "confidence"] and len(predictions) == 10001
    right = sum(row[1] == row[2] for row in predictions[1:])
    assert right / 10000 == pytest.approx(evaluation.accuracy)
    assert predictions[1][1] == CLASS_NAMES[dataset.y_test[0]]


def test_curves_png_and_history_csv():
    from fmnist_core.train import HISTORY_COLUMNS

    history = [{"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 0.8, "val_accuracy": 0.72},
               {"epoch": 2, "loss": 0.6, "accuracy": 0.8, "val_loss": None, "val_accuracy": None}]
    assert Image.open(io.BytesIO(exports.curves_png(history, "run x"))).format == "PNG"
    rows = rows_of(exports.history_csv(history, HISTORY_COLUMNS))
    assert rows[0] == list(HISTORY_COLUMNS) and len(rows) == 3 and rows[2][3] == ""


def test_answers_csv_has_one_row_per_image():
    records = [{"file": "a.jpg", "class_name": "Coat", "confidence": 0.93, "sure": True, "model": "photo",
                "cnn": {"class_name": "Shirt", "confidence": 0.5}},
               {"file": "b.png", "error": "not a readable image"}]
    rows = rows_of(exports.answers_csv(records))
    assert rows[0] == exports.ANSWER_COLUMNS
    assert rows[1][:6] == ["a.jpg", "Coat", "0.930000", "yes", "photo", "Shirt"] and rows[2][-1] == "not a readable image"


def test_comparison_counts_who_gained_and_who_lost():
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 2)
    first = np.eye(10)[labels].copy()
    second = first.copy()
    first[3] = np.eye(10)[6]  # first wrong on index 3 (Dress as Shirt)
    second[5] = np.eye(10)[7]  # second wrong on index 5 (Sandal as Sneaker)
    second[13] = np.eye(10)[6]
    a, b = evaluate_probabilities(first, labels), evaluate_probabilities(second, labels)
    comparison = compare_evaluations(a, b, labels)
    assert comparison.only_first_right.tolist() == [5, 13] and comparison.only_second_right.tolist() == [3]
    assert comparison.accuracy_difference == pytest.approx(-5.0)
    dress = next(row for row in comparison.per_class if row["class"] == "Dress")
    assert dress["difference"] == pytest.approx(0.0)  # lost one Dress, gained one Dress
    difference = np.array(comparison.confusion_difference)
    assert difference[5, 7] == 1 and difference[5, 5] == -1 and difference.sum() == 0
    assert ("Sandal", "Sneaker", 0, 1) in comparison.changed_pairs
    with pytest.raises(ValueError, match="same images"):
        compare_evaluations(a, evaluate_probabilities(first[:10], labels[:10]), labels)


def test_model_download_is_open_only_when_configured(monkeypatch):
    from fmnist_core.security import model_download_open

    monkeypatch.delenv("FMNIST_ALLOW_MODEL_DOWNLOAD", raising=False)
    assert not model_download_open()
    monkeypatch.setenv("FMNIST_ALLOW_MODEL_DOWNLOAD", "1")
    assert model_download_open()
    assert not model_download_open("false") and model_download_open(True)
