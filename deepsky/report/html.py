"""The report page: one self-contained HTML file (inline CSS) beside its ``figures/`` folder."""

from __future__ import annotations

import os
import shlex
from dataclasses import asdict
from html import escape
from pathlib import Path

from deepsky.report.tables import config_table, describe_source, summary_table
from deepsky.train import TrainConfig

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.lead { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.93em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.base { color: #b35900; } .note { color: #555; font-size: 0.93em; }
.warn { background: #fff3cd; border: 1px solid #e0c36c; padding: 0.5em 0.8em; }
figure { margin: 1.2em 0 2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.93em; margin-top: 0.3em; }
pre { background: #f6f6f6; padding: 0.7em 1em; overflow-x: auto; }
"""


def render_page(inputs, figures) -> str:
    """The report's HTML.

    Parameters
    ----------
    inputs : ReportInputs
    figures : list of FigureSpec
        The figures that were drawn, each at ``figures/<name>.png``.
    """
    task = escape(inputs.task)
    metrics = inputs.metrics
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>deepsky run report: {task}</title><style>{CSS}</style></head><body>",
        f"<h1>deepsky run report: {task}</h1>",
        f'<p class="lead">Run <code>{escape(str(inputs.run.path))}</code>: model '
        f"<b>{escape(str(inputs.config.get('model', '?')))}</b>, tested on "
        f"{describe_source(metrics.get('test_data'))}.</p>",
        "<h2>Held-out metrics</h2>",
    ]
    if metrics.get("held_out") is False:
        parts.append('<p class="warn">The test data is the training data: these numbers are optimistic.</p>')
    parts += [summary_table(inputs), _paper_note(inputs)]
    parts += [section for section in inputs.objective.report_sections(inputs) if section]
    parts += [section for section in inputs.spec.report_sections(inputs) if section]
    parts.append("<h2>Figures</h2>")
    for spec in figures:
        parts.append(
            f'<figure id="{spec.name}"><h3>{escape(spec.heading)}</h3>'
            f'<img src="figures/{spec.name}.png" alt="{escape(spec.heading)}">'
            f"<figcaption>{escape(spec.caption)}</figcaption></figure>"
        )
    parts += ["<h2>Run configuration</h2>", config_table(inputs), "<h2>Reproduce</h2>",
              f"<pre>{escape(reproduce(inputs))}</pre>", "</body></html>"]
    return "\n".join(parts) + "\n"


def reproduce(inputs) -> str:
    """The three commands that rebuild this run, its evaluation and this report."""
    config, run = inputs.config, shlex.quote(str(inputs.run.path))
    train = [f"deepsky train {shlex.quote(inputs.task)} -o {run}"]
    data = config.get("data") or {}
    if data.get("path"):
        train.append(f"--data {shlex.quote(str(data['path']))}")
    elif data.get("n"):
        train.append(f"--n {data['n']}")
    settings = config.get("train") or {}
    if config.get("model"):
        train.append(f"--model {shlex.quote(str(config['model']))}")
    for option, key in (("--epochs", "epochs"), ("--seed", "seed")):
        if settings.get(key) is not None:
            train.append(f"{option} {settings[key]}")
    defaults = asdict(TrainConfig())
    # settings the CLI exposes, spelled out only where the run changed them
    for option, key in (("--batch-size", "batch_size"), ("--learning-rate", "learning_rate"),
                        ("--precision", "precision")):
        if settings.get(key) is not None and settings[key] != defaults[key]:
            train.append(f"{option} {shlex.quote(str(settings[key]))}")
    if settings.get("augment") is False:
        train.append("--no-augment")
    evaluate = [f"deepsky evaluate {run}"]
    test = inputs.metrics.get("test_data") or {}
    if test.get("path"):
        evaluate.append(f"--data {shlex.quote(str(test['path']))}")
    elif test.get("n"):
        evaluate.append(f"--n {test['n']}")
    return "\n".join([" ".join(train), " ".join(evaluate), f"deepsky report {run}"])


def write_html(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _paper_note(inputs) -> str:
    paper = inputs.metrics.get("paper") or {}
    if not paper:
        return ""
    pieces = []
    if paper.get("citation"):
        pieces.append(f"Paper: {paper['citation']}.")
    if paper.get("data"):
        pieces.append(f"Its data: {paper['data']}.")
    if paper.get("note"):
        pieces.append(str(paper["note"]))
    if (inputs.config.get("data") or {}).get("simulated"):
        pieces.append("This run was trained and tested on simulated cutouts, so the comparison is indicative.")
    return f'<p class="note">{escape(" ".join(pieces))}</p>'
