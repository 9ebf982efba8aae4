"""Aniyan & Thorat's fusion classifier: FRI, FRII and bent-tailed radio galaxies from three binary networks.

The paper trains three binary AlexNets (FRI against the rest, FRII against
the rest, bent against the rest) and fuses them: each network votes for its
class when it says yes and for the other two (half a vote each) when it
says no, the class with most votes wins (ties to the most confident
network), and a source whose winning network is less than 90% sure is
left as "?" for a human. Here the FRI and FRII images are MiraBest's real
FIRST cutouts (the radio-morphology task's training part; scored on its
held-out part) and the bent-tailed ones are simulated, as MiraBest has none.
So that "simulated" cannot stand in for "bent", simulated FRI and FRII
sources train beside the real ones, and the share of held-out simulated
FRI/FRII called bent is reported. Each network's loss weighs its two
sides equally (one class against two others is imbalanced).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from html import escape
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

CLASSES = ("FRI", "FRII", "bent")
CONFIDENCE = 0.9  # the paper's threshold below which a source is "?"
UNSURE = "?"


def fuse(probabilities: np.ndarray, confidence: float = CONFIDENCE):
    """Majority vote of K one-against-the-rest networks; ``(class index or -1 for "?", winning probability)``.

    ``probabilities`` is (N, K): network k's probability that a source is
    of class k.
    """
    probabilities = np.asarray(probabilities, np.float64)
    n, k = probabilities.shape
    says_yes = probabilities >= 0.5
    votes = says_yes.astype(np.float64)
    votes += ((~says_yes).sum(1, keepdims=True) - (~says_yes)) / (k - 1)  # a "no" is a vote for each other class
    best = votes.max(1, keepdims=True)
    tied = np.isclose(votes, best)
    winner = np.where(tied, probabilities, -np.inf).argmax(1)
    certainty = probabilities[np.arange(n), winner]
    return np.where(certainty >= confidence, winner, -1), certainty


def run_radio_fusion(out, data=None, epochs: int | None = None, n: int | None = None, seed: int = 0,
                     model: str | None = None, on_stage=None, on_epoch=None) -> Path:
    """Train the three binary networks, fuse them, score on held-out images; write ``experiment.json`` and the report.

    ``data``: a labelled FRI/FRII folder (default MiraBest); ``n``: bent
    (and simulated FRI+FRII) training images (default as many as the real
    FRIs); ``epochs`` per network (default the task's); ``model`` (default
    the paper's AlexNet).
    """
    from deepsky import tasks
    from deepsky.config import set_seed
    from deepsky.data.store import concatenate
    from deepsky.metrics import multiclass_metrics
    from deepsky.predict import predict_array
    from deepsky.runs import write_json
    from deepsky.train import default_config, fit

    out = Path(out)
    if (out / "experiment.json").exists():
        raise DeepskyError(f"{out}: already holds an experiment; choose another -o")
    stage = on_stage or (lambda text: None)
    started = time.perf_counter()
    task = tasks.get("radio-morphology")
    folder = task.data_folder(data)
    if folder is None or not folder.is_dir():
        raise DeepskyError("the fusion experiment needs real FRI/FRII images: pass --data FOLDER (labels.csv and "
                           "images/, as MiraBest)")
    stage(f"reading FRI and FRII images from {folder}")
    real = task.read_folder(folder, None)
    train_rows, test_rows = task.held_out_split(real.labels, seed)
    real_train, real_test = real.subset(train_rows), real.subset(test_rows)
    n_bent = n or int((real_train.labels == 0).sum())
    n_test_bent = max(len(real_test) // 3, 8)
    stage(f"simulating {n_bent} each of FRI, FRII and bent-tailed sources to train on, {n_test_bent} each held out")
    three = tasks.get("radio-morphology")
    three.classes = CLASSES
    simulated = three.simulate(3 * n_bent, seed + 11)  # a third each of FRI, FRII and bent
    held_out_sim = three.simulate(3 * n_test_bent, seed + 12)
    train = concatenate([_relabel(real_train), simulated])
    test = concatenate([_relabel(real_test), held_out_sim.subset(np.flatnonzero(held_out_sim.labels == 2))])
    sim_fr = held_out_sim.subset(np.flatnonzero(held_out_sim.labels < 2))
    # one class against two: without weights the rarer side is never called (measured: the bent network
    # said "rest" for every source, the majority's 84% accuracy); balanced weights make p = 0.5 the fair vote
    config = default_config(task, epochs=epochs, seed=seed, class_weight="balanced")
    model_name = model or task.default_model
    val_index = task.held_out_split(train.labels, seed + 1)[1]
    train_index = np.setdiff1d(np.arange(len(train)), val_index)
    networks, columns, sim_columns = [], [], []
    for k, name in enumerate(CLASSES):
        stage(f"training {model_name}: {name} against the rest ({config.epochs} epochs on {len(train_index)} images)")
        set_seed(seed + k)
        binary = (train.labels == k).astype(np.int64)
        net = task.build_model(model_name, train.subset(train_index))
        history = fit(net, train.inputs[train_index], binary[train_index], train.inputs[val_index],
                      binary[val_index], config, objective=task.objective, augmentation=task.augmentation(config),
                      on_epoch=(lambda epoch, h, label=name: on_epoch(f"{label} vs rest", epoch, h))
                      if on_epoch else None)
        columns.append(predict_array(net, test.inputs, dihedral_average=True)[:, 1])
        sim_columns.append(predict_array(net, sim_fr.inputs, dihedral_average=True)[:, 1])
        networks.append({"class": name, "history": history, "parameters": int(net.count_params())})
    probabilities = np.stack(columns, 1)
    called, certainty = fuse(probabilities)
    labels = np.asarray(test.labels)
    sure = called >= 0
    fused = multiclass_metrics(labels[sure], _calls(called[sure]), CLASSES) if sure.any() else {}
    everything = multiclass_metrics(labels, _calls(fuse(probabilities, 0.0)[0]), CLASSES)
    sim_called, _ = fuse(np.stack(sim_columns, 1), 0.0)
    record = {
        "task": "radio-fusion", "model": model_name, "train": asdict(config), "classes": list(CLASSES),
        "confidence": CONFIDENCE, "n_train": len(train_index), "n_validation": len(val_index),
        "n_test": len(test), "test_counts": np.bincount(labels, minlength=3).tolist(),
        "data": str(folder.resolve()), "networks": networks, "fused_confident": fused, "fused_all": everything,
        "unsure_fraction": float((~sure).mean()),
        "simulated_fr_called_bent": float((sim_called == 2).mean()) if len(sim_called) else None,
        "paper": task.paper, "seconds": time.perf_counter() - started,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    write_json(out / "experiment.json", record)
    return write_fusion_report(out, record)


def _calls(called):
    """Calls as the near-certain probabilities the class metrics take (rows summing to one)."""
    out = np.full((len(called), len(CLASSES)), 1e-6)
    out[np.arange(len(called)), called] = 1 - 1e-6 * (len(CLASSES) - 1)
    return out


def _relabel(data):
    data.meta["classes"] = list(CLASSES)
    return data


def write_fusion_report(out, record: dict) -> Path:
    """``figures/fusion.png`` (precision and recall per class beside the paper's) and ``report.html``."""
    from deepsky.experiments.report import _page
    from deepsky.report.canvas import figure
    from deepsky.report.tables import fmt, table

    out = Path(out)
    paper = record["paper"]
    fused = record["fused_confident"].get("per_class", {})
    with figure(out / "figures" / "fusion.png", (9.0, 3.6)) as fig:
        for axis, key in zip(fig.subplots(1, 2), ("precision", "recall")):
            x = np.arange(len(CLASSES))
            ours = [fused.get(c, {}).get(key, np.nan) for c in CLASSES]
            theirs = [paper[key].get(c, np.nan) for c in CLASSES]
            axis.bar(x - 0.2, ours, 0.4, label="deepsky fusion (confident calls)")
            axis.bar(x + 0.2, theirs, 0.4, label="Aniyan & Thorat 2017", color="grey")
            axis.set_xticks(x, CLASSES)
            axis.set_ylim(0, 1.05)
            axis.set_title(key)
            axis.legend(fontsize=7, loc="lower left")
    rows = [[c, fmt(fused.get(c, {}).get("precision")), fmt(paper["precision"][c]), fmt(fused.get(c, {}).get("recall")),
             fmt(paper["recall"][c]), fmt(fused.get(c, {}).get("n"))] for c in CLASSES]
    confusion = record["fused_confident"].get("confusion")
    body = [
        "<h1>deepsky experiment: radio-fusion</h1>",
        f'<p class="lead">Three binary {escape(record["model"])} networks (FRI, FRII and bent-tailed, each against '
        f"the rest; {record['train']['epochs']} epochs, rotations by any angle) fused by majority vote, a source "
        f"left as \"?\" when the winning network is below {record['confidence']:.0%} sure. Held out: "
        f"{record['test_counts'][0]} real FRI, {record['test_counts'][1]} real FRII (MiraBest) and "
        f"{record['test_counts'][2]} simulated bent-tailed sources.</p>",
        table(["class", "precision", "paper", "recall", "paper", "test sources (confident)"], rows),
        f"<p>{record['unsure_fraction']:.1%} of the held-out sources are left as \"?\". With every source called "
        f"(no threshold) the accuracy is {fmt(record['fused_all'].get('accuracy'))}. Simulated FRI and FRII sources "
        f"called bent: {fmt(record['simulated_fr_called_bent'])} (a check that the networks tell bent tails, not "
        "simulations, apart).</p>",
        f"<p>Confusion of the confident calls (rows true FRI, FRII, bent; columns called): {escape(str(confusion))}</p>",
        '<figure><img src="figures/fusion.png" alt="precision and recall per class"><figcaption>Precision and '
        "recall of the confident fused calls per class, beside Aniyan &amp; Thorat's table.</figcaption></figure>",
        f"<p>Paper: {escape(paper['citation'])}. {escape(paper['note'])} Their bent-tailed sources are real FIRST "
        "images; here they are simulated, so the bent column measures the simulator as much as the networks.</p>",
        f"<p>Wall time {record['seconds'] / 60:.1f} min.</p>",
        "<h2>Reproduce</h2>",
        f"<pre>deepsky experiment radio-fusion -o {escape(str(out))} --epochs {record['train']['epochs']} "
        f"--model {escape(record['model'])}</pre>",
    ]
    return _page(out, "deepsky experiment: radio-fusion", body)
