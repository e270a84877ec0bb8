"""Any image -> the 28x28 image the model sees, the way Fashion-MNIST itself was made.

Fashion-MNIST images are product shots trimmed to the item, resized so the longest edge is 28 px,
centred on 28x28 and negated (item bright on black). Every upload, drawing, CLI file and benchmark
image goes through `preprocess` below; each step is its own function and its output is kept in
`Preprocessed.steps` so the app can show "what the model sees".
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fmnist_core.data import IMAGE_SIZE

MAX_INPUT_PIXELS = 40_000_000  # refuse images whose header claims more (decompression bombs)
WORK_SIZE = 200  # every image is shrunk to at most this before analysis: 7x the 28 px output; JPEGs decode at 1/2..1/8 scale
GRABCUT_SIZE = 128  # GrabCut cost grows with pixels: 128 px is 2.3x faster than 200 px, the CNN as right (bench.cut_out)
BORDER_FRACTION = 0.04  # the outer ring used to judge the background
PLANE_SAMPLES = 1500  # border pixels used to fit the page's lighting plane
PLAIN_SPREAD = 45.0  # border p90 - p10 (after removing a gradient) below this = plain background
STRONG_LEVEL = 18.0  # a foreground level (0..255) that is certainly the item on a plain page
WEAK_FLOOR = 6.0  # the faintest smoothed level that may still be item when connected to a strong part
MIN_ITEM_FRACTION = 0.002  # a mask smaller than this fraction of the image counts as nothing found
FULL_FRAME_FRACTION = 0.97  # an item box wider and taller than this fills the frame
SILHOUETTE_FLOOR = 40  # weakest value inside the item mask, so white-on-white items keep their shape
MAX_GAIN = 5.0  # at most this contrast stretch, so faint noise is not blown up


class ImageError(ValueError):
    """The input is not an image we can use; the message is one line for the user."""


class EmptyImageError(ImageError):
    """No item was found (an empty canvas, a blank page)."""


@dataclass
class Preprocessed:
    """The model's input and how it was made."""

    image: np.ndarray  # 28x28 uint8, item bright on black
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (caption, uint8 image), in order
    background: str = "light"  # light | dark | transparent | cluttered
    doubts: list[str] = field(default_factory=list)

    def model_input(self) -> np.ndarray:
        """float32 28x28x1 in [0, 1], scaled exactly as the training data."""
        return (self.image.astype(np.float32) / 255.0)[..., None]


# ---- step 1: decode ---------------------------------------------------------------------------

def open_image(source: str | os.PathLike | bytes | BinaryIO | Image.Image, draft: int = WORK_SIZE) -> Image.Image:
    """Decode the first frame of any Pillow-readable image, refusing bombs and non-images clearly.

    A JPEG is decoded at the smallest 1/2..1/8 scale that still has at least `draft` pixels each way.
    """
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        image = Image.open(source)
        width, height = image.size
        if image.format == "JPEG":
            # Decode big JPEGs at 1/2..1/8 scale directly: a 12k x 12k photo costs what a 1.5k one does.
            image.draft("RGB", (draft, draft))
        if width * height > MAX_INPUT_PIXELS and image.format != "JPEG":
            raise ImageError(f"image too large: {width}x{height} pixels (limit {MAX_INPUT_PIXELS // 1_000_000} megapixels)")
        if width < 1 or height < 1:
            raise ImageError("image has no pixels")
        image.seek(0)
        image.load()
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError("image refused: its header claims an enormous size (possible decompression bomb)") from None
    except (UnidentifiedImageError, FileNotFoundError, IsADirectoryError) as error:
        raise ImageError(f"not a readable image ({type(error).__name__})") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombWarning) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise ImageError(f"image is damaged or truncated ({reason})") from None
    return image


def apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF Orientation tag says; a corrupt EXIF block is ignored, not fatal."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # Pillow raises several types for broken EXIF; the pixels are still fine
        return image


def shrink(array: np.ndarray, size: int = WORK_SIZE) -> np.ndarray:
    """Downscale (area averaging) so the longest edge is at most size; never upscale."""
    height, width = array.shape[:2]
    scale = size / max(height, width)
    if scale >= 1:
        return array
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(array, new_size, interpolation=cv2.INTER_AREA)


# ---- step 2: colour, transparency, grayscale ----------------------------------------------------

def _high_bit_depth_to_8bit(image: Image.Image) -> Image.Image:
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
    if image.mode == "F":
        top = max(1.0, float(array.max()))
    return Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), "L")


def to_rgb_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB uint8 array plus alpha in [0, 1] when the image really has transparency (else None)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_bit_depth_to_8bit(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        alpha = rgba[..., 3].astype(np.float32) / 255.0
        # Fully opaque (or fully transparent) alpha carries no shape: treat as a plain image.
        if alpha.min() < 0.5 and alpha.max() > 0.5:
            return rgba[..., :3].copy(), alpha
        if alpha.max() <= 0.5:
            return np.zeros_like(rgba[..., :3]), alpha
        return rgba[..., :3].copy(), None
    return np.asarray(image.convert("RGB")), None


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma as float32 0..255 (what Pillow's convert('L') computes)."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ---- step 3: background and polarity ------------------------------------------------------------

def border_pixels(gray: np.ndarray, fraction: float = BORDER_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask of the outer ring and the values on it."""
    height, width = gray.shape
    ring = max(1, int(round(min(height, width) * fraction)))
    mask = np.ones_like(gray, dtype=bool)
    if height > 2 * ring and width > 2 * ring:
        mask[ring:-ring, ring:-ring] = False
    return mask, gray[mask]


def background_plane(gray: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Robust least-squares plane a + b*x + c*y through the border: models an unevenly lit page.

    Fitted twice: the second fit drops border pixels far from the first (an item touching the edge).
    An evenly spaced sample of the ring is plenty for three parameters and keeps batch runs fast.
    """
    height, width = gray.shape
    ys, xs = np.nonzero(border)
    step = max(1, len(xs) // PLANE_SAMPLES)
    ys, xs = ys[::step], xs[::step]
    design = np.column_stack([np.ones(len(xs)), xs / width, ys / height])
    values = gray[ys, xs].astype(np.float64)
    keep = np.ones(len(values), bool)
    for _ in range(2):
        (a, b, c), *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        residual = values - design @ np.array([a, b, c])
        spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
        keep = np.abs(residual) <= max(12.0, 3.0 * spread)
        if keep.sum() < 3:
            break
    columns = (b * np.arange(width) / width).astype(np.float32)
    rows = (a + c * np.arange(height) / height).astype(np.float32)
    return rows[:, None] + columns[None, :]


@dataclass
class Background:
    """The page behind the item: its fitted level, how uneven it is, and whether the item is darker."""

    plane: np.ndarray
    spread: float
    item_darker: bool
    light: bool

    @property
    def plain(self) -> bool:
        """True when the border is uniform enough for simple thresholding."""
        return self.spread <= PLAIN_SPREAD


def analyse_background(gray: np.ndarray) -> Background:
    """Fit the border with a plane; decide from the pixels whether the item is darker than its page.

    A dark item on a light page is the dataset's own case (it gets negated); a light item on a dark
    cloth, or a dark item on a darker one, are decided by which way most of the clear deviation goes.
    """
    border, ring = border_pixels(gray)
    plane = background_plane(gray, border)
    residual = ring - plane[border]
    low, high = np.percentile(residual, [10, 90])
    deviation = gray - plane
    level = max(18.0, 4.0 * float(np.median(np.abs(residual - np.median(residual)))) * 1.4826)
    darker, lighter = int((deviation < -level).sum()), int((deviation > level).sum())
    light = float(np.median(ring)) > 127.0
    item_darker = darker > lighter if darker + lighter else light
    return Background(plane, float(high - low), item_darker, light)


def item_darker_than(gray: np.ndarray, mask: np.ndarray, surroundings: float) -> bool:
    """Whether the masked item's median grey is at or below the surroundings' level (then it is negated).

    Used once the item's mask is known (transparency, GrabCut); on a plain page, before there is a mask,
    analyse_background decides the same question from which way the clear deviations from the page go.
    """
    item_level = float(np.median(gray[mask])) if mask.any() else 0.0
    return item_level <= surroundings


def item_bright_on_black(gray: np.ndarray, background: Background) -> np.ndarray:
    """Negate when the item is darker than its page, subtract the (possibly uneven) page level, clip at 0."""
    if background.item_darker:
        return np.clip(background.plane - gray, 0, 255)
    return np.clip(gray - background.plane, 0, 255)


# ---- step 4: find the item -------------------------------------------------------------------

def _noise_level(foreground: np.ndarray, sigmas: float, floor: float) -> float:
    """`sigmas` standard deviations of the border's noise, at least `floor`.

    The foreground is the page level subtracted and clipped at 0, so half the border is 0 and the
    other half is |noise|: its 75th percentile is 0.6745 sigma, as the median absolute deviation would be.
    """
    _, ring = border_pixels(foreground)
    return max(floor, sigmas * float(np.percentile(ring, 75)) / 0.6745)


def threshold_mask(foreground: np.ndarray) -> np.ndarray:
    """Foreground pixels clearly above the border's noise, cleaned of specks and JPEG artefacts.

    Hysteresis: pixels clearly above the noise seed the item; faint parts connected to them (a pale
    garment on a pale page) join when they stand out from the noise after smoothing and are themselves
    above the plain noise level (so the blur's spill around a dark item's edge does not join).
    """
    size = max(3, int(min(foreground.shape) * 0.01) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    # Opening first, so a few noisy pixels over the level cannot seed a faint smudge.
    strong = cv2.morphologyEx((foreground > STRONG_LEVEL).astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    smooth = cv2.GaussianBlur(foreground.astype(np.float32), (0, 0), 2.0)
    weak = (smooth > _noise_level(smooth, 4.0, WEAK_FLOOR)) & (foreground > _noise_level(foreground, 2.0, 0.0))
    _, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    seeded = np.unique(labels[strong & (labels > 0)])
    mask = (strong | np.isin(labels, seeded)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel).astype(bool)


def grabcut_mask(rgb: np.ndarray, size: int | None = None) -> np.ndarray:
    """Cut the item out of a cluttered photo with OpenCV's GrabCut, seeded by a centred rectangle.

    GrabCut works on the photo shrunk to `size` (GRABCUT_SIZE when None); the mask comes back at full size.
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, (size or GRABCUT_SIZE) / max(height, width))
    small = cv2.resize(rgb, (max(1, int(width * scale)), max(1, int(height * scale))), interpolation=cv2.INTER_AREA)
    small_height, small_width = small.shape[:2]
    inset_x, inset_y = max(1, int(small_width * 0.04)), max(1, int(small_height * 0.04))
    rect = (inset_x, inset_y, small_width - 2 * inset_x, small_height - 2 * inset_y)
    mask = np.zeros((small_height, small_width), np.uint8)
    background_model, foreground_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), mask, rect, background_model, foreground_model, 4,
                cv2.GC_INIT_WITH_RECT)
    cut = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    return cv2.resize(cut, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


@dataclass
class ItemRegion:
    """Where the item is: a mask of the kept pixels, its box, and what looked doubtful."""

    mask: np.ndarray
    box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 (exclusive)
    doubts: list[str]


def select_item(mask: np.ndarray) -> ItemRegion:
    """Keep the largest blob and the small pieces near it; report several objects or a full frame."""
    height, width = mask.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1 or stats[1:, cv2.CC_STAT_AREA].max() < MIN_ITEM_FRACTION * height * width:
        return ItemRegion(np.zeros_like(mask), None, ["no item found"])
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(np.argmax(areas)) + 1
    # A second blob at least 40 % the size of the largest is a separate object (the other shoe of
    # a pair, a second garment): classify the largest alone and say so. Smaller blobs are parts.
    big = [index + 1 for index in np.flatnonzero(areas >= 0.4 * areas.max())]
    keep = [label for label in range(1, count) if label == largest or
            (label not in big and areas[label - 1] >= 0.01 * areas.max())]
    doubts = []
    if len(big) > 1:
        doubts.append(f"{len(big)} separate objects: classified the largest")
    kept = np.isin(labels, keep)
    ys, xs = np.nonzero(kept)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    if (box[2] - box[0]) >= FULL_FRAME_FRACTION * width and (box[3] - box[1]) >= FULL_FRAME_FRACTION * height:
        doubts.append("the item fills the whole frame: no plain background around it")
    return ItemRegion(kept, box, doubts)


# ---- step 5: crop, resize, centre, scale ----------------------------------------------------------

def crop_to_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The item's bounding box."""
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def fit_longest_edge(item: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Resize so the longest edge is size px, keeping the aspect ratio (area averaging, like a camera)."""
    height, width = item.shape
    scale = size / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(item.astype(np.float32), new_size, interpolation=interpolation)


def centre_on_canvas(item: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Pad the short side equally so the item sits in the middle of a black size x size canvas."""
    canvas = np.zeros((size, size), np.float32)
    height, width = item.shape
    # An odd leftover pixel goes above / to the left of the item, as in the dataset itself.
    top, left = (size - height + 1) // 2, (size - width + 1) // 2
    canvas[top:top + height, left:left + width] = item
    return canvas


def scale_intensities(image: np.ndarray) -> np.ndarray:
    """Stretch so the brightest pixel reaches 255 (gain capped), as in the dataset; to uint8.

    The dataset's images nearly all have a maximum of 255 while their 99th percentile is lower (median
    247), so the maximum is the statistic to match; after area-averaging to 28 px a single noisy pixel
    no longer dominates it.
    """
    top = float(image.max()) if image.size else 0.0
    gain = min(MAX_GAIN, 255.0 / top) if top > 0 else 1.0
    return np.clip(np.rint(image * gain), 0, 255).astype(np.uint8)


# ---- the pipeline -------------------------------------------------------------------------------

def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


def preprocess(source, *, empty_message: str = "no item found in the image") -> Preprocessed:
    """Run the whole pipeline on a file, bytes, PIL image or numpy array (HxW, HxWx3, HxWx4)."""
    if isinstance(source, np.ndarray):
        source = array_to_image(source)
    rgb, alpha = to_rgb_and_alpha(apply_exif_orientation(open_image(source)))
    rgb, alpha = shrink(rgb), (shrink(alpha) if alpha is not None else None)
    steps: list[tuple[str, np.ndarray]] = [("input", rgb)]
    gray = to_gray(rgb)
    doubts: list[str] = []
    if is_dataset_form(gray, alpha):
        image = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        if not image.any():
            raise EmptyImageError(empty_message)
        steps.append(("what the model sees (28x28)", image))
        return Preprocessed(image, steps, "dark", doubts)

    if alpha is not None:
        background = "transparent"
        mask = alpha > 0.05  # soft edges and faint parts of the item are part of it
        # No page to compare with: a dark item is negated (as on a white page), a light one kept (as on
        # black); either way it ends up bright on black.
        bright = (255.0 - gray if item_darker_than(gray, mask, 128.0) else gray) * alpha
        steps.append(("transparency as mask", _u8(alpha * 255)))
    elif (page := analyse_background(gray)).plain:
        background = "light" if page.light else "dark"
        bright = item_bright_on_black(gray, page)
        steps.append(("grayscale, item bright on black", _u8(bright)))
        mask = threshold_mask(bright)
    else:
        background = "cluttered"
        mask = grabcut_mask(rgb)
        if select_item(mask).box is None:  # the small working size lost a thin or faint item: try every pixel
            mask = grabcut_mask(rgb, WORK_SIZE)
        surroundings = float(np.median(border_pixels(gray)[1]))
        bright = np.where(mask, 255.0 - gray if item_darker_than(gray, mask, surroundings) else gray, 0.0)
        steps.append(("grayscale, item cut out (GrabCut)", _u8(bright)))
        doubts.append("busy background: the item was cut out automatically and may be incomplete")

    region = select_item(mask)
    steps.append(("item mask", _u8(region.mask * 255)))
    if region.box is None:
        raise EmptyImageError(empty_message)
    doubts += region.doubts
    # A cut-out item keeps a visible silhouette even where it is as light as its surroundings.
    floor = SILHOUETTE_FLOOR if background == "cluttered" else 0.0
    item = np.where(region.mask, np.maximum(bright, floor), 0.0)
    cropped = crop_to_box(item, region.box)
    steps.append(("trimmed to the item", _u8(cropped)))
    final = scale_intensities(centre_on_canvas(fit_longest_edge(cropped)))
    steps.append(("what the model sees (28x28)", final))
    return Preprocessed(final, steps, background, doubts)


def is_dataset_form(gray: np.ndarray, alpha: np.ndarray | None) -> bool:
    """A 28x28 image with a black border is already what the model sees: it is used unchanged."""
    if gray.shape != (IMAGE_SIZE, IMAGE_SIZE) or alpha is not None:
        return False
    return float(np.median(border_pixels(gray)[1])) < 16.0


def array_to_image(array: np.ndarray) -> Image.Image:
    """A numpy image (HxW, HxWx3 RGB or HxWx4 RGBA, uint8 or float 0..1) as a PIL image."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        top = 1.0 if array.size and float(np.nanmax(array)) <= 1.0 else 255.0
        array = np.clip(np.nan_to_num(array) / top * 255.0, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return Image.fromarray(array, "L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(array, "RGB" if array.shape[2] == 3 else "RGBA")
    raise ImageError(f"unsupported array shape {array.shape}")


def preprocess_drawing(rgba: np.ndarray) -> Preprocessed:
    """A canvas drawing (RGBA, any stroke colour, mostly empty) through the same pipeline."""
    return preprocess(np.asarray(rgba), empty_message="the canvas is empty: draw something")


# ---- the photo model's view -----------------------------------------------------------------------

PHOTO_SIZE = 224  # the photo backbone's input (EfficientNet-Lite0)


def decode(source, draft: int = WORK_SIZE) -> Image.Image:
    """Any source (file, bytes, PIL image, numpy array) decoded and turned upright by its EXIF tag."""
    if isinstance(source, np.ndarray):
        source = array_to_image(source)
    return apply_exif_orientation(open_image(source, draft))


def _rgb_on_white(image: Image.Image) -> np.ndarray:
    """The image as RGB, transparency laid on white, as a shop photo is."""
    if image.mode in ("RGBA", "LA", "PA", "P") and (image.mode != "P" or "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB") if image.mode != "RGB" else image)


def _resized_square(square: np.ndarray, size: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(square), (size, size), interpolation=interpolation)


def photo_view(image: Image.Image, size: int = PHOTO_SIZE) -> np.ndarray:
    """The photo model's input: the whole photo padded to a square with its border colour, size x size RGB.

    Padding keeps the whole garment in view (a centre crop cuts sleeves and shoes off: padding scored
    better on a validation split of real photos); transparency is laid on white, as a shop photo is.
    """
    rgb = _rgb_on_white(image)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    fill = tuple(int(v) for v in np.median(border, axis=0))
    height, width = rgb.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = cv2.copyMakeBorder(np.ascontiguousarray(rgb), top, side - height - top, left, side - width - left,
                                cv2.BORDER_CONSTANT, value=fill)
    return _resized_square(square, size)


def photo_centre_view(image: Image.Image, size: int = PHOTO_SIZE) -> np.ndarray:
    """The photo's centre square (the shorter side's length), size x size RGB: the garment seen closer.

    Beside the padded whole photo it shows the backbone the fabric and the details at a larger scale;
    the two views together scored better than either alone on real photos (BENCHMARKS.md).
    """
    rgb = _rgb_on_white(image)
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return _resized_square(rgb[top:top + side, left:left + side], size)


WHITE_PAGE = 215.0  # a plain page whose border's median grey reaches this is a shop's white or light-grey page
ITEM_MARGIN = 0.06  # the item view keeps this share of the item's longer side around it
ITEM_PART = 0.05  # a separate blob at least this share of the largest one's area is part of the item (a pair's other shoe)


PageLook = tuple[np.ndarray, Background]  # the photo shrunk to grey, and its background judged


def look_at_page(image: Image.Image) -> PageLook:
    """The photo shrunk to grey (WORK_SIZE) and its background judged: what item_box and on_white_page read."""
    gray = to_gray(shrink(_rgb_on_white(image)))
    return gray, analyse_background(gray)


def item_box(image: Image.Image, look: PageLook | None = None) -> tuple[int, int, int, int] | None:
    """The item's box (x0, y0, x1, y1) in the photo's pixels when it lies on a plain page, else None.

    A shop shot shows a small item on a large white page (a pair of sneakers fills a tenth of it); the
    phone photos the head learned from are filled by their garment. Trimming the page away shows the
    backbone the item at the scale it knows. On a busy background nothing is trimmed (GrabCut's box is
    not sure enough to cut a garment's sleeves off). look: look_at_page(image), when already made.
    """
    gray, page = look or look_at_page(image)
    if not page.plain:
        return None
    mask = threshold_mask(item_bright_on_black(gray, page))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1 or stats[1:, cv2.CC_STAT_AREA].max() < MIN_ITEM_FRACTION * gray.size:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    ys, xs = np.nonzero(np.isin(labels, np.flatnonzero(areas >= ITEM_PART * areas.max()) + 1))
    height, width = gray.shape
    margin = ITEM_MARGIN * max(xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    x0, y0 = max(0.0, xs.min() - margin), max(0.0, ys.min() - margin)
    x1, y1 = min(float(width), xs.max() + 1 + margin), min(float(height), ys.max() + 1 + margin)
    if x1 - x0 >= FULL_FRAME_FRACTION * width and y1 - y0 >= FULL_FRAME_FRACTION * height:
        return None
    sx, sy = image.size[0] / width, image.size[1] / height
    return int(x0 * sx), int(y0 * sy), int(np.ceil(x1 * sx)), int(np.ceil(y1 * sy))


def on_white_page(image: Image.Image, look: PageLook | None = None) -> bool:
    """True for an item on a white or light-grey page, as a shop shows it (and as Fashion-MNIST's photos were).

    A phone photo on a bed or a floor may have a plain background too, but seldom a white one: 3 % of the
    pool's held-out photos pass, 98 % of the shop shots of ../shared/shop. look: look_at_page(image), when made.
    """
    gray, page = look or look_at_page(image)
    return page.plain and float(np.median(border_pixels(gray)[1])) >= WHITE_PAGE


def item_frame(image: Image.Image, look: PageLook | None = None) -> Image.Image:
    """The photo trimmed to its item on a plain page (item_box), or the photo itself."""
    box = item_box(image, look)
    return image if box is None else image.crop(box)


PHOTO_VIEWS = {"whole": photo_view, "centre": photo_centre_view, "item": photo_view, "item-centre": photo_centre_view}
FRAME_VIEWS = ("whole", "item")  # views that show their frame whole (the others show its centre square)
VIEW_GROUPS = (("whole", "centre"), ("item", "item-centre"))  # the views cut from one frame


def view_frame(image: Image.Image, names: tuple[str, ...], look: PageLook | None = None) -> Image.Image:
    """The picture the named views are cut from: the photo, or the photo trimmed to its item (item views)."""
    items = [name.startswith("item") for name in names]
    if any(items) and not all(items):
        raise ValueError(f"views {names} mix the whole photo and the item: a head reads one frame")
    return item_frame(image, look) if any(items) else image


def photo_views(image: Image.Image, names: tuple[str, ...], size: int = PHOTO_SIZE) -> np.ndarray:
    """The named views of one photo stacked (len(names) x size x size x 3), in the order named."""
    unknown = [name for name in names if name not in PHOTO_VIEWS]
    if unknown:
        raise ValueError(f"unknown photo view(s) {unknown} (known: {', '.join(PHOTO_VIEWS)})")
    return frame_views(view_frame(image, names), names, size)


def frame_views(frame: Image.Image, names: tuple[str, ...], size: int = PHOTO_SIZE) -> np.ndarray:
    """The named views of a frame already made by view_frame (no second trim)."""
    return np.stack([PHOTO_VIEWS[name](frame, size) for name in names])


def centre_share(image: Image.Image) -> float:
    """The centre view's side as a share of the whole view's: where the centre view sits in the whole one."""
    width, height = image.size
    return min(width, height) / max(width, height)
