"""Test-set metrics with scikit-learn: accuracy, loss, confusion matrix, per-class report, mistakes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, log_loss

from fmnist_core.data import CLASS_NAMES, NUM_CLASSES, Dataset, to_model_input


@dataclass
class Evaluation:
    """Everything the Evaluate page and meta.json show about one model on one labelled set."""

    accuracy: float
    loss: float
    n: int
    confusion: list[list[int]]
    report: dict
    per_class_accuracy: list[float]
    misclassified: list[int] = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    confidence: np.ndarray = field(repr=False)

    def summary(self) -> dict:
        """The JSON-friendly part stored in meta.json."""
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "n": self.n,
            "confusion_matrix": self.confusion,
            "per_class": {
                name: {
                    "precision": self.report[name]["precision"],
                    "recall": self.report[name]["recall"],
                    "f1": self.report[name]["f1-score"],
                    "support": int(self.report[name]["support"]),
                    "accuracy": self.per_class_accuracy[index],
                }
                for index, name in enumerate(CLASS_NAMES)
            },
            "macro_f1": self.report["macro avg"]["f1-score"],
        }


def evaluate_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Score class probabilities (N x 10) against integer labels."""
    labels = np.asarray(labels).astype(int)
    predicted = probabilities.argmax(axis=1)
    all_classes = list(range(NUM_CLASSES))
    matrix = confusion_matrix(labels, predicted, labels=all_classes)
    support = matrix.sum(axis=1)
    per_class_accuracy = np.divide(np.diag(matrix), support, out=np.zeros(NUM_CLASSES), where=support > 0)
    report = classification_report(labels, predicted, labels=all_classes, target_names=list(CLASS_NAMES),
                                   output_dict=True, zero_division=0)
    return Evaluation(
        accuracy=float(accuracy_score(labels, predicted)),
        loss=float(log_loss(labels, np.clip(probabilities, 1e-7, 1.0), labels=all_classes)),
        n=int(len(labels)),
        confusion=matrix.tolist(),
        report=report,
        per_class_accuracy=per_class_accuracy.tolist(),
        misclassified=np.flatnonzero(predicted != labels).tolist(),
        predicted=predicted,
        confidence=probabilities.max(axis=1),
    )


def evaluate_test_set(score: Callable[[np.ndarray], np.ndarray], dataset: Dataset) -> Evaluation:
    """Score all 10,000 test images with score (model inputs -> probabilities)."""
    return evaluate_probabilities(score(to_model_input(dataset.x_test)), dataset.y_test)


def most_confused_pairs(confusion: list[list[int]], top: int = 5) -> list[tuple[str, str, int]]:
    """The largest off-diagonal cells: (true class, predicted class, count), biggest first."""
    matrix = np.array(confusion)
    np.fill_diagonal(matrix, 0)
    order = np.argsort(matrix, axis=None)[::-1][:top]
    pairs = []
    for flat in order:
        true_index, predicted_index = np.unravel_index(flat, matrix.shape)
        if matrix[true_index, predicted_index] > 0:
            pairs.append((CLASS_NAMES[true_index], CLASS_NAMES[predicted_index], int(matrix[true_index, predicted_index])))
    return pairs


@dataclass
class Comparison:
    """Two models on the same test set: per-class accuracy, confusion difference, images only one gets right."""

    per_class: list[dict]  # class, first, second, difference (accuracy points, second - first)
    confusion_difference: list[list[int]]  # second's confusion matrix minus the first's
    only_first_right: np.ndarray = field(repr=False)  # test-set indices
    only_second_right: np.ndarray = field(repr=False)
    changed_pairs: list[tuple[str, str, int, int]] = field(default_factory=list)  # true, predicted, first, second

    @property
    def accuracy_difference(self) -> float:
        """Accuracy points the second model gains over the first (negative: loses)."""
        return (len(self.only_second_right) - len(self.only_first_right)) / max(1, self.n) * 100

    n: int = 0


def compare_evaluations(first: Evaluation, second: Evaluation, labels: np.ndarray, top_pairs: int = 8) -> Comparison:
    """Compare two evaluations of the same images (labels: their true classes)."""
    labels = np.asarray(labels).astype(int)
    if first.n != second.n or len(labels) != first.n:
        raise ValueError("the two evaluations are not of the same images")
    first_right, second_right = first.predicted == labels, second.predicted == labels
    difference = (np.array(second.confusion) - np.array(first.confusion))
    per_class = [{"class": name, "first": first.per_class_accuracy[index], "second": second.per_class_accuracy[index],
                  "difference": (second.per_class_accuracy[index] - first.per_class_accuracy[index]) * 100}
                 for index, name in enumerate(CLASS_NAMES)]
    off_diagonal = np.abs(difference) * (1 - np.eye(NUM_CLASSES, dtype=int))
    order = np.argsort(off_diagonal, axis=None)[::-1][:top_pairs]
    pairs = []
    for flat in order:
        true_index, predicted_index = np.unravel_index(flat, difference.shape)
        if off_diagonal[true_index, predicted_index]:
            pairs.append((CLASS_NAMES[true_index], CLASS_NAMES[predicted_index],
                          int(first.confusion[true_index][predicted_index]),
                          int(second.confusion[true_index][predicted_index])))
    return Comparison(per_class, difference.tolist(), np.flatnonzero(first_right & ~second_right),
                      np.flatnonzero(second_right & ~first_right), pairs, n=first.n)
