"""The app in a real headless Chromium, used the way people use it: pages, upload, canvas, training."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_core.data import CLASS_NAMES
from tests.conftest import SHARED_PHOTOS
from tests.e2e.conftest import SCREENSHOT_DIR

pytestmark = pytest.mark.e2e

PAGES = {"": "Fashion-MNIST workbench", "dataset": "The Fashion-MNIST dataset", "train": "Train a model",
         "evaluate": "Evaluate a model", "classify": "Classify a photo or a drawing"}
CLASS_PATTERN = "|".join(name.replace("/", "\\/") for name in CLASS_NAMES)


def settle(page, extra_ms: int = 500) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_load_state("networkidle")
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)
    page.wait_for_timeout(extra_ms)


def open_page(page, url: str, name: str) -> None:
    page.goto(f"{url}/{name}")
    page.get_by_role("heading", name=PAGES[name]).wait_for()
    settle(page)


def assert_no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]').first.inner_text()


def assert_verdict_shown(page) -> None:
    """The success/warning box naming a class with its confidence appears, and no exception box."""
    verdict = page.locator('[data-testid="stAlert"]').filter(
        has_text=re.compile(r"\((photo model|Fashion-MNIST CNN)\)")).first
    verdict.wait_for(timeout=60_000)
    assert any(name in verdict.inner_text() for name in CLASS_NAMES)
    assert_no_exception(page)


def save_screenshot(page, name: str):
    """Let the page finish drawing, check for exceptions, save SCREENSHOT_DIR/<name>.png; returns the path."""
    settle(page, 1500)
    assert_no_exception(page)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def download(page, label) -> bytes:
    """Click the download button with this label and return the file the browser received."""
    with page.expect_download(timeout=60_000) as pending:
        page.get_by_role("button", name=label).first.click()
    return Path(pending.value.path()).read_bytes()


def screenshot_is_not_blank(path) -> bool:
    """A rendered page has text and widgets: at least 1 % of pixels clearly differ from the background."""
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return (np.abs(pixels - np.median(pixels)) > 40).mean() > 0.01


def product_photo_png(dataset) -> bytes:
    """An ankle boot from the test set drawn as a dark item on an off-white page, 5x larger."""
    item = np.kron(dataset.x_test[0], np.ones((5, 5), np.uint8)).astype(np.float32)
    page_rgb = np.full((200, 200, 3), 240.0)
    page_rgb[30:170, 30:170] -= item[..., None] / 255.0 * 200.0
    buffer = io.BytesIO()
    Image.fromarray(page_rgb.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders_and_is_screenshotted(page, app_url, name):
    open_page(page, app_url, name)
    if name == "evaluate":
        page.get_by_role("heading", name="Confusion matrix").wait_for()
    if name in ("evaluate", "dataset"):  # pages of images: wait for the first one, not only the heading
        page.locator('[data-testid="stImage"]').first.wait_for()
    path = save_screenshot(page, name or "overview")
    assert screenshot_is_not_blank(path), f"{path} looks blank"


def test_upload_a_photo_shows_prediction_and_model_view(page, app_url, dataset):
    open_page(page, app_url, "classify")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "ankle-boot.png", "mimeType": "image/png", "buffer": product_photo_png(dataset)}])
    page.get_by_text("What the CNN sees (28x28)").first.wait_for(timeout=60_000)
    assert_verdict_shown(page)
    page.locator('[data-testid="stImage"]').nth(2).wait_for()  # photo, model's view, heat map
    save_screenshot(page, "classify_upload")


def test_a_real_photo_gets_the_photo_models_answer_beside_the_cnns_view(page, app_url):
    from tests.unit.test_answer import colour_photo

    coats = sorted((SHARED_PHOTOS / "coat").glob("*.jpg")) if SHARED_PHOTOS.is_dir() else []
    if coats:  # a real phone photo from the test set, when ../shared is there
        data, name = coats[0].read_bytes(), coats[0].name
    else:
        buffer = io.BytesIO()
        colour_photo().save(buffer, "JPEG")
        data, name = buffer.getvalue(), "floor.jpg"
    open_page(page, app_url, "classify")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": name, "mimeType": "image/jpeg", "buffer": data}])
    page.get_by_text("What the photo model sees (224x224)").first.wait_for(timeout=60_000)
    verdict = page.locator('[data-testid="stAlert"]').filter(has_text="(photo model)").first
    verdict.wait_for(timeout=60_000)
    if coats:
        assert "Coat" in verdict.inner_text()
    page.get_by_text("class activation map").first.wait_for()
    page.get_by_text("What the CNN sees (28x28)").first.wait_for()
    page.get_by_text("The CNN says").first.wait_for()
    assert_no_exception(page)
    save_screenshot(page, "classify_photo")


def test_draw_on_canvas_gives_a_prediction(page, app_url):
    open_page(page, app_url, "classify")
    page.get_by_role("tab", name="Draw").click()
    page.get_by_text("Draw something on the canvas").or_(page.get_by_text("The canvas is empty")).first.wait_for()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for()
    box = canvas.bounding_box()
    # A filled rectangle with sleeves: a T-shirt silhouette drawn with a wide brush.
    strokes = [[(0.25, 0.3), (0.75, 0.3)], [(0.1, 0.35), (0.9, 0.35)], [(0.3, 0.4), (0.3, 0.85)],
               [(0.5, 0.4), (0.5, 0.85)], [(0.7, 0.4), (0.7, 0.85)], [(0.3, 0.85), (0.7, 0.85)]]
    for stroke in strokes:
        (x0, y0), (x1, y1) = stroke
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        for step in range(1, 11):
            t = step / 10
            page.mouse.move(box["x"] + (x0 + (x1 - x0) * t) * box["width"],
                            box["y"] + (y0 + (y1 - y0) * t) * box["height"])
        page.mouse.up()
    assert_verdict_shown(page)
    save_screenshot(page, "classify_draw")


def test_training_survives_page_switch_and_lands_on_overview(page, app_url):
    open_page(page, app_url, "train")
    form = page.locator('[data-testid="stForm"]').first
    epochs = form.get_by_label("Epochs", exact=True)
    epochs.fill("1")
    epochs.press("Enter")
    subset = form.get_by_label("Training images (0 = all 60,000)")
    subset.fill("600")
    subset.press("Enter")
    page.get_by_role("button", name="Start training").click()
    page.locator('[data-testid="stProgress"]').first.wait_for(timeout=60_000)
    page.locator('[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"]').first.wait_for(
        timeout=120_000)
    # Leave the page (a new page load, as when the tab is closed) and come back: the job is still there.
    open_page(page, app_url, "dataset")
    page.goto(f"{app_url}/train")
    page.get_by_role("heading", name=PAGES["train"]).wait_for()
    page.get_by_text("running").or_(page.get_by_text("finished")).first.wait_for()
    page.get_by_text("— finished: finished").wait_for(timeout=240_000)
    assert_no_exception(page)
    curves = Image.open(io.BytesIO(download(page, "Curves (PNG)")))
    assert curves.format == "PNG" and curves.size[0] > 600
    history = download(page, "History (CSV)").decode().splitlines()
    assert history[0].startswith("epoch,loss,accuracy") and len(history) == 2  # one epoch
    new_model = page.get_by_text("New model").first.inner_text()
    model_id = re.search(r"(\d{8}-\d{6}-[\w.-]+)", new_model).group(1)
    open_page(page, app_url, "")
    page.get_by_text("Model registry").wait_for()
    page.get_by_text(f"newest: {model_id}").wait_for()
    assert_no_exception(page)
