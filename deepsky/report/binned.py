"""Purity and completeness of two classes per bin of a column (Kim & Brunner's figure against r magnitude).

Reads ``metrics["by_bin"]`` = ``{"column", "label", "bins": [{"lo", "hi",
"purity_<class>", "completeness_<class>", "n_<class>", ...}]}`` as
:func:`deepsky.metrics.binned` and :func:`deepsky.metrics.binary_metrics`
write it, for the network and the baseline.
"""

from __future__ import annotations

import numpy as np

from html import escape

from deepsky.report.canvas import figure, percent_axis
from deepsky.report.inputs import plural
from deepsky.report.tables import fmt, table

PURITY = "tab:blue"
COMPLETENESS = "tab:red"


def plot_purity_completeness(inputs, path) -> bool:
    """One panel per class (the positive class first) of purity and completeness per bin.

    The network is drawn solid, the baseline dashed where ``metrics.json``
    has its ``by_bin``; bars under each panel count the objects of that
    class per bin. Returns False when the metrics have no ``by_bin``.

    Parameters
    ----------
    inputs : ReportInputs
    path : path
        PNG to write.
    """
    binned = inputs.metrics.get("by_bin") or {}
    bins = binned.get("bins") or []
    if not bins:
        return False
    baseline = _by_range(((inputs.baseline or {}).get("by_bin") or {}).get("bins") or [])
    classes = [c for c in inputs.classes[::-1] if any(f"purity_{c}" in b for b in bins)]
    if not classes:
        return False
    with figure(path, (5.2 * len(classes), 5.8)) as fig:
        grid = fig.add_gridspec(2, len(classes), height_ratios=[3, 1])
        for column, name in enumerate(classes):
            top = fig.add_subplot(grid[0, column])
            bottom = fig.add_subplot(grid[1, column], sharex=top)
            _draw_class(top, bottom, name, bins, baseline, inputs.baseline_name, binned.get("label", "bin"))
        # one legend for both panels, below them: inside, it would hide the faint end
        handles, labels = top.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
        fig.suptitle(f"Purity and completeness against {binned.get('label', 'bin')}")
    return True


def _draw_class(top, bottom, name, bins, baseline, baseline_name, label):
    centres = np.array([(b["lo"] + b["hi"]) / 2 for b in bins])
    widths = np.array([b["hi"] - b["lo"] for b in bins])
    shown = []
    for metric, colour in (("purity", PURITY), ("completeness", COMPLETENESS)):
        values = _values(bins, f"{metric}_{name}")
        top.plot(centres, values, "-o", color=colour, label=f"{metric}, network")
        shown.extend(values)
        if baseline:
            matched = [baseline.get((b["lo"], b["hi"])) or {} for b in bins]
            base = _values(matched, f"{metric}_{name}")
            if np.isfinite(base).any():
                top.plot(centres, base, "--s", color=colour, mfc="none", label=f"{metric}, {baseline_name}")
                shown.extend(base)
    percent_axis(top, shown)
    top.set_title(plural(name).capitalize())
    top.set_ylabel("fraction")
    top.tick_params(labelbottom=False)
    counts = np.array([b.get(f"n_{name}", b.get("n", 0)) or 0 for b in bins], dtype=float)
    bottom.bar(centres, counts, width=0.85 * widths, color="grey", alpha=0.6)
    for x, n in zip(centres, counts):
        bottom.annotate(f"{int(n)}", (x, n), ha="center", va="bottom", fontsize=8)
    bottom.set_ylim(0, max(1.0, counts.max()) * 1.3)
    bottom.set_ylabel(plural(name))
    bottom.set_xlabel(label)


def _values(bins, key):
    return np.array([np.nan if b.get(key) is None else b[key] for b in bins], dtype=float)


def _by_range(bins):
    return {(b.get("lo"), b.get("hi")): b for b in bins}


def binned_section(inputs) -> str:
    """An HTML section: the two-class metrics per bin, the baseline's after a slash where evaluated."""
    binned = inputs.metrics.get("by_bin") or {}
    bins = binned.get("bins") or []
    if not bins:
        return ""
    baseline = _by_range(((inputs.baseline or {}).get("by_bin") or {}).get("bins") or [])
    negative, positive = inputs.classes[:2]
    columns = [("roc_auc", "AUC")] + [(f"{m}_{c}", f"{c} {m}") for c in (positive, negative)
                                      for m in ("purity", "completeness")]
    rows = []
    for b in bins:
        other = baseline.get((b.get("lo"), b.get("hi")))
        row = [f"{b['lo']:g} – {b['hi']:g}", fmt(b.get("n")), fmt(b.get(f"n_{negative}")), fmt(b.get(f"n_{positive}"))]
        for key, _ in columns:
            cell = fmt(b.get(key), 3)
            if other is not None:
                cell += f' <span class="base">/ {fmt(other.get(key), 3)}</span>'
            row.append(cell)
        rows.append(row)
    label = escape(binned.get("label", "bin"))
    note = " Baseline values follow the slash, in orange." if inputs.baseline else ""
    header = [label, "objects", escape(plural(negative)), escape(plural(positive))] + [escape(t) for _, t in columns]
    return (f"<h2>By {label}</h2><p class=\"note\">Held-out metrics per bin of {label}.{escape(note)}</p>"
            + table(header, rows))
