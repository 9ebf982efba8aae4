"""HTML tables of a run: held-out metrics beside the paper, per-magnitude metrics, configuration.

Every piece of text that comes from a file goes through :func:`html.escape`.
"""

from __future__ import annotations

from html import escape

def fmt(value, digits: int = 4) -> str:
    """A number for a table cell: integers whole, floats to ``digits`` places, None as a dash.

    >>> fmt(0.98765), fmt(12), fmt(None), fmt(True)
    ('0.9877', '12', '–', 'yes')
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def table(header, rows, numeric_from: int = 1) -> str:
    """An HTML table; cells are pre-escaped HTML, columns from ``numeric_from`` right-aligned."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{cell}</td>' if k >= numeric_from else f"<td>{cell}</td>" for k, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_table(inputs) -> str:
    """The task's headline metrics: network, baseline (when evaluated) and the paper's number."""
    metrics, baseline = inputs.metrics, inputs.baseline
    header = ["Metric", "Network"] + ([escape(inputs.baseline_name)] if baseline else []) + ["Paper"]
    rows = []
    for line in inputs.spec.headline:
        value = line.value(metrics)
        other = line.value(baseline) if baseline else None
        if value is None and other is None:
            continue
        row = [escape(line.label), fmt_value(value, line.digits)]
        if baseline:
            row.append(fmt_value(other, line.digits))
        # the paper's value as published ("0.99"), not padded to spurious digits
        row.append(escape(f"{line.paper:g}") if line.paper is not None else "")
        rows.append(row)
    return table(header, rows)


def fmt_value(value, digits: int) -> str:
    """A headline value: whole numbers with thousands separators when ``digits`` is 0."""
    if digits == 0 and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.0f}"
    return fmt(value, digits)


def per_class_section(inputs) -> str:
    """Precision, recall and F1 of each class; the baseline's after a slash where evaluated."""
    per_class = inputs.metrics.get("per_class")
    if not isinstance(per_class, dict):
        return ""
    other = (inputs.baseline or {}).get("per_class") or {}
    rows = []
    for name, values in per_class.items():
        row = [escape(str(name)), fmt(values.get("n"))]
        for key in ("precision", "recall", "f1"):
            cell = fmt(values.get(key), 3)
            if name in other:
                cell += f' <span class="base">/ {fmt(other[name].get(key), 3)}</span>'
            row.append(cell)
        rows.append(row)
    note = " Baseline values follow the slash, in orange." if inputs.baseline else ""
    return ("<h2>Per class</h2>"
            f'<p class="note">Held-out precision, recall and F1 of each class.{note}</p>'
            + table(["Class", "test objects", "precision (purity)", "recall (completeness)", "F1"], rows))


def describe_source(source) -> str:
    """One line of data provenance from a ``{"simulated", "n", "seed"}`` or ``{"path", "n"}`` dict."""
    if not isinstance(source, dict):
        return escape(str(source))
    if source.get("simulated"):
        text = f"simulated, {source.get('n', '?')} cutouts, seed {source.get('seed', '?')}"
    elif source.get("path"):
        text = f"{source['path']} ({source.get('n', '?')} objects"
        text += f", {source['part']})" if source.get("part") else ")"
    else:
        text = ", ".join(f"{k}: {v}" for k, v in source.items())
    return escape(text)


def config_table(inputs) -> str:
    """The run's model, data, contract and training settings."""
    config, metrics = inputs.config, inputs.metrics
    train = config.get("train") or {}
    contract = config.get("contract") or {}
    history = inputs.history or {}
    seconds = [s for s in history.get("seconds") or [] if s is not None]
    epochs_run = len(history.get("loss") or seconds)
    pixels = contract.get("cutout_pixels")
    rows = [
        ("Task", config.get("task")),
        ("Model", config.get("model")),
        ("Training data", describe_source(config.get("data"))),
        ("Test data", describe_source(metrics.get("test_data"))),
        ("Test data held out from training", fmt(metrics.get("held_out"))),
        ("Classes", ", ".join(map(str, contract.get("classes") or []))),
        ("Bands", ", ".join(map(str, contract.get("bands") or []))),
        ("Cutout (pixels)", " x ".join(map(str, pixels)) if pixels else None),
        ("Pixel scale (arcsec/pixel)", contract.get("pixel_scale_arcsec")),
        ("Pixel units", contract.get("units")),
        ("Survey", contract.get("survey")),
        ("Training / validation examples", f"{config.get('n_train', '?')} / {config.get('n_validation', '?')}"),
        ("Epochs run / configured", f"{epochs_run if history else '?'} / {train.get('epochs', '?')}"),
        ("Batch size", train.get("batch_size")),
        ("Peak learning rate", train.get("learning_rate")),
        ("Augmentation (rotations, flips)", fmt(train.get("augment")) if "augment" in train else None),
        ("Seed", train.get("seed")),
        ("Precision", config.get("precision")),
        ("Backend", config.get("backend")),
        ("Training time", _duration(sum(seconds)) if seconds else None),
        ("deepsky version", config.get("deepsky_version")),
    ]
    # values built above as HTML (provenance) are escaped already; the rest here
    prebuilt = {"Training data", "Test data", "Test data held out from training", "Augmentation (rotations, flips)"}
    cells = [[escape(k), v if k in prebuilt else _setting(v)] for k, v in rows if v not in (None, "")]
    return table(["Setting", "Value"], cells, numeric_from=99)


def real_data_section(inputs) -> str:
    """The task's headline metrics on real survey data (``metrics["real_data"]``), beside the paper's."""
    real = inputs.metrics.get("real_data")
    if not isinstance(real, dict):
        return ""
    rows = []
    for line in inputs.spec.headline:
        value = line.value(real)
        if value is not None:
            rows.append([escape(line.label), fmt_value(value, line.digits),
                         escape(f"{line.paper:g}") if line.paper is not None else ""])
    source = real.get("source")
    note = ("The trained network applied to real survey data with spectroscopic labels"
            + (f" ({describe_source(source)})." if source else "."))
    return ("<h2>Real survey data</h2>" f'<p class="note">{note}</p>'
            + table(["Metric", "Network", "Paper"], rows))


def _setting(value) -> str:
    return escape(f"{value:g}") if isinstance(value, float) else fmt(value)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"
