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
