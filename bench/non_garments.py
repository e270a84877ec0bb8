"""Pictures with no garment, shoe or bag in them, from what this machine already has (nothing downloaded).

Photos from the installed libraries (scikit-learn's two sample photos, a building and a flower;
matplotlib's portrait), the app's own screenshots (docs/screenshots), device icons of the desktop theme
where it is installed, and pictures drawn here: pages of text and charts. The photo model must answer
each "not one of the ten" and say it does not look like clothing. scikit-image's sample images are
deliberately not used: they are kept aside to check the work.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO_ROOT = Path(__file__).resolve().parent.parent
ICONS = Path("/usr/share/icons/Adwaita/512x512/devices")
WORDS = ("the quick brown fox jumps over a lazy dog while seventeen quiet models train on photos of clothing "
         "and shoes every night before the morning report is printed").split()


def text_page(seed: int, size: int = 24) -> Image.Image:
    """A page of dark text on white paper (a scan or a screenshot of a document)."""
    rng = random.Random(seed)
    page = Image.new("RGB", (800, 1100), (250, 250, 245) if seed % 2 else (255, 255, 255))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=size)
    for y in range(40, 1050, int(size * 1.5)):
        draw.text((40, y), " ".join(rng.choice(WORDS) for _ in range(8)), fill=(20, 20, 20), font=font)
    return page


def chart(seed: int) -> Image.Image:
    """A matplotlib line-and-bar chart (a screenshot of a report)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(seed)
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
    left.plot(np.cumsum(rng.normal(size=(60, 3)), axis=0))
    right.bar(list("ABCDE"), rng.uniform(1, 5, 5))
    left.set_title("accuracy by epoch")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def non_garment_images() -> list[tuple[str, Image.Image]]:
    """(name, image) for every non-garment picture available here, in a fixed order."""
    import matplotlib
    import sklearn.datasets

    images: list[tuple[str, Image.Image]] = []
    sample_dir = Path(sklearn.datasets.__file__).parent / "images"
    for path in sorted(sample_dir.glob("*.jpg")):  # a Chinese temple, a flower
        images.append((f"scikit-learn/{path.name}", Image.open(path).convert("RGB")))
    portrait = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if portrait.is_file():
        images.append(("matplotlib/grace_hopper.jpg", Image.open(portrait).convert("RGB")))
    for path in sorted((REPO_ROOT / "docs" / "screenshots").glob("*.png")):
        images.append((f"screenshot/{path.name}", Image.open(path).convert("RGB")))
    for path in sorted(ICONS.glob("*.png")) if ICONS.is_dir() else []:
        images.append((f"icon/{path.name}", Image.open(path)))
    images += [(f"drawn/text-page-{seed}", text_page(seed, 20 + 6 * seed)) for seed in range(3)]
    images += [(f"drawn/chart-{seed}", chart(seed)) for seed in range(2)]
    return images
