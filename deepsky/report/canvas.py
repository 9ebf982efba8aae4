"""Matplotlib figures drawn off-screen and written atomically, in one house style."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

DPI = 110
NETWORK = "tab:blue"
BASELINE = "tab:orange"
CLASS_COLOURS = ("tab:orange", "tab:blue", "tab:green", "tab:red", "tab:purple")  # star, galaxy, ...
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.facecolor": "white",
}


@contextmanager
def figure(path, size):
    """Yield a new matplotlib Figure; on a clean exit save it to ``path`` as PNG.

    The figure is drawn on an Agg canvas created here rather than through
    pyplot, so the report never switches the backend of the caller's process
    (a notebook keeps its inline plots) and leaks no open figures.

    Parameters
    ----------
    path : path
        The PNG to write; written to a temporary name and renamed, so a
        reader never sees half a file.
    size : (float, float)
        Width and height in inches (at ``DPI`` dots per inch).
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig
        tmp = path.with_name(f".{path.stem}.part.png")
        try:
            fig.savefig(tmp, dpi=DPI, format="png")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def percent_axis(ax, values, floor=0.0):
    """Set y limits for fractions: from just below the lowest value (not under ``floor``) to 1."""
    import numpy as np

    finite = np.asarray([v for v in values if v is not None], dtype=float)
    finite = finite[np.isfinite(finite)]
    low = float(finite.min()) if finite.size else floor
    ax.set_ylim(max(floor, min(low - 0.03, 0.9)), 1.01)
