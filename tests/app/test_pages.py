"""AppTest: every page renders with a model, with an empty registry and without the dataset."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fmnist_core import registry
from fmnist_core.data import CLASS_NAMES
from tests.app.conftest import assert_clean, open_page

PAGES = ["overview", "dataset", "train", "evaluate", "classify", "feedback"]


def texts(app) -> str:
    """All markdown, captions, alerts and titles of a run, joined."""
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "success", "warning", "error", "info"):
        parts += [str(element.value) for element in getattr(app, kind)]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_a_model(page, registry_dir):
    app = open_page(page)
    assert_clean(app)
    assert app.title, "every page has a title"
    assert not app.error, [e.value for e in app.error]


@pytest.mark.parametrize("page", PAGES)
def test_page_survives_empty_registry(page, empty_registry):
    app = open_page(page)
    assert_clean(app)
    if page in ("overview", "evaluate", "classify"):
        assert "Train" in texts(app) or "train" in texts(app)


@pytest.mark.parametrize("page", ["dataset", "evaluate"])
def test_page_explains_missing_dataset(page, registry_dir, monkeypatch, tmp_path):
    from fmnist_core import data

    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "none"))
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("FMNIST_NO_DOWNLOAD", "1")
    app = open_page(page)
    assert_clean(app)
    assert "not available" in texts(app)
    assert any("dataset-fashion-mnist" in str(code.value) for code in app.code)


def test_evaluate_shows_confusion_matrix_for_active_model(registry_dir):
    app = open_page("evaluate")
    assert_clean(app)
    assert "Confusion matrix" in texts(app)
    assert len(app.get("image")) >= 1, "the heatmap and gallery are rendered as images"
    active = registry.get_active_id()
    assert app.selectbox(key="evaluate_model").value == active
    app.toggle(key="evaluate_normalise").set_value(True).run()
    assert_clean(app)


def test_classify_upload_png(registry_dir, dataset):
    buffer = io.BytesIO()
    Image.fromarray(255 - dataset.x_test[1]).resize((140, 140), Image.NEAREST).save(buffer, "PNG")
    app = open_page("classify")
    app.file_uploader(key="classify_uploads").set_value([("pullover.png", buffer.getvalue(), "image/png")]).run()
    assert_clean(app)
    verdicts = [e.value for e in app.success] + [e.value for e in app.warning]
    assert any(name in verdict for verdict in verdicts for name in CLASS_NAMES), verdicts
    captions = " ".join(img.caption for element in app.get("image") for img in element.proto.imgs)
    assert "What the CNN sees" in captions


def test_classify_bad_upload_is_one_clear_line(registry_dir):
    app = open_page("classify")
    app.file_uploader(key="classify_uploads").set_value([("photo.png", b"<html>not an image</html>", "image/png")])
    app.run()
    assert_clean(app)
    assert any("photo.png" in e.value and "not a readable image" in e.value for e in app.error)


def test_overview_switches_active_model(registry_dir):
    from fmnist_core.predict import Classifier

    first = registry.get_active_id()
    second = registry.save_model(Classifier.load().model, {**registry.read_meta(first), "created_at": "later"})
    app = open_page("overview")
    app.selectbox(key="overview_model_choice").set_value(second).run()
    app.button(key="overview_activate_button").click().run()
    assert_clean(app)
    assert registry.get_active_id() == second


def test_overview_says_how_the_active_model_was_augmented(registry_dir):
    from fmnist_core.predict import Classifier

    meta = registry.read_meta(registry.get_active_id())
    config = {**meta["config"], "augmentation": True, "random_erasing": 0.5}
    erased = registry.save_model(Classifier.load().model, {**meta, "config": config, "tta": "flip+shift"})
    registry.set_active(erased)
    app = open_page("overview")
    assert_clean(app)
    assert "augmentation: flips and shifts, random erasing in 50% of images" in texts(app)
    assert "Test-time augmentation: the mirror image and one-pixel shifts" in texts(app)
    assert "Without it" in app.metric[0].proto.help


def test_overview_gives_no_without_tta_figure_for_a_model_without_tta(registry_dir):
    from fmnist_core.predict import Classifier

    meta = registry.read_meta(registry.get_active_id())
    plain = registry.save_model(Classifier.load().model, {**meta, "tta": "off",
                                                          "test_metrics_without_tta": meta["test_metrics"]})
    registry.set_active(plain)
    app = open_page("overview")
    assert_clean(app)
    assert "Test-time augmentation: none" in texts(app) and "Without it" not in app.metric[0].proto.help


def test_drawing_canvas_output_is_classified(registry_dir):
    """The canvas returns RGBA with a mostly empty frame; the same pipeline handles it."""
    from fmnist_core.predict import Classifier
    from fmnist_core.preprocess import preprocess_drawing

    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[60:220, 110:170] = (255, 255, 255, 255)  # a tall white bar: trouser-like
    prepared = preprocess_drawing(canvas)
    prediction = Classifier.load().classify_array(prepared.model_input(), preprocessed=prepared)
    assert 0 <= prediction.class_index < 10
    assert prepared.image.max() == 255 and prepared.image[0, 0] == 0


def _jpeg_of_a_garment_on_a_floor() -> bytes:
    from tests.unit.test_answer import colour_photo

    buffer = io.BytesIO()
    colour_photo().save(buffer, "JPEG")
    return buffer.getvalue()


def test_classify_photo_is_answered_by_the_photo_model_with_the_cnn_beside(photo_registry):
    app = open_page("classify")
    app.file_uploader(key="classify_uploads").set_value([("floor.jpg", _jpeg_of_a_garment_on_a_floor(),
                                                          "image/jpeg")]).run()
    assert_clean(app)
    verdicts = " ".join(e.value for kind in ("success", "warning", "info") for e in getattr(app, kind))
    assert "(photo model)" in verdicts, verdicts
    captions = " ".join(img.caption for element in app.get("image") for img in element.proto.imgs)
    assert "What the photo model sees (224x224)" in captions and "class activation map" in captions
    assert "... and its centre, closer (224x224)" in captions
    assert "What the CNN sees (28x28)" in captions and "Grad-CAM" in captions
    assert "The CNN says" in texts(app)
    app.radio(key="classify_choice").set_value("Always the Fashion-MNIST CNN").run()
    verdicts = " ".join(e.value for kind in ("success", "warning", "info") for e in getattr(app, kind))
    assert "(Fashion-MNIST CNN)" in verdicts and "(photo model)" not in verdicts


def test_classify_says_a_picture_of_no_garment_does_not_look_like_clothing(photo_registry):
    from bench.non_garments import text_page

    buffer = io.BytesIO()
    text_page(2, 26).save(buffer, "PNG")
    app = open_page("classify")
    app.file_uploader(key="classify_uploads").set_value([("letter.png", buffer.getvalue(), "image/png")]).run()
    assert_clean(app)
    verdict = " ".join(e.value for e in app.info)
    assert "does not look like clothing" in verdict and "(photo model)" in verdict, verdict
    assert "The Fashion-MNIST CNN, which knows nothing but the ten classes, would call it" in verdict
    assert not app.success  # never a sure class


def test_classify_says_when_the_photo_model_is_missing(registry_dir):
    app = open_page("classify")
    assert_clean(app)
    assert any("photo model is not available" in w.value for w in app.warning)
    app.file_uploader(key="classify_uploads").set_value([("floor.jpg", _jpeg_of_a_garment_on_a_floor(),
                                                          "image/jpeg")]).run()
    assert any("(Fashion-MNIST CNN)" in e.value for kind in ("success", "warning") for e in getattr(app, kind))


def test_classify_camera_goes_through_the_upload_path(photo_registry):
    app = open_page("classify")
    assert not app.get("camera_input"), "the camera stays off until asked for"
    app.toggle(key="classify_camera_on").set_value(True).run()
    assert_clean(app)
    assert app.get("camera_input"), "turning the camera on shows the camera widget"


def test_overview_names_the_photo_model_and_its_real_photo_score(photo_registry):
    from fmnist_core import photo

    app = open_page("overview")
    assert_clean(app)
    assert photo.active_photo_head_id() in texts(app)
    labels = [metric.label for metric in app.metric]
    assert "Held-out real photos right" in labels and "Sure answers right" in labels


def test_activating_a_much_worse_model_asks_for_confirmation(registry_dir):
    from fmnist_core.predict import Classifier

    model = Classifier.load().model
    full = {"architecture": "seed-basic", "dataset": {"test_images": 10000}}
    good = registry.save_model(model, {**full, "test_metrics": {"accuracy": 0.93, "loss": 0.2}})
    broken = registry.save_model(model, {**full, "test_metrics": {"accuracy": 0.1017, "loss": 2.3}})
    registry.set_active(good)
    app = open_page("overview")
    app.selectbox(key="overview_model_choice").set_value(broken).run()
    assert any("82.8 points below the active model" in w.value for w in app.warning)
    assert app.button(key="overview_activate_button").disabled
    assert registry.get_active_id() == good
    app.checkbox(key="overview_activate_confirm").check().run()
    app.button(key="overview_activate_button").click().run()
    assert_clean(app)
    assert registry.get_active_id() == broken


def test_evaluate_offers_downloads_and_compares_two_models(registry_dir):
    from fmnist_core.predict import Classifier

    first = registry.get_active_id()
    second = registry.save_model(Classifier.load().model, {**registry.read_meta(first), "created_at": "later"})
    app = open_page("evaluate")
    assert_clean(app)
    labels = [button.proto.label for button in app.get("download_button")]
    assert any("Confusion matrix (PNG)" in label for label in labels)
    assert any("Predictions for the 10,000 test images" in label for label in labels)
    assert app.selectbox(key="evaluate_compare_with").value == second
    assert "gets **0** test images right" in texts(app)  # the same weights: nothing gained or lost
    assert "Right by" in texts(app)


def test_classify_offers_the_batch_answers_as_csv(photo_registry):
    app = open_page("classify")
    app.file_uploader(key="classify_uploads").set_value([
        ("floor.jpg", _jpeg_of_a_garment_on_a_floor(), "image/jpeg"), ("bad.png", b"not an image", "image/png")]).run()
    assert_clean(app)
    labels = [button.proto.label for button in app.get("download_button")]
    assert "Answers for these 2 image(s) (CSV)" in labels


def test_model_download_sits_behind_the_admin_gate(registry_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_ADMIN_PASSWORD", "s3cret")
    monkeypatch.delenv("FMNIST_ALLOW_MODEL_DOWNLOAD", raising=False)
    app = open_page("overview")
    assert_clean(app)
    assert not [b for b in app.get("download_button") if "Download" in b.proto.label]
    monkeypatch.setenv("FMNIST_ALLOW_MODEL_DOWNLOAD", "1")
    app = open_page("overview")
    assert any(b.proto.label.startswith("Download ") for b in app.get("download_button"))
