"""Find, read and validate the Fashion-MNIST IDX files."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 28

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
EXPECTED_COUNTS = {"train": 60_000, "test": 10_000}
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


class DatasetError(RuntimeError):
    """The dataset could not be found or is not valid Fashion-MNIST."""


@dataclass(frozen=True)
class Dataset:
    """The four arrays (uint8 images N x 28 x 28, uint8 labels) and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def checksum(self) -> str:
        """A short SHA-256 over all four arrays, recorded with each model."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(array.tobytes())
        return digest.hexdigest()[:16]


def keras_cache_dir() -> Path:
    """Where keras.datasets.fashion_mnist keeps its download."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "fashion-mnist"


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The places searched, in order: the given dir, FMNIST_DATA_DIR, Debian's package, the Keras cache."""
    places = []
    for given in (data_dir, os.environ.get("FMNIST_DATA_DIR")):
        if given:
            places.append(Path(given).expanduser())
    places += [DEBIAN_DIR, keras_cache_dir()]
    return places


def _has_all_files(directory: Path) -> bool:
    return all((directory / name).is_file() for name in FILES.values())


def _read_gz(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DatasetError(f"{path} is not a readable gzip file ({error}); the download may be truncated") from error


def parse_idx_images(raw: bytes, source: str = "images") -> np.ndarray:
    """Parse an IDX3 image file, checking magic number, header and length."""
    if len(raw) < 16:
        raise DatasetError(f"{source}: too short for an IDX image header ({len(raw)} bytes)")
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != IMAGES_MAGIC:
        raise DatasetError(f"{source}: bad magic number {magic} (expected {IMAGES_MAGIC} for IDX images)")
    if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetError(f"{source}: images are {rows}x{cols}, expected 28x28")
    expected = 16 + count * rows * cols
    if len(raw) != expected:
        raise DatasetError(f"{source}: {len(raw)} bytes but the header promises {expected}: file truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def parse_idx_labels(raw: bytes, source: str = "labels") -> np.ndarray:
    """Parse an IDX1 label file, checking magic number, length and the 0-9 range."""
    if len(raw) < 8:
        raise DatasetError(f"{source}: too short for an IDX label header ({len(raw)} bytes)")
    magic, count = struct.unpack(">II", raw[:8])
    if magic != LABELS_MAGIC:
        raise DatasetError(f"{source}: bad magic number {magic} (expected {LABELS_MAGIC} for IDX labels)")
    if len(raw) != 8 + count:
        raise DatasetError(f"{source}: {len(raw)} bytes but the header promises {8 + count}: file truncated or corrupt")
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8)
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DatasetError(f"{source}: label {int(labels.max())} outside 0-9")
    return labels


def read_dir(directory: Path) -> Dataset:
    """Read and validate the four files in one directory."""
    arrays = {}
    for key, name in FILES.items():
        path = directory / name
        raw = _read_gz(path)
        arrays[key] = parse_idx_images(raw, str(path)) if key.endswith("images") else parse_idx_labels(raw, str(path))
    for split, expected in EXPECTED_COUNTS.items():
        n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_images != n_labels:
            raise DatasetError(f"{directory}: {n_images} {split} images but {n_labels} labels")
        if n_images != expected:
            raise DatasetError(f"{directory}: {n_images} {split} images, expected {expected}")
    return Dataset(arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"],
                   source=str(directory))


def _try_keras_download() -> Path | None:
    try:
        import keras

        keras.datasets.fashion_mnist.load_data()
    except Exception:  # no network, proxy, ...: reported below together with the other places
        return None
    return keras_cache_dir() if _has_all_files(keras_cache_dir()) else None


def missing_dataset_message(tried: list[Path]) -> str:
    """The one error text shown when no dataset is found anywhere."""
    places = "\n".join(f"  - {place}" for place in tried)
    return (
        "Fashion-MNIST was not found. Looked for the four IDX .gz files in:\n"
        f"{places}\n  - the Keras download (keras.datasets.fashion_mnist; no network or it failed)\n"
        "Fix it by either:\n"
        "  1. installing the Debian package: sudo apt-get install dataset-fashion-mnist\n"
        "  2. or setting FMNIST_DATA_DIR to a directory holding train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
    )


def find_data_dir(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> Path:
    """The first directory holding all four files, downloading with Keras as the last resort."""
    tried = candidate_dirs(data_dir)
    for place in tried:
        if _has_all_files(place):
            return place
    if allow_download and os.environ.get("FMNIST_NO_DOWNLOAD") != "1":
        downloaded = _try_keras_download()
        if downloaded:
            return downloaded
    raise DatasetError(missing_dataset_message(tried))


def load_dataset(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> Dataset:
    """Find and load Fashion-MNIST (uint8 arrays), validating every file."""
    return read_dir(find_data_dir(data_dir, allow_download))


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 N x 28 x 28 -> float32 N x 28 x 28 x 1 in [0, 1], the only scaling the models know."""
    scaled = np.array(images, dtype=np.float32)
    scaled /= 255.0  # in place: a second full-size float copy is 188 MB at training size
    return scaled[..., None]


def to_model_input_tensor(images):
    """The TensorFlow form of to_model_input (same values to the bit), for tf.data pipelines."""
    import tensorflow as tf

    return tf.expand_dims(tf.cast(images, tf.float32) / 255.0, -1)
