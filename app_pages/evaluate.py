"""Evaluate: confusion matrix, per-class report, most-confused pairs, misclassified gallery."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import streamlit as st

from fmnist_core import registry
from fmnist_core.data import CLASS_NAMES
from fmnist_core.evaluate import most_confused_pairs
from ui.common import format_model_label, get_classifier, get_dataset, get_evaluation

GALLERY_SIZE = 24


def confusion_figure(confusion: list[list[int]], normalise: bool):
    """Seaborn heatmap of the confusion matrix, counts or row-normalised."""
    matrix = np.array(confusion, dtype=float)
    if normalise:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(8, 6.5))
    sns.heatmap(matrix, annot=True, fmt=".2f" if normalise else ".0f", cmap="Blues", cbar=False, ax=axes,
                xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, annot_kws={"size": 8})
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("True class")
    plt.setp(axes.get_xticklabels(), rotation=40, ha="right")
    figure.tight_layout()
    return figure


def gallery_figure(images, true_labels, predicted, confidence, columns: int = 8):
    """Tiles like the seed tutorials: image, predicted label and confidence, true label; green right, red wrong."""
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.9))
    for axis in np.atleast_1d(axes).ravel():
        axis.axis("off")
    for axis, image, truth, guess, prob in zip(np.atleast_1d(axes).ravel(), images, true_labels, predicted,
                                               confidence):
        axis.imshow(image, cmap="gray", interpolation="nearest")
        color = "green" if truth == guess else "red"
        axis.set_title(f"{CLASS_NAMES[guess]} {prob:.0%}\n(true: {CLASS_NAMES[truth]})", color=color, fontsize=7)
    figure.tight_layout()
    return figure


st.title("Evaluate a model")
dataset = get_dataset()
models = [info for info in registry.list_models() if info.ok]
if dataset is None:
    st.stop()
if not models:
    st.warning("No usable model in the registry. Train one on the **Train** page.")
    st.stop()

active_id = registry.get_active_id()
ids = [info.model_id for info in models]
by_id = {info.model_id: info for info in models}
model_id = st.selectbox("Model", ids, index=ids.index(active_id) if active_id in ids else 0, key="evaluate_model",
                        format_func=lambda i: format_model_label(by_id[i], active_id))
if get_classifier(model_id) is None:
    st.stop()
evaluation = get_evaluation(model_id)

columns = st.columns(4)
columns[0].metric("Test accuracy", f"{evaluation.accuracy:.2%}")
columns[1].metric("Test loss", f"{evaluation.loss:.4f}")
columns[2].metric("Misclassified", f"{len(evaluation.misclassified):,} / {evaluation.n:,}")
columns[3].metric("Macro F1", f"{evaluation.report['macro avg']['f1-score']:.3f}")

left, right = st.columns([3, 2])
with left:
    st.subheader("Confusion matrix")
    normalise = st.toggle("Row-normalised (share of each true class)", value=False, key="evaluate_normalise")
    figure = confusion_figure(evaluation.confusion, normalise)
    st.pyplot(figure, clear_figure=True)
    plt.close(figure)
with right:
    st.subheader("Per-class report")
    report = pd.DataFrame({
        "class": CLASS_NAMES,
        "precision": [evaluation.report[n]["precision"] for n in CLASS_NAMES],
        "recall": [evaluation.report[n]["recall"] for n in CLASS_NAMES],
        "f1": [evaluation.report[n]["f1-score"] for n in CLASS_NAMES],
        "accuracy": evaluation.per_class_accuracy,
        "support": [int(evaluation.report[n]["support"]) for n in CLASS_NAMES],
    })
    st.dataframe(report.style.format({"precision": "{:.3f}", "recall": "{:.3f}", "f1": "{:.3f}",
                                      "accuracy": "{:.1%}"}).background_gradient(subset=["f1"], cmap="RdYlGn"),
                 hide_index=True, width="stretch")
    st.subheader("Most confused pairs")
    pairs = pd.DataFrame(most_confused_pairs(evaluation.confusion, 6), columns=["true", "predicted as", "images"])
    st.dataframe(pairs, hide_index=True, width="stretch")

st.subheader("Per-class accuracy")
st.bar_chart(pd.DataFrame({"class": CLASS_NAMES, "accuracy": evaluation.per_class_accuracy}), x="class",
             y="accuracy", height=260, sort=False)

st.subheader("Misclassified test images")
left, middle, right = st.columns(3)
true_filter = left.selectbox("True class", ["any", *CLASS_NAMES], key="evaluate_true")
predicted_filter = middle.selectbox("Predicted class", ["any", *CLASS_NAMES], key="evaluate_predicted")
order = right.selectbox("Order", ["most confident mistakes first", "test-set order"], key="evaluate_order")
wrong = np.array(evaluation.misclassified, dtype=int)
if true_filter != "any":
    wrong = wrong[dataset.y_test[wrong] == CLASS_NAMES.index(true_filter)]
if predicted_filter != "any":
    wrong = wrong[evaluation.predicted[wrong] == CLASS_NAMES.index(predicted_filter)]
if order.startswith("most"):
    wrong = wrong[np.argsort(-evaluation.confidence[wrong])]
st.caption(f"{len(wrong)} images match; showing up to {GALLERY_SIZE}.")
if len(wrong):
    shown = wrong[:GALLERY_SIZE]
    figure = gallery_figure(dataset.x_test[shown], dataset.y_test[shown], evaluation.predicted[shown],
                            evaluation.confidence[shown])
    st.pyplot(figure, clear_figure=True)
    plt.close(figure)
else:
    st.info("No misclassified images for this filter.")
