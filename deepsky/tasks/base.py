"""What every task shares (:class:`Task`) and what cutout classifiers add.

A task names its data (a simulator or a reader), its default model, its
classes and metrics; the model it builds carries its own preprocessing, so
a saved run takes raw inputs in the units recorded in its data contract.
``train``, ``evaluate`` and ``predict`` talk to tasks only through the
methods of :class:`Task`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from deepsky.baselines import BASELINE_NAME
from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError


class Task:
    """A task: data in, the model it trains, metrics out (classification unless it says otherwise)."""

    name: str = ""
    description: str = ""
    classes: tuple[str, ...] = ()
    positive_class: str | None = None  # two-class tasks report p_<positive_class>
    default_model: str = ""
    default_train_size: int = 10000
    default_test_size: int = 2000
    default_epochs: int = 10
    default_batch_size: int = 64
    default_learning_rate: float = 5e-4
    augment: bool = False  # whether random rotations and flips of the input keep its class
    default_rotations: str = "dihedral"  # "any": any angle, with zoom and shift (deepsky.train.random_affine)
    default_zoom: float = 1.0
    default_shift_pixels: float = 0.0
    default_class_weight: str = "none"  # "balanced" for strongly imbalanced classes
    predict_dihedral_average: bool = False  # average predictions over the 8 rotations and flips
    default_views: int = 1  # regression: orientations evaluate and predict average (predict_outputs)
    validation_fraction: float = 0.1
    baseline_name: str = "classical baseline"
    paper: dict = {}
    objective: str = "classification"  # or "gaussian": regression with uncertainties (deepsky.train.fit)

    def __init__(self, **options):
        if options:
            raise DeepskyError(f"task {self.name!r} takes no options; received {', '.join(options)}")

    @property
    def options(self) -> dict:
        """The settings this task was created with, as ``tasks.get(name, **options)`` takes them."""
        return {}

    # -- data ----------------------------------------------------------------------
    def training_data(self, path=None, n=None, seed=0, progress=None, on_stage=None) -> tuple[Dataset, dict]:
        """The labelled data to train on and a record of where it came from (override)."""
        raise NotImplementedError

    def test_data(self, config: dict, path=None, n=None, progress=None, on_stage=None):
        """``(dataset, source, held_out)``: labelled data the run never trained on (override)."""
        raise NotImplementedError

    def simulated_test_size(self, config: dict, n: int | None = None) -> int:
        """Cutouts ``test_data`` simulates for a run with ``config`` when given no path and ``n``; 0 if it reads files."""
        return n or self.default_test_size

    def check_inputs(self, contract: dict, inputs: np.ndarray, source: str) -> None:
        """Refuse inputs a trained model cannot take, naming ``source`` (override)."""

    def read_inputs(self, inputs, contract: dict, catalog=None, units="auto"):
        """``(x, ids, valid, info)`` from the files ``deepsky predict`` is given (override).

        ``valid`` is None when every row is predicted, else a boolean mask of
        the rows with usable values (the others keep their row, unpredicted).
        """
        raise NotImplementedError

    def contract(self, data: Dataset) -> dict:
        """What a trained model expects of its input, recorded in the run directory."""
        return {"classes": list(self.classes)}

    # -- model ---------------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        """Width of the network's output layer: one per class."""
        return len(self.classes)

    def build_model(self, model_name: str, train: Dataset, **model_options):
        """The registered model ``model_name`` behind this task's preprocessing (override)."""
        raise NotImplementedError

    augment_targets = None  # regression: callable(targets, choice) giving targets of turned cutouts

    # -- classical baseline --------------------------------------------------------
    def baseline_state(self, train: Dataset) -> dict:
        """Arrays the baseline's features need besides the inputs (e.g. sky noise)."""
        return {}

    def baseline_features(self, inputs: np.ndarray, state: dict) -> np.ndarray:
        """(N, F) features the classical baseline learns from (override)."""
        raise NotImplementedError

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, labels: np.ndarray, probabilities: np.ndarray, objects: dict) -> dict:
        """Held-out metrics (override to add the paper's)."""
        return {"accuracy": float((probabilities.argmax(1) == labels).mean()), "n": int(len(labels))}


class ImageTask(Task):
    """What tasks on multi-band cutouts share: survey presets, simulated data, input checks, preprocessing."""

    input_pixels: int | None = None  # the centre the network sees; None: the whole cutout
    augment = True  # a cutout's class does not change with rotations and flips
    baseline_name = BASELINE_NAME
    default_survey = "sdss"

    def __init__(self, survey: str | None = None):
        from deepsky.simulate.surveys import get_survey

        self.survey = get_survey(survey or self.default_survey).name  # unknown names fail here

    @property
    def options(self):
        return {"survey": self.survey} if self.survey != self.default_survey else {}

    # -- data ----------------------------------------------------------------------
    def simulate(self, n: int, seed: int, progress: Callable[[int], None] | None = None) -> Dataset:
        """The task's simulated data set (override)."""
        raise NotImplementedError

    def test_seed(self, train_seed: int) -> int:
        """Seed of the default held-out test set: never the training seed."""
        return train_seed + 1_000_003

    def training_data(self, path=None, n=None, seed=0, progress=None, on_stage=None):
        """An HDF5 data set from ``path``, or a fresh simulation of ``n`` cutouts."""
        if path is not None:
            data = self.prepare(Dataset.load(path), str(path))
            source = {"path": str(Path(path).resolve()), "n": len(data)}
            return self.check_dataset(data, str(path)), source
        n = n or self.default_train_size
        data = self.prepare(self.simulate(n, seed, progress=progress), f"simulated {self.name}")
        return self.check_dataset(data, f"simulated {self.name}"), {"simulated": True, "n": n, "seed": seed}

    def prepare(self, data: Dataset, source: str) -> Dataset:
        """Derive what training needs from a loaded or simulated set (regression: the targets)."""
        return data

    def test_data(self, config, path=None, n=None, progress=None, on_stage=None):
        """``path`` (HDF5) or a simulation with a seed the training never saw."""
        stage = on_stage or (lambda text: None)
        if path is not None:
            stage(f"reading {path}")
            test = self.check_dataset(self.prepare(Dataset.load(path), str(path)), str(path))
            source = {"path": str(Path(path).resolve()), "n": len(test)}
            return test, source, source["path"] != config["data"].get("path")
        seed = self.test_seed(config["train"]["seed"])
        n = n or self.default_test_size
        stage(f"simulating {n} held-out test cutouts (seed {seed})")
        test = self.prepare(self.simulate(n, seed, progress=progress), f"simulated {self.name}")
        return test, {"simulated": True, "n": n, "seed": seed}, seed != config["train"]["seed"]

    def check_inputs(self, contract, inputs, source):
        """Refuse cutouts whose shape or band count differs from the model's."""
        height, width = contract["cutout_pixels"]
        bands = contract["bands"]
        if inputs.ndim != 4:
            raise DeepskyError(f"{source}: cutouts have shape {inputs.shape}; expected (N, {height}, {width}, {len(bands)})")
        if inputs.shape[-1] != len(bands):
            raise DeepskyError(
                f"{source}: cutouts have {inputs.shape[-1]} bands; the model expects {len(bands)} ({','.join(bands)})"
            )
        if inputs.shape[1:3] != (height, width):
            raise DeepskyError(
                f"{source}: cutouts are {inputs.shape[1]}x{inputs.shape[2]} pixels; the model expects {height}x{width}"
            )

    def read_inputs(self, inputs, contract, catalog=None, units="auto"):
        """A cutout stack (``.h5``/``.npy``) or FITS images with a catalogue of positions."""
        from deepsky.data.readers import read_cutout_inputs

        images, ids, info = read_cutout_inputs(inputs, contract, catalog=catalog, units=units)
        return images, ids, None, info

    def check_dataset(self, data: Dataset, source: str) -> Dataset:
        """Refuse data this task cannot use, with a message naming ``source``."""
        if len(data) == 0:
            raise DeepskyError(f"{source}: the data set is empty")
        if data.labels is None:
            raise DeepskyError(f"{source}: the data set has no labels")
        finite = np.isfinite(data.images).all(axis=(1, 2, 3))
        if not finite.all():
            rows = np.flatnonzero(~finite)[:10].tolist()
            raise DeepskyError(f"{source}: cutouts {rows} have NaN or infinite pixels; mask or drop them")
        return data

    def contract(self, data: Dataset) -> dict:
        """What a trained model expects of its input, recorded in the run directory."""
        _, height, width, bands = data.images.shape
        return {
            "bands": data.meta.get("bands", [f"band{i}" for i in range(bands)]),
            "cutout_pixels": [height, width],
            "pixel_scale_arcsec": data.meta.get("pixel_scale_arcsec"),
            "units": data.meta.get("units", "unknown"),
            "survey": (data.meta.get("survey") or {}).get("name"),
        }

    # -- model ---------------------------------------------------------------------
    def preprocessing(self, images: np.ndarray) -> list:
        """Keras layers that bring raw cutouts to what the network learns from.

        Centre crop to ``input_pixels``; asinh stretch softened at each band's
        sky noise (measured on the training images' borders); standardisation
        with the training set's per-band mean and variance.
        """
        import keras

        from deepsky.layers import AsinhStretch

        layers = []
        height = images.shape[1]
        if self.input_pixels and self.input_pixels < height:
            margin = (height - self.input_pixels) // 2
            layers.append(keras.layers.Cropping2D(margin, name="centre_crop"))
            images = images[:, margin : height - margin, margin : height - margin]
        noise = border_noise(images)
        stretched = np.arcsinh(images[:4000] / noise)
        layers.append(AsinhStretch(noise.tolist(), name="asinh_stretch"))
        layers.append(
            keras.layers.Normalization(
                axis=-1,
                mean=stretched.mean(axis=(0, 1, 2)).tolist(),
                variance=stretched.var(axis=(0, 1, 2)).tolist(),
                name="standardise",
            )
        )
        return layers

    def build_model(self, model_name: str, train: Dataset, **model_options):
        """The registered model ``model_name`` behind this task's preprocessing."""
        from deepsky import models
        from deepsky.models.compose import with_preprocessing

        _, height, width, bands = train.images.shape
        side = self.input_pixels or height
        core = models.create(model_name, input_shape=(side, side, bands), num_classes=self.num_outputs,
                             **model_options)
        return with_preprocessing(core, self.preprocessing(train.images), (height, width, bands), name=core.name)

    # -- classical baseline --------------------------------------------------------
    def baseline_state(self, train):
        """The training cutouts' sky noise per band, which softens the baseline's magnitudes."""
        return {"softening": border_noise(train.images)}

    def baseline_features(self, inputs, state):
        """Aperture colours, concentration and size of each cutout."""
        from deepsky.baselines import cutout_features

        return cutout_features(inputs, state["softening"])


class ImageClassificationTask(ImageTask):
    """Base class of tasks that classify multi-band cutouts."""

    def check_dataset(self, data: Dataset, source: str) -> Dataset:
        """Refuse data this task cannot use, with a message naming ``source``."""
        data = super().check_dataset(data, source)
        if data.meta.get("classes") and list(data.meta["classes"]) != list(self.classes):
            raise DeepskyError(
                f"{source}: classes {data.meta['classes']} do not match task {self.name!r} ({list(self.classes)})"
            )
        bad = np.flatnonzero((data.labels < 0) | (data.labels >= len(self.classes)))
        if bad.size:
            raise DeepskyError(f"{source}: labels outside 0..{len(self.classes) - 1} at rows {bad[:10].tolist()}")
        return data

    def contract(self, data: Dataset) -> dict:
        return {"classes": list(self.classes), **super().contract(data)}


def border_noise(images: np.ndarray, width: int = 4) -> np.ndarray:
    """Per-band sky noise (image units) from cutout borders: median of robust MAD sigmas."""
    border = np.concatenate(
        [images[:, :width].reshape(len(images), -1, images.shape[-1]),
         images[:, -width:].reshape(len(images), -1, images.shape[-1])], axis=1
    )
    mad = np.median(np.abs(border - np.median(border, axis=1, keepdims=True)), axis=1)
    noise = 1.4826 * np.median(mad, axis=0)
    return np.where(noise > 0, noise, 1.0).astype(np.float32)
