"""Metrics shared by the tasks (scikit-learn underneath).

Classification: :func:`multiclass_metrics`, :func:`binary_metrics` (purity
and completeness of any two classes), :func:`completeness_at_fpr` (the
lens-finding and transient papers' figure of merit) and :func:`binned`
(any of these per bin of a column, e.g. magnitude). Regression with
uncertainties: :func:`errors`, :func:`error_summary`, :func:`coverage` and
:func:`parameter_metrics` (bias, scatter, outlier fraction and 68% coverage,
overall, on a focus subset and per bin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


def binary_metrics(labels: np.ndarray, scores: np.ndarray, classes=("negative", "positive"),
                   threshold: float = 0.5) -> dict:
    """ROC AUC, accuracy, MSE and purity/completeness of both classes at ``threshold``.

    ``labels`` are 0 (``classes[0]``) or 1 (``classes[1]``); ``scores`` the
    probability of ``classes[1]``. Keys are named after the classes:
    ``purity_<class>``, ``completeness_<class>``, ``n_<class>``.

    >>> m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9]), ("star", "galaxy"))
    >>> m["purity_galaxy"], m["completeness_star"], m["roc_auc"]
    (0.6666666666666666, 0.5, 1.0)
    """
    from sklearn.metrics import roc_auc_score

    negative, positive = classes
    labels = np.asarray(labels)
    called = np.asarray(scores) >= threshold
    out = {"n": int(len(labels)), f"n_{positive}": int(labels.sum()), f"n_{negative}": int((labels == 0).sum())}
    out["roc_auc"] = float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None
    out["accuracy"] = float((called == labels.astype(bool)).mean())
    out["mse"] = float(np.mean((np.asarray(scores) - labels) ** 2))
    for name, truth, calls in ((positive, labels == 1, called), (negative, labels == 0, ~called)):
        hits = float((truth & calls).sum())
        out[f"purity_{name}"] = hits / float(calls.sum()) if calls.any() else None
        out[f"completeness_{name}"] = hits / float(truth.sum()) if truth.any() else None
    return out


def ranking_metrics(labels: np.ndarray, scores: np.ndarray, precision: float = 0.99) -> dict:
    """Average precision and the recall (completeness) reached at ``precision`` (purity) or better.

    The figures vetting papers quote (Yu et al. 2019; ExoMiner): the area
    under the precision-recall curve, and how many true signals survive a
    threshold that lets at most 1 - ``precision`` of the calls be false.

    >>> m = ranking_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9]), precision=0.99)
    >>> m["average_precision"], m["recall_at_precision"], m["precision_target"]
    (1.0, 1.0, 0.99)
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    labels = np.asarray(labels)
    if not 0 < labels.sum() < len(labels):
        return {"average_precision": None, "recall_at_precision": None, "precision_target": float(precision)}
    precisions, recalls, thresholds = precision_recall_curve(labels, scores)
    reached = precisions[:-1] >= precision
    best = int(np.argmax(np.where(reached, recalls[:-1], -1))) if reached.any() else None
    return {"average_precision": float(average_precision_score(labels, scores)),
            "recall_at_precision": float(recalls[best]) if best is not None else 0.0,
            "threshold_at_precision": float(thresholds[best]) if best is not None else None,
            "precision_target": float(precision)}


def completeness_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> dict:
    """Completeness (true-positive rate) at the score threshold that lets a fraction ``fpr`` of negatives through.

    Returns ``{"completeness", "threshold", "fpr"}``; the threshold is the
    smallest score at which at most ``fpr`` of the negatives score higher.

    >>> completeness_at_fpr(np.array([0, 0, 0, 0, 1, 1]), np.array([.1, .2, .3, .8, .7, .9]), 0.25)["completeness"]
    1.0
    >>> completeness_at_fpr(np.array([0, 0, 0, 0, 1, 1]), np.array([.1, .2, .3, .8, .7, .9]), 0.0)["completeness"]
    0.5
    """
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, np.float64)
    if not labels.any() or labels.all():
        return {"completeness": None, "threshold": None, "fpr": float(fpr)}
    negatives = np.sort(scores[~labels])
    allowed = int(np.floor(fpr * len(negatives)))
    threshold = negatives[len(negatives) - allowed - 1] if allowed < len(negatives) else -np.inf
    return {"completeness": float((scores[labels] > threshold).mean()), "threshold": float(threshold),
            "fpr": float(fpr)}


def binned(values: np.ndarray, edges, score: Callable[[np.ndarray], dict]) -> list[dict]:
    """``score(rows)`` in each bin of ``values`` between consecutive ``edges`` (the last bin closed).

    Returns one ``{"lo", "hi", **score(rows)}`` per non-empty bin.
    """
    values = np.asarray(values, np.float64)
    edges = list(edges)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        rows = (values >= lo) & ((values < hi) if hi < edges[-1] else (values <= hi))
        if rows.any():
            out.append({"lo": float(lo), "hi": float(hi), **score(rows)})
    return out


# -- regression with uncertainties ------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One regressed quantity as tables and figures show it.

    ``error`` says how a prediction's error is measured: ``"difference"``
    (predicted - true), ``"relative"`` (predicted / true - 1) or
    ``"angle"`` (difference wrapped to [-90, 90) degrees, for an axis's
    position angle). An outlier misses by more than ``outlier_limit`` in
    those units. ``scored_where=(column, limit)`` scores the parameter only
    where the true ``column`` is below ``limit`` (an angle means nothing for
    a round galaxy). ``log`` draws it on logarithmic axes.
    """

    name: str
    label: str
    unit: str = ""
    error: str = "difference"
    outlier_limit: float = np.inf
    scored_where: tuple | None = None
    log: bool = False

    @property
    def error_unit(self) -> str:
        return "relative" if self.error == "relative" else ("deg" if self.error == "angle" else self.unit)


def errors(parameter: Parameter, predicted, true) -> np.ndarray:
    """Signed errors of ``predicted`` against ``true`` as ``parameter.error`` defines them."""
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    if parameter.error == "relative":
        return predicted / true - 1
    if parameter.error == "angle":
        return (predicted - true + 90.0) % 180.0 - 90.0
    return predicted - true


def error_summary(delta: np.ndarray, limit: float) -> dict:
    """Bias (median error), scatter (1.4826 x median absolute deviation), RMS and outlier fraction."""
    delta = delta[np.isfinite(delta)]
    if not len(delta):
        return {"n": 0}
    median = float(np.median(delta))
    return {"n": int(len(delta)), "bias": median, "scatter": float(1.4826 * np.median(np.abs(delta - median))),
            "rms": float(np.sqrt(np.mean(delta**2))), "outlier_fraction": float(np.mean(np.abs(delta) > limit))}


def coverage(parameter: Parameter, predicted: dict, true, rows) -> float | None:
    """Fraction of ``rows`` whose true value lies inside the predicted 68% interval (``_lo``, ``_hi``)."""
    name = parameter.name
    lo, hi = predicted.get(f"{name}_lo"), predicted.get(f"{name}_hi")
    if lo is None or hi is None:
        return None
    t = np.asarray(true, np.float64)[rows]
    if not len(t):
        return None
    if parameter.error == "angle":
        centre = np.asarray(predicted[name], np.float64)[rows]
        half = (np.asarray(hi, np.float64)[rows] - np.asarray(lo, np.float64)[rows]) / 2
        return float((np.abs(errors(parameter, centre, t)) <= half).mean())
    return float(((t >= np.asarray(lo, np.float64)[rows]) & (t <= np.asarray(hi, np.float64)[rows])).mean())


def scored_rows(parameter: Parameter, truth: dict, n: int) -> np.ndarray:
    """Boolean mask of the rows on which ``parameter`` is scored (``scored_where``)."""
    if parameter.scored_where is None:
        return np.ones(n, bool)
    column, limit = parameter.scored_where
    return np.asarray(truth[column], np.float64) < limit


def parameter_metrics(parameters, truth: dict, predicted: dict, bin_values, bin_edges,
                      focus=None, extra=None) -> dict:
    """Per parameter: bias, scatter, outlier fraction, 68% coverage; overall, on ``focus`` and per bin.

    Parameters
    ----------
    parameters : sequence of Parameter
    truth, predicted : dict of ndarray
        True and predicted values (``predicted`` with ``_lo``/``_hi`` intervals).
    bin_values, bin_edges : array, sequence
        The column the ``per_bin`` figures are binned in (e.g. true magnitude) and its bin edges.
    focus : ndarray of bool, optional
        Rows of the subset the papers compare on (e.g. bright galaxies).
    extra : ndarray of bool, optional
        Rows added to enlarge ``focus`` and the bins: left out of the overall figures.
    """
    n = len(np.asarray(bin_values))
    extra = np.zeros(n, bool) if extra is None else np.asarray(extra, bool)
    focus = np.zeros(n, bool) if focus is None else np.asarray(focus, bool)
    out = {}
    for parameter in parameters:
        usable = scored_rows(parameter, truth, n)
        delta = errors(parameter, predicted[parameter.name], truth[parameter.name])
        limit = parameter.outlier_limit
        true = truth[parameter.name]

        def summary(rows):
            return {**error_summary(delta[rows], limit),
                    "coverage_68": coverage(parameter, predicted, true, np.flatnonzero(rows))}

        entry = summary(usable & ~extra)
        entry["focus"] = summary(usable & focus)
        entry["per_bin"] = binned(np.where(usable, bin_values, np.nan), bin_edges, summary)
        out[parameter.name] = entry
    return out
