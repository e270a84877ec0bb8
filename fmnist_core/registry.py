"""The model registry: models/<id>/model.keras + meta.json, and an atomically written active pointer."""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fmnist_core.config import models_dir
from fmnist_core.fsutil import atomic_write_json, fsync_dir, read_json

MODEL_FILE = "model.keras"
META_FILE = "meta.json"
ACTIVE_FILE = "active.json"
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
# Folders of models/ that are not CNN models: the photo model's registry and its converted backbones.
RESERVED_NAMES = frozenset({"photo", "backbones"})


class RegistryError(RuntimeError):
    """A registry operation failed; the message says why in one line, and nothing was changed."""


class ModelLoadError(RegistryError):
    """A model exists but cannot be loaded (corrupt, missing or unsafe file)."""


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry: its id, its meta.json (empty when broken) and why it is broken, if it is."""

    model_id: str
    meta: dict
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when model.keras and a readable meta.json are present."""
        return self.problem is None

    @property
    def accuracy(self) -> float | None:
        """Test accuracy from meta.json, if recorded."""
        return (self.meta.get("test_metrics") or {}).get("accuracy")


def validate_model_id(model_id: str) -> str:
    """Refuse ids that could name anything outside the registry (path traversal, hidden files)."""
    if (not isinstance(model_id, str) or not MODEL_ID_PATTERN.match(model_id) or ".." in model_id
            or model_id in RESERVED_NAMES):
        raise RegistryError(f"invalid model id {model_id!r}: use letters, digits, '-', '_' and '.' only")
    return model_id


def model_dir(model_id: str, root: Path | None = None) -> Path:
    """The directory of a model id, guaranteed to lie inside the registry."""
    root = Path(root or models_dir()).resolve()
    path = (root / validate_model_id(model_id)).resolve()
    if path.parent != root:
        raise RegistryError(f"invalid model id {model_id!r}")
    return path


def new_model_id(architecture: str, when: datetime | None = None) -> str:
    """A sortable, readable id such as 20261122-101500-fmnist-net."""
    when = when or datetime.now(UTC)
    return f"{when:%Y%m%d-%H%M%S}-{architecture}-{uuid.uuid4().hex[:4]}"


def save_model(model, meta: dict, model_id: str | None = None, root: Path | None = None,
               model_file: str = MODEL_FILE) -> str:
    """Write the model file + meta.json into a hidden temp dir, then rename it into place in one step.

    model is anything with save(path): a Keras model, or the photo model's head (model_file head.npz).
    """
    root = Path(root or models_dir())
    model_id = validate_model_id(model_id or new_model_id(meta.get("architecture", "model")))
    final = model_dir(model_id, root)
    if final.exists():
        raise RegistryError(f"model {model_id} already exists")
    staging = root / f".tmp-{model_id}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
        model.save(staging / model_file)
        atomic_write_json(staging / META_FILE, {**meta, "model_id": model_id})
        staging.rename(final)
        fsync_dir(root)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise RegistryError(f"could not save model {model_id} to {root}: {error.strerror or error}") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return model_id


def read_meta(model_id: str, root: Path | None = None) -> dict:
    """meta.json of one model, or RegistryError."""
    path = model_dir(model_id, root) / META_FILE
    try:
        meta = read_json(path)
    except FileNotFoundError:
        raise RegistryError(f"model {model_id} has no {META_FILE}") from None
    except (OSError, ValueError) as error:
        raise RegistryError(f"model {model_id}: {META_FILE} is unreadable ({error})") from error
    if not isinstance(meta, dict):
        raise RegistryError(f"model {model_id}: {META_FILE} is not a JSON object")
    return meta


def update_meta(model_id: str, changes: dict, root: Path | None = None) -> dict:
    """Merge changes into a model's meta.json, atomically; returns the new meta."""
    meta = {**read_meta(model_id, root), **changes}
    try:
        atomic_write_json(model_dir(model_id, root) / META_FILE, meta)
    except OSError as error:
        raise RegistryError(f"could not update {model_id}: {error.strerror or error}") from error
    return meta


def list_models(root: Path | None = None, model_file: str = MODEL_FILE) -> list[ModelInfo]:
    """All registry entries, newest first; broken ones are listed with their problem, not skipped."""
    root = Path(root or models_dir())
    if not root.is_dir():
        return []
    infos = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name, reverse=True):
        if not entry.is_dir() or not MODEL_ID_PATTERN.match(entry.name) or entry.name in RESERVED_NAMES:
            continue
        try:
            meta = read_meta(entry.name, root)
            problem = None if (entry / model_file).is_file() else f"{model_file} is missing"
        except RegistryError as error:
            meta, problem = {}, str(error)
        infos.append(ModelInfo(entry.name, meta, problem))
    return infos


def get_active_id(root: Path | None = None) -> str | None:
    """The active model id, or None when no valid pointer exists."""
    try:
        model_id = read_json(Path(root or models_dir()) / ACTIVE_FILE)["model_id"]
        validate_model_id(model_id)
    except (OSError, ValueError, KeyError, TypeError, RegistryError):
        return None
    return model_id


def set_active(model_id: str, root: Path | None = None, model_file: str = MODEL_FILE) -> None:
    """Point the registry at model_id (which must exist and have a model file), atomically."""
    root = Path(root or models_dir())
    if not (model_dir(model_id, root) / model_file).is_file():
        raise RegistryError(f"no model {model_id} in {root}")
    try:
        atomic_write_json(root / ACTIVE_FILE, {"model_id": model_id,
                                               "activated_at": datetime.now(UTC).isoformat()})
    except OSError as error:
        raise RegistryError(f"could not activate {model_id}: {error.strerror or error}") from error


ACTIVATION_MARGIN = 0.01  # activating a model more than this below the active one asks for confirmation


@dataclass(frozen=True)
class ActivationRisk:
    """Why activating a model needs a confirmation: it scores worse than the active one, or has no score."""

    model_id: str
    accuracy: float | None
    active_id: str
    active_accuracy: float | None

    @property
    def points(self) -> float | None:
        """How many accuracy points below the active model (None when either score is unknown)."""
        if self.accuracy is None or self.active_accuracy is None:
            return None
        return (self.active_accuracy - self.accuracy) * 100

    def describe(self) -> str:
        """One line for people."""
        if self.accuracy is None:
            return f"no recorded test accuracy (the active model {self.active_id} scores {self.active_accuracy:.2%})"
        return (f"{self.accuracy:.2%} on the test set, {self.points:.1f} points below the active model "
                f"{self.active_id} ({self.active_accuracy:.2%})")


def _full_test_accuracy(meta: dict) -> float | None:
    """Test accuracy when it was measured on the whole test set (a subset's figure is not comparable)."""
    accuracy = (meta.get("test_metrics") or {}).get("accuracy")
    test_images = (meta.get("dataset") or {}).get("test_images")
    if accuracy is None or (test_images is not None and test_images < 10000):
        return None
    return float(accuracy)


def activation_drop(model_id: str, root: Path | None = None) -> ActivationRisk | None:
    """An ActivationRisk when model_id scores more than 1 point below the active model (or has no full score)."""
    active = get_active_id(root)
    if active is None or active == model_id:
        return None
    try:
        active_accuracy = _full_test_accuracy(read_meta(active, root))
    except RegistryError:
        return None  # a broken active model is no reason to keep a working one out
    accuracy = _full_test_accuracy(read_meta(model_id, root))
    if active_accuracy is None:
        return None
    if accuracy is None or accuracy < active_accuracy - ACTIVATION_MARGIN:
        return ActivationRisk(model_id, accuracy, active, active_accuracy)
    return None


def delete_model(model_id: str, root: Path | None = None) -> None:
    """Remove a model; the active one cannot be deleted."""
    root = Path(root or models_dir())
    if model_id == get_active_id(root):
        raise RegistryError(f"{model_id} is the active model; activate another one first")
    path = model_dir(model_id, root)
    if not path.is_dir():
        raise RegistryError(f"no model {model_id}")
    # Rename first so that a reader never sees a half-deleted model.
    trash = root / f".tmp-deleted-{model_id}-{uuid.uuid4().hex[:6]}"
    path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def load_model(model_id: str, root: Path | None = None):
    """Load model.keras with safe_mode=True; any failure becomes one ModelLoadError."""
    import keras

    path = model_dir(model_id, root) / MODEL_FILE
    if not path.is_file():
        raise ModelLoadError(f"model {model_id}: {MODEL_FILE} is missing")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad zip / config / weights file
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"model {model_id} could not be loaded: {first_line}") from error


def resolve_model_id(model_id: str | None = None, root: Path | None = None) -> str:
    """The given id, or the active one, or a clear error when the registry has none."""
    if model_id:
        return validate_model_id(model_id)
    active = get_active_id(root)
    if active is None:
        raise RegistryError("no active model: train one (python -m fmnist_core train) or activate one "
                            "(python -m fmnist_core activate ID)")
    return active
