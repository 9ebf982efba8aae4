"""Transit detection in 6-hour light curves (Pearson, Palafox & Griffith 2018, MNRAS 474, 478).

Is there a transit in this window of 180 points at 2-minute cadence?
Trained on Pearson's training grid (transit depth 1.5-4.5 times the
noise), scored on his test grid (0.25-3 times the noise), with the
realism of real light curves added (red noise, gaps, momentum dumps,
eclipsing binaries as hard negatives). Beside the network: a random
forest on fit statistics, a linear least-squares transit fit and box
least squares, their thresholds set on simulated training-grid curves.
"""

from __future__ import annotations

import time

import numpy as np

from deepsky.metrics import binary_metrics
from deepsky.tasks.base import Headline, SimulatedTask
from deepsky.tasks.registry import register_task

CALIBRATION_CURVES = 2000  # training-grid curves that set the classical methods' thresholds (another seed)
TIMED_CURVES = 2048  # curves the network's time per curve is measured on


@register_task
class TransitDetection(SimulatedTask):
    name = "transit-detection"
    description = ("Pearson et al. (2018): is there a transit in a 6-hour light curve? MLP, wavelet MLP or 1-D CNN "
                   "against least squares and box least squares (batman simulations)")
    classes = ("no transit", "transit")
    positive_class = "transit"
    default_model = "pearson-cnn"
    default_train_size = 20000
    default_test_size = 12000
    default_epochs = 10
    default_batch_size = 64
    default_learning_rate = 1e-3
    augment = True  # a transit (and the noise around it) reads the same backwards
    baseline_name = "random forest on least-squares fit statistics"
    paper = {
        "citation": "Pearson, Palafox & Griffith 2018, MNRAS 474, 478 (arXiv:1706.04319)",
        "data": "180-point light curves at 2-minute cadence, batman transits of 200-10,000 ppm, white noise of "
                "depth/(0.25-3) in testing, stellar variability",
        "accuracy": 0.99,
        "least_squares_accuracy": 0.73,
        "note": "The preprint quotes 99% accuracy for the deep nets against 73% for least squares; the paper's "
                "figure shows detection rate against transit depth over noise on the test grid.",
    }
    headline = (
        Headline("accuracy", "Accuracy", paper=0.99),
        Headline("classical.least_squares.accuracy", "Least-squares transit fit: accuracy", paper=0.73),
        Headline("classical.bls.accuracy", "Box least squares: accuracy"),
        Headline("roc_auc", "ROC AUC"),
        Headline("detection_rate_above_1_5", "Transits found, depth >= 1.5x noise"),
        Headline("false_positive_rate", "No-transit curves called transits"),
        Headline("eclipsing_binaries_called_transits", "Eclipsing binaries called transits"),
        Headline("n", "Test light curves", digits=0),
    )

    def simulate(self, n, seed, progress=None):
        """Light curves on Pearson's training grid, with the realism of real ones."""
        from deepsky.simulate.transits import PEARSON_TRAIN, make_transits

        return make_transits(n, seed, grid=PEARSON_TRAIN, progress=progress)

    def simulate_test(self, n, seed, progress=None):
        """Light curves on Pearson's test grid (transit depth 0.25-3 times the noise)."""
        from deepsky.simulate.transits import PEARSON_TEST, make_transits

        return make_transits(n, seed, grid=PEARSON_TEST, progress=progress)

    def augmentation(self, config):
        from deepsky.data.augment import series_augmentation

        return series_augmentation(reverse=True)

    def build_model(self, model_name, train, **model_options):
        """The registered model on raw relative flux: Pearson's networks whiten each curve themselves."""

        return self.create_model(model_name, input_shape=tuple(train.inputs.shape[1:]), num_classes=2,
                                 **model_options)

    # -- classical baseline --------------------------------------------------------
    def baseline_features(self, inputs, state):
        """The least-squares fit's significance, depth and template, and the curve's scatter and skew."""
        from deepsky.fitting.transits import least_squares_transit

        flux = np.asarray(inputs, np.float64)[..., 0]
        fit = least_squares_transit(flux, _times(flux.shape[1]))
        scatter = flux.std(axis=1)
        centred = flux - flux.mean(axis=1, keepdims=True)
        skew = (centred**3).mean(axis=1) / np.maximum(scatter, 1e-12) ** 3
        return np.stack([fit["snr"], fit["depth"] / np.maximum(scatter, 1e-12), fit["template"], skew], 1).astype(
            np.float32)

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, test, predicted):
        """Accuracy, ROC AUC, detection rate per depth/noise of the test grid, false positives by kind."""
        scores = np.asarray(predicted)[:, 1]
        out = binary_metrics(test.labels, scores, self.classes)
        called = scores >= 0.5
        labels = np.asarray(test.labels)
        ratio = test.objects.get("depth_over_noise")
        if ratio is not None:
            ratio = np.round(np.asarray(ratio, np.float64), 4)
            out["by_depth_over_noise"] = [
                {"depth_over_noise": float(v), "n": int(((ratio == v) & (labels == 1)).sum()),
                 "detection_rate": float(called[(ratio == v) & (labels == 1)].mean())}
                for v in np.unique(ratio) if ((ratio == v) & (labels == 1)).any()]
            strong = (ratio >= 1.5) & (labels == 1)
            out["detection_rate_above_1_5"] = float(called[strong].mean()) if strong.any() else None
        out["false_positive_rate"] = float(called[labels == 0].mean()) if (labels == 0).any() else None
        kinds = test.objects.get("kind")
        if kinds is not None and (np.asarray(kinds) == "eb").any():
            out["eclipsing_binaries_called_transits"] = float(called[np.asarray(kinds) == "eb"].mean())
        return out

    def extra_metrics(self, model, test, metrics, stage):
        """Least squares and box least squares on the same curves, thresholds set on training-grid curves; timings."""
        from deepsky.predict import predict_array

        timed = np.asarray(test.inputs)[:TIMED_CURVES]  # evaluate has predicted them all; this is for the clock
        start = time.perf_counter()
        predict_array(model, timed)
        network_seconds = (time.perf_counter() - start) / len(timed)
        return {"classical": self.classical_metrics(test, stage), "network_seconds_per_curve": network_seconds}

    def classical_metrics(self, test, stage=None) -> dict:
        """The least-squares transit fit and box least squares on ``test``, each with this task's metrics and timing.

        Their detection thresholds (on the fitted depth over its error) are
        the most accurate ones on simulated training-grid curves of another
        seed, never on ``test``.
        """
        from deepsky.fitting.transits import best_threshold, box_least_squares, least_squares_transit

        stage = stage or (lambda text: None)
        flux = np.asarray(test.inputs, np.float64)[..., 0]
        times = _times(flux.shape[1])
        stage(f"setting the classical methods' thresholds on {CALIBRATION_CURVES} training-grid curves")
        calibration = self.simulate(CALIBRATION_CURVES, seed=7_654_321)
        calibration_flux = np.asarray(calibration.inputs, np.float64)[..., 0]
        classical = {}
        for key, name, method in (("least_squares", "least-squares transit fit", least_squares_transit),
                                  ("bls", "box least squares (astropy)", box_least_squares)):
            threshold = best_threshold(method(calibration_flux, times)["snr"], calibration.labels)
            stage(f"running the {name} on {len(flux)} curves")
            start = time.perf_counter()
            statistic = method(flux, times)["snr"]
            seconds = (time.perf_counter() - start) / len(flux)
            probability = 1.0 / (1.0 + np.exp(-np.clip(statistic - threshold, -50, 50)))
            classical[key] = {"name": name, "threshold_snr": threshold, "seconds_per_curve": seconds,
                              **self.metrics(test, np.stack([1 - probability, probability], 1))}
        return classical

    def figures(self):
        from deepsky.report.figures import FigureSpec

        return [FigureSpec(
            "detection_rate", "Detection rate against transit depth over noise",
            "Pearson et al.'s figure: the fraction of transits found at each depth/noise of the test grid by the "
            "network, the random forest, the least-squares transit fit and box least squares (thresholds of the "
            "last two set on training-grid curves); the false-positive rate on curves without a transit is in the "
            "legend. The training grid spans depth/noise 1.5-4.5: below that the network extrapolates.",
            plot_detection_rate)]


def _times(points: int) -> np.ndarray:
    """Times (days) of ``points`` samples at the simulator's cadence (its window when the lengths agree)."""
    from deepsky.simulate.transits import window_times

    times = window_times()
    if len(times) == points:
        return times
    return times[0] + np.arange(points) * (times[1] - times[0])


def plot_detection_rate(inputs, path) -> bool:
    """Detection rate per depth/noise for the network, the forest and the classical methods."""
    metrics = inputs.metrics
    if not metrics.get("by_depth_over_noise"):
        return False
    curves = [("network", metrics)]
    if metrics.get("baseline"):
        curves.append((inputs.baseline_name, metrics["baseline"]))
    curves += [(values["name"], values) for values in (metrics.get("classical") or {}).values()]
    draw_detection_rates(curves, path, metrics.get("paper") or {})
    return True


def draw_detection_rates(curves, path, paper: dict) -> None:
    """One line per ``(name, metrics)``: transits found at each depth/noise, accuracy and false positives in the legend."""
    from deepsky.report.canvas import figure

    styles = ("-o", "--s", "-.v", ":^", "-D", "--x", ":P")
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:red", "tab:brown", "tab:grey")
    with figure(path, (7.4, 5.0)) as fig:
        ax = fig.subplots()
        for k, (name, values) in enumerate(curves):
            rows = values.get("by_depth_over_noise") or []
            fp = values.get("false_positive_rate")
            label = f"{name} (accuracy {values['accuracy']:.3f}, false positives {fp:.3f})"
            ax.plot([r["depth_over_noise"] for r in rows], [r["detection_rate"] for r in rows],
                    styles[k % len(styles)], color=colours[k % len(colours)], label=label, ms=4)
        ax.axvspan(1.5, 3.0, color="grey", alpha=0.08, label="inside the training grid (1.5-4.5)")
        ax.set_xlabel("transit depth / noise")
        ax.set_ylabel("transits found (p >= 0.5, or statistic above threshold)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_title(f"Paper: accuracy {paper.get('accuracy')} (deep nets) vs {paper.get('least_squares_accuracy')} "
                     f"(least squares)", fontsize=9)
