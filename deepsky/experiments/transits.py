"""Pearson et al.'s figure: the MLP, the wavelet MLP and the 1-D CNN against least squares and BLS.

The three networks train on the same simulated training-grid curves with
the same settings and are scored, with the two classical detectors, on the
same held-out curves of the test grid: detection rate against transit depth
over noise, accuracy, false positives and time per curve.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from html import escape
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

TASK = "transit-detection"
NETWORKS = ("pearson-mlp", "pearson-wavelet-mlp", "pearson-cnn")


def run_transits(out, epochs: int | None = None, n: int | None = None, seed: int = 0, on_stage=None, on_epoch=None,
                 data=None) -> Path:
    """Train the three networks, score them and the classical detectors; write ``experiment.json`` and the report.

    ``n`` training curves (default the task's 20,000), ``epochs`` per
    network (default the task's 10); the held-out set has the task's
    default size unless ``n`` is given (then half of ``n``).
    """
    from deepsky import tasks
    from deepsky.config import set_seed
    from deepsky.predict import predict_array
    from deepsky.runs import write_json
    from deepsky.train import TrainConfig, default_config, fit

    if data is not None:
        raise DeepskyError("the transits experiment simulates its curves; it takes no --data")
    out = Path(out)
    if (out / "experiment.json").exists():
        raise DeepskyError(f"{out}: already holds an experiment; choose another -o")
    stage = on_stage or (lambda text: None)
    task = tasks.get(TASK)
    n_train = n or task.default_train_size
    n_test = max(n_train // 2, 200) if n else task.default_test_size
    started = time.perf_counter()
    stage(f"simulating {n_train} training curves and {n_test} held-out test-grid curves")
    dataset = task.simulate(n_train, seed)
    test = task.simulate_test(n_test, task.test_seed(seed))
    train_index, val_index = task.validation_split(dataset, seed)
    train, val = dataset.subset(train_index), dataset.subset(val_index)
    config: TrainConfig = default_config(task, epochs=epochs, seed=seed)
    variants = []
    for name in NETWORKS:
        stage(f"training {name} ({config.epochs} epochs on {len(train)} curves)")
        set_seed(seed)
        model = task.build_model(name, train)
        begun = time.perf_counter()
        history = fit(model, train.inputs, train.labels, val.inputs, val.labels, config, objective=task.objective,
                      augmentation=task.augmentation(config),
                      on_epoch=(lambda epoch, h, label=name: on_epoch(label, epoch, h)) if on_epoch else None)
        seconds = time.perf_counter() - begun
        predict_array(model, test.inputs[:256])  # the frozen graph built before the timing
        begun = time.perf_counter()
        probabilities = predict_array(model, test.inputs)
        per_curve = (time.perf_counter() - begun) / len(test)
        variants.append({"label": name, "metrics": task.metrics(test, probabilities), "history": history,
                         "train_seconds": seconds, "seconds_per_curve": per_curve,
                         "parameters": int(model.count_params())})
    classical = task.classical_metrics(test, stage)
    record = {"task": TASK, "train": asdict(config), "n_train": len(train), "n_validation": len(val),
              "n_test": len(test), "test_grid": test.meta.get("grid"), "realism": dataset.meta.get("realism"),
              "variants": variants, "classical": classical, "paper": task.paper,
              "seconds": time.perf_counter() - started}
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    write_json(out / "experiment.json", record)
    return write_transits_report(out, record)


def write_transits_report(out, record: dict) -> Path:
    """``figures/detection_rate.png`` and ``report.html`` for the transits experiment."""
    from deepsky.experiments.report import _page
    from deepsky.report.tables import fmt, table
    from deepsky.tasks.transit_detection import draw_detection_rates

    out = Path(out)
    curves = [(v["label"], v["metrics"]) for v in record["variants"]]
    curves += [(c["name"], c) for c in record["classical"].values()]
    draw_detection_rates(curves, out / "figures" / "detection_rate.png", record["paper"])
    header = ["Method", "accuracy", "ROC AUC", "found (depth >= 1.5x noise)", "false positives",
              "binaries called transits", "parameters", "µs per curve"]
    rows = []
    for name, metrics in curves:
        extra = next((v for v in record["variants"] if v["label"] == name), None)
        seconds = extra["seconds_per_curve"] if extra else metrics["seconds_per_curve"]
        rows.append([escape(name), fmt(metrics["accuracy"]), fmt(metrics.get("roc_auc")),
                     fmt(metrics.get("detection_rate_above_1_5")), fmt(metrics.get("false_positive_rate")),
                     fmt(metrics.get("eclipsing_binaries_called_transits")),
                     fmt(extra["parameters"]) if extra else "–", f"{1e6 * seconds:.0f}"])
    paper = record["paper"]
    body = [
        "<h1>deepsky experiment: transits</h1>",
        f'<p class="lead">Pearson, Palafox &amp; Griffith\'s three networks, trained on the same '
        f"{record['n_train']} simulated curves of the training grid ({record['train']['epochs']} epochs each, "
        f"{record['n_validation']} more for validation), and two classical detectors, all scored on the same "
        f"{record['n_test']} held-out curves of the test grid (transit depth 0.25-3 times the noise).</p>",
        table(header, rows),
        '<figure><img src="figures/detection_rate.png" alt="detection rate against depth over noise"><figcaption>'
        "Pearson et al.'s figure: transits found at each depth/noise of the test grid; false positives (curves "
        "without a transit called transits) in the legend. The classical detectors' thresholds are the most "
        "accurate ones on 2,000 training-grid curves of another seed.</figcaption></figure>",
        f"<p>Paper ({escape(paper['citation'])}): {escape(paper['note'])} deepsky's no-transit curves share "
        "the transit curves' law of stellar variability (Pearson's generator gives the two classes variability "
        "of a different form, which a network can learn instead of the transit), and half of the test grid has "
        "the transit shallower than 1.5 times the noise.</p>",
        f"<p>Wall time {record['seconds'] / 60:.1f} min.</p>",
        "<h2>Reproduce</h2>",
        f"<pre>deepsky experiment transits -o {escape(str(out))} --epochs {record['train']['epochs']} "
        f"--n {record['n_train'] + record['n_validation']}</pre>",
    ]
    return _page(out, "deepsky experiment: transits", body)
