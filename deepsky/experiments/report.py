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


SIM_TO_REAL_METRICS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
                       ("elliptical_vs_spiral_accuracy", "elliptical vs spiral accuracy"))


def plot_sim_to_real(record: dict, path) -> None:
    """Held-out accuracy, macro-F1 and elliptical-vs-spiral accuracy against the number of real labels."""
    with figure(path, (15.0, 4.4)) as fig:
        for ax, (key, label) in zip(fig.subplots(1, 3), SIM_TO_REAL_METRICS):
            for arm, colour, name in (("fine-tuned", "tab:blue", "pre-trained on simulations, fine-tuned"),
                                      ("scratch", "tab:orange", "trained from scratch")):
                runs = sorted((r for r in record["runs"] if r["arm"] == arm), key=lambda r: r["labels"])
                ax.plot([r["labels"] for r in runs], [r[key] for r in runs], "-o", color=colour, label=name)
            as_is = record["pretrained_as_is"].get(key)
            if as_is is not None:
                ax.axhline(as_is, color="grey", ls=":", label="pre-trained, no real labels")
            if key == "elliptical_vs_spiral_accuracy":
                ax.axhline(0.9, color="tab:red", ls="--", lw=0.8, label="0.90 bar")
            ax.set_xscale("log")
            sizes = sorted({r["labels"] for r in record["runs"]})
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.minorticks_off()
            ax.set_xlabel("real Galaxy Zoo labels (log scale)")
            ax.set_ylabel(f"held-out {label}")
            ax.set_title(label[0].upper() + label[1:])
            ax.legend(loc="best")


def plot_examples(examples: dict, classes, path) -> None:
    """Rendered simulated galaxies above held-out real ones, one column block per class."""
    with figure(path, (12.0, 4.6)) as fig:
        rows = [("simulated, rendered", *examples["simulated"]), ("real (held out)", *examples["real"])]
        per_class = max(int(np.sum(labels == k)) for _, _, labels in rows for k in range(len(classes)))
        axes = fig.subplots(len(rows), len(classes))
        for i, (name, images, labels) in enumerate(rows):
            for k, cls in enumerate(classes):
                tiles = [image[..., ::-1] for image in images[labels == k]]  # g, r, i -> red = i
                tiles += [np.zeros_like(images[0])] * (per_class - len(tiles))
                strip = np.concatenate([np.concatenate(tiles[j:j + 3], axis=1) for j in range(0, per_class, 3)])
                ax = axes[i, k]
                ax.imshow(np.clip(strip, 0, 1))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if i == 0:
                    ax.set_title(cls)
                if k == 0:
                    ax.set_ylabel(name)


def write_sim_to_real_report(out, record: dict, examples: dict | None = None) -> Path:
    """``figures/sim_to_real.png`` (and ``figures/examples.png``) and ``report.html`` for sim-to-real."""
    out = Path(out)
    (out / "figures").mkdir(exist_ok=True)
    plot_sim_to_real(record, out / "figures" / "sim_to_real.png")
    if examples is not None:
        plot_examples(examples, record["classes"], out / "figures" / "examples.png")
    classes = record["classes"]
    header = (["Run", "real labels", "epochs"] + [escape(label) for _, label in SIM_TO_REAL_METRICS]
              + [f"{escape(c)} recall" for c in classes] + ["seconds"])
    rows = []
    for r in sorted(record["runs"], key=lambda r: (r["labels"], r["arm"])):
        rows.append([escape(r["arm"]), fmt(r["labels"]), fmt(r["epochs"])] + [fmt(r[k]) for k, _ in SIM_TO_REAL_METRICS]
                    + [fmt(r["recall"].get(c), 3) for c in classes] + [f"{r['seconds']:.0f}"])
    as_is = record["pretrained_as_is"]
    rows.append(["pre-trained, no fine-tuning", "0", "–"] + [fmt(as_is[k]) for k, _ in SIM_TO_REAL_METRICS]
                + [fmt(as_is["recall"].get(c), 3) for c in classes] + ["–"])
    gains = [[fmt(g["labels"])] + [f"{g[k]:+.4f}" for k, _ in SIM_TO_REAL_METRICS] for g in record["gains"]]
    stats = record["simulated"]["statistics"]
    stat_rows = [[escape(key), " ".join(f"{v:.3f}" for v in stats["real"][key]),
                  " ".join(f"{v:.3f}" for v in stats["rendered"][key])]
                 for key in ("sky", "noise", "centre", "colour", "half_light_radius", "field_sources")
                 if key in stats["real"]]
    pretrain, timings = record["pretrain"], record["timings"]
    title = "deepsky experiment: sim-to-real"
    labels_option = ",".join(str(v) for v in record["labels"])
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="lead">{escape(record["model"])} on <code>{escape(record["task"])}</code>, pre-trained on '
        f"{record['simulated']['n']} GalSim galaxies rendered as Galaxy Zoo colour images "
        f"({pretrain['epochs']} epochs; final validation accuracy on simulations "
        f"{fmt(pretrain['final_val_accuracy'])}), then fine-tuned on real labels; beside it the same network "
        f"trained from scratch on the same images with the same settings. All runs are scored on "
        f"{describe_source(record['test_data'])}.</p>",
        "<h2>Held-out results</h2>", table(header, rows),
        '<figure><img src="figures/sim_to_real.png" alt="held-out metrics against real labels"><figcaption>'
        "Pre-training on simulations against training from scratch, as the number of real labels grows "
        "(log scale); the dotted line is the pre-trained network applied to real galaxies with no real label. "
        "Smaller label sets train for more epochs (sqrt of the size ratio) so that they take enough steps."
        "</figcaption></figure>",
        "<h2>Gain of pre-training (fine-tuned minus scratch)</h2>",
        table(["real labels"] + [escape(label) for _, label in SIM_TO_REAL_METRICS], gains),
        "<h2>Simulated against real pictures</h2>",
        "<p>Medians over images of the statistics the renderer was matched on (channels g, r, i; "
        "half-light radius: 10th, 50th, 90th percentile in pixels; field sources: mean number of other "
        "sources 8 sigma above the sky, and the fraction of images with any).</p>",
        table(["statistic", "real (training part)", "rendered simulations"], stat_rows),
    ]
    if examples is not None:
        body.append('<figure><img src="figures/examples.png" alt="rendered and real galaxies"><figcaption>'
                    "Rendered simulated galaxies (top) and held-out real Galaxy Zoo galaxies (bottom), "
                    "by class.</figcaption></figure>")
    body += [
        f"<p>Wall time {timings.get('total_seconds', 0) / 60:.1f} min.</p>",
        "<h2>Reproduce</h2>",
        f"<pre>deepsky experiment sim-to-real -o {escape(str(out))} --data {escape(record['data']['path'])} "
        f"--labels {escape(labels_option)} --epochs {record['epochs_all_labels']} --n {record['simulated']['n']}</pre>",
    ]
    return _page(out, title, body)
