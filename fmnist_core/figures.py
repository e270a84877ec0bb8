"""Matplotlib figures shared by the pages and the downloads (no Streamlit here)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fmnist_core.data import CLASS_NAMES  # noqa: E402


def confusion_figure(confusion, normalise: bool = False, title: str | None = None):
    """Seaborn heatmap of a confusion matrix, counts or row-normalised."""
    import seaborn as sns

    matrix = np.array(confusion, dtype=float)
    if normalise:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(8, 6.5))
    sns.heatmap(matrix, annot=True, fmt=".2f" if normalise else ".0f", cmap="Blues", cbar=False, ax=axes,
                xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, annot_kws={"size": 8})
    _label_axes(axes, title)
    figure.tight_layout()
    return figure


def confusion_difference_figure(difference, title: str):
    """The difference of two confusion matrices: blue where the second model has more images, red fewer.

    On the diagonal more is better (more right); off it, fewer is better (fewer of that mistake).
    """
    import seaborn as sns

    matrix = np.array(difference, dtype=float)
    limit = max(1.0, float(np.abs(matrix).max()))
    figure, axes = plt.subplots(figsize=(8, 6.5))
    sns.heatmap(matrix, annot=True, fmt=".0f", cmap="RdBu", vmin=-limit, vmax=limit, center=0, cbar=False,
                ax=axes, xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, annot_kws={"size": 8})
    _label_axes(axes, title)
    figure.tight_layout()
    return figure


def _label_axes(axes, title: str | None) -> None:
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("True class")
    if title:
        axes.set_title(title, fontsize=10)
    plt.setp(axes.get_xticklabels(), rotation=40, ha="right")


def gallery_figure(images, true_labels, predicted, confidence, columns: int = 8, titles: list[str] | None = None):
    """Tiles like the seed tutorials: image, predicted label and confidence, true label; green right, red wrong."""
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.9))
    for axis in np.atleast_1d(axes).ravel():
        axis.axis("off")
    for index, (axis, image, truth, guess, prob) in enumerate(zip(np.atleast_1d(axes).ravel(), images, true_labels,
                                                                  predicted, confidence)):
        axis.imshow(image, cmap="gray", interpolation="nearest")
        color = "green" if truth == guess else "red"
        title = titles[index] if titles else f"{CLASS_NAMES[guess]} {prob:.0%}\n(true: {CLASS_NAMES[truth]})"
        axis.set_title(title, color=color, fontsize=7)
    figure.tight_layout()
    return figure


def curves_figure(history: list[dict], title: str | None = None):
    """Loss and accuracy per epoch, training vs validation, side by side."""
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [row["epoch"] for row in history]
    for axes, key, label in ((loss_axes, "loss", "Loss"), (accuracy_axes, "accuracy", "Accuracy")):
        for prefix, name in (("", "training"), ("val_", "validation")):
            values = [row.get(prefix + key) for row in history]
            if any(value is not None for value in values):
                axes.plot(epochs, [np.nan if v is None else v for v in values], marker="o", label=name)
        axes.set_xlabel("Epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def png_bytes(figure, dpi: int = 120) -> bytes:
    """A figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()
