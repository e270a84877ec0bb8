"""Teaching in a real browser: correct a wrong answer, accept it, retrain the photo head, activate it, ask again."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from fmnist_core import photo
from tests.e2e.conftest import SERVER_MODELS
from tests.e2e.test_browser import assert_no_exception, open_page, save_screenshot, settle

pytestmark = pytest.mark.e2e
SHOP = photo.REPO_ROOT.parent / "shared" / "shop"
NONE_CHOICE = "not one of the ten classes"
GARMENT_FOLDERS = {"shirt": "Shirt", "coat": "Coat", "tshirt_top": "T-shirt/top", "pullover": "Pullover",
                   "dress": "Dress"}


def a_photo() -> tuple[bytes, str, str]:
    """A photo the shipped model gets wrong, its name and the class a person would teach.

    A shop garment the page's answer files under another garment when ../shared is there (the head decides
    garments itself, so one correction can move it); else a made-up photo, taught "not one of the ten".
    """
    if SHOP.is_dir():
        from fmnist_core.answer import answer_image
        from fmnist_core.predict import Classifier

        classifier, model = Classifier.load(root=photo.REPO_ROOT / "models"), photo.PhotoModel.load(
            root=photo.REPO_ROOT / "models")
        garments = set(GARMENT_FOLDERS.values())
        for folder, label in GARMENT_FOLDERS.items():
            for path in sorted((SHOP / folder).glob("*.jpg")):
                answer = answer_image(path, classifier, model)
                if answer.class_name != label and answer.class_name in garments:
                    return path.read_bytes(), path.name, label
    from tests.unit.test_answer import colour_photo

    buffer = io.BytesIO()
    colour_photo().rotate(30, expand=True, fillcolor=(90, 60, 40)).save(buffer, "JPEG")
    return buffer.getvalue(), "made-up.jpg", NONE_CHOICE


def upload_and_read_verdict(page, url: str, data: bytes, name: str) -> str:
    open_page(page, url, "classify")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": name, "mimeType": "image/jpeg", "buffer": data}])
    verdict = page.locator('[data-testid="stAlert"]').filter(has_text="(photo model)").first
    verdict.wait_for(timeout=60_000)
    settle(page)
    return verdict.inner_text()


def test_a_correction_accepted_and_trained_on_changes_the_answer(page, app_url):
    data, name, label = a_photo()
    previous_head = photo.active_photo_head_id(SERVER_MODELS[0])
    try:
        before = upload_and_read_verdict(page, app_url, data, name)
        assert label not in before, before
        page.get_by_role("combobox").last.click()  # "Wrong, it is a…", under the answer
        page.keyboard.type(label)  # the list is virtual: typing filters it down to the one option
        page.get_by_role("option", name=label, exact=True).click()
        page.get_by_role("button", name="Send correction").click()
        page.get_by_text(re.compile(r"stored as correction \d+")).wait_for(timeout=60_000)
        assert_no_exception(page)

        open_page(page, app_url, "feedback")
        page.locator('[data-testid="stCheckbox"]').first.click()
        save_screenshot(page, "corrections")
        page.get_by_role("button", name="Accept 1").click()
        settle(page)
        page.locator('[data-testid="stMetricValue"]').nth(1).filter(has_text="1").wait_for()

        open_page(page, app_url, "train")
        page.get_by_text("Include the 1 accepted correction(s)").wait_for()
        page.get_by_role("button", name="Train the photo model's head").click()
        page.get_by_role("button", name=re.compile("Activate photo model")).wait_for(timeout=300_000)
        open_page(page, app_url, "train")  # as a person coming back to the page: the finished job, drawn once
        page.get_by_role("button", name=re.compile("Activate photo model")).click()
        activated = page.get_by_text("This is the active photo model.")
        activated.wait_for(timeout=120_000)
        assert_no_exception(page)
        assert photo.active_photo_head_id(SERVER_MODELS[0]) != previous_head, "the new head was not activated"

        after = upload_and_read_verdict(page, app_url, data, name)
        expected = "Not one of the ten" if label == NONE_CHOICE else label
        assert expected in after, f"before: {before!r}; after: {after!r}"
        assert_no_exception(page)
        assert Image.open(io.BytesIO(data)).size  # the photo itself was a real image all along
    finally:
        photo.activate_photo_head(previous_head, SERVER_MODELS[0])  # the other browser tests expect the shipped head
