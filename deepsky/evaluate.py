"""Score a trained run on held-out data: ``metrics.json`` and ``evaluation.h5``.

What is scored, and how, is the task's objective's business
(:meth:`deepsky.objectives.Objective.evaluate`); this module finds the
held-out data, checks it and writes what the objective returns.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def evaluate_run(run_dir, data=None, n: int | None = None, on_stage=None, on_simulate=None, on_predict=None,
                 on_fit=None) -> dict:
    """Evaluate the run in ``run_dir`` on ``data`` or on the task's held-out test set.

    The simulated test set uses a seed the training never saw
    (:meth:`~deepsky.tasks.base.Task.test_data`). Writes ``metrics.json``
    and ``evaluation.h5`` into the run and returns the metrics. ``on_fit``
    is called with the number of objects a per-object classical baseline
    (a least-squares fit) has done.
    """
    from deepsky.runs import Run, write_json

    stage = on_stage or (lambda text: None)
    run = Run.open(run_dir)
    config, task = run.config, run.task()
    model = run.load_model()
    test, source, held_out = task.test_data(config, data, n, progress=on_simulate, on_stage=stage)
    task.check_inputs(run.contract, test.inputs, str(data or "test data"))
    result = task.objective.evaluate(task, run, model, test, stage, on_predict=on_predict, on_fit=on_fit)
    metrics = {**result.metrics, "test_data": source, "held_out": bool(held_out), "task": task.name,
               "model": config["model"], "paper": task.paper}
    write_json(run.metrics_path, metrics)
    _write_evaluation(run.evaluation_path, test, result)
    return metrics


def _write_evaluation(path: Path, test, result) -> None:
    """The objective's arrays, the per-object columns and the gallery's inputs, atomically."""
    import h5py

    from deepsky.data.store import take, write_column

    tmp = path.with_name(f".{path.name}.part")
    try:
        with h5py.File(tmp, "w") as f:
            for name, array in result.arrays.items():
                f[name] = np.asarray(array)
            objects = f.create_group("objects")
            for name, column in test.objects.items():
                write_column(objects, name, column)
            if result.gallery:
                keep = np.unique(np.concatenate([np.asarray(rows, np.int64) for rows in result.gallery.values()]))
                f["gallery/index"] = keep
                shown = take(test.inputs, keep)
                if isinstance(shown, dict):
                    for name, array in shown.items():
                        f[f"gallery/inputs/{name}"] = array
                else:
                    f["gallery/images"] = shown
                for role, rows in result.gallery.items():
                    f[f"gallery/{role}"] = np.asarray(rows, np.int64)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
