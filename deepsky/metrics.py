"""Classification metrics shared by the tasks (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np


def multiclass_metrics(labels: np.ndarray, probabilities: np.ndarray, classes) -> dict:
    """Accuracy, macro-F1, log loss, per-class precision/recall/F1 and the confusion matrix.

    The confusion matrix has true classes in rows and predicted in columns.
    """
    from sklearn.metrics import confusion_matrix, f1_score, log_loss, precision_recall_fscore_support

    labels = np.asarray(labels)
    predicted = probabilities.argmax(1)
    k = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=k, zero_division=0)
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": float(f1_score(labels, predicted, labels=k, average="macro", zero_division=0)),
        "log_loss": float(log_loss(labels, np.clip(probabilities, 1e-7, 1), labels=k)),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "n": int(support[i])} for i, name in enumerate(classes)},
        "confusion": confusion_matrix(labels, predicted, labels=k).tolist(),
    }
