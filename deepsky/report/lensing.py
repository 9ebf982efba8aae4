"""Lens-search figures and tables: completeness per Einstein radius and S/N, false positives per kind of galaxy."""

from __future__ import annotations

from html import escape

import numpy as np

from deepsky.report.canvas import figure
from deepsky.report.tables import fmt, table


def _edges(values):
    return [("inf" if v is None else f"{v:g}") for v in values]


def plot_completeness_grid(inputs, path) -> bool:
    """Heat map of completeness at the rejection threshold per (theta_E, S/N) bin, network beside the baseline."""
    grid = inputs.metrics.get("completeness_grid")
    if not grid:
        return False
    panels = [("network", grid)]
    base = (inputs.baseline or {}).get("completeness_grid")
    if base:
        panels.append((inputs.baseline_name or "baseline", base))
    focus = inputs.metrics.get("focus_completeness")
    with figure(path, (5.4 * len(panels), 4.6)) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (name, g) in zip(axes, panels):
            values = np.array([[np.nan if v is None else v for v in row] for row in g["completeness"]], float)
            counts = np.array(g["counts"])
            image = ax.imshow(values, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
            for a in range(values.shape[0]):
                for b in range(values.shape[1]):
                    if counts[a, b]:
                        colour = "black" if values[a, b] > 0.6 else "white"
                        ax.text(b, a, f"{values[a, b]:.0%}\n({counts[a, b]})", ha="center", va="center",
                                fontsize=7, color=colour)
            ax.set_xticks(np.arange(values.shape[1] + 1) - 0.5, _edges(g["snr_bins"]))
            ax.set_yticks(np.arange(values.shape[0] + 1) - 0.5, _edges(g["theta_e_bins"]))
            ax.set_xlabel("lensed-source S/N")
            ax.set_ylabel("Einstein radius (arcsec)")
            theta_rows = [i for i, lo in enumerate(g["theta_e_bins"][:-1]) if lo >= 1.4]
            snr_cols = [i for i, lo in enumerate(g["snr_bins"][:-1]) if lo is not None and lo >= 20]
            if theta_rows and snr_cols:  # Lanusse et al.'s region: theta_E > 1.4 arcsec, S/N > 20
                from matplotlib.patches import Rectangle

                ax.add_patch(Rectangle((snr_cols[0] - 0.5, theta_rows[0] - 0.5), len(snr_cols), len(theta_rows),
                                       fill=False, lw=2, ec="red"))
            ax.set_title(name if name != "network" or focus is None
                         else f"network: {focus:.1%} in the red box (paper: > 90%)", fontsize=9)
        fig.colorbar(image, ax=list(axes), label="completeness at 99% rejection")
    return True


def false_positive_section(inputs) -> str:
    """An HTML section: which kinds of non-lens pass the 99%-rejection threshold, network and baseline."""
    rates = inputs.metrics.get("false_positive_rate_by_kind")
    if not rates:
        return ""
    base = (inputs.baseline or {}).get("false_positive_rate_by_kind") or {}
    rows = [[escape(kind), fmt(rate, 3), fmt(base.get(kind), 3)] for kind, rate in rates.items()]
    challenge = inputs.metrics.get("n_non-lens")
    note = (f"Share of each kind of held-out non-lens scored above the threshold that rejects 99% of all "
            f"{challenge} non-lenses: the hard negatives a search's visual inspection would see. TPR0 and TPR10 "
            "depend on the number of non-lenses (the challenge had about 50,000).")
    return (f"<h2>False positives by kind</h2><p class=\"note\">{escape(note)}</p>"
            + table(["kind", "network", escape(inputs.baseline_name or "baseline")], rows))
