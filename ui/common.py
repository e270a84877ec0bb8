"""Streamlit-side helpers shared by the pages: cached resources, friendly errors, image display."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from fmnist_core import registry
from fmnist_core.data import Dataset, DatasetError, load_dataset
from fmnist_core.evaluate import Evaluation, evaluate_test_set
from fmnist_core.predict import Classifier

UPLOAD_LIMIT_MB = float(os.environ.get("FMNIST_UPLOAD_LIMIT_MB", "5"))


@st.cache_resource(show_spinner="Loading Fashion-MNIST…")
def _dataset() -> Dataset:
    return load_dataset()


def get_dataset() -> Dataset | None:
    """The dataset, or None after showing what is wrong and how to fix it."""
    try:
        return _dataset()
    except DatasetError as error:
        st.error("**The Fashion-MNIST dataset is not available.**")
        st.code(str(error), language=None)
        return None


def _model_stamp(model_id: str) -> float:
    path = registry.model_dir(model_id) / registry.MODEL_FILE
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _classifier(model_id: str, models_root: str, stamp: float) -> Classifier:
    # Keyed by id, registry and file time: a new or replaced model is loaded, never a stale one.
    return Classifier.load(model_id, Path(models_root))


def get_classifier(model_id: str | None = None) -> Classifier | None:
    """A loaded classifier for model_id (the active model when None), or None after a clear message."""
    try:
        model_id = registry.resolve_model_id(model_id)
        return _classifier(model_id, str(registry.models_dir()), _model_stamp(model_id))
    except registry.RegistryError as error:
        st.error(f"**No usable model.** {error}")
        st.page_link("app_pages/train.py", label="Train a model", icon=":material/model_training:")
        return None


@st.cache_resource(max_entries=4, show_spinner="Scoring the 10,000 test images…")
def _evaluation(model_id: str, models_root: str, stamp: float) -> Evaluation:
    return evaluate_test_set(_classifier(model_id, models_root, stamp).probabilities, _dataset())


def get_evaluation(model_id: str) -> Evaluation:
    """Test-set evaluation of one model, computed once per model and server."""
    return _evaluation(model_id, str(registry.models_dir()), _model_stamp(model_id))


def upscale(image: np.ndarray, factor: int = 4) -> np.ndarray:
    """Nearest-neighbour enlargement so 28x28 pixels stay crisp instead of blurry."""
    return np.kron(np.asarray(image), np.ones((factor, factor) + (1,) * (np.ndim(image) - 2), dtype=np.uint8))


def show_image_grid(images: list[np.ndarray], captions: list[str], columns: int = 8, factor: int = 3) -> None:
    """A grid of small grayscale images, each enlarged without blur."""
    for start in range(0, len(images), columns):
        cells = st.columns(columns)
        for cell, image, caption in zip(cells, images[start:start + columns], captions[start:start + columns]):
            cell.image(upscale(image, factor), caption=caption, width="stretch")


def format_model_label(info: registry.ModelInfo, active_id: str | None) -> str:
    """One line naming a model: id, accuracy, active marker, broken marker."""
    accuracy = f"{info.accuracy:.2%}" if info.accuracy is not None else "no metrics"
    marker = " ★ active" if info.model_id == active_id else ""
    broken = " ⚠ broken" if not info.ok else ""
    return f"{info.model_id} ({accuracy}){marker}{broken}"


def activate_button(model_id: str, label: str, key: str) -> None:
    """A button that makes model_id the active model (behind the admin gate), with a clear error.

    A model more than 1 point below the active one (or without a full test score) needs a second,
    explicit confirmation that says by how much it is worse.
    """
    from ui.auth import admin_allowed

    if not admin_allowed("Activating a model", key=key):
        return
    try:
        risk = registry.activation_drop(model_id)
    except registry.RegistryError as error:
        st.error(str(error))
        return
    if risk is not None:
        st.warning(f"**{model_id}** scores {risk.describe()}. Every upload would be answered by it.")
        confirmed = st.checkbox("Yes, activate the worse model anyway", key=f"{key}_confirm")
    else:
        confirmed = True
    if st.button(label, key=f"{key}_button", type="primary", disabled=not confirmed):
        try:
            registry.set_active(model_id)
            st.toast(f"{model_id} is now the active model")
            st.rerun()
        except registry.RegistryError as error:
            st.error(str(error))


def _photo_stamp() -> tuple:
    # The active head's id and file time: a retrained or newly activated head is loaded, never a stale one.
    from fmnist_core import photo

    head_id = photo.active_photo_head_id()
    path = photo.photo_models_dir() / head_id / photo.HEAD_FILE if head_id else None
    return head_id, path.stat().st_mtime if path and path.exists() else 0.0


@st.cache_resource(max_entries=2, show_spinner="Loading the photo model…")
def _photo_model(head_id: str | None, models_root: str, stamp: float):
    from fmnist_core.photo import PhotoModel

    return PhotoModel.load(head_id, Path(models_root))


def get_photo_model():
    """(the photo model or None, why it is missing): cached per active head; a missing one is not fatal."""
    from fmnist_core.photo import PhotoModelError

    head_id, stamp = _photo_stamp()
    try:
        return _photo_model(head_id, str(registry.models_dir()), stamp), None
    except PhotoModelError as error:
        return None, str(error)
