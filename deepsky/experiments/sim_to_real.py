"""Sim-to-real transfer measured: GalSim galaxies as Galaxy Zoo pictures, then a few real labels.

The ``dieleman`` network of ``galaxy-morphology`` is pre-trained on simulated
galaxies of the four classes (:func:`deepsky.simulate.morphology.make_morphology`,
rendered as the Galaxy Zoo reader shows real galaxies by
:mod:`deepsky.simulate.colour_images`). For each number of real labels it is
then fine-tuned (every layer learning) on that many Galaxy Zoo images, and
the same network is trained from scratch on the same images with the same
settings; the pre-trained network applied to real images as it is gives the
reference with no real label at all. Every run is scored on the task's
held-out 20% of the Galaxy Zoo folder.

Measured at the defaults (10,000 simulated galaxies, 1,056 held-out
images; accuracy / macro-F1 / elliptical-vs-spiral accuracy): 100 labels
scratch 0.771 / 0.490 / 0.844, fine-tuned 0.773 / 0.479 / 0.833; 500
labels 0.787 / 0.504 / 0.830 and 0.779 / 0.501 / 0.818; all 4,225 labels
0.838 / 0.674 / 0.868 and 0.838 / 0.580 / 0.884; the pre-trained network
with no real label 0.592 / 0.435 / 0.694. Pre-training on these
simulations does not pay here: they are too easy (0.996 validation accuracy
on simulations) and unlike the real classes where it matters.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

TASK = "galaxy-morphology"
DATA_NAME = "galaxyzoo1_sdss"
DEFAULT_SIMS = 10000
DEFAULT_LABELS = (100, 500, None)  # None: the whole training part
# epochs with all the real labels; smaller sets get sqrt(n_all / n) times more (see epochs_for).
# On 2 idle cores: pre-training 28 s an epoch, all labels 12 s, 500 labels 1.4 s, 100 labels 0.3 s;
# with simulation (1 min), rendering (75 s), reading and scoring, about 25 min in all.
DEFAULT_EPOCHS = 20
PRETRAIN_EPOCHS = 12
SIM_CUTOUT_PIXELS = 128  # stamps wide enough for the largest SDSS galaxies' Petrosian crops


def parse_labels(text) -> tuple[int | None, ...]:
    """``"100,500,all"`` -> (100, 500, None); None gives the default."""
    if text is None:
        return DEFAULT_LABELS
    values = set()
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part == "all":
            values.add(None)
            continue
        try:
            value = int(part)
        except ValueError:
            raise DeepskyError(f"--labels takes comma-separated whole numbers or 'all', e.g. 100,500,all; "
                               f"received {text!r}") from None
        if value < 10:
            raise DeepskyError(f"--labels: at least 10 real labels per run (a tenth validates); received {text!r}")
        values.add(value)
    if not values:
        raise DeepskyError(f"--labels names no number of labels; received {text!r}")
    return tuple(sorted(v for v in values if v is not None)) + ((None,) if None in values else ())


def epochs_for(n_labels: int, n_all: int, epochs: int) -> int:
    """Epochs for a run on ``n_labels`` real images when the whole training part gets ``epochs``.

    Small sets take ``sqrt(n_all / n_labels)`` times more epochs, so that 100 labels
    still see a few hundred optimizer steps without training 40 times longer.

    >>> epochs_for(100, 4225, 20), epochs_for(500, 4225, 20), epochs_for(4225, 4225, 20)
    (130, 59, 20)
    """
    return int(math.ceil(epochs * math.sqrt(max(n_all, n_labels) / n_labels)))


def galaxy_zoo_folder(data) -> Path:
    """``data``, or the shared Galaxy Zoo folder; checked to hold ``labels.csv``."""
    if data is None:
        from deepsky.paths import shared_data_dir

        data = shared_data_dir(DATA_NAME)
        if data is None:
            raise DeepskyError(f"no Galaxy Zoo folder found (looked for {DATA_NAME} in $DEEPSKY_DATA and "
                               "../shared/data); pass --data FOLDER holding labels.csv and images/")
    folder = Path(data)
    if not folder.is_dir():
        raise DeepskyError(f"{folder}: no such folder; --data takes a Galaxy Zoo folder holding labels.csv and images/")
    if not (folder / "labels.csv").is_file():
        raise DeepskyError(f"{folder}: no labels.csv; --data takes a Galaxy Zoo folder holding labels.csv and images/")
    return folder


def run_sim_to_real(out, data=None, labels=None, epochs: int | None = None, n: int | None = None, seed: int = 0,
                    pretrain_epochs: int | None = None, on_stage=None) -> Path:
    """Simulate, pre-train, fine-tune and train from scratch per number of labels; returns the report's path.

    Parameters
    ----------
    out : path
        Output folder: ``simulated.h5``, the runs, ``experiment.json``,
        ``figures/`` and ``report.html``. Runs already finished there are
        reused, so an interrupted experiment continues where it stopped.
    data : path, optional
        A Galaxy Zoo folder (``labels.csv`` and ``images/``); default the
        shared ``galaxyzoo1_sdss``.
    labels : str or sequence, optional
        Numbers of real labels (``"100,500,all"``, the default); drawn with
        the task's seed from its training 80%, the same images for both arms
        (and each smaller set inside the larger ones).
    epochs : int, optional
        Epochs with all real labels (default 20); see :func:`epochs_for`.
    n : int, optional
        Simulated galaxies to pre-train on (default 10,000).
    pretrain_epochs : int, optional
        Pre-training epochs (default 12).
    """
    from deepsky import tasks
    from deepsky.evaluate import evaluate_run
    from deepsky.runs import Run, read_json, write_json
    from deepsky.train import default_config, train_task

    stage = on_stage or (lambda text: None)
    out = Path(out)
    if (out / "experiment.json").exists():
        raise DeepskyError(f"{out}: already holds an experiment; choose another -o")
    folder = galaxy_zoo_folder(data)
    counts = parse_labels(labels) if not isinstance(labels, (tuple, list)) else tuple(labels)
    epochs, pretrain_epochs = epochs or DEFAULT_EPOCHS, pretrain_epochs or PRETRAIN_EPOCHS
    n_sims = n or DEFAULT_SIMS
    if n_sims < 20:
        raise DeepskyError(f"--n: at least 20 simulated galaxies to pre-train on; received {n_sims}")
    task = tasks.get(TASK)
    timings = {}
    started = time.perf_counter()

    stage(f"reading the Galaxy Zoo folder {folder}")
    train_part, _ = task.training_data(folder, None, seed)
    n_all = len(train_part)
    too_many = [c for c in counts if c is not None and c > n_all]
    if too_many:
        raise DeepskyError(f"--labels {too_many[0]} exceeds the {n_all} images of {folder}'s training part; "
                           "use 'all' for all of them")
    test_config = {"data": {"path": str(folder.resolve()), "split_seed": seed}, "train": {"seed": seed}}
    test, test_source, _ = task.test_data(test_config)
    out.mkdir(parents=True, exist_ok=True)

    # -- simulated galaxies, rendered ------------------------------------------------------
    sims_path = out / "simulated.h5"
    if not sims_path.exists():
        from deepsky.simulate.colour_images import render_dataset
        from deepsky.simulate.morphology import make_morphology

        stage(f"simulating {n_sims} galaxies with GalSim")
        tick = time.perf_counter()
        raw = make_morphology(n_sims, seed=seed, classes=task.classes, cutout_pixels=SIM_CUTOUT_PIXELS)
        timings["simulate_seconds"] = time.perf_counter() - tick
        stage("rendering them as Galaxy Zoo colour images")
        tick = time.perf_counter()
        rendered = render_dataset(raw, seed=seed)
        del raw
        timings["render_seconds"] = time.perf_counter() - tick
        rendered.save(sims_path)
    statistics = _statistics(sims_path, train_part.images, seed)
    del train_part

    # -- pre-training ----------------------------------------------------------------------
    pretrained = out / "pretrained"
    if not (pretrained / "model.keras").exists():
        stage(f"pre-training {task.default_model} on the simulated galaxies ({pretrain_epochs} epochs)")
        tick = time.perf_counter()
        if (pretrained / "config.json").exists():  # interrupted: continue after its last finished epoch
            train_task(None, pretrained, resume=True, on_stage=stage)
        else:
            train_task(TASK, pretrained, data=sims_path,
                       config=default_config(task, epochs=pretrain_epochs, seed=seed), on_stage=stage)
        timings["pretrain_seconds"] = time.perf_counter() - tick
    stage("scoring the pre-trained network on the held-out real images as it is")
    as_is = _score(task, Run.open(pretrained).load_model(), test)
    history = read_json(Run(pretrained).history_path)

    # -- real labels: fine-tuned and from scratch --------------------------------------------
    runs = []
    for count in counts:
        size = count or n_all
        run_epochs = epochs_for(size, n_all, epochs)
        config = default_config(task, epochs=run_epochs, seed=seed)
        for arm, transfer in (("scratch", {}), ("fine-tuned", {"init_from": pretrained, "freeze": 0})):
            folder_name = f"{'finetuned' if transfer else 'scratch'}-{count or 'all'}"
            run_dir = out / folder_name
            tick = time.perf_counter()
            if not (run_dir / "metrics.json").exists():
                stage(f"{arm}: {size} real labels, {run_epochs} epochs")
                if (run_dir / "config.json").exists() and not (run_dir / "model.keras").exists():
                    train_task(None, run_dir, resume=True, on_stage=stage)
                elif not (run_dir / "config.json").exists():
                    train_task(TASK, run_dir, data=folder, n=count, config=config, on_stage=stage, **transfer)
                evaluate_run(run_dir, on_stage=stage)
            run = Run(run_dir)
            metrics = read_json(run.metrics_path)
            runs.append({"arm": arm, "labels": size, "labels_option": count or "all", "run": folder_name,
                         "epochs": run_epochs, "n_train": run.config["n_train"],
                         "n_validation": run.config["n_validation"],
                         "train_seconds": float(sum(read_json(run.history_path).get("seconds", []))),
                         "seconds": time.perf_counter() - tick, **_headline(metrics)})

    gains = []
    for count in counts:
        size = count or n_all
        pair = {r["arm"]: r for r in runs if r["labels"] == size}
        gains.append({"labels": size, **{key: pair["fine-tuned"][key] - pair["scratch"][key] for key in HEADLINE}})
    timings["total_seconds"] = time.perf_counter() - started
    record = {
        "experiment": "sim-to-real", "task": TASK, "model": task.default_model, "classes": list(task.classes),
        "data": {"path": str(folder.resolve()), "n_train_part": n_all, "split_seed": seed},
        "test_data": test_source, "seed": seed,
        "simulated": {"path": str(sims_path.resolve()), "n": n_sims, "cutout_pixels": SIM_CUTOUT_PIXELS,
                      "survey": "sdss", "statistics": statistics},
        "pretrain": {"run": str(pretrained.resolve()), "epochs": pretrain_epochs,
                     "final_val_accuracy": history["val_accuracy"][-1] if history.get("val_accuracy") else None},
        "epochs_all_labels": epochs, "labels": [c or "all" for c in counts],
        "pretrained_as_is": as_is, "runs": runs, "gains": gains, "timings": timings,
    }
    write_json(out / "experiment.json", record)
    stage("writing the report")
    from deepsky.experiments.report import write_sim_to_real_report

    return write_sim_to_real_report(out, record, examples=_examples(sims_path, test))


HEADLINE = ("accuracy", "macro_f1", "elliptical_vs_spiral_accuracy")


def _headline(metrics: dict) -> dict:
    out = {key: metrics.get(key) for key in HEADLINE}
    out["recall"] = {name: values["recall"] for name, values in (metrics.get("per_class") or {}).items()}
    out["n_test"] = metrics.get("n")
    return out


def _score(task, model, test) -> dict:
    from deepsky.predict import predict_array

    probabilities = predict_array(model, test.images, dihedral_average=task.predict_dihedral_average)
    return _headline(task.metrics(test, probabilities))


def _statistics(sims_path, real, seed, limit=2000) -> dict:
    """Image statistics of rendered and real (training-part) galaxies, as the renderer was matched on."""
    import h5py

    from deepsky.simulate.colour_images import image_statistics

    with h5py.File(sims_path, "r") as f:
        rendered = f["images"][: min(limit, len(f["images"]))]  # classes come in random order
    pick = np.sort(np.random.default_rng(seed).permutation(len(real))[:limit])
    return {"rendered": image_statistics(rendered), "real": image_statistics(real[pick])}


def _examples(sims_path, test, per_class=6) -> dict:
    """A few rendered and held-out real galaxies of each class for the report's picture."""
    import h5py

    with h5py.File(sims_path, "r") as f:
        labels = f["labels"][...]
        picks = np.sort(np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(4)]))
        simulated = f["images"][picks], labels[picks]
    real = np.concatenate([np.flatnonzero(test.labels == k)[:per_class] for k in range(4)])
    return {"simulated": simulated, "real": (test.images[real], test.labels[real])}
