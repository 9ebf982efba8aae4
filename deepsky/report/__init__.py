"""The run report: figures and one HTML page from an evaluated run directory.

``write_report(run_dir)`` reads ``config.json``, ``history.json``,
``metrics.json``, ``evaluation.h5`` and ``model.keras`` and writes
``figures/*.png`` and ``report.html`` into the run. Figures whose inputs are
missing (no baseline scores, no history, a task with more than two classes)
are left out rather than failing the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

__all__ = ["write_report"]


def write_report(run_dir, on_stage: Callable[[str], None] | None = None) -> Path:
    """Write ``RUN_DIR/figures/*.png`` and ``RUN_DIR/report.html``; return the report's path.

    Parameters
    ----------
    run_dir : path
        A run directory after ``deepsky train`` and ``deepsky evaluate``.
    on_stage : callable, optional
        Called with a short description of each step (the CLI prints them).

    Returns
    -------
    Path
        ``RUN_DIR/report.html``.

    Raises
    ------
    DeepskyError
        When ``run_dir`` is no run, is not evaluated yet (no ``metrics.json``),
        or a file in it cannot be read; the message names the file.
    """
    from deepsky.report.figures import LEARNING_CURVES
    from deepsky.report.html import render_page, write_html
    from deepsky.report.inputs import load_inputs

    stage = on_stage or (lambda text: None)
    inputs = load_inputs(run_dir)
    run = inputs.run
    run.figures_dir.mkdir(exist_ok=True)
    drawn = []
    for spec in [LEARNING_CURVES, *inputs.objective.figures(), *inputs.spec.figures()]:
        stage(f"drawing {spec.heading.lower()}")
        if spec.draw(inputs, run.figures_dir / f"{spec.name}.png"):
            drawn.append(spec)
    stage("writing report.html")
    return write_html(run.report_path, render_page(inputs, drawn))
