"""Real/bogus classification of difference-imaging candidates (Cabrera-Vives et al. 2017, ApJ 836, 97: Deep-HiTS).

Every alert stream's first filter: is this 5-sigma detection in a
difference image a real transient or an artefact of the subtraction
(a badly matched PSF, a misaligned star, a cosmic ray, a bad column, a
saturated core)? Candidates are 21x21 stamps of template, science,
difference and S/N (:mod:`deepsky.simulate.difference`); the Deep-HiTS
network reads them in their four rotations, and a random forest on
hand-made stamp features is measured beside it on the same stamps, as in
the paper. The figures alert brokers quote are reported: the error rate,
the false-positive rate (bogus candidates let through) and the
false-negative rate (real transients lost).
"""

from __future__ import annotations

import numpy as np

from deepsky.baselines import DIFFERENCE_BASELINE_NAME
from deepsky.errors import DeepskyError
from deepsky.metrics import binary_metrics, binned, completeness_at_fpr
from deepsky.tasks.base import Headline, ImageClassificationTask, Task
from deepsky.tasks.registry import register_task

SNR_BINS = np.array([5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0, 1000.0])
BOGUS_RATE_FOR_COMPLETENESS = 0.01  # completeness at 1% of bogus candidates let through


@register_task
class RealBogus(ImageClassificationTask):
    name = "real-bogus"
    description = ("Deep-HiTS (Cabrera-Vives et al. 2017): real transients vs artefacts in difference-imaging "
                   "stamps (template, science, difference, S/N), rotation-invariant CNN vs random forest")
    classes = ("bogus", "real")
    positive_class = "real"
    default_model = "deep-hits"
    default_train_size = 40000
    default_test_size = 20000
    default_epochs = 10
    default_batch_size = 128
    default_learning_rate = 1e-3
    baseline_name = DIFFERENCE_BASELINE_NAME
    paper = {
        "citation": "Cabrera-Vives, Reyes, Förster, Estévez & Maureira 2017, ApJ 836, 97 (arXiv:1701.00458)",
        "data": "HiTS 2014 DECam candidates: 21x21 template, science, difference and S/N stamps; 1.25 million "
                "candidates, half real (injected or confirmed), half bogus",
        "error_rate": 0.0053,
        "baseline_error_rate": 0.0102,
        "note": "Deep-HiTS 0.53% error against 1.02% for the random forest on engineered features: about half.",
    }
    headline = (
        Headline("error_rate", "Error rate", paper=0.0053),
        Headline("baseline.error_rate", "Random forest: error rate", paper=0.0102),
        Headline("false_positive_rate", "False-positive rate (bogus called real)"),
        Headline("false_negative_rate", "False-negative rate (real transients missed)"),
        Headline("completeness_at_1pct_bogus", "Real transients kept when 1% of bogus pass"),
        Headline("roc_auc", "ROC AUC"),
        Headline("n", "Test candidates", digits=0),
    )

    def __init__(self):
        Task.__init__(self)  # one kind of stamp: no survey presets to choose from

    @property
    def options(self):
        return {}

    def simulate(self, n, seed, progress=None):
        from deepsky.simulate.difference import make_real_bogus

        return make_real_bogus(n, seed=seed, progress=progress)

    def check_dataset(self, data, source):
        data = super().check_dataset(data, source)
        if data.layout != "cutouts" or np.ndim(data.inputs) != 4 or data.inputs.shape[-1] != 4:
            raise DeepskyError(f"{source}: real/bogus candidates are (N, H, W, 4) stamps (template, science, "
                               f"difference, S/N); received shape {np.shape(data.inputs)}")
        return data

    # -- classical baseline --------------------------------------------------------
    def baseline_state(self, train):
        return {}

    def baseline_features(self, inputs, state):
        """The stamp features of feature-engineered real/bogus classifiers."""
        from deepsky.baselines import difference_stamp_features

        return difference_stamp_features(inputs)

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, test, predicted):
        """Error rate, false-positive and false-negative rates, ROC AUC; by S/N and by kind of candidate."""
        scores = np.asarray(predicted)[:, 1]
        labels = np.asarray(test.labels)
        out = binary_metrics(labels, scores, self.classes)
        called = scores >= 0.5
        rates = _rates(labels, called)
        out.update({key: rates[key] for key in ("error_rate", "false_positive_rate", "false_negative_rate")})
        out["completeness_at_1pct_bogus"] = completeness_at_fpr(labels, scores, BOGUS_RATE_FOR_COMPLETENESS)[
            "completeness"]
        if "snr" in test.objects:
            snr = np.asarray(test.objects["snr"], np.float64)
            out["by_bin"] = {"column": "snr", "label": "candidate S/N in the difference image", "bins": binned(
                snr, SNR_BINS, lambda rows: {**binary_metrics(labels[rows], scores[rows], self.classes),
                                             **_rates(labels[rows], called[rows])})}
        if "kind" in test.objects:
            kinds = np.asarray(test.objects["kind"]).astype(str)
            out["by_kind"] = {kind: {"n": int((kinds == kind).sum()), "label": self.classes[int(labels[kinds == kind][0])],
                                     "called_real": float(called[kinds == kind].mean())}
                              for kind in np.unique(kinds)}
        return out

    def figures(self):
        from deepsky.report.figures import FigureSpec

        return [FigureSpec(
            "error_rates", "Network and random forest on the same candidates",
            "Cabrera-Vives et al.'s comparison. Left: error rate, false-positive rate (bogus candidates called real) "
            "and false-negative rate (real transients lost) of the Deep-HiTS network and of the random forest on "
            "hand-made stamp features, with the paper's error rates (HiTS data) as dotted lines. Right: the fraction "
            "of each kind of candidate called real: near one for the real kinds, near zero for every kind of "
            "artefact.", plot_error_rates)]

    def report_sections(self, inputs):
        from deepsky.report.binned import binned_section

        return [binned_section(inputs)]


def _rates(labels, called) -> dict:
    """Error, false-positive and false-negative rates of a group of candidates."""
    out = {"n": int(len(labels)), "error_rate": float((called != labels.astype(bool)).mean())}
    out["false_positive_rate"] = float(called[labels == 0].mean()) if (labels == 0).any() else None
    out["false_negative_rate"] = float((~called[labels == 1]).mean()) if (labels == 1).any() else None
    return out


def plot_error_rates(inputs, path) -> bool:
    """Bars of the three rates for network and forest; the fraction called real per kind of candidate."""
    from deepsky.report.canvas import figure

    metrics = inputs.metrics
    if "error_rate" not in metrics:
        return False
    methods = [("Deep-HiTS network", metrics)]
    if metrics.get("baseline"):
        methods.append(("random forest", metrics["baseline"]))
    keys = (("error_rate", "error rate"), ("false_positive_rate", "false positives"),
            ("false_negative_rate", "false negatives"))
    paper = metrics.get("paper") or {}
    with figure(path, (11.0, 4.4)) as fig:
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
        width = 0.8 / len(methods)
        for m, (name, values) in enumerate(methods):
            heights = [values.get(key) or 0.0 for key, _ in keys]
            bars = left.bar(np.arange(len(keys)) + (m - (len(methods) - 1) / 2) * width, heights, width, label=name)
            left.bar_label(bars, [f"{h:.2%}" for h in heights], fontsize=7)
        for value, style, label in ((paper.get("error_rate"), ":", "paper: network"),
                                    (paper.get("baseline_error_rate"), "--", "paper: random forest")):
            if value is not None:
                left.axhline(value, ls=style, color="grey", lw=1, label=f"{label} error {value:.2%}")
        left.set_xticks(np.arange(len(keys)), [label for _, label in keys])
        left.set_ylabel("fraction of candidates")
        left.margins(y=0.25)  # room above the bars for the legend
        left.legend(fontsize=7, loc="upper left", ncol=2)
        kinds = sorted(metrics.get("by_kind") or {})
        for m, (name, values) in enumerate(methods):
            by_kind = values.get("by_kind") or {}
            rates = [by_kind.get(kind, {}).get("called_real", np.nan) for kind in kinds]
            right.barh(np.arange(len(kinds)) + (m - (len(methods) - 1) / 2) * width, rates, width, label=name)
        right.set_yticks(np.arange(len(kinds)),
                         [f"{kind} ({metrics['by_kind'][kind]['label']})" for kind in kinds], fontsize=7)
        right.set_xlabel("fraction called real")
        right.set_xlim(0, 1)
        right.legend(fontsize=7, loc="lower right")
    return True
