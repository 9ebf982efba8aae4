"""Optimizers, dropout and batch normalisation, measured on the real SDSS photometry."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

TASK = "sdss-photometry"
DEFAULT_EPOCHS = {"optimizers": 30, "dropout": 60, "batchnorm": 30}


def variants(kind: str) -> list[dict]:
    """The runs of experiment ``kind``: label, optimizer, learning rate and model options.

    Within one experiment only the thing under study changes.
    """
    if kind == "optimizers":
        from deepsky import optimizers

        # each at its customary learning rate, held constant: the table compares the methods, not schedules
        return [{"label": name, "optimizer": name, "learning_rate": float(f"{float(optimizers.create(name).learning_rate):.6g}"),
                 "model_options": {}} for name in optimizers.LECTURE_OPTIMIZERS]
    if kind == "dropout":
        # wide enough to over-fit 7,000 rows, so that dropout has something to prevent
        wide = {"hidden": (512, 512, 512)}
        return [{"label": f"dropout {rate:g}", "optimizer": "adam", "learning_rate": 1e-3,
                 "model_options": {**wide, "dropout": rate}} for rate in (0.0, 0.5)]
    if kind == "batchnorm":
        # Ioffe & Szegedy's Figure 1: three hidden layers of 100 sigmoid units, plain SGD
        net = {"hidden": (100, 100, 100), "activation": "sigmoid"}
        return [{"label": label, "optimizer": "sgd", "learning_rate": 0.05,
                 "model_options": {**net, "batch_norm": bn}} for label, bn in (("without BN", False), ("with BN", True))]
    raise DeepskyError(f"unknown experiment {kind!r}")


def run_fundamentals(kind: str, out, data=None, epochs: int | None = None, seed: int = 0, n: int | None = None,
                     on_stage=None, on_epoch=None) -> Path:
    """Train one network per variant on the same split; write results, figures and the report.

    Parameters
    ----------
    data : path, optional
        A labelled magnitude catalogue (default: the task's SDSS DR17 file).
    epochs : int, optional
        Epochs per variant (default per experiment).
    n : int, optional
        Use only this many training rows (for quick looks).
    on_epoch : callable, optional
        ``on_epoch(label, epoch, history)`` after each epoch.
    """
    from deepsky import tasks
    from deepsky.config import set_seed
    from deepsky.experiments.report import write_experiment_report
    from deepsky.predict import predict_array
    from deepsky.runs import write_json
    from deepsky.train import TrainConfig, fit

    stage = on_stage or (lambda text: None)
    out = Path(out)
    if (out / "experiment.json").exists():
        raise DeepskyError(f"{out}: already holds an experiment; choose another -o")
    task = tasks.get(TASK)
    dataset, source = task.training_data(data, n, seed, on_stage=stage)
    train_index, val_index = task.validation_split(dataset, seed)
    train, val = dataset.subset(train_index), dataset.subset(val_index)
    test, test_source, _ = task.test_data({"data": source, "train": {"seed": seed}}, on_stage=stage)
    epochs = epochs or DEFAULT_EPOCHS[kind]
    results = []
    for variant in variants(kind):
        stage(f"training with {variant['label']}")
        set_seed(seed)  # the same initial weights and batches for every variant
        model = task.build_model(task.default_model, train, **variant["model_options"])
        config = TrainConfig(epochs=epochs, batch_size=task.default_batch_size, learning_rate=variant["learning_rate"],
                             optimizer=variant["optimizer"], schedule="constant", augment=False, seed=seed,
                             precision="fp32")
        start = time.perf_counter()
        history = fit(model, train.images, train.labels, val.images, val.labels, config,
                      on_epoch=(lambda e, h, label=variant["label"]: on_epoch(label, e, h)) if on_epoch else None)
        seconds = time.perf_counter() - start
        probabilities = predict_array(model, test.images, precision="fp32")
        results.append({**variant, "train": asdict(config), "history": history, "seconds": seconds,
                        "test": task.metrics(test, probabilities)})
    out.mkdir(parents=True, exist_ok=True)
    record = {"experiment": kind, "task": TASK, "model": task.default_model, "data": source,
              "test_data": test_source, "n_train": len(train), "n_validation": len(val), "epochs": epochs,
              "classes": list(task.classes), "variants": results}
    write_json(out / "experiment.json", record)
    stage("writing the report")
    return write_experiment_report(out, record)
