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


@pytest.fixture(scope="session")
def machine_timings(tmp_path_factory) -> Path:
    """Where the Train page's per-step timings of this machine are kept between tests (one timing per network)."""
    return tmp_path_factory.mktemp("timings") / "step-timings.json"


def private_runs_dir(tmp_path: Path, monkeypatch, machine_timings: Path):
    """A private runs dir holding the timings earlier tests made here; the ones this test makes go back after it."""
    from fmnist_core.estimate import TIMINGS_FILE

    runs = tmp_path / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    if machine_timings.exists():
        shutil.copy(machine_timings, runs / TIMINGS_FILE)
    monkeypatch.setenv("FMNIST_RUNS_DIR", str(runs))
    yield runs
    if (runs / TIMINGS_FILE).exists():
        shutil.copy(runs / TIMINGS_FILE, machine_timings)


@pytest.fixture
def registry_dir(tmp_path, trained_registry, monkeypatch, machine_timings) -> Path:
    """A private copy of the trained registry, set as FMNIST_MODELS_DIR, plus a private runs dir."""
    root = tmp_path / "models"
    shutil.copytree(trained_registry, root)
    monkeypatch.setenv("FMNIST_MODELS_DIR", str(root))
    yield from (root for _ in private_runs_dir(tmp_path, monkeypatch, machine_timings))


@pytest.fixture
def empty_registry(tmp_path, monkeypatch, machine_timings) -> Path:
    """An empty registry and runs dir."""
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setenv("FMNIST_MODELS_DIR", str(root))
    yield from (root for _ in private_runs_dir(tmp_path, monkeypatch, machine_timings))


@pytest.fixture
def photo_registry(registry_dir) -> Path:
    """registry_dir with the shipped photo model (models/photo) copied in, so photos reach the photo model."""
    shutil.copytree(REPO_ROOT / "models" / "photo", registry_dir / "photo")
    return registry_dir
