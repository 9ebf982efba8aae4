"""Figures and tables of regression runs (galaxy structural parameters): network against the fit.

The metrics come from :func:`deepsky.tasks.galaxy_profiles.profile_metrics`
(``metrics.json``): per parameter the bias, scatter and outlier fraction per
bin of true magnitude; the per-galaxy values from ``evaluation.h5``
(``predicted/*``, ``baseline/*`` and the truth in ``objects/*``).
"""

from __future__ import annotations

from html import escape
from math import erf, sqrt

import numpy as np

from deepsky.report.canvas import BASELINE, NETWORK, figure
from deepsky.report.tables import fmt, table
from deepsky.tasks.galaxy_profiles import ANGLE_MAX_AXIS_RATIO, LABELS, errors

UNITS = {"mag": "mag", "half_light_radius_arcsec": "relative", "sersic_n": "relative", "axis_ratio": "",
         "position_angle_deg": "deg"}


def _parameters(inputs) -> list[str]:
    return list((inputs.metrics.get("parameters") or {}).keys())


def _bins(entry: dict, key: str):
    rows = entry.get("per_magnitude") or []
    centre = np.array([(b["mag_lo"] + b["mag_hi"]) / 2 for b in rows])
    values = np.array([np.nan if b.get(key) is None else b[key] for b in rows], dtype=float)
    return centre, values


def plot_errors_vs_magnitude(inputs, path) -> bool:
    """Bias, scatter and outlier fraction against true magnitude for every parameter; network solid, fit dashed."""
    names = _parameters(inputs)
    if not names:
        return False
    baseline = (inputs.baseline or {}).get("parameters") or {}
    rows = (("bias", "bias (median error)"), ("scatter", "scatter (1.48 MAD)"),
            ("outlier_fraction", "outlier fraction"))
    with figure(path, (3.1 * len(names), 7.6)) as fig:
        axes = fig.subplots(len(rows), len(names), sharex=True, squeeze=False)
        for column, name in enumerate(names):
            for row, (key, ylabel) in enumerate(rows):
                ax = axes[row, column]
                for source, colour, style, label in ((inputs.metrics["parameters"][name], NETWORK, "-", "network"),
                                                     (baseline.get(name), BASELINE, "--", inputs.baseline_name)):
                    if not source:
                        continue
                    x, y = _bins(source, key)
                    ax.plot(x, y, style, color=colour, marker="o", markersize=3, label=label)
                if key == "scatter":
                    ax.set_yscale("log")
                if key == "bias":
                    ax.axhline(0, color="0.5", lw=0.8)
                if row == 0:
                    unit = UNITS[name]
                    ax.set_title(LABELS.get(name, name) + (f" ({unit})" if unit else ""))
                if column == 0:
                    ax.set_ylabel(ylabel)
                if row == len(rows) - 1:
                    ax.set_xlabel("true magnitude")
        axes[0, 0].legend(loc="best")
    return True


def plot_predicted_vs_true(inputs, path) -> bool:
    """Predicted against true value of every parameter: the network (top) and the fit (bottom)."""
    predicted, baseline, truth = inputs.predicted, inputs.baseline_predicted, inputs.objects
    names = [n for n in _parameters(inputs) if n in predicted and n in truth]
    if not names:
        return False
    sources = [("network", predicted, NETWORK)] + ([(inputs.baseline_name, baseline, BASELINE)] if baseline else [])
    with figure(path, (3.0 * len(names), 3.0 * len(sources) + 0.4)) as fig:
        axes = fig.subplots(len(sources), len(names), squeeze=False)
        for row, (label, values, colour) in enumerate(sources):
            for column, name in enumerate(names):
                ax = axes[row, column]
                t = np.asarray(truth[name], float)
                p = np.asarray(values.get(name, np.full(len(t), np.nan)), float)
                log = name in ("half_light_radius_arcsec", "sersic_n")
                ax.scatter(t, p, s=2, alpha=0.35, color=colour, rasterized=True)
                finite = np.isfinite(p)
                lo, hi = np.nanmin(t), np.nanmax(t)
                ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
                if log:
                    ax.set_xscale("log")
                    ax.set_yscale("log")
                if finite.any():
                    ax.set_ylim(lo - 0.05 * (hi - lo) if not log else lo / 1.3, hi + 0.05 * (hi - lo) if not log else hi * 1.3)
                ax.set_xlabel(f"true {LABELS.get(name, name)}")
                if column == 0:
                    ax.set_ylabel(f"{label}")
                if row == 0:
                    ax.set_title(LABELS.get(name, name))
    return True


def plot_uncertainty_calibration(inputs, path) -> bool:
    """Fraction of true values inside +-k sigma against the Gaussian expectation, per parameter."""
    predicted, truth = inputs.predicted, inputs.objects
    names = [n for n in _parameters(inputs) if f"{n}_err" in predicted and n in truth]
    if not names:
        return False
    k = np.linspace(0.1, 3.0, 30)
    expected = np.array([erf(v / sqrt(2)) for v in k])
    sources = [("network", predicted, NETWORK, "-")]
    if inputs.baseline_predicted:
        sources.append((inputs.baseline_name, inputs.baseline_predicted, BASELINE, "--"))
    with figure(path, (3.0 * len(names), 3.3)) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(names)))
        for ax, name in zip(axes, names):
            # the overall mix only, as the coverage in the summary table (not an added bright sample)
            usable = ~np.asarray(truth.get("bright_sample", np.zeros(len(truth[name]), bool)), bool)
            if name == "position_angle_deg":
                usable &= np.asarray(truth["axis_ratio"]) < ANGLE_MAX_AXIS_RATIO
            for label, values, colour, style in sources:
                if f"{name}_err" not in values:
                    continue
                delta = np.abs(_interval_errors(name, values, truth))[usable]
                inside = [float(np.mean(delta <= v)) for v in k]
                ax.plot(expected, inside, style, color=colour, label=label)
            ax.plot([0, 1], [0, 1], color="k", lw=0.8)
            ax.axvline(erf(1 / sqrt(2)), color="0.6", lw=0.8, ls=":")
            ax.set_title(LABELS.get(name, name))
            ax.set_xlabel("expected fraction within ±kσ")
            ax.set_ylabel("measured fraction")
        axes[0].legend(loc="upper left")
    return True


def _interval_errors(name, values, truth) -> np.ndarray:
    """Error in units of the one-sigma half-interval on the side of the truth (asymmetric intervals kept)."""
    t = np.asarray(truth[name], float)
    p = np.asarray(values[name], float)
    lo = np.asarray(values.get(f"{name}_lo", p - values[f"{name}_err"]), float)
    hi = np.asarray(values.get(f"{name}_hi", p + values[f"{name}_err"]), float)
    if name == "position_angle_deg":
        return errors(name, p, t) / np.maximum((hi - lo) / 2, 1e-9)
    below = t < p
    half = np.where(below, p - lo, hi - p)
    return (t - p) / np.maximum(half, 1e-12)


def regression_summary_table(inputs) -> str:
    """Per parameter: network and fit side by side, overall and at the bright end, and their timing."""
    metrics, baseline = inputs.metrics, (inputs.baseline or {})
    names = _parameters(inputs)
    if not names:
        return ""
    bright = metrics.get("bright_limit_mag")
    ratio = (metrics.get("comparison") or {}).get("bright_scatter_ratio") or {}
    averaged = metrics.get("views_8") or {}
    ratio_8 = (averaged.get("comparison") or {}).get("bright_scatter_ratio") or {}
    base_params = baseline.get("parameters") or {}
    n_bright = (metrics["parameters"][names[0]].get("bright") or {}).get("n")
    rows = []
    for name in names:
        net, fit = metrics["parameters"][name], base_params.get(name, {})
        unit = UNITS[name]
        rows.append([
            escape(LABELS.get(name, name) + (f" ({unit})" if unit else "")),
            _pair(net.get("bias"), fit.get("bias")),
            _pair(net.get("scatter"), fit.get("scatter")),
            _pair(net.get("outlier_fraction"), fit.get("outlier_fraction"), 3),
            _pair(net.get("coverage_68"), fit.get("coverage_68"), 3),
            _pair(net["bright"].get("scatter"), fit.get("bright", {}).get("scatter")),
            fmt(ratio.get(name), 2),
            fmt(ratio_8.get(name), 2),
        ])
    header = ["Parameter", "bias", "scatter", "outlier fraction", "68% interval coverage",
              f"scatter, magnitude &lt; {fmt(bright, 1)}" + (f" ({n_bright:,} galaxies)" if n_bright else ""),
              "bright scatter ratio (network / fit)" + (f", {metrics['views']} orientations" if metrics.get("views", 1) > 1 else ""),
              "the same, 8 orientations averaged"]
    return table(header, rows)


def timing_table(inputs) -> str:
    metrics, baseline = inputs.metrics, (inputs.baseline or {})
    speedup = (metrics.get("comparison") or {}).get("speedup")
    if metrics.get("seconds_per_galaxy") is None:
        return ""
    averaged = metrics.get("views_8") or {}
    speedup_8 = (averaged.get("comparison") or {}).get("speedup")
    views = metrics.get("views", 1)
    label = f"network, {views} orientations averaged" if views > 1 else "network"
    rows = [[label, _seconds(metrics.get("seconds_per_galaxy")), f"{speedup:,.0f}x" if speedup else "–"]]
    if averaged.get("seconds_per_galaxy") is not None:
        rows.append(["network, 8 orientations averaged", _seconds(averaged["seconds_per_galaxy"]),
                     f"{speedup_8:,.0f}x" if speedup_8 else "–"])
    if baseline.get("seconds_per_galaxy") is not None:
        rows.append([escape(inputs.baseline_name), _seconds(baseline["seconds_per_galaxy"]), "1x"])
    return table(["", "wall time per galaxy (this machine, all cores)", "speed-up over the fit"], rows)


def per_magnitude_table(inputs, name: str = "mag") -> str:
    entry = (inputs.metrics.get("parameters") or {}).get(name)
    if not entry:
        return ""
    fit = ((inputs.baseline or {}).get("parameters") or {}).get(name, {})
    fit_bins = {(b["mag_lo"], b["mag_hi"]): b for b in fit.get("per_magnitude") or []}
    rows = []
    for b in entry.get("per_magnitude") or []:
        other = fit_bins.get((b["mag_lo"], b["mag_hi"]), {})
        rows.append([f"{b['mag_lo']:.0f} – {b['mag_hi']:.0f}", fmt(b.get("n")), _pair(b.get("bias"), other.get("bias")),
                     _pair(b.get("scatter"), other.get("scatter")),
                     _pair(b.get("outlier_fraction"), other.get("outlier_fraction"), 3),
                     _pair(b.get("coverage_68"), other.get("coverage_68"), 3)])
    return table(["true magnitude", "galaxies", "bias", "scatter", "outlier fraction", "68% coverage"], rows)


def _pair(network, fit, digits: int = 4) -> str:
    cell = fmt(network, digits)
    if fit is not None:
        cell += f' <span class="base">/ {fmt(fit, digits)}</span>'
    return cell


def _seconds(value) -> str:
    if value is None:
        return "–"
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"
