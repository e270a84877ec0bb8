"""answer(): which model answers which input, and what the Answer and the CLI's JSON carry."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_core import photo
from fmnist_core.answer import answer_drawing, answer_image, choose_model, looks_like_dataset_image
from fmnist_core.photo import NONE_NAME, PhotoModel
from fmnist_core.predict import Classifier
from tests.conftest import REPO_ROOT, SHARED_PHOTOS
from tests.unit.test_cli import run_cli


def colour_photo(size=(300, 400)) -> Image.Image:
    """A colourful garment-like blob on a beige floor (not a real photo, but every property of one that matters here)."""
    y, x = np.mgrid[0:size[1], 0:size[0]]
    rgb = np.zeros((size[1], size[0], 3), np.uint8) + np.array([200, 180, 150], np.uint8)
    body = ((x - size[0] / 2) / (size[0] / 3)) ** 2 + ((y - size[1] / 2) / (size[1] / 3)) ** 2 < 1
    rgb[body] = [40, 70, 160]
    return Image.fromarray(rgb)


@pytest.fixture(scope="module")
def models():
    return Classifier.load(root=REPO_ROOT / "models"), PhotoModel.load(root=REPO_ROOT / "models")


def test_dataset_form_images_go_to_the_cnn(dataset):
    small = Image.fromarray(dataset.x_test[0])
    enlarged = small.resize((280, 280), Image.NEAREST)
    assert looks_like_dataset_image(small) and looks_like_dataset_image(enlarged)
    assert looks_like_dataset_image(enlarged.convert("RGB"))  # grey saved as RGB is still grey
    assert not looks_like_dataset_image(colour_photo())
    grey_on_white = Image.fromarray(255 - np.asarray(enlarged))  # a grey product shot on a white page
    assert not looks_like_dataset_image(grey_on_white)


def test_choose_model_follows_the_choice_and_says_why(models):
    _, photo_model = models
    photo = colour_photo()
    assert choose_model(photo, "auto", photo_model)[0] == "photo"
    assert choose_model(photo, "cnn", photo_model) == ("cnn", "you chose the Fashion-MNIST CNN")
    kind, why = choose_model(photo, "auto", None, "no active photo model")
    assert kind == "cnn" and "no active photo model" in why
    with pytest.raises(ValueError, match="not available"):
        choose_model(photo, "photo", None, "files missing")
    with pytest.raises(ValueError, match="unknown model choice"):
        choose_model(photo, "both", photo_model)


def test_a_photo_is_answered_by_the_photo_model_with_the_cnn_view_beside(models):
    classifier, photo_model = models
    buffer = io.BytesIO()
    colour_photo().save(buffer, "JPEG")
    answer = answer_image(buffer.getvalue(), classifier, photo_model, heat_maps=True)
    assert answer.model == "photo" and answer.photo is not None
    assert answer.photo.view.shape == (224, 224, 3)
    assert answer.cnn is not None and answer.cnn.preprocessed.image.shape == (28, 28)
    assert answer.photo.views.shape == (2, 224, 224, 3)  # the whole photo and its centre
    assert answer.photo_heat.shape == (photo.CAM_GRID, photo.CAM_GRID) and answer.cnn_heat.shape == (28, 28)
    assert answer.sure == (answer.confidence >= photo_model.head.threshold_of(answer.photo.output)
                           and answer.class_name != NONE_NAME)
    assert abs(sum(p for _, p in answer.photo.top_k(11)) - 1.0) < 1e-6
    record = answer.to_json()
    assert record["model"] == "photo" and record["cnn"]["class_name"] == answer.cnn.class_name
    forced = answer_image(buffer.getvalue(), classifier, photo_model, choice="cnn")
    assert forced.model == "cnn" and forced.photo is None and forced.class_name == answer.cnn.class_name


def test_drawings_go_to_the_cnn(models):
    classifier, _ = models
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[60:220, 100:180] = 255  # a filled upright rectangle, stroke colour white, opaque
    answer = answer_drawing(canvas, classifier)
    assert answer.model == "cnn" and answer.photo is None and "drawing" in answer.why


@pytest.mark.photos
def test_real_photos_mostly_right_through_the_photo_model(models):
    """A sanity floor on the real-photo test set (the figure itself is in BENCHMARKS.md, not tested)."""
    if not SHARED_PHOTOS.is_dir():
        pytest.skip("../shared/photos is not present (the real-photo test set lives beside the repository)")
    classifier, photo_model = models
    folders = ["tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
    right = total = 0
    for index, folder in enumerate(folders):
        for path in sorted((SHARED_PHOTOS / folder).glob("*.jpg")):
            answer = answer_image(path, classifier, photo_model)
            right += answer.class_index == index and answer.model == "photo"
            total += 1
    assert total == 56 and right / total >= 0.75


def test_cli_predict_says_which_model_answered(photo_registry, dataset, tmp_path):
    photo_path = tmp_path / "floor.jpg"
    colour_photo().save(photo_path)
    grey_path = tmp_path / "sneaker.png"
    Image.fromarray(dataset.x_test[0]).save(grey_path)
    result = run_cli("predict", photo_path, grey_path, "--json", env_root=photo_registry)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [record["model"] for record in records] == ["photo", "cnn"]
    assert records[0]["cnn"]["class_name"] and isinstance(records[0]["sure"], bool)
    forced = json.loads(run_cli("predict", photo_path, "--json", "--use", "cnn", env_root=photo_registry).stdout)
    assert forced[0]["model"] == "cnn"


def test_cli_predict_without_a_photo_model(registry_dir, tmp_path):
    photo_path = tmp_path / "floor.jpg"
    colour_photo().save(photo_path)
    auto = run_cli("predict", photo_path, "--json", env_root=registry_dir)
    assert auto.returncode == 0 and json.loads(auto.stdout)[0]["model"] == "cnn"
    assert "photo model is not available" in json.loads(auto.stdout)[0]["why"]
    forced = run_cli("predict", photo_path, "--use", "photo", env_root=registry_dir)
    assert forced.returncode == 1 and "train-photo" in forced.stderr


@pytest.mark.parametrize("index", range(7))
def test_pictures_of_no_garment_are_said_not_to_look_like_clothing(models, index):
    from bench.non_garments import chart, text_page

    classifier, photo_model = models
    sample = Path(__import__("sklearn.datasets").datasets.__file__).parent / "images"
    pictures = [Image.open(sample / "china.jpg"), Image.open(sample / "flower.jpg"), text_page(0), text_page(1, 30),
                chart(0), chart(1), Image.open(REPO_ROOT / "docs" / "screenshots" / "overview.png")]
    answer = answer_image(pictures[index].convert("RGB"), classifier, photo_model)
    assert answer.model == "photo" and answer.class_index is None and answer.not_clothing, answer.top_k
    assert any("does not look like clothing" in doubt for doubt in answer.doubts)
    assert answer.to_json()["not_clothing"] is True and not answer.sure


def test_garments_are_not_called_not_clothing(models):
    classifier, photo_model = models
    for folder in ("trouser", "sneaker", "bag"):
        for path in sorted((SHARED_PHOTOS / folder).glob("*.jpg"))[:2]:
            answer = answer_image(path, classifier, photo_model)
            assert not answer.not_clothing and answer.photo.clothing_share > 0.5, (path.name, answer.top_k)


def test_the_cnn_counts_in_only_for_an_item_on_a_white_page(models):
    classifier, photo_model = models
    assert photo_model.head.cnn_weight > 0
    on_a_page = Image.new("RGB", (360, 540), (245, 245, 245))
    on_a_page.paste(colour_photo((200, 300)).crop((40, 40, 160, 260)), (120, 160))
    plain = answer_image(on_a_page, classifier, photo_model)
    assert plain.photo.white_page and plain.photo.cnn_weight == photo_model.head.cnn_weight
    assert "CNN's opinion counts in" in plain.why
    alone = photo_model.answer_photo(on_a_page)
    assert np.allclose(plain.photo.probabilities, photo.mix_with_cnn(alone.probabilities, plain.cnn.probabilities,
                                                                     photo_model.head.cnn_weight))
    on_a_floor = colour_photo()  # a plain beige floor: a phone photo's background, not a shop's page
    floor = answer_image(on_a_floor, classifier, photo_model)
    assert not floor.photo.white_page and floor.photo.cnn_weight == 0.0 and "CNN's opinion" not in floor.why
