"""The paper's key figure: purity and completeness of galaxies and stars against r magnitude."""

from __future__ import annotations

import numpy as np

from deepsky.report.canvas import figure, percent_axis
from deepsky.report.inputs import plural

PURITY = "tab:blue"
COMPLETENESS = "tab:red"


def plot_purity_completeness(inputs, path) -> bool:
    """Two panels (galaxies, stars) of purity and completeness per r-magnitude bin.

    The network is drawn solid, the baseline dashed where ``metrics.json``
    has its ``by_r_mag``; bars under each panel count the objects of that
    class per bin. Returns False when the metrics have no ``by_r_mag``.

    Parameters
    ----------
    inputs : ReportInputs
    path : path
        PNG to write.
    """
    bins = inputs.metrics.get("by_r_mag") or []
    if not bins:
        return False
    baseline = _by_range((inputs.baseline or {}).get("by_r_mag") or [])
    classes = [c for c in ("galaxy", "star") if any(f"purity_{c}" in b for b in bins)]
    if not classes:
        return False
    with figure(path, (5.2 * len(classes), 5.8)) as fig:
        grid = fig.add_gridspec(2, len(classes), height_ratios=[3, 1])
        for column, name in enumerate(classes):
            top = fig.add_subplot(grid[0, column])
            bottom = fig.add_subplot(grid[1, column], sharex=top)
            _draw_class(top, bottom, name, bins, baseline, inputs.baseline_name)
        # one legend for both panels, below them: inside, it would hide the faint end
        handles, labels = top.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
        fig.suptitle("Purity and completeness against r magnitude (cf. Kim & Brunner 2017)")
    return True


def _draw_class(top, bottom, name, bins, baseline, baseline_name):
    centres = np.array([(b["r_min"] + b["r_max"]) / 2 for b in bins])
    widths = np.array([b["r_max"] - b["r_min"] for b in bins])
    shown = []
    for metric, colour in (("purity", PURITY), ("completeness", COMPLETENESS)):
        values = _values(bins, f"{metric}_{name}")
        top.plot(centres, values, "-o", color=colour, label=f"{metric}, network")
        shown.extend(values)
        if baseline:
            matched = [baseline.get((b["r_min"], b["r_max"])) or {} for b in bins]
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
    bottom.set_xlabel("r magnitude (AB; faint to the right)")


def _values(bins, key):
    return np.array([np.nan if b.get(key) is None else b[key] for b in bins], dtype=float)


def _by_range(bins):
    return {(b.get("r_min"), b.get("r_max")): b for b in bins}
