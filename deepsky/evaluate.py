"""Score a trained run on held-out data: ``metrics.json`` and ``evaluation.h5``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


GALLERY_SIZE = 16  # cutouts per gallery row kept for the report


def evaluate_run(run_dir, data=None, n: int | None = None, on_stage=None, on_simulate=None, on_predict=None,
                 on_fit=None) -> dict:
    """Evaluate the run in ``run_dir`` on ``data`` (HDF5) or on a fresh simulated test set.

    The simulated test set uses a seed the training never saw
    (:meth:`~deepsky.tasks.base.ImageTask.test_seed`). Writes
    ``metrics.json`` and ``evaluation.h5`` into the run and returns the metrics.
    Regression tasks are scored beside their classical fit on the same
    images (``on_fit`` is called with the number of images fitted).
    """
    from deepsky.predict import predict_array
    from deepsky.runs import Run, write_json

    stage = on_stage or (lambda text: None)
    run = Run.open(run_dir)
    config, task = run.config, run.task()
    model = run.load_model()
    test, source, held_out = task.test_data(config, data, n, progress=on_simulate, on_stage=stage)
    task.check_inputs(config["contract"], test.images, str(data or "test data"))
    if task.objective == "gaussian":
        metrics = _evaluate_regression(run, task, model, test, stage, on_predict, on_fit)
        metrics.update({"test_data": source, "held_out": bool(held_out), "task": task.name,
                        "model": config["model"], "paper": task.paper})
        write_json(run.metrics_path, metrics)
        return metrics
    stage(f"predicting {len(test)} held-out objects")
    probabilities = predict_array(model, test.images, progress=on_predict,
                                  dihedral_average=task.predict_dihedral_average)
    metrics = task.metrics(test.labels, probabilities, test.objects)
    baseline_probabilities = None
    if (run.path / "baseline_features.h5").exists():
        stage("fitting the classical baseline on the training features")
        baseline_probabilities = _baseline_probabilities(task, run.path / "baseline_features.h5", test.images)
        metrics["baseline"] = {"name": task.baseline_name, **task.metrics(test.labels, baseline_probabilities, test.objects)}
    real = task.real_data() if hasattr(task, "real_data") else None
    if real is not None:
        task.check_inputs(config["contract"], real.images, real.meta.get("source", "real data"))
        p_real = predict_array(model, real.images)
        metrics["real_data"] = {"source": real.meta.get("source"), **task.metrics(real.labels, p_real, real.objects)}
    metrics.update({"test_data": source, "held_out": bool(held_out), "task": task.name,
                    "model": config["model"], "paper": task.paper})
    write_json(run.metrics_path, metrics)
    _write_evaluation(run.evaluation_path, test, probabilities, baseline_probabilities)
    return metrics


def _evaluate_regression(run, task, model, test, stage, on_predict, on_fit) -> dict:
    """Network and least-squares fit on the same images: metrics, timings, ``evaluation.h5``."""
    import time

    from deepsky.predict import predict_array

    contract = run.config["contract"]
    predict_array(model, test.images[:256], float32_head=True)  # first call: kernels chosen, caches warm
    views = task.default_views
    stage(f"predicting {len(test)} held-out galaxies" + (f", {views} orientations averaged" if views > 1 else ""))
    start = time.perf_counter()
    outputs = task.predict_outputs(model, test.images, views=views, progress=on_predict)
    seconds = (time.perf_counter() - start) / len(test)
    predicted = task.decode(outputs, test.images, contract)
    predicted["seconds_per_galaxy"] = seconds
    metrics = task.metrics(test.objects, predicted)
    metrics["views"] = views
    # the same network averaged over the 8 orientations: slower, more precise
    stage("predicting them again averaged over 8 orientations")
    start = time.perf_counter()
    averaged = task.decode(task.predict_outputs(model, test.images, views=8), test.images, contract)
    averaged["seconds_per_galaxy"] = (time.perf_counter() - start) / len(test)
    metrics["views_8"] = task.metrics(test.objects, averaged)
    stage(f"fitting {len(test)} galaxies with the {task.baseline_name}")
    baseline = task.baseline_predictions(test, progress=on_fit)
    metrics["baseline"] = {"name": task.baseline_name, **task.metrics(test.objects, baseline)}
    metrics["comparison"] = task.compare(metrics, metrics["baseline"])
    metrics["views_8"]["comparison"] = task.compare(metrics["views_8"], metrics["baseline"])
    _write_regression(run.evaluation_path, test, outputs, predicted, baseline)
    return metrics


def _write_regression(path: Path, test, outputs, predicted: dict, baseline: dict) -> None:
    import h5py

    from deepsky.data.store import write_column

    tmp = path.with_name(f".{path.name}.part")
    with h5py.File(tmp, "w") as f:
        f["labels"] = test.labels
        f["outputs"] = outputs
        for group, values in (("predicted", predicted), ("baseline", baseline)):
            for name, column in values.items():
                if np.ndim(column) == 1 and len(column) == len(test):
                    f[f"{group}/{name}"] = np.asarray(column)
        objects = f.create_group("objects")
        for name, column in test.objects.items():
            write_column(objects, name, column)
        order = np.argsort(np.asarray(test.objects["mag"]))
        keep = np.sort(order[np.linspace(0, len(order) - 1, min(GALLERY_SIZE, len(order))).astype(int)])
        f["gallery/index"] = keep
        f["gallery/images"] = test.images[keep]
    os.replace(tmp, path)


def _baseline_probabilities(task, features_path: Path, inputs: np.ndarray) -> np.ndarray:
    """Fit the random forest on the stored training features; class probabilities on ``inputs``."""
    import h5py

    from deepsky.baselines import fit_random_forest

    with h5py.File(features_path, "r") as f:
        features, labels = f["features"][...], f["labels"][...]
        state = {name: f[f"state/{name}"][...] for name in f["state"]} if "state" in f else {}
    forest = fit_random_forest(features, labels)
    return forest.predict_proba(task.baseline_features(inputs, state)).astype(np.float32)


def _write_evaluation(path: Path, test, probabilities: np.ndarray, baseline_probabilities=None) -> None:
    """Labels, probabilities, per-object columns and a few cutouts for the report's gallery."""
    import h5py

    from deepsky.data.store import write_column

    labels = test.labels
    tmp = path.with_name(f".{path.name}.part")
    with h5py.File(tmp, "w") as f:
        f["labels"] = labels
        f["probabilities"] = probabilities
        if baseline_probabilities is not None:
            f["baseline_probabilities"] = baseline_probabilities
        objects = f.create_group("objects")
        for name, column in test.objects.items():
            write_column(objects, name, column)
        if test.images.ndim == 4:  # cutouts: keep a few for the report's galleries
            _write_gallery(f, test, probabilities)
    os.replace(tmp, path)


def _write_gallery(f, test, probabilities: np.ndarray) -> None:
    labels = test.labels
    confidence_wrong = 1 - probabilities[np.arange(len(labels)), labels]
    worst = np.argsort(-confidence_wrong)[:GALLERY_SIZE]
    rng = np.random.default_rng(0)
    examples = np.sort(rng.choice(len(labels), min(GALLERY_SIZE, len(labels)), replace=False))
    feature_examples = _feature_map_examples(test, probabilities)
    keep = np.unique(np.concatenate([worst, examples, feature_examples]))
    f["gallery/index"] = keep
    f["gallery/images"] = test.images[keep]
    f["gallery/worst"] = worst
    f["gallery/examples"] = examples
    f["gallery/feature_map_examples"] = feature_examples


def _feature_map_examples(test, probabilities: np.ndarray) -> np.ndarray:
    """One confidently right, bright example per class (the lecture's feature-map figure)."""
    labels = test.labels
    brightness = -np.asarray(test.objects.get("r_mag", -test.images.sum(axis=(1, 2, 3))))
    picks = []
    for k in range(probabilities.shape[1]):
        right = np.flatnonzero((labels == k) & (probabilities[:, k] > 0.9))
        pool = right if right.size else np.flatnonzero(labels == k)
        if pool.size:
            # the 80th-percentile brightness: clear, but not a saturated outlier
            order = pool[np.argsort(brightness[pool])]
            picks.append(order[int(0.8 * (len(order) - 1))])
    return np.array(picks, dtype=np.int64)
