"""Calibration: does a probability of 0.8 mean that 80 per cent of such objects are of that class?"""

from __future__ import annotations

import numpy as np

from deepsky.report.canvas import BASELINE, CLASS_COLOURS, NETWORK, figure
from deepsky.report.inputs import plural

N_BINS = 10


def reliability(labels: np.ndarray, scores: np.ndarray, n_bins: int = N_BINS):
    """Mean score, observed positive fraction and count in ``n_bins`` equal bins of [0, 1].

    Parameters
    ----------
    labels : ndarray
        (N,) 1 for the positive class, 0 otherwise.
    scores : ndarray
        (N,) predicted probability of the positive class.

    Returns
    -------
    mean_score, fraction, count : ndarray
        Per bin; empty bins hold NaN (and count 0).

    Examples
    --------
    >>> m, f, n = reliability(np.array([0, 1, 1]), np.array([0.05, 0.95, 0.92]))
    >>> n.tolist()[0], n.tolist()[-1], float(f[-1])
    (1, 2, 1.0)
    """
    which = np.clip((np.asarray(scores) * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(which, weights=scores, minlength=n_bins) / count
        fraction = np.bincount(which, weights=labels, minlength=n_bins) / count
    return mean_score, fraction, count


def plot_reliability(inputs, path) -> bool:
    """Reliability diagram and histograms of the positive-class probability per true class.

    For more than two classes, the top-label diagram instead: the accuracy
    of the predicted class against its probability.

    Parameters
    ----------
    inputs : ReportInputs
    path : path
        PNG to write.
    """
    if len(inputs.labels) == 0:
        return False
    if not inputs.binary:
        return _plot_top_label(inputs, path)
    labels, positive = inputs.labels, inputs.positive
    curves = [("network", NETWORK, "-o", inputs.scores)]
    if inputs.baseline_scores is not None:
        curves.append((inputs.baseline_name, BASELINE, "--s", inputs.baseline_scores))
    with figure(path, (10.0, 4.4)) as fig:
        diagram, histogram = fig.subplots(1, 2)
        diagram.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
        for name, colour, style, scores in curves:
            mean_score, fraction, count = reliability(labels, scores)
            diagram.plot(mean_score, fraction, style, color=colour, label=name)
            if name == "network":
                for x, y, n in zip(mean_score, fraction, count):
                    if n:
                        # left of the point near the right edge, where the label would be clipped
                        offset = (-16, -10) if x > 0.9 else (4, -10)
                        diagram.annotate(f"{n}", (x, y), textcoords="offset points", xytext=offset, fontsize=7)
        diagram.set_xlim(0, 1)
        diagram.set_ylim(-0.02, 1.02)
        diagram.set_xlabel(f"predicted p_{positive} (bin mean; numbers: objects per bin)")
        diagram.set_ylabel(f"observed fraction of {plural(positive)}")
        diagram.set_title("Reliability diagram (10 bins)")
        diagram.legend(loc="upper left")
        edges = np.linspace(0, 1, 21)
        any_counts = False
        for k, name in enumerate(inputs.classes[:2]):
            mine = inputs.scores[labels == k]
            any_counts |= mine.size > 0
            histogram.hist(mine, bins=edges, histtype="step", lw=1.8, color=CLASS_COLOURS[k],
                           label=f"true {plural(name)} ({mine.size})")
        if any_counts:
            histogram.set_yscale("log")  # the confident ends outnumber the middle by 100x
        histogram.set_xlim(0, 1)
        histogram.set_xlabel(f"predicted p_{positive}")
        histogram.set_ylabel("objects per bin")
        histogram.set_title(f"p_{positive} for each true class")
        histogram.legend(loc="upper center")
    return True


def _plot_top_label(inputs, path) -> bool:
    """Confidence (probability of the predicted class) against how often that class is right."""
    curves = [("network", NETWORK, "-o", inputs.probabilities)]
    if inputs.baseline_probabilities is not None:
        curves.append((inputs.baseline_name, BASELINE, "--s", inputs.baseline_probabilities))
    with figure(path, (10.0, 4.4)) as fig:
        diagram, histogram = fig.subplots(1, 2)
        diagram.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
        edges = np.linspace(0, 1, 21)
        for name, colour, style, probabilities in curves:
            confidence = probabilities.max(1)
            right = (probabilities.argmax(1) == inputs.labels).astype(float)
            mean_score, fraction, count = reliability(right, confidence)
            diagram.plot(mean_score, fraction, style, color=colour, label=name)
            histogram.hist(confidence, bins=edges, histtype="step", lw=1.8, color=colour, label=name)
        diagram.set_xlim(0, 1)
        diagram.set_ylim(-0.02, 1.02)
        diagram.set_xlabel("probability of the predicted class (bin mean)")
        diagram.set_ylabel("fraction predicted right")
        diagram.set_title("Top-label reliability diagram (10 bins)")
        diagram.legend(loc="upper left")
        histogram.set_yscale("log")
        histogram.set_xlim(0, 1)
        histogram.set_xlabel("probability of the predicted class")
        histogram.set_ylabel("objects per bin")
        histogram.set_title("How confident the predictions are")
        histogram.legend(loc="upper left")
    return True
