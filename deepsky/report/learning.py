"""Learning curves: training and validation loss, accuracy and AUC per epoch."""

from __future__ import annotations

import numpy as np

from deepsky.report.canvas import figure

# (panel title, y label, [(history key, legend label, line style)])
PANELS = [
    ("Loss", "cross-entropy (regression: Gaussian NLL)", [("loss", "training", "-"), ("val_loss", "validation", "--")]),
    ("RMS error", "standardised target units", [("rmse", "training", "-"), ("val_rmse", "validation", "--")]),
    ("Accuracy", "fraction correct", [("accuracy", "training", "-"), ("val_accuracy", "validation", "--")]),
    ("Validation ROC AUC", "AUC", [("val_auc", "validation", "--")]),
]


def plot_learning_curves(inputs, path) -> bool:
    """Draw loss, accuracy and validation AUC against epoch; False if there is no history.

    Parameters
    ----------
    inputs : ReportInputs
    path : path
        PNG to write.
    """
    history = inputs.history or {}
    panels = [(title, ylabel, [line for line in lines if _series(history, line[0]) is not None])
              for title, ylabel, lines in PANELS]
    panels = [panel for panel in panels if panel[2]]
    if not panels:
        return False
    with figure(path, (4.2 * len(panels), 3.6)) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (title, ylabel, lines) in zip(axes, panels):
            for key, label, style in lines:
                values = _series(history, key)
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o", markersize=3, label=label)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.legend()
        seconds = _series(history, "seconds")
        if seconds is not None:
            fig.suptitle(f"Training: {len(seconds)} epochs, {np.nansum(seconds) / 60:.1f} min")
    return True


def _series(history: dict, key: str):
    values = history.get(key)
    if not values:
        return None
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)
