"""Figures and the HTML page of an experiment folder."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from deepsky.report.canvas import figure
from deepsky.report.html import CSS, write_html
from deepsky.report.tables import describe_source, fmt, table

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:grey")

CAPTIONS = {
    "optimizers": "Each optimizer trains the same network from the same initial weights on the same batches, at "
                  "its customary constant learning rate. Left: training (solid) and validation (dashed) loss; "
                  "middle: validation accuracy; right: held-out recall of each class.",
    "dropout": "The same wide network with and without dropout. Without it the validation loss turns up while "
               "the training loss keeps falling (over-fitting); dropout keeps the two together.",
    "batchnorm": "Three hidden layers of 100 sigmoid units trained by plain SGD, without and with batch "
                 "normalisation, as in Ioffe & Szegedy's Figure 1 that the lecture shows: with BN the network "
                 "learns in fewer steps at the same learning rate.",
}


def plot_curves(record: dict, path) -> None:
    """Loss and validation accuracy per epoch for each variant, and held-out recall per class."""
    variants, classes = record["variants"], record["classes"]
    with figure(path, (15.0, 4.4)) as fig:
        loss, accuracy, recall = fig.subplots(1, 3)
        for k, variant in enumerate(variants):
            colour, history = COLOURS[k % len(COLOURS)], variant["history"]
            epochs = np.arange(1, len(history["loss"]) + 1)
            loss.plot(epochs, history["loss"], "-", color=colour, label=variant["label"])
            loss.plot(epochs, history["val_loss"], "--", color=colour)
            accuracy.plot(epochs, history["val_accuracy"], "-", color=colour, label=variant["label"])
        loss.set_yscale("log")
        loss.set_title("Loss (solid: training, dashed: validation)")
        loss.set_xlabel("epoch")
        loss.set_ylabel("cross-entropy")
        loss.legend()
        accuracy.set_title("Validation accuracy")
        accuracy.set_xlabel("epoch")
        accuracy.set_ylabel("fraction correct")
        accuracy.legend(loc="lower right")
        width = 0.8 / len(variants)
        for k, variant in enumerate(variants):
            values = [variant["test"]["per_class"][name]["recall"] for name in classes]
            recall.bar(np.arange(len(classes)) + (k - (len(variants) - 1) / 2) * width, values, width,
                       color=COLOURS[k % len(COLOURS)], label=variant["label"])
        recall.set_xticks(range(len(classes)), classes)
        recall.set_ylim(0, 1)
        recall.set_ylabel("held-out recall (accuracy per class)")
        recall.set_title("Held-out test rows, per true class")


def write_experiment_report(out, record: dict) -> Path:
    """``figures/*.png`` and ``report.html`` for a fundamentals experiment record."""
    out = Path(out)
    (out / "figures").mkdir(exist_ok=True)
    plot_curves(record, out / "figures" / "curves.png")
    classes = record["classes"]
    header = ["Variant", "optimizer", "learning rate", "held-out accuracy", "macro F1"] + \
        [f"{escape(c)} recall" for c in classes] + ["final val. loss", "best val. loss (epoch)", "seconds"]
    rows = []
    for v in record["variants"]:
        test, history = v["test"], v["history"]
        best = int(np.argmin(history["val_loss"]))
        rows.append([escape(v["label"]), escape(v["optimizer"]), fmt(v["learning_rate"], 4), fmt(test["accuracy"]),
                     fmt(test["macro_f1"])] + [fmt(test["per_class"][c]["recall"], 3) for c in classes] +
                    [fmt(history["val_loss"][-1]), f"{history['val_loss'][best]:.4f} ({best + 1})",
                     f"{v['seconds']:.0f}"])
    title = f"deepsky experiment: {record['experiment']}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="lead">{escape(record["model"])} on <code>{escape(record["task"])}</code>: '
        f"{record['n_train']} training and {record['n_validation']} validation rows of "
        f"{describe_source(record['data'])}; scored on {describe_source(record['test_data'])}, "
        f"{record['epochs']} epochs per variant.</p>",
        "<h2>Held-out results</h2>", table(header, rows),
        f'<figure><img src="figures/curves.png" alt="learning curves"><figcaption>'
        f"{escape(CAPTIONS.get(record['experiment'], ''))}</figcaption></figure>",
        "<h2>Reproduce</h2>",
        f"<pre>deepsky experiment {escape(record['experiment'])} -o {escape(str(out))} --epochs {record['epochs']}</pre>",
    ]
    return _page(out, title, body)


def _page(out: Path, title: str, body: list[str]) -> Path:
    html = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>", *body, "</body></html>"]
    return write_html(out / "report.html", "\n".join(html) + "\n")


def plot_transfer(record: dict, path) -> None:
    """Held-out AUC and accuracy against the number of frozen layers, with scratch and as-is lines."""
    tuned = sorted((r for r in record["runs"] if r["from_pretrained"]), key=lambda r: r["freeze"])
    scratch = next((r for r in record["runs"] if not r["from_pretrained"]), None)
    as_is = record["pretrained_as_is"]
    with figure(path, (11.0, 4.2)) as fig:
        for ax, key, label in zip(fig.subplots(1, 2), ("roc_auc", "accuracy"), ("ROC AUC", "accuracy")):
            ax.plot([r["freeze"] for r in tuned], [r[key] for r in tuned], "-o", color="tab:blue",
                    label="fine-tuned from SDSS")
            if scratch is not None:
                ax.axhline(scratch[key], color="tab:orange", ls="--", label="trained from scratch")
            if as_is.get(key) is not None:
                ax.axhline(as_is[key], color="grey", ls=":", label="SDSS network as it is")
            ax.set_xlabel("frozen weight layers K (from the input)")
            ax.set_ylabel(f"held-out {label}")
            ax.set_title(f"{label} on {record['target_survey'].upper()}-like cutouts, {record['labels']} labels")
            ax.legend(loc="lower left")


def write_transfer_report(out, record: dict) -> Path:
    """``figures/transfer.png`` and ``report.html`` for the transfer experiment."""
    out = Path(out)
    (out / "figures").mkdir(exist_ok=True)
    plot_transfer(record, out / "figures" / "transfer.png")
    scratch = next((r for r in record["runs"] if not r["from_pretrained"]), None)
    rows = []
    for r in record["runs"]:
        gain = r["roc_auc"] - scratch["roc_auc"] if scratch and r is not scratch else None
        rows.append([escape(r["label"]), fmt(r["n_train"]), fmt(r["roc_auc"]), fmt(r["accuracy"]),
                     fmt(gain) if gain is not None else "–"])
    as_is = record["pretrained_as_is"]
    rows.append(["SDSS network as it is (no fine-tuning)", "0", fmt(as_is["roc_auc"]), fmt(as_is["accuracy"]), "–"])
    title = "deepsky experiment: transfer"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="lead">Kim &amp; Brunner\'s network pre-trained on simulated SDSS cutouts '
        f"(<code>{escape(record['pretrained'])}</code>), fine-tuned on {record['labels']} labelled "
        f"{escape(record['target_survey'].upper())}-like cutouts (0.187 arcsec pixels, 0.55-0.95 arcsec seeing, "
        f"about 2.5 magnitudes deeper) for {record['epochs']} epochs, scored on "
        f"{describe_source(record['test_data'])}.</p>",
        table(["Run", "training cutouts", "held-out ROC AUC", "accuracy", "AUC gain over scratch"], rows),
        '<figure><img src="figures/transfer.png" alt="transfer learning against frozen layers"><figcaption>'
        "Yosinski et al. (2014): the first layers learn features general enough to carry over to another survey, "
        "so starting from them beats learning from a few hundred labels; freezing many layers keeps features "
        "tuned to SDSS pixels and seeing, which the new survey's images do not share.</figcaption></figure>",
        "<h2>Reproduce</h2>",
        f"<pre>deepsky experiment transfer -o {escape(str(out))} --pretrained {escape(record['pretrained'])} "
        f"--n {record['labels']} --epochs {record['epochs']}</pre>",
    ]
    return _page(out, title, body)
