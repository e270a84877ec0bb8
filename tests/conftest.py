"""Shared fixtures: an isolated registry and runs dir per test, and one tiny trained model per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("FMNIST_NO_DOWNLOAD", "1")  # tests never reach for the network

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_PHOTOS = REPO_ROOT.parent / "shared" / "photos"


@pytest.fixture(autouse=True)
def _private_feedback_store(tmp_path, monkeypatch):
    """Every test writes corrections to its own database, never to the project's feedback/."""
    monkeypatch.setenv("FMNIST_FEEDBACK_DB", str(tmp_path / "feedback" / "feedback.sqlite3"))


@pytest.fixture(scope="session")
def dataset():
    """The real Fashion-MNIST (installed by scripts/setup.sh)."""
    from fmnist_core.data import load_dataset

    return load_dataset(allow_download=False)


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory, dataset) -> Path:
    """A registry holding one tiny seed-basic model (1 epoch on 512 images), active."""
    from fmnist_core.config import TrainConfig
    from fmnist_core.train import train

    root = tmp_path_factory.mktemp("registry")
    config = TrainConfig(architecture="seed-basic", epochs=1, batch_size=64, subset=512, test_subset=500,
                         augmentation=False, validation_split=0.0)
    train(config, tmp_path_factory.mktemp("runs") / "tiny", dataset=dataset, activate=True, models_root=root)
    return root


@pytest.fixture
def registry_dir(tmp_path, trained_registry, monkeypatch) -> Path:
    """A private copy of the trained registry, set as FMNIST_MODELS_DIR, plus a private runs dir."""
    root = tmp_path / "models"
    shutil.copytree(trained_registry, root)
    monkeypatch.setenv("FMNIST_MODELS_DIR", str(root))
    monkeypatch.setenv("FMNIST_RUNS_DIR", str(tmp_path / "runs"))
    return root


@pytest.fixture
def empty_registry(tmp_path, monkeypatch) -> Path:
    """An empty registry and runs dir."""
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setenv("FMNIST_MODELS_DIR", str(root))
    monkeypatch.setenv("FMNIST_RUNS_DIR", str(tmp_path / "runs"))
    return root


@pytest.fixture
def photo_registry(registry_dir) -> Path:
    """registry_dir with the shipped photo model (models/photo) copied in, so photos reach the photo model."""
    shutil.copytree(REPO_ROOT / "models" / "photo", registry_dir / "photo")
    return registry_dir
