"""Writes the upload corpus in tests/data/uploads/: real-world edge cases and hostile or broken files.

    python tests/data/make_corpus.py        # regenerate (deterministic)

Large files (a 12,000 x 12,000 photo, a file over the upload limit) are made by the tests at run
time instead of being committed.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent / "uploads"


def garment(height: int = 200, width: int = 160, value: int = 40, page: int = 240) -> np.ndarray:
    """A dark T-shirt-like silhouette on a light page (RGB)."""
    image = np.full((height, width, 3), page, np.uint8)
    top, bottom = height // 5, height * 4 // 5
    image[top:bottom, width // 4: width * 3 // 4] = value
    image[top: top + height // 6, width // 10: width * 9 // 10] = value  # sleeves
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid PNG header claiming width x height pixels, with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + png_chunk(b"IEND", b""))


def save(name: str, data: bytes) -> None:
    (OUT / name).write_bytes(data)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    shirt = Image.fromarray(garment())
    jpeg = encode(shirt, "JPEG", quality=90)
    # Hostile or broken files: each must give one clear line, never a traceback.
    save("empty.png", b"")
    save("truncated.jpg", jpeg[: len(jpeg) // 2])
    save("text_named.png", b"This is a text file, not a picture.\n" * 20)
    save("html_named.jpg", b"<!doctype html><html><body><script>alert(1)</script></body></html>")
    save("svg_named.jpg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>')
    save("bomb_50000x50000.png", bomb_png())
    save("zip_named.png", _zip_bytes())
    save("corrupt_exif.jpg", jpeg[:2] + b"\xff\xe1\x00\x20Exif\x00\x00MM\x00\x2a\xff\xff\xff\xff" + b"\x00" * 14
         + jpeg[2:])
    # Unusual but valid images: each must give a result (or a clear 'nothing found').
    save("one_pixel.png", encode(Image.new("RGB", (1, 1), (10, 10, 10)), "PNG"))
    save("all_white.png", encode(Image.new("RGB", (120, 120), "white"), "PNG"))
    frames = [Image.fromarray(garment(value=v)) for v in (30, 120)]
    save("animated.gif", encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0))
    save("cmyk.jpg", encode(shirt.convert("CMYK"), "JPEG"))
    gray16 = (garment()[..., 0].astype(np.uint16) * 257)
    save("gray16.png", encode(Image.fromarray(gray16), "PNG"))
    palette = shirt.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    save("palette_transparent.png", encode(palette, "PNG", transparency=int(np.asarray(palette)[0, 0])))
    save("palette.gif", encode(shirt.convert("P"), "GIF"))
    save("photo.webp", encode(shirt, "WEBP"))
    save("photo.bmp", encode(shirt, "BMP"))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    save("exif_rotated.jpg", encode(shirt.rotate(90, expand=True), "JPEG", exif=exif.tobytes()))
    rgba = np.zeros((200, 160, 4), np.uint8)
    rgba[..., :3] = garment()
    rgba[..., 3] = np.where(garment()[..., 0] < 128, 255, 0)
    save("transparent.png", encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    save("white_on_white.png", encode(Image.fromarray(garment(value=225, page=250)), "PNG"))
    save("dark_photo.jpg", encode(Image.fromarray(garment(value=5, page=45)), "JPEG"))
    wide = np.full((120, 600, 3), 235, np.uint8)
    wide[30:100, 40:560] = (120, 60, 30)
    save("wide_bag.png", encode(Image.fromarray(wide), "PNG"))
    tall = np.full((600, 200, 3), 238, np.uint8)
    tall[40:560, 60:140] = (150, 20, 40)
    tall[300:560, 30:170] = (150, 20, 40)
    save("tall_dress.png", encode(Image.fromarray(tall), "PNG"))


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inside.txt", "not an image")
    return buffer.getvalue()


if __name__ == "__main__":
    main()
