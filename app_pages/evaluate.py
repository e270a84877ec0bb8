"""Evaluate: confusion matrix, per-class report, most-confused pairs, misclassified gallery, downloads, comparison."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import streamlit as st

from fmnist_core import exports, registry
from fmnist_core.data import CLASS_NAMES
from fmnist_core.evaluate import compare_evaluations, most_confused_pairs
from fmnist_core.figures import confusion_difference_figure, confusion_figure, gallery_figure
from ui.common import format_model_label, get_classifier, get_dataset, get_evaluation

GALLERY_SIZE = 24


def show_downloads(model_id: str, evaluation, labels) -> None:
    """The confusion matrix as PNG, the report and the per-image predictions as CSV, built in memory on click."""
    columns = st.columns(3)
    columns[0].download_button("Confusion matrix (PNG)", lambda: exports.confusion_matrix_png(evaluation, title=model_id),
                               file_name=f"{model_id}-confusion-matrix.png", mime="image/png", on_click="ignore",
                               icon=":material/download:", key="download_confusion")
    columns[1].download_button("Per-class report (CSV)", lambda: exports.classification_report_csv(evaluation),
                               file_name=f"{model_id}-classification-report.csv", mime="text/csv",
                               on_click="ignore", icon=":material/download:", key="download_report")
    columns[2].download_button("Predictions for the 10,000 test images (CSV)",
                               lambda: exports.predictions_csv(evaluation, labels),
                               file_name=f"{model_id}-test-predictions.csv", mime="text/csv", on_click="ignore",
                               icon=":material/download:", key="download_predictions")


def show_comparison(model_id: str, other_id: str, evaluation, other, dataset) -> None:
    """Per-class accuracy side by side, the confusion matrices' difference, and who gets which images right."""
    comparison = compare_evaluations(evaluation, other, dataset.y_test)
    gained, lost = len(comparison.only_second_right), len(comparison.only_first_right)
    st.markdown(f"Second model **`{other_id}`** vs this model **`{model_id}`**: {other.accuracy:.2%} vs "
                f"{evaluation.accuracy:.2%} "
                f"({comparison.accuracy_difference:+.2f} points). It gets **{gained}** test images right that "
                f"`{model_id}` gets wrong, and **{lost}** wrong that it gets right.")
    left, right = st.columns([2, 3])
    table = pd.DataFrame(comparison.per_class).rename(columns={"first": model_id, "second": other_id,
                                                               "difference": "difference (points)"})
    left.dataframe(table.style.format({model_id: "{:.1%}", other_id: "{:.1%}", "difference (points)": "{:+.1f}"})
                   .background_gradient(subset=["difference (points)"], cmap="RdYlGn", vmin=-3, vmax=3),
                   hide_index=True, width="stretch")
    if comparison.changed_pairs:
        left.caption("Mistakes that changed most (images of the true class predicted as the other):")
        left.dataframe(pd.DataFrame(comparison.changed_pairs, columns=["true", "predicted as", model_id, other_id]),
                       hide_index=True, width="stretch")
    with right:
        figure = confusion_difference_figure(comparison.confusion_difference,
                                             f"{other_id} minus {model_id}: blue = more images, red = fewer")
        st.pyplot(figure, clear_figure=True)
        plt.close(figure)
        st.caption("On the diagonal blue is better (more right); off the diagonal red is better (fewer of that "
                   "mistake).")
    for title, indices, right_one, wrong_one in (
            (f"Right by `{other_id}`, wrong by `{model_id}`", comparison.only_second_right, other, evaluation),
            (f"Right by `{model_id}`, wrong by `{other_id}`", comparison.only_first_right, evaluation, other)):
        st.markdown(f"**{title}** ({len(indices)} images; showing up to {GALLERY_SIZE})")
        if len(indices):
            shown = indices[:GALLERY_SIZE]
            titles = [f"{CLASS_NAMES[right_one.predicted[i]]} vs\n{CLASS_NAMES[wrong_one.predicted[i]]}" for i in shown]
            figure = gallery_figure(dataset.x_test[shown], dataset.y_test[shown], wrong_one.predicted[shown],
                                    wrong_one.confidence[shown], titles=titles)
            st.pyplot(figure, clear_figure=True)
            plt.close(figure)
            st.caption("Each tile: the right answer vs the wrong one (red: the wrong model's answer).")
        else:
            st.caption("None.")


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
show_downloads(model_id, evaluation, dataset.y_test)

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

st.divider()
st.subheader("Compare with another model")
others = [i for i in ids if i != model_id]
if not others:
    st.caption("Only one model in the registry: train another to compare.")
else:
    other_id = st.selectbox("Second model", others, key="evaluate_compare_with",
                            format_func=lambda i: format_model_label(by_id[i], active_id))
    if get_classifier(other_id) is not None:
        show_comparison(model_id, other_id, evaluation, get_evaluation(other_id), dataset)
