"""Tasks that classify catalogue rows of magnitudes (no images).

The labelled catalogue is split once, by a seeded stratified draw, into a
training part and a held-out test part (``test_fraction``); training never
sees the test rows, and ``evaluate`` scores exactly them. Rows with missing,
non-finite or placeholder magnitudes are dropped from both and counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.metrics import multiclass_metrics
from deepsky.tasks.base import Headline, Task


class CatalogueClassificationTask(Task):
    """Base class of tasks that classify objects from their catalogue magnitudes."""

    bands: tuple[str, ...] = ()
    class_column: str = "class"
    test_fraction: float = 0.2
    baseline_name = "random forest on magnitudes and colours"
    headline = (Headline("accuracy", "Accuracy"), Headline("macro_f1", "Macro-averaged F1"),
                Headline("log_loss", "Log loss"), Headline("n", "Test objects", digits=0))

    def default_data_path(self) -> Path | None:
        """The catalogue used when ``--data`` is not given (override), or None."""
        return None

    # -- data ----------------------------------------------------------------------
    def read_labelled(self, path, on_stage=None) -> tuple[Dataset, dict]:
        """All usable labelled rows of the catalogue at ``path`` (or the default one)."""
        from deepsky.data.photometry import load_photometry

        stage = on_stage or (lambda text: None)
        path = path or self.default_data_path()
        if path is None:
            raise DeepskyError(f"task {self.name!r} has no built-in data here; pass --data CATALOG.csv")
        photometry = load_photometry(path, self.bands, self.class_column)
        known = np.isin(photometry.classes, self.classes)
        if not known.any():
            raise DeepskyError(
                f"{path}: no row has a class in {list(self.classes)} (column {self.class_column!r})"
            )
        keep = photometry.valid & known
        dropped = {"unusable_magnitudes": int((~photometry.valid).sum()), "unknown_class": int((~known).sum())}
        if dropped["unusable_magnitudes"] or dropped["unknown_class"]:
            stage(f"{path}: dropped {dropped['unusable_magnitudes']} rows with missing or placeholder magnitudes "
                  f"and {dropped['unknown_class']} with a class other than {', '.join(self.classes)}")
        labels = np.array([self.classes.index(c) for c in photometry.classes[keep]], dtype=np.int64)
        data = Dataset(
            inputs=photometry.magnitudes[keep],
            labels=labels,
            objects={"row": np.flatnonzero(keep), **{f"{b}_mag": photometry.magnitudes[keep, k]
                                                     for k, b in enumerate(self.bands)}},
            meta={"task": self.name, "classes": list(self.classes), "bands": list(self.bands), "units": "mag"},
        )
        if len(data) == 0:
            raise DeepskyError(f"{path}: no usable labelled rows")
        return data, {"path": str(Path(path).resolve()), "n_rows": int(len(photometry.valid)),
                      "dropped": dropped}

    def test_rows(self, labels: np.ndarray, seed: int) -> np.ndarray:
        """Boolean mask of the held-out rows: ``test_fraction`` of each class, seeded."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
        test = np.zeros(len(labels), bool)
        for k in np.unique(labels):
            members = np.flatnonzero(labels == k)
            test[rng.permutation(members)[: int(round(self.test_fraction * len(members)))]] = True
        return test

    def training_data(self, path=None, n=None, seed=0, progress=None, on_stage=None):
        """The catalogue's training part (``n`` rows of it when given)."""
        data, source = self.read_labelled(path, on_stage)
        train = data.subset(~self.test_rows(data.labels, seed))
        if n:
            train = train.subset(np.sort(np.random.default_rng(seed).permutation(len(train))[:n]))
        return train, {**source, "n": len(train), "split_seed": seed, "test_fraction": self.test_fraction}

    def test_data(self, config, path=None, n=None, progress=None, on_stage=None):
        """The held-out part of the training catalogue, or all of another labelled catalogue."""
        stage = on_stage or (lambda text: None)
        trained_on = config["data"].get("path")
        if path is None or (trained_on and Path(path).resolve() == Path(trained_on)):
            data, source = self.read_labelled(trained_on, on_stage)
            seed = config["data"].get("split_seed", config["train"]["seed"])
            test = data.subset(self.test_rows(data.labels, seed))
            stage(f"scoring the {len(test)} held-out rows of {trained_on}")
            return test, {**source, "n": len(test), "part": "held-out test rows"}, True
        data, source = self.read_labelled(path, on_stage)
        return data, {**source, "n": len(data)}, True

    def check_inputs(self, contract, inputs, source):
        if inputs.ndim != 2 or inputs.shape[1] != len(contract["bands"]):
            raise DeepskyError(f"{source}: expected {len(contract['bands'])} magnitudes per row "
                               f"({', '.join(contract['bands'])}); received shape {inputs.shape}")

    def read_inputs(self, inputs, contract, catalog=None, units="auto"):
        """One catalogue: every row kept, rows with unusable magnitudes flagged."""
        from deepsky.data.photometry import load_photometry

        if len(inputs) != 1:
            raise DeepskyError(f"{inputs[0]}: give one catalogue (CSV, FITS or Parquet) of {', '.join(contract['bands'])}")
        photometry = load_photometry(inputs[0], contract["bands"])
        return photometry.magnitudes, photometry.ids, photometry.valid, {"flags": photometry.flags}

    def read_table(self, table, contract, source):
        """:meth:`read_inputs` of one part of a catalogue, already read (an astropy Table; ``source`` names it)."""
        from deepsky.data.photometry import photometry_from_table

        photometry = photometry_from_table(table, contract["bands"], source=source)
        return photometry.magnitudes, photometry.ids, photometry.valid, {"flags": photometry.flags}

    def contract(self, data):
        return {"classes": list(self.classes), "layout": "tables", "bands": list(self.bands), "units": "mag",
                "inputs": "one row of magnitudes per object"}

    # -- model ---------------------------------------------------------------------
    def build_model(self, model_name, train, **model_options):
        """Magnitudes -> magnitudes and adjacent colours -> standardised -> the model."""
        import keras

        from deepsky.layers.colours import AdjacentColours
        from deepsky.models.compose import with_preprocessing

        features = _with_colours(train.images)
        core = self.create_model(model_name, input_shape=(features.shape[1],), num_classes=len(self.classes),
                                  **model_options)
        preprocessing = [
            AdjacentColours(name="colours"),
            keras.layers.Normalization(axis=-1, mean=features.mean(0).tolist(), variance=features.var(0).tolist(),
                                       name="standardise"),
        ]
        return with_preprocessing(core, preprocessing, (train.images.shape[1],), name=core.name)

    # -- classical baseline --------------------------------------------------------
    def baseline_features(self, inputs, state):
        """Magnitudes and the colours of adjacent bands."""
        return _with_colours(inputs)

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, test, probabilities):
        return multiclass_metrics(test.labels, probabilities, self.classes)


def _with_colours(magnitudes: np.ndarray) -> np.ndarray:
    return np.concatenate([magnitudes, magnitudes[:, :-1] - magnitudes[:, 1:]], axis=1).astype(np.float32)
