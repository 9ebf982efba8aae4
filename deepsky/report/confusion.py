"""Confusion matrices of the network and the baseline, side by side."""

from __future__ import annotations

import numpy as np

from deepsky.report.canvas import figure


def confusion_fractions(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(counts, fractions of each true class): rows are true classes, columns predicted ones.

    >>> counts, fractions = confusion_fractions(np.array([0, 0, 1]), np.array([0, 1, 1]), 2)
    >>> counts.tolist(), fractions.tolist()
    ([[1, 1], [0, 1]], [[0.5, 0.5], [0.0, 1.0]])
    """
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (labels, predicted), 1)
    totals = counts.sum(axis=1, keepdims=True)
    return counts, np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def plot_confusion(inputs, path) -> bool:
    """Row-normalised confusion matrices (recall on the diagonal), counts in each cell.

    Drawn for tasks with more than two classes, where ROC curves and the
    purity/completeness figure do not apply.
    """
    if inputs.binary or len(inputs.labels) == 0:
        return False
    panels = [("network", inputs.probabilities)]
    if inputs.baseline_probabilities is not None:
        panels.append((inputs.baseline_name, inputs.baseline_probabilities))
    classes = inputs.classes
    n = len(classes)
    with figure(path, (4.6 * len(panels) + 0.8, 4.3)) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (name, probabilities) in zip(axes, panels):
            counts, fractions = confusion_fractions(inputs.labels, probabilities.argmax(1), n)
            image = ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
            for i in range(n):
                for j in range(n):
                    colour = "white" if fractions[i, j] > 0.6 else "black"
                    ax.text(j, i, f"{fractions[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center",
                            fontsize=8, color=colour)
            ax.set_xticks(range(n), classes, rotation=30 if n > 4 else 0)
            ax.set_yticks(range(n), classes)
            ax.set_xlabel("predicted class")
            ax.set_ylabel("true class")
            ax.grid(False)
            accuracy = float(np.trace(counts) / max(1, counts.sum()))
            ax.set_title(f"{name[:40]}\naccuracy {accuracy:.3f}")
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="fraction of the true class")
    return True
