"""The report's generic figures: file name, heading, caption and drawing function.

Which are drawn is declared elsewhere: the learning curves for every run,
then the figures of the task's objective
(:meth:`deepsky.objectives.Objective.figures`), then the task's own
(:meth:`deepsky.tasks.base.Task.figures`, with the paper's captions).
Captions here speak of classes and parameters, never of one task's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from deepsky.report.calibration import plot_reliability
from deepsky.report.confusion import plot_confusion
from deepsky.report.feature_maps import plot_feature_maps
from deepsky.report.gallery import plot_gallery
from deepsky.report.learning import plot_learning_curves
from deepsky.report.regression import plot_errors_by_bin, plot_predicted_vs_true, plot_uncertainty_calibration
from deepsky.report.roc import plot_roc


@dataclass(frozen=True)
class FigureSpec:
    """One figure: ``draw(inputs, path) -> bool`` writes ``figures/<name>.png`` or returns False to skip."""

    name: str
    heading: str
    caption: str
    draw: Callable


LEARNING_CURVES = FigureSpec(
    "learning_curves", "Learning curves",
    "Training and validation loss and the objective's scores per epoch: the validation curves should flatten, "
    "not turn up again (a rising validation loss means over-fitting).",
    plot_learning_curves,
)

REGRESSION_FIGURES = [
    FigureSpec(
        "errors_by_bin", "Bias, scatter and outliers per bin",
        "For each parameter the median error, the scatter (1.48 times the median absolute deviation) and the "
        "fraction of outliers per bin, network solid, classical baseline dashed; errors are measured as the table "
        "above says (differences, relative, or wrapped degrees).",
        plot_errors_by_bin,
    ),
    FigureSpec(
        "predicted_vs_true", "Predicted against true values",
        "Every held-out object; the black line is perfect recovery.",
        plot_predicted_vs_true,
    ),
    FigureSpec(
        "uncertainty_calibration", "Calibration of the uncertainties",
        "Fraction of true values inside plus or minus k predicted sigmas against the Gaussian expectation: on the "
        "diagonal the uncertainties can be taken at face value, below it they are too small. The dotted line marks "
        "the 68% interval.",
        plot_uncertainty_calibration,
    ),
]

CLASSIFICATION_FIGURES = [
    FigureSpec(
        "confusion", "Confusion matrix",
        "Each row is a true class and sums to one: the diagonal is each class's recall (completeness), "
        "off-diagonal cells show which classes are mistaken for which; counts in brackets.",
        plot_confusion,
    ),
    FigureSpec(
        "roc", "ROC curve",
        "Completeness of the positive class against contamination as the threshold moves; the closer the "
        "curve hugs the top-left corner (right panel), the higher the AUC.",
        plot_roc,
    ),
    FigureSpec(
        "calibration", "Calibration",
        "Left: points on the diagonal mean the probabilities can be taken at face value; right: how the "
        "predicted probabilities are spread (two classes: per true class; more: the predicted class's).",
        plot_reliability,
    ),
    FigureSpec(
        "gallery_worst", "The most confident mistakes",
        "The 16 test objects the network got most confidently wrong: look for faint, blended or unusual objects, "
        "and labels that look wrong.",
        partial(plot_gallery, which="worst", title="Most confident mistakes"),
    ),
    FigureSpec(
        "gallery_examples", "Random test objects",
        "Sixteen random test cutouts with the network's verdict: most are easy; the faint ones show where the "
        "classes become hard to tell apart.",
        partial(plot_gallery, which="examples", title="Random test objects"),
    ),
    FigureSpec(
        "feature_maps", "Feature maps",
        "What the first, third and sixth convolutional layers respond to in one clear example of each class: "
        "early maps are edge and blob detectors on the image, deeper maps are coarser and more abstract.",
        plot_feature_maps,
    ),
]
