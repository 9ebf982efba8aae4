"""The ROC curve of a two-class task, network and baseline, with the paper's AUC."""

from __future__ import annotations

import numpy as np

from deepsky.report.canvas import BASELINE, NETWORK, figure

ZOOM_FPR = 0.2  # the zoomed panel: false-positive rate up to this...
ZOOM_TPR = 0.8  # ...and true-positive rate from this, where AUC 0.95 and 0.99 differ


def plot_roc(inputs, path) -> bool:
    """Draw the ROC curve, full and zoomed into the top-left corner.

    Skipped (returns False) for tasks with more than two classes and for test
    sets holding one class only. The baseline's curve is drawn when
    ``evaluation.h5`` stores its scores (``baseline_probabilities``).

    Parameters
    ----------
    inputs : ReportInputs
    path : path
        PNG to write.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = inputs.labels
    curves = _scored_curves(inputs)
    if curves is None:
        return False
    positive = inputs.positive
    with figure(path, (10.0, 4.6)) as fig:
        full, zoom = fig.subplots(1, 2)
        for name, colour, scores in curves:
            fpr, tpr, _ = roc_curve(labels, scores)
            label = f"{name} (AUC {roc_auc_score(labels, scores):.4f})"
            style = "-" if name == "network" else "--"
            for ax in (full, zoom):
                ax.plot(fpr, tpr, style, color=colour, label=label)
        full.plot([0, 1], [0, 1], ":", color="grey", label="chance (AUC 0.5)")
        full.add_patch(_zoom_box())
        zoom.set_xlim(0, ZOOM_FPR)
        zoom.set_ylim(ZOOM_TPR, 1.0)
        zoom.set_title("Zoom on the top-left corner (grey box)")
        full.set_xlim(0, 1)
        full.set_ylim(0, 1.01)
        full.set_title(f"ROC curve, {positive} as the positive class")
        for ax in (full, zoom):
            ax.set_xlabel(f"false-positive rate (non-{positive} called {positive})")
            ax.set_ylabel(f"true-positive rate ({positive} completeness)")
        full.legend(loc="lower right")
        paper = inputs.metrics.get("paper") or {}
        if paper.get("roc_auc") is not None:
            fig.suptitle(f"Paper: AUC {paper['roc_auc']} ({paper.get('citation', 'the paper')})", fontsize=10)
    return True


def _scored_curves(inputs):
    """``(name, colour, scores)`` of the network and, where stored, the baseline; None unless two classes are tested."""
    if not inputs.binary or len(np.unique(inputs.labels)) < 2:
        return None
    curves = [("network", NETWORK, inputs.scores)]
    if inputs.baseline_scores is not None:
        curves.append((inputs.baseline_name, BASELINE, inputs.baseline_scores))
    return curves


def _zoom_box():
    from matplotlib.patches import Rectangle

    return Rectangle((0, ZOOM_TPR), ZOOM_FPR, 1 - ZOOM_TPR, fill=True, color="grey", alpha=0.15, lw=0)


def plot_precision_recall(inputs, path) -> bool:
    """Draw the precision-recall curve of network and baseline, with the paper's average precision.

    The operating point at the metrics' ``precision_target`` (e.g. 99%
    precision) is marked when ``metrics.json`` holds it. Skipped (returns
    False) for tasks with more than two classes and one-class test sets.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    labels = inputs.labels
    curves = _scored_curves(inputs)
    if curves is None:
        return False
    positive = inputs.positive
    with figure(path, (6.2, 4.8)) as fig:
        ax = fig.subplots()
        for name, colour, scores in curves:
            precision, recall, _ = precision_recall_curve(labels, scores)
            label = f"{name} (AP {average_precision_score(labels, scores):.3f})"
            ax.plot(recall, precision, "-" if name == "network" else "--", color=colour, label=label)
        target = inputs.metrics.get("precision_target")
        if target is not None and inputs.metrics.get("recall_at_precision") is not None:
            ax.axhline(target, ls=":", color="grey")
            ax.plot([inputs.metrics["recall_at_precision"]], [target], "o", color=NETWORK,
                    label=f"recall {inputs.metrics['recall_at_precision']:.3f} at {target:.0%} precision")
        base_rate = float(np.mean(labels == 1))
        ax.axhline(base_rate, ls=":", color="lightgrey", label=f"chance (precision {base_rate:.3f})")
        ax.set_xlim(0, 1.01)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel(f"recall ({positive} completeness)")
        ax.set_ylabel(f"precision ({positive} purity)")
        ax.legend(loc="lower left", fontsize=8)
        paper = inputs.metrics.get("paper") or {}
        if paper.get("average_precision") is not None:
            ax.set_title(f"Paper: AP {paper['average_precision']} ({paper.get('citation', 'the paper')})", fontsize=9)
    return True
