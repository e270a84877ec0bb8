"""Loader: finds the data, validates it, refuses damaged files, explains a missing dataset."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from fmnist_core import data
from fmnist_core.data import CLASS_NAMES, FILES, DatasetError


def write_idx_set(directory, n_train=60_000, n_test=10_000, label_max=9):
    """Write four valid (random) IDX .gz files of the given sizes."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, label_max + 1, count, dtype=np.uint8)
        with gzip.open(directory / FILES[f"{split}_images"], "wb") as handle:
            handle.write(struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
        with gzip.open(directory / FILES[f"{split}_labels"], "wb") as handle:
            handle.write(struct.pack(">II", 2049, count) + labels.tobytes())
    return directory


def test_real_dataset_loads_and_is_valid(dataset):
    assert dataset.x_train.shape == (60_000, 28, 28) and dataset.x_train.dtype == np.uint8
    assert dataset.x_test.shape == (10_000, 28, 28)
    assert set(np.unique(dataset.y_train)) == set(range(10))
    assert np.bincount(dataset.y_test).tolist() == [1000] * 10
    assert len(dataset.checksum()) == 16


def test_class_names_in_dataset_order():
    assert CLASS_NAMES[0] == "T-shirt/top" and CLASS_NAMES[7] == "Sneaker" and CLASS_NAMES[9] == "Ankle boot"
    assert len(CLASS_NAMES) == 10


def test_user_directory_comes_first(tmp_path, monkeypatch):
    user_dir = write_idx_set(tmp_path / "mine")
    monkeypatch.setenv("FMNIST_DATA_DIR", str(user_dir))
    assert data.find_data_dir(allow_download=False) == user_dir
    assert data.load_dataset(allow_download=False).source == str(user_dir)


def test_explicit_directory_beats_environment(tmp_path, monkeypatch):
    env_dir = write_idx_set(tmp_path / "env")
    given = write_idx_set(tmp_path / "given")
    monkeypatch.setenv("FMNIST_DATA_DIR", str(env_dir))
    assert data.find_data_dir(given, allow_download=False) == given


def test_truncated_file_is_refused(tmp_path):
    directory = write_idx_set(tmp_path / "d")
    path = directory / FILES["test_images"]
    raw = gzip.decompress(path.read_bytes())
    with gzip.open(path, "wb") as handle:
        handle.write(raw[:-100])
    with pytest.raises(DatasetError, match="truncated"):
        data.read_dir(directory)


def test_corrupt_gzip_is_refused(tmp_path):
    directory = write_idx_set(tmp_path / "d")
    path = directory / FILES["train_labels"]
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DatasetError, match="gzip"):
        data.read_dir(directory)


def test_bad_magic_number_is_refused():
    raw = struct.pack(">IIII", 1234, 1, 28, 28) + bytes(784)
    with pytest.raises(DatasetError, match="magic"):
        data.parse_idx_images(raw)


def test_label_out_of_range_is_refused():
    raw = struct.pack(">II", 2049, 2) + bytes([3, 12])
    with pytest.raises(DatasetError, match="outside 0-9"):
        data.parse_idx_labels(raw)


def test_wrong_count_is_refused(tmp_path):
    directory = write_idx_set(tmp_path / "d", n_train=100, n_test=10)
    with pytest.raises(DatasetError, match="expected 60000"):
        data.read_dir(directory)


def test_missing_dataset_lists_places_and_fixes(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError) as caught:
        data.load_dataset(allow_download=False)
    message = str(caught.value)
    for place in (tmp_path / "nowhere", tmp_path / "no-debian", tmp_path / "no-keras"):
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message and "FMNIST_DATA_DIR" in message


def test_package_import_does_not_load_tensorflow_or_streamlit():
    import subprocess
    import sys

    code = ("import sys, fmnist_core, fmnist_core.config, fmnist_core.data, fmnist_core.registry, "
            "fmnist_core.jobs, fmnist_core.preprocess, fmnist_core.evaluate, fmnist_core.predict, fmnist_core.cli; "
            "print('tensorflow' in sys.modules, 'streamlit' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert output == ["False", "False"]


def test_model_input_is_a_float_copy_scaled_to_unit_range():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    scaled = data.to_model_input(images)
    assert scaled.dtype == np.float32 and scaled.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(scaled[0, :, :, 0], np.float32([[0, 1], [0.2, 0.4]]))
    assert images[0, 0, 1] == 255  # the uint8 input is left as it was


def test_the_tensorflow_scaling_matches_to_model_input_to_the_bit():
    from fmnist_core.data import to_model_input, to_model_input_tensor

    images = (np.arange(4 * 28 * 28) % 256).astype(np.uint8).reshape(4, 28, 28)  # every byte value
    assert np.array_equal(np.asarray(to_model_input_tensor(images)), to_model_input(images))
