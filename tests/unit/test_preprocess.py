"""Each preprocessing step on its own, the whole pipeline on rendered photos, and the edge-case corpus."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_core import preprocess as pp
from fmnist_core.preprocess import EmptyImageError, ImageError, preprocess, preprocess_drawing

CORPUS = Path(__file__).resolve().parent.parent / "data" / "uploads"
MUST_REFUSE = {"empty.png", "truncated.jpg", "text_named.png", "html_named.jpg", "svg_named.jpg",
               "bomb_50000x50000.png", "zip_named.png"}
MAY_BE_EMPTY = {"one_pixel.png", "all_white.png"}


def dark_item_on_page(height=300, width=240, item=30, page=235, box=(60, 40, 240, 200)):
    image = np.full((height, width), page, np.uint8)
    y0, x0, y1, x1 = box
    image[y0:y1, x0:x1] = item
    return image


# ---- steps -------------------------------------------------------------------------------------

def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, "JPEG", exif=exif.tobytes())
    upright = pp.apply_exif_orientation(pp.open_image(buffer.getvalue()))
    assert upright.size == (20, 40)


def test_corrupt_exif_is_ignored_not_fatal():
    result = preprocess(CORPUS / "corrupt_exif.jpg")
    assert result.image.shape == (28, 28)


def test_light_background_is_detected_and_negated():
    gray = dark_item_on_page().astype(np.float32)
    page = pp.analyse_background(gray)
    assert page.light and page.plain
    bright = pp.item_bright_on_black(gray, page)
    assert bright[150, 120] > 190 and bright[5, 5] < 5


def test_dark_background_is_kept():
    gray = (255 - dark_item_on_page()).astype(np.float32)
    page = pp.analyse_background(gray)
    assert not page.light
    assert pp.item_bright_on_black(gray, page)[150, 120] > 190


def test_item_darker_than_compares_the_masked_median_with_the_surroundings():
    gray = np.full((10, 10), 200.0)
    gray[3:7, 3:7] = 40.0
    mask = gray < 100
    assert pp.item_darker_than(gray, mask, surroundings=200.0)  # dark item on a light page: negate
    assert not pp.item_darker_than(gray, mask, surroundings=10.0)  # the same item on black: keep
    assert pp.item_darker_than(gray, np.zeros_like(mask), surroundings=0.0)  # no item: nothing to keep bright


def test_uneven_background_gradient_is_removed():
    gray = dark_item_on_page().astype(np.float32)
    gray += np.linspace(-25, 15, gray.shape[1])[None, :]  # lit from one side
    page = pp.analyse_background(gray)
    assert page.plain
    bright = pp.item_bright_on_black(gray, page)
    assert bright[:, :30].max() < 20 and bright[150, 120] > 150


def test_threshold_mask_ignores_noise_and_jpeg_specks():
    rng = np.random.default_rng(0)
    gray = dark_item_on_page().astype(np.float32) + rng.normal(0, 6, (300, 240))
    bright = pp.item_bright_on_black(gray, pp.analyse_background(gray))
    region = pp.select_item(pp.threshold_mask(bright))
    assert region.box is not None
    x0, y0, x1, y1 = region.box
    assert abs(x0 - 40) <= 3 and abs(y0 - 60) <= 3 and abs(x1 - 200) <= 3 and abs(y1 - 240) <= 3
    assert region.doubts == []


def test_pale_part_connected_to_the_item_is_kept_but_a_pale_smudge_alone_is_not():
    rng = np.random.default_rng(1)
    gray = np.full((300, 240), 235.0)
    gray[40:100, 60:180] = 120  # a clearly darker top, like a printed yoke
    gray[100:260, 60:180] = 225  # the pale body: 10 levels under the page
    gray[20:60, 200:230] = 225  # an equally pale smudge, not touching the item
    gray += rng.normal(0, 3, gray.shape)
    bright = pp.item_bright_on_black(gray, pp.analyse_background(gray))
    mask = pp.threshold_mask(bright)
    assert mask[100:260, 60:180].mean() > 0.9
    assert mask[20:60, 200:230].mean() < 0.1
    assert mask[270:, :].mean() < 0.01


def test_scale_intensities_matches_the_dataset_maximum():
    image = np.zeros((28, 28))
    image[10:20, 10:20] = 100.0
    image[12, 12] = 200.0  # the dataset maps the brightest pixel, not a percentile, to 255
    scaled = pp.scale_intensities(image)
    assert scaled[12, 12] == 255 and abs(int(scaled[15, 15]) - 128) <= 1


def test_two_separate_objects_are_reported_and_largest_kept():
    mask = np.zeros((100, 200), bool)
    mask[20:80, 10:90] = True
    mask[30:80, 120:190] = True
    region = pp.select_item(mask)
    assert region.box == (10, 20, 90, 80)
    assert any("separate objects" in doubt for doubt in region.doubts)


def test_full_frame_is_reported():
    region = pp.select_item(np.ones((50, 50), bool))
    assert any("whole frame" in doubt for doubt in region.doubts)


def test_fit_longest_edge_keeps_aspect_ratio():
    resized = pp.fit_longest_edge(np.ones((100, 50), np.float32))
    assert resized.shape == (28, 14)


def test_centre_on_canvas_pads_equally():
    canvas = pp.centre_on_canvas(np.ones((28, 14), np.float32))
    columns = np.flatnonzero(canvas.any(axis=0))
    assert columns[0] == 7 and columns[-1] == 20
    odd = pp.centre_on_canvas(np.ones((15, 28), np.float32))
    assert np.flatnonzero(odd.any(axis=1))[0] == 7  # the spare pixel goes on top, as in the dataset


def test_scale_intensities_reaches_255_with_capped_gain():
    assert pp.scale_intensities(np.full((4, 4), 200.0)).max() == 255
    faint = pp.scale_intensities(np.full((4, 4), 10.0))
    assert faint.max() == 50  # gain capped at 5


# ---- whole pipeline ------------------------------------------------------------------------------

def test_pipeline_output_matches_the_dataset_form():
    result = preprocess(Image.fromarray(dark_item_on_page()))
    assert result.image.shape == (28, 28) and result.image.dtype == np.uint8
    assert result.image.max() == 255 and result.image[0, 0] == 0
    assert result.background == "light"
    assert [caption for caption, _ in result.steps][-1].startswith("what the model sees")
    rows = np.flatnonzero(result.image.any(axis=1))
    assert rows[0] == 0 and rows[-1] == 27  # longest edge fills the 28 px


def test_dataset_image_survives_the_round_trip(dataset):
    """A test image rendered as a product photo comes back close to the original 28x28."""
    from bench.worker import product_photo

    original = dataset.x_test[0]
    back = preprocess(product_photo(original, np.random.default_rng(1))).image.astype(float)
    correlation = np.corrcoef(back.ravel(), original.astype(float).ravel())[0, 1]
    assert correlation > 0.85


def test_drawing_rgba_any_colour():
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[50:230, 100:180] = (200, 30, 30, 255)  # red stroke on a transparent canvas
    result = preprocess_drawing(canvas)
    assert result.background == "transparent" and result.image.max() == 255


def test_drawing_on_opaque_black_canvas():
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[50:230, 100:180, :3] = 255
    assert preprocess_drawing(canvas).image.max() == 255


@pytest.mark.parametrize("alpha", [0, 255])
def test_empty_canvas_asks_to_draw(alpha):
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = alpha
    with pytest.raises(EmptyImageError, match="draw something"):
        preprocess_drawing(canvas)


def test_cluttered_photo_takes_the_segmentation_path():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)  # a busy, textured background
    photo[80:240, 100:200] = (20, 20, 160)
    result = preprocess(Image.fromarray(photo))
    assert result.background == "cluttered"
    assert any("busy background" in doubt for doubt in result.doubts)


def test_grabcut_works_small_and_tries_every_pixel_only_when_the_small_cut_loses_the_item(monkeypatch):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)
    photo[80:240, 100:200] = (20, 20, 160)
    real, sizes = pp.grabcut_mask, []

    def recorded(rgb, size=None):
        sizes.append(size or pp.GRABCUT_SIZE)
        return real(rgb, size)

    monkeypatch.setattr(pp, "grabcut_mask", recorded)
    assert preprocess(Image.fromarray(photo)).background == "cluttered"
    assert sizes == [pp.GRABCUT_SIZE] and pp.GRABCUT_SIZE < pp.WORK_SIZE

    def loses_it_when_small(rgb, size=None):  # as GrabCut does now and then with a thin or faint item
        sizes.append(size or pp.GRABCUT_SIZE)
        return real(rgb, size) if size == pp.WORK_SIZE else np.zeros(rgb.shape[:2], bool)

    sizes.clear()
    monkeypatch.setattr(pp, "grabcut_mask", loses_it_when_small)
    result = preprocess(Image.fromarray(photo))
    assert sizes == [pp.GRABCUT_SIZE, pp.WORK_SIZE]
    assert result.image.max() > 0


# ---- the corpus ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir()))
def test_corpus_file_gives_a_result_or_one_clear_line(name):
    path = CORPUS / name
    try:
        result = preprocess(path)
    except ImageError as error:
        message = str(error)
        assert message and "\n" not in message and "Traceback" not in message
        assert name in MUST_REFUSE or (name in MAY_BE_EMPTY and isinstance(error, EmptyImageError)), message
        return
    assert name not in MUST_REFUSE, f"{name} should have been refused"
    assert result.image.shape == (28, 28) and result.image.dtype == np.uint8


def test_exif_rotated_corpus_photo_is_upright():
    result = preprocess(CORPUS / "exif_rotated.jpg")
    upright = result.steps[0][1]
    assert upright.shape[0] > upright.shape[1]  # stored sideways, shown tall


def test_wide_and_tall_items_keep_their_shape():
    wide = preprocess(CORPUS / "wide_bag.png").image
    tall = preprocess(CORPUS / "tall_dress.png").image
    assert np.flatnonzero(wide.any(axis=0)).size == 28 and np.flatnonzero(wide.any(axis=1)).size < 10
    assert np.flatnonzero(tall.any(axis=1)).size == 28 and np.flatnonzero(tall.any(axis=0)).size < 12


def test_huge_jpeg_is_decoded_cheaply(tmp_path):
    path = tmp_path / "huge.jpg"
    image = Image.new("RGB", (12_000, 12_000), (240, 240, 240))
    image.paste((20, 20, 20), (3000, 2000, 9000, 10000))
    image.save(path, "JPEG", quality=70)
    result = preprocess(path)
    assert result.image.shape == (28, 28) and result.image.max() == 255


def test_huge_png_is_refused_clearly(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (8000, 6000), 255).save(path)
    with pytest.raises(ImageError, match="too large"):
        preprocess(path)


def test_dataset_form_image_is_used_unchanged(dataset):
    """Training data, CLI and uploads of a 28x28 dataset image see exactly the same pixels."""
    for index in range(50):
        np.testing.assert_array_equal(preprocess(dataset.x_test[index]).image, dataset.x_test[index])


def test_photo_centre_view_is_the_centre_square_and_the_whole_view_pads():
    from fmnist_core.preprocess import centre_share, photo_views

    pixels = np.zeros((300, 200, 3), np.uint8)
    pixels[:, :] = (0, 0, 255)
    pixels[50:250, :] = (255, 0, 0)  # the centre square (200 x 200) is red, above and below it blue
    image = Image.fromarray(pixels)
    whole, centre = photo_views(image, ("whole", "centre"), 56)
    assert (centre[..., 0] > 250).all() and (centre[..., 2] < 5).all()
    assert (whole[:, :4, 2] > 250).all()  # padded at the sides with the (blue) border colour
    assert centre_share(image) == pytest.approx(200 / 300)
    with pytest.raises(ValueError, match="unknown photo view"):
        photo_views(image, ("whole", "zoom"))


def test_item_views_trim_a_small_item_on_a_plain_page_and_leave_a_busy_photo_whole():
    from fmnist_core.preprocess import item_box, item_frame, photo_views

    page = np.full((540, 360, 3), 246, np.uint8)
    page[330:420, 60:150] = (30, 30, 160)  # a pair of shoes, small, low on a shop's page
    page[340:420, 200:300] = (30, 30, 160)
    image = Image.fromarray(page)
    x0, y0, x1, y1 = item_box(image)
    assert x0 <= 60 and y0 <= 330 and x1 >= 300 and y1 >= 420  # both shoes, with a margin
    assert (x1 - x0) < 300 and (y1 - y0) < 140  # and not much more
    assert item_frame(image).size == (x1 - x0, y1 - y0)
    item, centre = photo_views(image, ("item", "item-centre"), 64)
    assert (item < 200).mean() > 0.2  # the pair fills the item view; on the whole page it is a speck
    assert (photo_views(image, ("whole",), 64)[0] < 200).mean() < 0.1
    rng = np.random.default_rng(2)
    busy = Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))
    assert item_box(busy) is None and item_frame(busy) is busy
    with pytest.raises(ValueError, match="one frame"):
        photo_views(image, ("whole", "item-centre"))
