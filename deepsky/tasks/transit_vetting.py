"""Transit vetting: is a TESS threshold-crossing event a planet (or eclipsing binary) or junk? (Yu et al. 2019)

Astronet-Triage's question: of the periodic dips a pipeline flags, which
are astrophysical transits worth a look (planet candidates and eclipsing
binaries) and which are junk (systematics, scattered light, noise). The
network is AstroNet's two columns over the phase-folded global and local
views; the data are the real TESS records of sectors 1-5 that Yu et al.
trained on (8 training shards and the validation shard scored here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.data.store import Dataset, split
from deepsky.errors import DeepskyError
from deepsky.metrics import binary_metrics, ranking_metrics
from deepsky.tasks.base import Headline, Task
from deepsky.tasks.registry import register_task

DATA_FOLDER = "tess_astronet_triage"
POSITIVE_DISPOSITIONS = ("PC", "EB")  # planet candidates and eclipsing binaries: Yu et al.'s triage positives
TRAIN_PREFIX, HELD_OUT_PREFIXES = "train", ("val", "test")
RECALL_PRECISION = 0.99  # recall at 99% precision, the operating point vetting papers quote


@register_task
class TransitVetting(Task):
    name = "transit-vetting"
    description = ("Yu et al. (2019) triage of TESS transit signals: planet candidate or eclipsing binary vs junk, "
                   "AstroNet on phase-folded global and local views (real TESS records)")
    classes = ("junk", "planet")
    positive_class = "planet"  # as in Yu et al.'s triage: planet candidates and eclipsing binaries
    default_model = "astronet"
    default_epochs = 30
    default_batch_size = 64
    default_learning_rate = 1e-4
    augment = True  # a transit reads the same backwards in time
    baseline_name = "random forest on the binned views"
    default_data_description = "reading the TESS triage records"
    paper = {
        "citation": "Yu, L. et al. 2019, AJ 158, 25 (Astronet-Triage)",
        "data": "TESS sectors 1-5 threshold-crossing events (MIT Quick Look Pipeline); global view 201 bins, "
                "local view 61 bins; planet candidates and eclipsing binaries against junk",
        "average_precision": 0.970,
        "accuracy": 0.974,
        "note": "Yu et al. quote an average precision of 97.0% and an accuracy of 97.4% on their validation set, "
                "for an ensemble of 10 models with averaged scores.",
    }
    headline = (
        Headline("average_precision", "Average precision", paper=0.970),
        Headline("accuracy", "Accuracy", paper=0.974),
        Headline("roc_auc", "ROC AUC"),
        Headline("recall_at_precision", f"Recall at {RECALL_PRECISION:.0%} precision"),
        Headline("purity_planet", "Precision (p >= 0.5)"),
        Headline("completeness_planet", "Recall (p >= 0.5)"),
        Headline("recall_by_disposition.PC", "Planet candidates recovered (p >= 0.5)"),
        Headline("recall_by_disposition.EB", "Eclipsing binaries recovered (p >= 0.5)"),
        Headline("n", "Test signals", digits=0),
    )

    # -- data ----------------------------------------------------------------------
    def data_folder(self, path=None) -> Path:
        """``path``, or the shared TESS triage records when present."""
        if path is not None:
            return Path(path)
        from deepsky.paths import shared_data_dir

        folder = shared_data_dir(DATA_FOLDER)
        if folder is None:
            raise DeepskyError(f"task {self.name!r} trains on TESS TFRecord files; pass --data FOLDER "
                               f"(files named train-* to train on, val-* or test-* held out)")
        return folder

    def _files(self, path) -> tuple[list[Path], list[Path]]:
        """(training files, held-out files) at ``path``: a folder's train-* and val-*/test-* files, or one file."""
        from deepsky.data.views import record_files

        files = record_files(path)
        if not Path(path).is_dir():
            return files, []
        train = [f for f in files if f.name.startswith(TRAIN_PREFIX)]
        held_out = [f for f in files if f.name.startswith(HELD_OUT_PREFIXES)]
        if not train:
            raise DeepskyError(f"{path}: no TFRecord files named {TRAIN_PREFIX}-*; name the training shards so, "
                               f"and the held-out ones val-* or test-*")
        return train, held_out

    def labelled(self, files) -> Dataset:
        """The records of ``files`` with labels: 1 for PC or EB, 0 for the other dispositions."""
        from deepsky.data.views import read_views

        data = read_views(files)
        dispositions = data.objects.get("disposition")
        if dispositions is None or (dispositions == "").any():
            row = 0 if dispositions is None else int(np.flatnonzero(dispositions == "")[0])
            raise DeepskyError(f"{data.objects['file'][row]}: record {data.objects['record'][row]} has no "
                               f"Disposition; training and scoring need labelled records")
        data.labels = np.isin(dispositions, POSITIVE_DISPOSITIONS).astype(np.int64)
        data.meta["classes"] = list(self.classes)
        return self._check(data)

    def _check(self, data: Dataset) -> Dataset:
        for name, array in data.inputs.items():
            bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DeepskyError(f"{data.objects['file'][row]}: record {data.objects['record'][row]} has NaN or "
                                   f"infinite values in its {name}")
        return data

    def training_data(self, path=None, n=None, seed=0, progress=None, on_stage=None):
        """The training shards, less every signal of a star that is in the held-out shards."""
        stage = on_stage or (lambda text: None)
        folder = self.data_folder(path)
        train_files, held_out_files = self._files(folder)
        data = self.labelled(train_files)
        dropped = 0
        if held_out_files:
            from deepsky.data.views import read_views

            held_out_stars = read_views(held_out_files).objects.get("tic_id")
            if held_out_stars is not None and "tic_id" in data.objects:
                shared = np.isin(data.objects["tic_id"], held_out_stars)
                dropped = int(shared.sum())
                data = data.subset(~shared)
                stage(f"left out {dropped} training signals of stars that are in the held-out shards")
        if n:
            data = data.subset(np.sort(np.random.default_rng(seed).permutation(len(data))[:n]))
        if len(data) == 0:
            raise DeepskyError(f"{folder}: no training records left")
        return data, {"path": str(folder.resolve()), "files": [f.name for f in train_files],
                      "held_out_files": [f.name for f in held_out_files], "n": len(data),
                      "left_out_held_out_stars": dropped}

    def test_data(self, config, path=None, n=None, progress=None, on_stage=None):
        """The held-out shards of the training folder, or the records at ``path``."""
        stage = on_stage or (lambda text: None)
        trained_on = config["data"].get("path")
        if path is None or (Path(path).is_dir() and Path(path).resolve() == Path(trained_on or "")):
            _, files = self._files(trained_on)
            if not files:
                raise DeepskyError(f"{trained_on}: no held-out shards (val-* or test-*); pass --data FILES to score")
            part = "held-out shards"
        elif Path(path).is_dir():
            train_files, held_out_files = self._files(path)
            files, part = held_out_files or train_files, "given records"
        else:
            files, part = [Path(path)], "given records"
        stage(f"reading {len(files)} record files")
        test = self.labelled(files)
        if n:
            test = test.subset(np.sort(np.random.default_rng(0).permutation(len(test))[:n]))
        trained_files = {str(Path(trained_on or "") / name) for name in config["data"].get("files", [])}
        held_out = not any(str(Path(f).resolve()) in trained_files for f in files)
        return test, {"path": str(Path(files[0]).parent.resolve()), "files": [Path(f).name for f in files],
                      "n": len(test), "part": part}, held_out

    def validation_split(self, data, seed):
        """By star: every signal of a star is on one side, so validation never sees a trained star."""
        return split(len(data), self.validation_fraction, seed, groups=data.objects.get("tic_id"))

    def augmentation(self, config):
        from deepsky.data.augment import series_augmentation

        return series_augmentation(reverse=True)

    def contract(self, data):
        return {"classes": list(self.classes), "layout": "series",
                "input_shape": {name: list(array.shape[1:]) for name, array in data.inputs.items()},
                "units": data.meta.get("units"), "positive_dispositions": list(POSITIVE_DISPOSITIONS)}

    def check_inputs(self, contract, inputs, source):
        expected = contract["input_shape"]
        got = {name: list(np.shape(array)[1:]) for name, array in inputs.items()}
        if got != expected:
            raise DeepskyError(f"{source}: views have {got} bins per signal; the model expects {expected}")

    def read_inputs(self, inputs, contract, catalog=None, units="auto"):
        """TFRecord files (one row per record, in order, with its catalogue values) or light-curve files.

        Light curves (Kepler/K2/TESS FITS, CSV) are detrended, searched with
        box least squares and folded: one row per signal found, with its
        period, epoch, duration, depth and SNR; signals with fewer than two
        transits observed are flagged, not scored.
        """
        from deepsky.data.lightcurves import LIGHT_CURVE_SUFFIXES, light_curve_signals
        from deepsky.data.views import read_views, record_files

        curves = [Path(p).suffix.lower() in LIGHT_CURVE_SUFFIXES for p in inputs]
        if any(curves):
            if not all(curves):
                raise DeepskyError(f"{inputs[curves.index(False)]}: give light curves (FITS, CSV) or TFRecord files, "
                                   "not both in one call")
            bins = {name: shape[0] for name, shape in contract["input_shape"].items()}
            views, rows = light_curve_signals(inputs, bins["global_view"], bins["local_view"])
            flags = rows.pop("flag")
            targets = rows["target"]
            ids = np.array([f"{target}:{int((targets[:i] == target).sum())}" for i, target in enumerate(targets)])
            return views, ids, flags == "", {"units": contract.get("units"), "columns": rows, "flags": flags}
        files = [f for path in inputs for f in record_files(path)]
        data = self._check(read_views(files))
        ids = np.array([f"{Path(f).name}:{r}" for f, r in zip(data.objects["file"], data.objects["record"])])
        columns = {name: data.objects[name] for name in ("tic_id", "period_days", "epoch_btjd", "duration",
                                                         "depth_ppm", "snr", "disposition") if name in data.objects}
        return data.inputs, ids, None, {"units": data.meta["units"], "columns": columns}

    # -- model ---------------------------------------------------------------------
    def build_model(self, model_name, train, **model_options):
        """The model on the two views as they come (already median 0, transit minimum -1)."""

        shapes = {name: tuple(array.shape[1:]) for name, array in train.inputs.items()}
        return self.create_model(model_name, input_shape=shapes, num_classes=len(self.classes), **model_options)

    # -- classical baseline --------------------------------------------------------
    def baseline_features(self, inputs, state):
        """The local view, the global view in 3-bin means, and the deepest dip away from the transit (a secondary)."""
        local = inputs["local_view"][..., 0]
        glob = inputs["global_view"][..., 0]
        bins = glob.shape[1] // 3 * 3
        coarse = glob[:, :bins].reshape(len(glob), -1, 3).mean(axis=2)
        centre, width = glob.shape[1] // 2, max(glob.shape[1] // 10, 1)
        away = np.concatenate([glob[:, : centre - width], glob[:, centre + width + 1 :]], axis=1)
        summary = np.stack([away.min(1), away.std(1), local.std(1), np.abs(np.diff(local, axis=1)).mean(1)], 1)
        return np.concatenate([local, coarse, summary], axis=1).astype(np.float32)

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, test, predicted):
        """Average precision, accuracy, ROC AUC, recall at 99% precision, and recall per disposition."""
        scores = np.asarray(predicted)[:, 1]
        out = binary_metrics(test.labels, scores, self.classes)
        out.update(ranking_metrics(test.labels, scores, RECALL_PRECISION))
        dispositions = test.objects.get("disposition")
        if dispositions is not None:
            out["recall_by_disposition"] = {
                str(d): float((scores[dispositions == d] >= 0.5).mean()) for d in np.unique(dispositions)}
            out["n_by_disposition"] = {str(d): int((dispositions == d).sum()) for d in np.unique(dispositions)}
        return out

    def figures(self):
        from deepsky.report.figures import FigureSpec
        from deepsky.report.roc import plot_precision_recall

        return [FigureSpec(
            "precision_recall", "Precision and recall",
            "Yu et al.'s figure of merit: the precision-recall curve of the network and the random forest on the "
            "held-out TESS signals, with the average precision (the area under the curve) and the recall kept at "
            "99% precision; Yu et al. report AP 97.0% for their ensemble of 10.", plot_precision_recall)]
