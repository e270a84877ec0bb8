"""In a real Chromium: every download is clicked and its file opened; the camera answers through the upload path."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SHARED_PHOTOS
from tests.e2e.conftest import BROWSER_ARGS, CHROMIUM
from tests.e2e.test_browser import assert_no_exception, download, open_page, save_screenshot

pytestmark = pytest.mark.e2e


def test_evaluate_downloads_match_the_page(page, app_url, dataset):
    open_page(page, app_url, "evaluate")
    page.get_by_role("heading", name="Confusion matrix").wait_for()
    shown = page.locator('[data-testid="stMetricValue"]').first.inner_text()  # e.g. 94.52%
    matrix = Image.open(io.BytesIO(download(page, "Confusion matrix (PNG)")))
    assert matrix.format == "PNG" and matrix.size[0] > 500
    report = list(csv.reader(io.StringIO(download(page, "Per-class report (CSV)").decode())))
    assert report[0] == ["class", "precision", "recall", "f1", "support", "accuracy"] and len(report) == 13
    rows = list(csv.reader(io.StringIO(download(page, "Predictions for the 10,000 test images (CSV)").decode())))
    assert rows[0] == ["index", "true", "predicted", "confidence"] and len(rows) == 10001
    accuracy = sum(row[1] == row[2] for row in rows[1:]) / 10000
    assert f"{accuracy:.2%}" == shown, (accuracy, shown)
    page.get_by_text("Compare with another model").wait_for()
    page.get_by_text(re.compile("Right by")).first.wait_for(timeout=120_000)
    assert_no_exception(page)
    page.get_by_text("Compare with another model").scroll_into_view_if_needed()
    save_screenshot(page, "evaluate_compare")


def test_the_downloaded_model_loads_and_scores_the_same(page, app_url, dataset, tmp_path):
    import keras

    open_page(page, app_url, "")
    page.get_by_text("Download a model").click()
    label = re.compile(r"Download \d{8}-\S+ \(\.zip\)")
    model_id = re.search(r"Download (\S+) \(", page.get_by_role("button", name=label).first.inner_text()).group(1)
    data = download(page, label)
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    model = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    import json

    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["model_id"] == model_id
    plain = model.predict(dataset.x_test[..., None].astype(np.float32) / 255, batch_size=1000, verbose=0)
    accuracy = float((plain.argmax(axis=1) == dataset.y_test).mean())
    recorded = meta.get("test_metrics_without_tta", meta["test_metrics"])["accuracy"]
    assert accuracy == pytest.approx(recorded, abs=0.0005)


def test_classify_batch_answers_csv(page, app_url):
    from tests.unit.test_answer import colour_photo

    buffer = io.BytesIO()
    colour_photo().save(buffer, "JPEG")
    open_page(page, app_url, "classify")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files=[
        {"name": "floor.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()},
        {"name": "broken.png", "mimeType": "image/png", "buffer": b"not an image"}])
    page.get_by_text("What the photo model sees (224x224)").first.wait_for(timeout=60_000)
    rows = list(csv.reader(io.StringIO(download(page, "Answers for these 2 image(s) (CSV)").decode())))
    assert rows[0][:5] == ["file", "class", "confidence", "sure", "model"]
    assert rows[1][0] == "floor.jpg" and rows[1][4] == "photo" and rows[2][0] == "broken.png" and rows[2][-1]


def y4m_of(rgb: np.ndarray, frames: int = 10) -> bytes:
    """A short raw video (YUV4MPEG2, 4:2:0) of one still image, for Chromium's fake camera."""
    import cv2

    height, width = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb[:height, :width]), cv2.COLOR_RGB2YUV_I420)
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    return header + b"".join(b"FRAME\n" + yuv.tobytes() for _ in range(frames))


def test_camera_photo_is_answered_like_an_upload(playwright, app_url, tmp_path):
    from tests.unit.test_answer import colour_photo

    coats = sorted((SHARED_PHOTOS / "coat").glob("*.jpg")) if SHARED_PHOTOS.is_dir() else []
    image = Image.open(coats[0]).convert("RGB") if coats else colour_photo()
    image = image.resize((640, round(640 * image.height / image.width) // 2 * 2))
    video = tmp_path / "camera.y4m"
    video.write_bytes(y4m_of(np.asarray(image)))
    # Chromium's fake camera plays the video file; the fake UI grants the camera without a prompt.
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        *BROWSER_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_page(page, app_url, "classify")
        page.get_by_role("tab", name="Camera").click()
        page.get_by_text("Use the camera").click()
        page.locator("video").first.wait_for()
        page.wait_for_function("() => document.querySelector('video')?.readyState >= 2")  # frames arriving
        page.wait_for_timeout(1000)  # a few frames in, the picture is steady
        page.get_by_role("button", name="Take Photo").click(timeout=60_000)
        verdict = page.locator('[data-testid="stAlert"]').filter(has_text="(photo model)").first
        verdict.wait_for(timeout=60_000)
        if coats:
            assert "Coat" in verdict.inner_text()
        page.get_by_text("What the CNN sees (28x28)").first.wait_for()
        assert_no_exception(page)
        verdict.scroll_into_view_if_needed()
        save_screenshot(page, "classify_camera")
    finally:
        browser.close()
