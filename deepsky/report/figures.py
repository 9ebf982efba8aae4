"""The report's figures in page order: file name, heading, caption and drawing function."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from deepsky.report.calibration import plot_reliability
from deepsky.report.confusion import plot_confusion
from deepsky.report.feature_maps import plot_feature_maps
from deepsky.report.gallery import plot_gallery
from deepsky.report.learning import plot_learning_curves
from deepsky.report.magnitude import plot_purity_completeness
from deepsky.report.regression import plot_errors_vs_magnitude, plot_predicted_vs_true, plot_uncertainty_calibration
from deepsky.report.roc import plot_roc


@dataclass(frozen=True)
class FigureSpec:
    """One figure: ``draw(inputs, path) -> bool`` writes ``figures/<name>.png`` or returns False to skip."""

    name: str
    heading: str
    caption: str
    draw: Callable
    objective: str = "classification"  # the runs it is drawn for: classification, gaussian (regression) or any


FIGURES = [
    FigureSpec(
        "learning_curves", "Learning curves",
        "Training and validation loss, accuracy and validation AUC per epoch (regression: the Gaussian "
        "negative log-likelihood and the RMS error of the standardised targets): the validation curves should "
        "flatten, not turn up again (a rising validation loss means over-fitting).",
        plot_learning_curves, "any",
    ),
    FigureSpec(
        "errors_vs_magnitude", "Bias, scatter and outliers against magnitude",
        "The paper's comparison: for each parameter the median error, the scatter (1.48 times the median "
        "absolute deviation) and the fraction of outliers per bin of true magnitude, network solid, least-squares "
        "fit dashed. Radius and n errors are relative; angles are scored for axis ratios below 0.8.",
        plot_errors_vs_magnitude, "gaussian",
    ),
    FigureSpec(
        "predicted_vs_true", "Predicted against true values",
        "Every held-out galaxy; the black line is perfect recovery. The spread at small radii and high n "
        "comes from faint galaxies that the PSF and noise blur into one another.",
        plot_predicted_vs_true, "gaussian",
    ),
    FigureSpec(
        "uncertainty_calibration", "Calibration of the uncertainties",
        "Fraction of true values inside plus or minus k predicted sigmas against the Gaussian expectation: on the "
        "diagonal the uncertainties can be taken at face value, below it they are too small. The dotted line marks "
        "the 68% interval. The fit's sigmas come from its Jacobian.",
        plot_uncertainty_calibration, "gaussian",
    ),
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
        "purity_completeness", "Purity and completeness against r magnitude",
        "The paper's key figure: both classes are near-perfect when bright and degrade in the faintest bins, "
        "where galaxies shrink to the size of the PSF and look like stars; the bars count objects per bin.",
        plot_purity_completeness,
    ),
    FigureSpec(
        "calibration", "Calibration",
        "Left: points on the diagonal mean the probabilities can be taken at face value; right: how the "
        "predicted probabilities are spread (two classes: per true class; more: the predicted class's).",
        plot_reliability,
    ),
    FigureSpec(
        "gallery_worst", "The most confident mistakes",
        "The 16 test objects the network got most confidently wrong: look for faint compact galaxies "
        "called stars, stars blended with a neighbour, and labels that look wrong.",
        partial(plot_gallery, which="worst", title="Most confident mistakes"),
    ),
    FigureSpec(
        "gallery_examples", "Random test objects",
        "Sixteen random test cutouts with the network's verdict: most are easy, and the faint ones show "
        "how little a galaxy at r of 21 to 22 differs from a star.",
        partial(plot_gallery, which="examples", title="Random test objects"),
    ),
    FigureSpec(
        "feature_maps", "Feature maps",
        "What the first, third and sixth convolutional layers respond to in a star and a galaxy: early maps "
        "are edge and blob detectors on the image, deeper maps are coarser and more abstract.",
        plot_feature_maps,
    ),
]
