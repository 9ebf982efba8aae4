"""What every task shares (:class:`Task`) and what cutout classifiers add.

A task names its data (a simulator or a reader), its default model, its
classes and metrics; the model it builds carries its own preprocessing, so
a saved run takes raw inputs in the units recorded in its data contract.
``train``, ``evaluate`` and ``predict`` talk to tasks only through the
methods of :class:`Task`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from deepsky.baselines import BASELINE_NAME
from deepsky.data.augment import Augmentation
from deepsky.data.store import CHUNK_ROWS, Dataset, DatasetFile, split
from deepsky.errors import DeepskyError
from deepsky.objectives import Classification, Objective

STATISTICS_ROWS = 20_000  # training cutouts the preprocessing's noise and standardisation are measured on


@dataclass(frozen=True)
class Headline:
    """A figure the CLI prints and the report's first table shows: where it is in ``metrics.json`` and its label.

    ``key`` is a dotted path (``"roc_auc"``, ``"comparison.focus_scatter_ratio.mag"``);
    ``paper`` the published value beside it, when there is one.
    """

    key: str
    label: str
    paper: float | None = None
    digits: int = 4

    def value(self, metrics: dict):
        """The value at ``key`` in ``metrics``, or None."""
        for part in self.key.split("."):
            if not isinstance(metrics, dict) or part not in metrics:
                return None
            metrics = metrics[part]
        return metrics


class Task:
    """A task: data in, the model it trains, metrics out; every hook has a default here.

    ``objective`` (:mod:`deepsky.objectives`) decides how the network is
    trained, scored and read out; the task supplies data, model, metrics and
    what the CLI and report show (``headline``, :meth:`figures`,
    :meth:`report_sections`).
    """

    name: str = ""
    description: str = ""
    objective: Objective = Classification()
    classes: tuple[str, ...] = ()
    positive_class: str | None = None  # two-class tasks report p_<positive_class>
    default_model: str = ""
    default_train_size: int = 10000
    default_test_size: int = 2000
    default_epochs: int = 10
    default_batch_size: int = 64
    default_learning_rate: float = 5e-4
    augment: bool = False  # whether the task's augmentation (e.g. rotations and flips) keeps the targets' meaning
    default_rotations: str = "dihedral"  # cutouts: "any" for any angle, with zoom and shift
    default_zoom: float = 1.0
    default_shift_pixels: float = 0.0
    default_class_weight: str = "none"  # "balanced" for strongly imbalanced classes
    default_beta1: float = 0.9  # AdamW's first-moment decay
    default_schedule: str = "warmup-cosine"  # the learning rate's course (deepsky.train.SCHEDULES)
    validation_fraction: float = 0.1
    baseline_name: str = "classical baseline"
    default_data_description: str = "reading the default data"
    paper: dict = {}
    headline: tuple[Headline, ...] = (Headline("accuracy", "Accuracy"), Headline("n", "Test objects", digits=0))
    predict_dihedral_average: bool = False  # cutouts: average predictions over the 8 rotations and flips
    # tasks of another objective whose runs ``deepsky finetune --task`` may start this one from (same inputs)
    initialised_from: tuple[str, ...] = ()

    def __init__(self, **options):
        if options:
            raise DeepskyError(f"task {self.name!r} takes no options; received {', '.join(options)}")

    @property
    def options(self) -> dict:
        """The settings this task was created with, as ``tasks.get(name, **options)`` takes them."""
        return {}

    # -- data ----------------------------------------------------------------------
    def simulate(self, n: int, seed: int, progress: Callable[[int], None] | None = None) -> Dataset:
        """The task's simulated data set (tasks with a simulator override this)."""
        raise DeepskyError(f"task {self.name!r} has no simulator; it trains on files (--data)")

    def training_data(self, path=None, n=None, seed=0, progress=None, on_stage=None) -> tuple[Dataset, dict]:
        """The labelled data to train on and a record of where it came from (override)."""
        raise NotImplementedError

    def test_data(self, config: dict, path=None, n=None, progress=None, on_stage=None):
        """``(dataset, source, held_out)``: labelled data the run never trained on (override)."""
        raise NotImplementedError

    def simulated_test_size(self, config: dict, n: int | None = None) -> int:
        """Objects ``test_data`` simulates for a run with ``config`` when given no path and ``n``; 0 if it reads files."""
        return n or self.default_test_size

    def real_data(self) -> Dataset | None:
        """Labelled real survey data scored beside the held-out set, where it is at hand; None otherwise."""
        return None

    def check_inputs(self, contract: dict, inputs, source: str) -> None:
        """Refuse inputs a trained model cannot take, naming ``source`` (override)."""

    def read_inputs(self, inputs, contract: dict, catalog=None, units="auto"):
        """``(x, ids, valid, info)`` from the files ``deepsky predict`` is given (override).

        ``valid`` is None when every row is predicted, else a boolean mask of
        the rows with usable values (the others keep their row, unpredicted).
        """
        raise NotImplementedError

    def input_chunks(self, inputs, contract: dict, catalog=None, units="auto", rows: int = CHUNK_ROWS):
        """``read_inputs``' ``(x, ids, valid, info)`` in consecutive parts of at most ``rows`` objects.

        ``deepsky predict`` holds one part in memory at a time. This default
        reads everything as one part; tasks whose files can be read by
        slices (stacks, data sets) override it.
        """
        yield self.read_inputs(inputs, contract, catalog=catalog, units=units)

    def finish_predictions(self, model, columns: dict, info: dict, contract: dict) -> dict:
        """The table ``deepsky predict`` writes, from the objective's per-object columns (override: e.g. a search's
        triggers from per-window scores); ``info`` is what :meth:`read_inputs` said of the inputs."""
        return columns

    def contract(self, data: Dataset) -> dict:
        """What a trained model expects of its input, recorded in the run directory."""
        return {"classes": list(self.classes), "layout": data.layout}

    def validation_split(self, data: Dataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, validation) rows of the training data: a seeded ``validation_fraction`` (override to keep groups whole)."""
        return split(len(data), self.validation_fraction, seed)

    def augmentation(self, config) -> Augmentation | None:
        """The augmentation of training batches (None: none); ``config.augment`` switches it off."""
        return None

    def calibrate(self, model, validation: Dataset) -> dict | None:
        """After training: settings measured on the validation set that join the run's contract (e.g. sigma
        scales that make 68% intervals hold 68%); None for none (override)."""
        return None

    def epoch_rows(self, train: Dataset, epoch: int, epochs: int) -> np.ndarray | None:
        """The rows of ``train`` that epoch ``epoch`` (from 0) of ``epochs`` learns from: a curriculum (None: all)."""
        return None

    # -- model ---------------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        """Width of the network's output layer: one per class."""
        return len(self.classes)

    # options a registered model gets in this task unless the user gives others: {model name: {option: value}}
    model_defaults: dict = {}

    def create_model(self, model_name: str, **options):
        """:func:`deepsky.models.create`, this task's :attr:`model_defaults` for ``model_name`` under ``options``."""
        from deepsky import models

        return models.create(model_name, **{**self.model_defaults.get(model_name, {}), **options})

    def build_model(self, model_name: str, train: Dataset, **model_options):
        """The registered model ``model_name`` behind this task's preprocessing (override)."""
        raise NotImplementedError

    def predict_outputs(self, model, inputs, views: int | None = None, batch_size: int = 256, progress=None):
        """The network's outputs for ``inputs``, over the 8 turns when ``predict_dihedral_average`` (override for more)."""
        from deepsky.predict import predict_array

        return predict_array(model, inputs, batch_size=batch_size, progress=progress,
                             dihedral_average=self.predict_dihedral_average,
                             float32_head=self.objective.float32_head)

    def decode(self, outputs: np.ndarray, inputs, contract: dict | None = None):
        """Physical values from network outputs (regression); classifiers' outputs are their probabilities."""
        return outputs

    # -- classical baseline --------------------------------------------------------
    def baseline_state(self, train: Dataset) -> dict:
        """Arrays the baseline's features need besides the inputs (e.g. sky noise)."""
        return {}

    def baseline_features(self, inputs, state: dict) -> np.ndarray | None:
        """(N, F) features a random forest learns from at training time, or None for no such baseline."""
        return None

    def baseline_predictions(self, test: Dataset, progress=None):
        """A per-object classical method's predictions on ``test`` (a fit, a filter), or None for none."""
        return None

    def baseline_count(self, n: int) -> int:
        """How many of ``n`` held-out objects :meth:`baseline_predictions` measures (a slow fit may take the first few)."""
        return n

    # -- evaluation and what is shown ----------------------------------------------
    def metrics(self, test: Dataset, predicted) -> dict:
        """Held-out metrics of ``predicted`` (the objective's decoded outputs) on ``test`` (override)."""
        predicted = np.asarray(predicted)
        return {"accuracy": float((predicted.argmax(1) == test.labels).mean()), "n": int(len(test))}

    def extra_metrics(self, model, test: Dataset, metrics: dict, stage) -> dict:
        """More held-out figures after the standard ones and the baseline's (override)."""
        return {}

    def figures(self) -> list:
        """The task's own report figures (FigureSpec list), shown after the objective's."""
        return []

    def report_sections(self, inputs) -> list[str]:
        """The task's own HTML sections of the report, after the objective's."""
        return []


class SimulatedTask(Task):
    """Tasks whose default data is a simulation, in any layout (cutouts, series, tables); an HDF5 set may replace it.

    A new simulated task needs a name, its classes (or objective), a default
    model and :meth:`simulate`; data checks, the held-out set (a seed the
    training never saw), the data contract, prediction input and the model's
    standardisation come from here.
    """

    default_data_description = "simulating training data"

    def simulate(self, n: int, seed: int, progress: Callable[[int], None] | None = None) -> Dataset:
        """The task's simulated data set (override)."""
        raise NotImplementedError

    def simulate_test(self, n: int, seed: int, progress: Callable[[int], None] | None = None) -> Dataset:
        """The held-out simulation (override where the paper tests on other conditions than it trains on)."""
        return self.simulate(n, seed, progress=progress)

    def test_seed(self, train_seed: int) -> int:
        """Seed of the default held-out test set: never the training seed."""
        return train_seed + 1_000_003

    def training_data(self, path=None, n=None, seed=0, progress=None, on_stage=None):
        """An HDF5 data set from ``path``, or a fresh simulation of ``n`` objects."""
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
        stage(f"simulating {n} held-out test objects (seed {seed})")
        test = self.prepare(self.simulate_test(n, seed, progress=progress), f"simulated {self.name}")
        return test, {"simulated": True, "n": n, "seed": seed}, seed != config["train"]["seed"]

    def check_dataset(self, data: Dataset, source: str) -> Dataset:
        """Refuse data this task cannot use, with a message naming ``source``."""
        if len(data) == 0:
            raise DeepskyError(f"{source}: the data set is empty")
        if data.labels is None:
            raise DeepskyError(f"{source}: the data set has no labels")
        arrays = data.inputs.items() if isinstance(data.inputs, dict) else [("inputs", data.inputs)]
        for name, array in arrays:
            # a slice at a time: the inputs may be shards larger than memory
            finite = np.concatenate([np.isfinite(np.asarray(array[start : start + CHUNK_ROWS]).reshape(
                min(CHUNK_ROWS, len(array) - start), -1)).all(axis=1) for start in range(0, len(array), CHUNK_ROWS)])
            if not finite.all():
                rows = np.flatnonzero(~finite)[:10].tolist()
                what = "cutouts" if data.layout == "cutouts" else f"{name} of objects"
                raise DeepskyError(f"{source}: {what} {rows} have NaN or infinite values; mask or drop them")
        if self.classes:
            if data.meta.get("classes") and list(data.meta["classes"]) != list(self.classes):
                raise DeepskyError(
                    f"{source}: classes {data.meta['classes']} do not match task {self.name!r} ({list(self.classes)})")
            bad = np.flatnonzero((data.labels < 0) | (data.labels >= len(self.classes)))
            if bad.size:
                raise DeepskyError(f"{source}: labels outside 0..{len(self.classes) - 1} at rows {bad[:10].tolist()}")
        return data

    def contract(self, data: Dataset) -> dict:
        """The layout and the shape of one object's inputs (and the classes), recorded in the run directory."""
        shapes = ({name: list(array.shape[1:]) for name, array in data.inputs.items()}
                  if isinstance(data.inputs, dict) else list(data.inputs.shape[1:]))
        return {"classes": list(self.classes), "layout": data.layout, "input_shape": shapes,
                "units": data.meta.get("units", "unknown")}

    def check_inputs(self, contract, inputs, source):
        """Refuse inputs whose shape per object differs from the model's."""
        expected = contract["input_shape"]
        got = ({name: list(np.shape(array)[1:]) for name, array in inputs.items()}
               if isinstance(inputs, dict) else list(np.shape(inputs)[1:]))
        if got != expected:
            raise DeepskyError(f"{source}: inputs have shape {got} per object; the model expects {expected} "
                               f"({contract['layout']})")

    def read_inputs(self, inputs, contract, catalog=None, units="auto"):
        """One deepsky HDF5 data set (ids from its ``id`` column, else row numbers) or a ``.npy`` array."""
        (part,) = self.input_chunks(inputs, contract, catalog, units, rows=None)
        return part

    def input_chunks(self, inputs, contract, catalog=None, units="auto", rows=CHUNK_ROWS):
        """:meth:`read_inputs` by slices of ``rows`` objects (all at once for ``rows=None``)."""
        path = Path(inputs[0])
        if len(inputs) != 1:
            raise DeepskyError(f"{path}: give one data set (.h5) or array (.npy) of {contract['layout']}")
        if path.suffix.lower() == ".npy":
            from deepsky.data.stacks import read_array

            array = read_array(path, mmap=True)
            if array.ndim == 0 or len(array) == 0:
                raise DeepskyError(f"{path}: holds no objects (shape {array.shape})")
            rows = rows or len(array)
            for start in range(0, len(array), rows):
                x = np.asarray(array[start : start + rows], np.float32)
                yield x, np.arange(start, start + len(x)), None, {"units": contract.get("units")}
            return
        with DatasetFile(path) as source:
            ids = np.asarray(source.objects.get("id", np.arange(source.n)))
            info = {"units": source.meta.get("units", contract.get("units"))}
            if source.n == 0:
                raise DeepskyError(f"{path}: holds no objects")
            step = rows or source.n
            for start, x in source.chunks(step):
                yield x, ids[start : start + step], None, info

    def preprocessing(self, inputs) -> list:
        """Keras layers between raw inputs and the network: standardisation per channel (last axis)."""
        import keras

        sample = np.asarray(inputs[:4000], np.float64)
        axes = tuple(range(sample.ndim - 1))
        return [keras.layers.Normalization(axis=-1, mean=sample.mean(axis=axes).tolist(),
                                           variance=np.maximum(sample.var(axis=axes), 1e-12).tolist(),
                                           name="standardise")]

    def build_model(self, model_name: str, train: Dataset, **model_options):
        """The registered model ``model_name`` behind this task's preprocessing (one input array)."""
        from deepsky.models.compose import with_preprocessing

        shape = tuple(train.inputs.shape[1:])
        core = self.create_model(model_name, input_shape=shape, num_classes=self.num_outputs, **model_options)
        return with_preprocessing(core, self.preprocessing(train.inputs), shape, name=core.name)


class HeldOutFolder:
    """Mixed into a task whose data may be a folder of real, labelled images: a seeded stratified part is held out.

    ``--data FOLDER`` trains on the rest; ``evaluate`` scores the held-out
    part of the folder the run trained on, or all of another folder. The
    task says how a folder is read (:meth:`read_folder`); without a folder
    it simulates, as any :class:`SimulatedTask`.
    """

    folder_test_fraction = 0.2

    def data_folder(self, path=None) -> Path | None:
        """The folder to read for ``--data path`` (None: simulate); tasks with a default folder override."""
        return Path(path) if path is not None else None

    def read_folder(self, folder, progress=None, select=None) -> Dataset:
        """The folder's objects; ``select`` maps their (N,) class labels to the rows wanted (override)."""
        raise NotImplementedError

    def held_out_split(self, labels, seed):
        """(training rows, held-out rows): every class's ``folder_test_fraction`` held out, seeded."""
        from deepsky.data.galaxyzoo import stratified_split

        return stratified_split(labels, self.folder_test_fraction, seed)

    def training_data(self, path=None, n=None, seed=0, progress=None, on_stage=None):
        """The folder's training part (at most ``n`` of it, drawn with ``seed``), an HDF5 set, or a simulation."""
        folder = self.data_folder(path)
        if folder is None or not folder.is_dir():
            if on_stage and path is None and folder is not None:
                on_stage(f"{folder.name} is not here: simulating")
            return super().training_data(path, n, seed, progress, on_stage)

        def training_rows(labels):
            rows = self.held_out_split(labels, seed)[0]
            return np.sort(np.random.default_rng(seed).permutation(rows)[:n]) if n else rows

        if on_stage:
            on_stage(f"reading images from {folder}")
        train = self.read_folder(folder, progress, select=training_rows)
        return train, {"path": str(folder.resolve()), "n": len(train), "split_seed": seed,
                       "test_fraction": self.folder_test_fraction, "dropped": train.meta.get("dropped")}

    def test_data(self, config, path=None, n=None, progress=None, on_stage=None):
        """The training folder's held-out part (``n`` of it drawn at random), another folder, HDF5 set or simulation."""
        trained_on = config["data"].get("path")
        folder = Path(path) if path is not None else (Path(trained_on) if trained_on else None)
        if folder is None or not folder.is_dir():
            return super().test_data(config, path, n, progress, on_stage)
        if on_stage:
            on_stage(f"reading images from {folder}")
        if trained_on and folder.resolve() == Path(trained_on):
            seed = config["data"].get("split_seed", config["train"]["seed"])

            def held_out_rows(labels):
                rows = self.held_out_split(labels, seed)[1]
                return np.sort(np.random.default_rng(seed).permutation(rows)[:n]) if n else rows

            test = self.read_folder(folder, progress, select=held_out_rows)
            return test, {"path": str(folder.resolve()), "n": len(test), "part": "held-out images"}, True
        data = self.read_folder(folder, progress)
        return data, {"path": str(folder.resolve()), "n": len(data)}, True

    def simulated_test_size(self, config, n=None):
        trained_on = config["data"].get("path")
        return 0 if trained_on and Path(trained_on).is_dir() else super().simulated_test_size(config, n)


class ImageTask(SimulatedTask):
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
    def augmentation(self, config):
        """Rotations and flips (``config.rotations``); targets that turn with the cutout follow :meth:`turn_targets`."""
        from deepsky.data.augment import cutout_augmentation

        return cutout_augmentation(config.rotations, config.zoom, config.shift_pixels, self.turn_targets)

    turn_targets = None  # regression: callable(targets, choice) giving the targets of turned cutouts

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

    def input_chunks(self, inputs, contract, catalog=None, units="auto", rows=CHUNK_ROWS):
        """One cutout stack by slices of ``rows`` cutouts; FITS images, folders and the rest all at once."""
        from deepsky.data.readers import STACK_SUFFIXES, suffix

        if catalog is not None or len(inputs) != 1 or suffix(inputs[0]) not in STACK_SUFFIXES:
            yield self.read_inputs(inputs, contract, catalog=catalog, units=units)
            return
        from deepsky.data.stacks import iter_stack

        for images, ids, info in iter_stack(inputs[0], bands=len(contract["bands"]),
                                            size=contract["cutout_pixels"][0], units=units, rows=rows,
                                            native_units=contract.get("units")):
            yield images, ids, None, info

    def contract(self, data: Dataset) -> dict:
        """What a trained model expects of its input, recorded in the run directory."""
        _, height, width, bands = data.images.shape
        survey = data.meta.get("survey")  # a simulator's preset (a dict with its name), or just a name
        return {
            "layout": "cutouts",
            "bands": data.meta.get("bands", [f"band{i}" for i in range(bands)]),
            "cutout_pixels": [height, width],
            "pixel_scale_arcsec": data.meta.get("pixel_scale_arcsec"),
            "units": data.meta.get("units", "unknown"),
            "survey": survey.get("name") if isinstance(survey, dict) else survey,
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
        images = np.asarray(images[:STATISTICS_ROWS])  # enough for the statistics; the inputs may be lazy shards
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
        from deepsky.models.compose import with_preprocessing

        _, height, width, bands = train.images.shape
        side = self.input_pixels or height
        core = self.create_model(model_name, input_shape=(side, side, bands), num_classes=self.num_outputs,
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
