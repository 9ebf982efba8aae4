"""Figures and tables of regression runs with uncertainties: the network against the classical method.

The metrics come from :func:`deepsky.metrics.parameter_metrics` as the task
calls it (``metrics.json``: per parameter the bias, scatter, outlier
fraction and 68% coverage, overall, on the ``focus`` subset and
``per_bin``, with ``bin_label`` and ``focus_label`` saying what they are);
the per-object values from ``evaluation.h5`` (``predicted/*``,
``baseline/*`` and the truth in ``objects/*``); labels, units and error
measures from the objective's :class:`~deepsky.metrics.Parameter` list.
"""

from __future__ import annotations

from html import escape
from math import erf, sqrt

import numpy as np

from deepsky.metrics import errors, scored_rows
from deepsky.report.canvas import BASELINE, NETWORK, figure
from deepsky.report.tables import fmt, table


def _title(parameter, unit: str) -> str:
    return parameter.label + (f" ({unit})" if unit else "")


def _bins(entry: dict, key: str):
    rows = entry.get("per_bin") or []
    centre = np.array([(b["lo"] + b["hi"]) / 2 for b in rows])
    values = np.array([np.nan if b.get(key) is None else b[key] for b in rows], dtype=float)
    return centre, values


def plot_errors_by_bin(inputs, path) -> bool:
    """Bias, scatter and outlier fraction per bin for every parameter; network solid, baseline dashed."""
    parameters = inputs.parameters
    if not parameters:
        return False
    baseline = (inputs.baseline or {}).get("parameters") or {}
    rows = (("bias", "bias (median error)"), ("scatter", "scatter (1.48 MAD)"),
            ("outlier_fraction", "outlier fraction"))
    with figure(path, (3.1 * len(parameters), 7.6)) as fig:
        axes = fig.subplots(len(rows), len(parameters), sharex=True, squeeze=False)
        for column, parameter in enumerate(parameters):
            name = parameter.name
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
                    ax.set_title(_title(parameter, parameter.error_unit))
                if column == 0:
                    ax.set_ylabel(ylabel)
                if row == len(rows) - 1:
                    ax.set_xlabel(inputs.metrics.get("bin_label", "bin"))
        axes[0, 0].legend(loc="best")
    return True


def plot_predicted_vs_true(inputs, path) -> bool:
    """Predicted against true value of every parameter: the network (top) and the fit (bottom)."""
    predicted, baseline, truth = inputs.predicted, inputs.baseline_predicted, inputs.objects
    parameters = [p for p in inputs.parameters if p.name in predicted and p.name in truth]
    if not parameters:
        return False
    names = [p.name for p in parameters]
    sources = [("network", predicted, NETWORK)] + ([(inputs.baseline_name, baseline, BASELINE)] if baseline else [])
    with figure(path, (3.0 * len(names), 3.0 * len(sources) + 0.4)) as fig:
        axes = fig.subplots(len(sources), len(names), squeeze=False)
        for row, (label, values, colour) in enumerate(sources):
            for column, parameter in enumerate(parameters):
                name = parameter.name
                ax = axes[row, column]
                t = np.asarray(truth[name], float)
                p = np.asarray(values.get(name, np.full(len(t), np.nan)), float)
                log = parameter.log
                ax.scatter(t, p, s=2, alpha=0.35, color=colour, rasterized=True)
                finite = np.isfinite(p)
                lo, hi = np.nanmin(t), np.nanmax(t)
                ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
                if log:
                    ax.set_xscale("log")
                    ax.set_yscale("log")
                if finite.any():
                    ax.set_ylim(lo - 0.05 * (hi - lo) if not log else lo / 1.3, hi + 0.05 * (hi - lo) if not log else hi * 1.3)
                ax.set_xlabel(f"true {parameter.label}")
                if column == 0:
                    ax.set_ylabel(f"{label}")
                if row == 0:
                    ax.set_title(_title(parameter, parameter.unit))
    return True


def plot_uncertainty_calibration(inputs, path) -> bool:
    """Fraction of true values inside +-k sigma against the Gaussian expectation, per parameter."""
    predicted, truth = inputs.predicted, inputs.objects
    parameters = [p for p in inputs.parameters if f"{p.name}_err" in predicted and p.name in truth]
    if not parameters:
        return False
    k = np.linspace(0.1, 3.0, 30)
    expected = np.array([erf(v / sqrt(2)) for v in k])
    sources = [("network", predicted, NETWORK, "-")]
    if inputs.baseline_predicted:
        sources.append((inputs.baseline_name, inputs.baseline_predicted, BASELINE, "--"))
    extra_column = inputs.metrics.get("extra_column")
    with figure(path, (3.0 * len(parameters), 3.3)) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(parameters)))
        for ax, parameter in zip(axes, parameters):
            name = parameter.name
            # the overall mix only, as the coverage in the summary table (not an added focus sample)
            usable = scored_rows(parameter, truth, len(truth[name]))
            if extra_column in truth:
                usable &= ~np.asarray(truth[extra_column], bool)
            for label, values, colour, style in sources:
                if f"{name}_err" not in values:
                    continue
                delta = np.abs(_interval_errors(parameter, values, truth))[usable]
                inside = [float(np.mean(delta <= v)) for v in k]
                ax.plot(expected, inside, style, color=colour, label=label)
            ax.plot([0, 1], [0, 1], color="k", lw=0.8)
            ax.axvline(erf(1 / sqrt(2)), color="0.6", lw=0.8, ls=":")
            ax.set_title(parameter.label)
            ax.set_xlabel("expected fraction within ±kσ")
            ax.set_ylabel("measured fraction")
        axes[0].legend(loc="upper left")
    return True


def _interval_errors(parameter, values, truth) -> np.ndarray:
    """Error in units of the one-sigma half-interval on the side of the truth (asymmetric intervals kept)."""
    name = parameter.name
    t = np.asarray(truth[name], float)
    p = np.asarray(values[name], float)
    lo = np.asarray(values.get(f"{name}_lo", p - values[f"{name}_err"]), float)
    hi = np.asarray(values.get(f"{name}_hi", p + values[f"{name}_err"]), float)
    if parameter.error == "angle":
        return errors(parameter, p, t) / np.maximum((hi - lo) / 2, 1e-9)
    below = t < p
    half = np.where(below, p - lo, hi - p)
    return (t - p) / np.maximum(half, 1e-12)


def regression_sections(inputs) -> list[str]:
    """The report's regression sections: conventions, the summary per parameter, timing, per-bin tables."""
    metrics = inputs.metrics
    parts = [f'<p class="note">{fmt(metrics.get("n"), 0)} held-out objects. Network values first, the '
             f'{escape(inputs.baseline_name)} after the slash, in orange. Errors: '
             + escape("; ".join(f"{p.label} {_error_words(p)}" for p in inputs.parameters))
             + ". Scatter is 1.48 times the median absolute deviation; outliers miss by more than "
             + escape(", ".join(f"{p.outlier_limit:g} ({p.label})" for p in inputs.parameters)) + ".</p>",
             regression_summary_table(inputs), timing_table(inputs)]
    for parameter in inputs.parameters:
        table_html = per_bin_table(inputs, parameter)
        if table_html:
            parts += [f"<h2>{escape(parameter.label.capitalize())} per bin of {escape(metrics.get('bin_label', 'bin'))}"
                      "</h2>", table_html]
    return parts


def _error_words(parameter) -> str:
    words = {"difference": "as differences", "relative": "relative (predicted / true - 1)",
             "angle": "in degrees, wrapped"}[parameter.error]
    if parameter.scored_where:
        column, limit = parameter.scored_where
        words += f", scored where {column.replace('_', ' ')} is below {limit:g}"
    return words


def regression_summary_table(inputs) -> str:
    """Per parameter: network and baseline side by side, overall and on the focus subset, and their ratio."""
    metrics, baseline = inputs.metrics, (inputs.baseline or {})
    parameters = inputs.parameters
    if not parameters:
        return ""
    ratio = (metrics.get("comparison") or {}).get("focus_scatter_ratio") or {}
    base_params = baseline.get("parameters") or {}
    n_focus = (metrics["parameters"][parameters[0].name].get("focus") or {}).get("n")
    rows = []
    for parameter in parameters:
        name = parameter.name
        net, fit = metrics["parameters"][name], base_params.get(name, {})
        net_focus, fit_focus = (net.get("focus") or {}).get("scatter"), (fit.get("focus") or {}).get("scatter")
        # a task's own ratio where it computed one; else the ratio of the two scatters shown beside it
        focus_ratio = ratio.get(name, net_focus / fit_focus if net_focus is not None and fit_focus else None)
        rows.append([
            escape(_title(parameter, parameter.error_unit)),
            pair(net.get("bias"), fit.get("bias")),
            pair(net.get("scatter"), fit.get("scatter")),
            pair(net.get("outlier_fraction"), fit.get("outlier_fraction"), 3),
            pair(net.get("coverage_68"), fit.get("coverage_68"), 3),
            pair(net_focus, fit_focus),
            fmt(focus_ratio, 2),
        ])
    focus = escape(metrics.get("focus_label", "focus subset"))
    header = ["Parameter", "bias", "scatter", "outlier fraction", "68% interval coverage",
              f"scatter, {focus}" + (f" ({n_focus:,} objects)" if n_focus else ""),
              f"scatter ratio, {focus} (network / baseline)"]
    return table(header, rows)


def timing_table(inputs) -> str:
    """Wall time per object of the network and the baseline, and the speed-up."""
    metrics, baseline = inputs.metrics, (inputs.baseline or {})
    if metrics.get("seconds_per_object") is None:
        return ""
    speedup = (metrics.get("comparison") or {}).get("speedup")
    rows = [["network", seconds(metrics.get("seconds_per_object")), f"{speedup:,.0f}x" if speedup else "–"]]
    if baseline.get("seconds_per_object") is not None:
        rows.append([escape(inputs.baseline_name), seconds(baseline["seconds_per_object"]), "1x"])
    return table(["", "wall time per object (this machine, all cores)", "speed-up over the baseline"], rows)


def per_bin_table(inputs, parameter) -> str:
    """Bias, scatter, outliers and coverage of one parameter per bin, network / baseline."""
    entry = (inputs.metrics.get("parameters") or {}).get(parameter.name)
    if not entry:
        return ""
    fit = ((inputs.baseline or {}).get("parameters") or {}).get(parameter.name, {})
    fit_bins = {(b["lo"], b["hi"]): b for b in fit.get("per_bin") or []}
    rows = []
    for b in entry.get("per_bin") or []:
        other = fit_bins.get((b["lo"], b["hi"]), {})
        rows.append([f"{b['lo']:g} – {b['hi']:g}", fmt(b.get("n")), pair(b.get("bias"), other.get("bias")),
                     pair(b.get("scatter"), other.get("scatter")),
                     pair(b.get("outlier_fraction"), other.get("outlier_fraction"), 3),
                     pair(b.get("coverage_68"), other.get("coverage_68"), 3)])
    return table([escape(inputs.metrics.get("bin_label", "bin")), "objects", "bias", "scatter", "outlier fraction",
                  "68% coverage"], rows)


def pair(network, fit, digits: int = 4) -> str:
    cell = fmt(network, digits)
    if fit is not None:
        cell += f' <span class="base">/ {fmt(fit, digits)}</span>'
    return cell


def seconds(value) -> str:
    if value is None:
        return "–"
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"
