"""Transfer learning measured: an SDSS-trained star-galaxy network fine-tuned on a few CFHTLS-like cutouts.

Yosinski et al. (2014), in the lecture: the first layers of a ConvNet learn
general features that carry over to a new data set, the last ones specific
ones. Here the new data set is another survey (finer pixels, better seeing,
deeper) with only a few hundred labels. For each number K of frozen layers
the network is fine-tuned from the SDSS weights; beside it the same network
trained from scratch on the same labels, and the SDSS network applied as it
is. All are scored on one simulated held-out set of the new survey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

TASK = "star-galaxy"
TARGET_SURVEY = "cfhtls"
DEFAULT_LABELS = 500
DEFAULT_FREEZE = (0, 2, 5, 8, 10)
DEFAULT_EPOCHS = 15
PRETRAIN_SIZE, PRETRAIN_EPOCHS = 20000, 10
TEST_SIZE = 3000


def parse_freeze(text) -> tuple[int, ...]:
    """``"0,2,5"`` -> (0, 2, 5); None gives the default sweep."""
    if text is None:
        return DEFAULT_FREEZE
    try:
        values = tuple(sorted({int(part) for part in str(text).split(",") if part.strip()}))
    except ValueError:
        raise DeepskyError(f"--freeze takes comma-separated whole numbers, e.g. 0,2,5; received {text!r}") from None
    if not values or min(values) < 0:
        raise DeepskyError(f"--freeze takes numbers of layers >= 0; received {text!r}")
    return values


def run_transfer(out, pretrained=None, freeze=None, n: int | None = None, epochs: int | None = None, seed: int = 0,
                 data=None, on_stage=None, test_size: int = TEST_SIZE, pretrain_size: int = PRETRAIN_SIZE,
                 pretrain_epochs: int = PRETRAIN_EPOCHS) -> Path:
    """Run the sweep into ``out``; returns the report's path.

    Parameters
    ----------
    pretrained : path, optional
        A trained SDSS ``star-galaxy`` run (``deepsky train star-galaxy``); by
        default one is trained into ``out/pretrained``.
    freeze : str or sequence of int, optional
        Numbers of frozen weight layers to try (default 0, 2, 5, 8, 10 of Kim & Brunner's 11).
    n : int, optional
        Labelled cutouts of the new survey (default 500), 10% of them for validation.
    epochs : int, optional
        Fine-tuning epochs (and the scratch run's), default 15.
    data : path, optional
        A labelled HDF5 set of the new survey to fine-tune on instead of simulating one.
    """
    from deepsky import tasks
    from deepsky.evaluate import evaluate_run
    from deepsky.predict import predict_array
    from deepsky.runs import Run, write_json
    from deepsky.train import default_config, train_task

    stage = on_stage or (lambda text: None)
    out = Path(out)
    if (out / "experiment.json").exists():
        raise DeepskyError(f"{out}: already holds an experiment; choose another -o")
    freezes = parse_freeze(freeze) if not isinstance(freeze, (tuple, list)) else tuple(freeze)
    n, epochs = n or DEFAULT_LABELS, epochs or DEFAULT_EPOCHS
    target = tasks.get(TASK, survey=TARGET_SURVEY)
    if pretrained is None:
        pretrained = out / "pretrained"
        if not (pretrained / "model.keras").exists():
            stage(f"pre-training on {pretrain_size} simulated SDSS cutouts")
            train_task(TASK, pretrained, n=pretrain_size, config=default_config(tasks.get(TASK), epochs=pretrain_epochs,
                                                                                   seed=seed), on_stage=stage)
    source = Run.open(pretrained)
    if source.config["task"] != TASK:
        raise DeepskyError(f"{pretrained}: a {source.config['task']!r} run; transfer starts from a {TASK!r} run")
    out.mkdir(parents=True, exist_ok=True)
    test_path = out / "test_cfhtls.h5"
    if not test_path.exists():
        stage(f"simulating {test_size} held-out {TARGET_SURVEY} cutouts")
        target.simulate(test_size, target.test_seed(seed)).save(test_path)
    config = default_config(target, epochs=epochs, seed=seed)
    rows = []

    def train_and_score(label, folder, **transfer):
        run_dir = out / folder
        if not (run_dir / "metrics.json").exists():
            stage(f"training: {label}")
            if (run_dir / "config.json").exists() and not (run_dir / "model.keras").exists():
                train_task(None, run_dir, resume=True, on_stage=stage)
            elif not (run_dir / "config.json").exists():
                train_task(TASK, run_dir, data=data, n=None if data else n, config=config,
                           task_options=target.options, on_stage=stage, **transfer)
            evaluate_run(run_dir, data=test_path)
        metrics = Run(run_dir).metrics_path
        from deepsky.runs import read_json

        scores = read_json(metrics)
        rows.append({"label": label, "run": folder, "freeze": transfer.get("freeze"),
                     "from_pretrained": "init_from" in transfer, "roc_auc": scores["roc_auc"],
                     "accuracy": scores["accuracy"], "n_train": Run(run_dir).config["n_train"]})

    train_and_score("from scratch", "scratch")
    for k in freezes:
        train_and_score(f"fine-tuned, {k} frozen", f"freeze-{k}", init_from=pretrained, freeze=k)
    stage("scoring the SDSS network on the new survey as it is")
    from deepsky.data.store import Dataset
    test = Dataset.load(test_path)
    as_is = source.task().metrics(test, predict_array(source.load_model(), test.images))
    record = {"experiment": "transfer", "task": TASK, "source_survey": "sdss", "target_survey": TARGET_SURVEY,
              "pretrained": str(Path(pretrained).resolve()), "labels": n, "epochs": epochs,
              "test_data": {"path": str(test_path.resolve()), "n": len(test)}, "runs": rows,
              "pretrained_as_is": {"roc_auc": as_is["roc_auc"], "accuracy": as_is["accuracy"]}}
    write_json(out / "experiment.json", record)
    from deepsky.experiments.report import write_transfer_report

    return write_transfer_report(out, record)
