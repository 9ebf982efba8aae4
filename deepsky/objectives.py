"""Kinds of output a task trains for: each owns its losses, metrics, decoding, table columns and report parts.

A task names one (``objective = Classification()``); ``train``,
``evaluate``, ``predict``, ``report`` and the CLI call its methods and
branch on nothing. A new kind of output is a new :class:`Objective`
subclass here (or in the task's own package) and nothing else changes.

- :class:`Classification`: softmax outputs, integer labels, cross-entropy
  with optional class weights (divided out of the saved model), held-out
  probabilities, a random forest on the task's features as the baseline.
- :class:`GaussianRegression`: K means then K log standard deviations for
  (N, K) float targets, the Gaussian negative log-likelihood; the task
  decodes outputs into named physical :class:`~deepsky.metrics.Parameter`
  values with 68% intervals.
- :class:`ImageToImage`: an output image per input image (deconvolution,
  denoising), L1 or mean squared error; scored by MSE and PSNR against the
  true images, beside the task's classical restoration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

# log standard deviations are clipped here in the loss: a network that starts far off
# cannot blow the likelihood up to inf, nor claim more than e^-9 precision in target units
LOG_SIGMA_RANGE = (-9.0, 5.0)
GALLERY_SIZE = 16  # cutouts per gallery row kept for the report


@dataclass
class Evaluation:
    """What an objective's evaluation leaves: ``metrics.json`` and the arrays of ``evaluation.h5``."""

    metrics: dict
    arrays: dict = field(default_factory=dict)  # name -> array, written at the file's root (or "group/name")
    gallery: dict = field(default_factory=dict)  # role -> test rows whose inputs the report shows


class Objective:
    """What every kind of output provides (override); the defaults are those of no kind in particular."""

    name: str = ""
    score_name: str = "score"  # the training score in history.json (beside the loss)
    float32_head: bool = False  # run the output layer in float32 under bf16 (regression outputs)

    # -- training ------------------------------------------------------------------
    def training_targets(self, y: np.ndarray) -> np.ndarray:
        """Targets as the losses take them."""
        return np.asarray(y)

    def loss_weights(self, config, y: np.ndarray, n_outputs: int) -> np.ndarray | None:
        """Per-class weights of the loss (classification), or None."""
        return None

    def torch_loss(self, outputs, target, weights):
        """``(loss, score_sum)`` for a batch of fast-path outputs (logits where a softmax ends the model)."""
        raise NotImplementedError

    def torch_step_loss(self, inputs, outputs, target, weights):
        """The loss a fast-path training step minimises: :meth:`torch_loss`, plus any term that needs the inputs."""
        return self.torch_loss(outputs, target, weights)

    def after_torch_step(self, inputs, outputs, target, learning_rate: float) -> None:
        """Train what the objective itself owns (an adversary) on the step's detached outputs."""

    def torch_state(self) -> dict | None:
        """Tensors the objective trains itself, for checkpoints: ``{"weights": {...}, "optimizer": state_dict}``."""
        return None

    def load_torch_state(self, state: dict | None) -> None:
        """Restore :meth:`torch_state` from a checkpoint before the first step; None starts afresh."""

    def keras_compile(self, model, optimizer) -> None:
        """Compile ``model`` with this objective's Keras loss and training score."""
        raise NotImplementedError

    def keras_class_weight(self, weights) -> dict | None:
        return None

    def epoch_score(self, total: float, n: int) -> float:
        """The epoch's training score from the sum of the batches' ``score_sum``."""
        return total / max(n, 1)

    def validation_metrics(self, outputs: np.ndarray, y: np.ndarray) -> dict:
        """``val_loss`` and the validation score of model outputs ``outputs`` for targets ``y``."""
        raise NotImplementedError

    def after_training(self, model, config, y_train: np.ndarray) -> dict:
        """Adjust the trained model; returns entries to record in ``config.json``."""
        return {}

    # -- evaluation and prediction ---------------------------------------------------
    def evaluate(self, task, run, model, test, stage, on_predict=None, on_fit=None) -> Evaluation:
        """Score ``model`` on the held-out ``test`` set through the task's hooks."""
        raise NotImplementedError

    def prediction_columns(self, task, model, x, ids, valid, info, contract, batch_size=256, progress=None,
                           views=None) -> dict:
        """The prediction table's columns, one row per input object (``id`` first)."""
        raise NotImplementedError

    def write_predictions(self, columns: dict, output, meta: dict) -> Path:
        """Write the prediction table (FITS, CSV or Parquet by extension)."""
        from deepsky.data.tables import write_table

        return write_table(columns, output, meta=meta)

    def check_output(self, output) -> None:
        """Refuse an output file this objective cannot write, before any work."""
        from deepsky.data.tables import table_format

        table_format(output)

    # -- report --------------------------------------------------------------------
    def read_evaluation(self, f, inputs) -> None:
        """Fill ``inputs`` (:class:`~deepsky.report.inputs.ReportInputs`) from the open ``evaluation.h5``."""

    def figures(self) -> list:
        """The report's figures for any task of this kind (FigureSpec list), after the learning curves."""
        return []

    def report_sections(self, inputs) -> list[str]:
        """HTML sections after the headline table."""
        return []


def _softmax_ends(model) -> bool:
    import keras

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "softmax" or isinstance(last, keras.layers.Softmax)


class Classification(Objective):
    """Class probabilities from a softmax; integer labels; cross-entropy, optionally class-weighted."""

    name = "classification"
    score_name = "accuracy"

    def training_targets(self, y):
        return np.asarray(y, dtype=np.int64)

    def loss_weights(self, config, y, n_outputs):
        return class_weights(config, y, n_outputs)

    def torch_loss(self, outputs, target, weights):
        import torch.nn.functional as F

        loss = F.cross_entropy(outputs.float(), target, weight=weights)
        return loss, float((outputs.detach().argmax(1) == target).sum())

    def keras_compile(self, model, optimizer):
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def keras_class_weight(self, weights):
        return None if weights is None else dict(enumerate(np.asarray(weights).tolist()))

    def validation_metrics(self, outputs, y):
        from sklearn.metrics import roc_auc_score

        y = np.asarray(y, dtype=np.int64)
        p = np.clip(outputs[np.arange(len(y)), y], 1e-7, 1.0)
        out = {"val_loss": float(-np.log(p).mean()), "val_accuracy": float((outputs.argmax(1) == y).mean())}
        if outputs.shape[1] == 2 and len(np.unique(y)) == 2:
            out["val_auc"] = float(roc_auc_score(y, outputs[:, 1]))
        return out

    def after_training(self, model, config, y_train):
        weights = class_weights(config, y_train, model.output_shape[-1])
        if weights is None or not undo_class_weights(model, weights):
            return {}
        return {"probabilities": "class weights divided out (real class mix)",
                "class_weights_divided_out": [float(w) for w in weights]}

    def evaluate(self, task, run, model, test, stage, on_predict=None, on_fit=None):
        contract = run.contract
        stage(f"predicting {len(test)} held-out objects")
        probabilities = task.predict_outputs(model, test.inputs, progress=on_predict)
        metrics = task.metrics(test, probabilities)
        arrays = {"labels": test.labels, "probabilities": probabilities}
        features = run.path / "baseline_features.h5"
        if features.exists():
            stage(f"fitting the {task.baseline_name} on the training features")
            baseline = _forest_probabilities(task, features, test.inputs)
            metrics["baseline"] = {"name": task.baseline_name, **task.metrics(test, baseline)}
            arrays["baseline_probabilities"] = baseline
        real = task.real_data()
        if real is not None:
            task.check_inputs(contract, real.inputs, real.meta.get("source", "real data"))
            stage(f"predicting {len(real)} real objects ({real.meta.get('source', 'real data')})")
            metrics["real_data"] = {"source": real.meta.get("source"),
                                    **task.metrics(real, task.predict_outputs(model, real.inputs))}
        metrics.update(task.extra_metrics(model, test, metrics, stage))
        return Evaluation(metrics, arrays, _classification_gallery(test, probabilities))

    def prediction_columns(self, task, model, x, ids, valid, info, contract, batch_size=256, progress=None,
                           views=None):
        if views is not None:
            raise DeepskyError(f"--views averages orientations of regression outputs; task {task.name!r} is a "
                               "classifier (its classifiers already average rotations where that helps)")
        classes = contract["classes"]
        rows = np.arange(len(ids)) if valid is None else np.flatnonzero(valid)
        probabilities = np.full((len(ids), len(classes)), np.nan, np.float32)
        if rows.size:
            probabilities[rows] = task.predict_outputs(model, _take(x, rows), batch_size=batch_size, progress=progress)
        columns = {"id": np.asarray(ids)}
        for name in ([task.positive_class] if task.positive_class else classes):
            columns[f"p_{name}"] = probabilities[:, classes.index(name)]
        called = np.asarray(classes)[np.nan_to_num(probabilities, nan=-1).argmax(1)]
        columns["class"] = called if valid is None else np.where(valid, called, "")
        if valid is not None:
            columns["flag"] = np.asarray(info.get("flags", np.where(valid, "", "unusable")))
        return columns

    def read_evaluation(self, f, inputs):
        for required in ("labels", "probabilities"):
            if required not in f:
                raise DeepskyError(f"{f.filename}: no '{required}' dataset; rerun deepsky evaluate")
        inputs.labels = np.asarray(f["labels"][...]).astype(np.int64)
        inputs.probabilities = np.asarray(f["probabilities"][...], dtype=np.float64)
        if inputs.probabilities.ndim != 2 or len(inputs.probabilities) != len(inputs.labels):
            raise DeepskyError(f"{f.filename}: probabilities have shape {inputs.probabilities.shape} "
                               f"for {len(inputs.labels)} labels")
        if "baseline_probabilities" in f:
            scores = np.asarray(f["baseline_probabilities"][...], dtype=np.float64)
            if scores.shape == inputs.probabilities.shape:
                inputs.baseline_probabilities = scores

    def figures(self):
        from deepsky.report.figures import CLASSIFICATION_FIGURES

        return list(CLASSIFICATION_FIGURES)

    def report_sections(self, inputs):
        from deepsky.report.tables import per_class_section, real_data_section

        return [section for section in (per_class_section(inputs), real_data_section(inputs)) if section]


class GaussianRegression(Objective):
    """Named parameters with uncertainties: outputs K means then K log sigmas of (N, K) standardised targets.

    ``parameters`` (:class:`~deepsky.metrics.Parameter`) are what the task's
    ``decode`` makes of the outputs, with their labels, units and error
    measures; the targets the network regresses may differ from them (a
    magnitude relative to the cutout's own, an angle as a unit vector).
    """

    name = "gaussian"
    score_name = "rmse"
    float32_head = True

    def __init__(self, parameters=()):
        self.parameters = tuple(parameters)

    def training_targets(self, y):
        return np.asarray(y, dtype=np.float32)

    def torch_loss(self, outputs, target, weights):
        outputs = outputs.float()
        k = target.shape[1]
        mean, log_sigma = outputs[:, :k], outputs[:, k:].clamp(*LOG_SIGMA_RANGE)
        loss = (0.5 * ((target - mean) * (-log_sigma).exp()) ** 2 + log_sigma).mean()
        return loss, float(((mean.detach() - target) ** 2).mean()) * len(target)

    def keras_compile(self, model, optimizer):
        from deepsky.losses import GaussianNLL, gaussian_mean_squared_error

        model.compile(optimizer=optimizer, loss=GaussianNLL(log_sigma_range=LOG_SIGMA_RANGE),
                      metrics=[gaussian_mean_squared_error])

    def epoch_score(self, total, n):
        return math.sqrt(total / max(n, 1))

    def validation_metrics(self, outputs, y):
        k = y.shape[1]
        return {"val_loss": gaussian_nll(outputs, y), "val_rmse": float(np.sqrt(((outputs[:, :k] - y) ** 2).mean()))}

    def evaluate(self, task, run, model, test, stage, on_predict=None, on_fit=None):
        import time

        contract = run.contract
        task.predict_outputs(model, _take(test.inputs, np.arange(min(256, len(test)))))  # kernels chosen, caches warm
        stage(f"predicting {len(test)} held-out objects")
        start = time.perf_counter()
        outputs = task.predict_outputs(model, test.inputs, progress=on_predict)
        seconds = (time.perf_counter() - start) / max(len(test), 1)
        predicted = {**task.decode(outputs, test.inputs, contract), "seconds_per_object": seconds}
        metrics = task.metrics(test, predicted)
        arrays = {"outputs": outputs, **_group("predicted", predicted, len(test))}
        stage(f"running the {task.baseline_name} on {task.baseline_count(len(test))} of the same objects")
        baseline = task.baseline_predictions(test, progress=on_fit)
        if baseline is not None:
            metrics["baseline"] = {"name": task.baseline_name, **task.metrics(test, baseline)}
            arrays.update(_group("baseline", baseline, len(test)))
        metrics.update(task.extra_metrics(model, test, metrics, stage))
        rng = np.random.default_rng(0)
        gallery = np.sort(rng.choice(len(test), min(GALLERY_SIZE, len(test)), replace=False))
        return Evaluation(metrics, arrays, {"examples": gallery})

    def prediction_columns(self, task, model, x, ids, valid, info, contract, batch_size=256, progress=None,
                           views=None):
        rows = np.arange(len(ids)) if valid is None else np.flatnonzero(valid)
        outputs = np.full((len(ids), task.num_outputs), np.nan, np.float32)
        if rows.size:
            outputs[rows] = task.predict_outputs(model, _take(x, rows), views=views, batch_size=batch_size,
                                                 progress=progress)
        values = task.decode(outputs, x, contract)
        columns = {"id": np.asarray(ids)}
        for name in contract["parameters"]:
            columns[name] = values[name]
            columns[f"{name}_err"] = values[f"{name}_err"]
        return columns

    def read_evaluation(self, f, inputs):
        if "predicted" not in f:
            raise DeepskyError(f"{f.filename}: no 'predicted' group; rerun deepsky evaluate")
        inputs.predicted = {name: np.asarray(item[...]) for name, item in f["predicted"].items()}
        if "baseline" in f:
            inputs.baseline_predicted = {name: np.asarray(item[...]) for name, item in f["baseline"].items()}

    def figures(self):
        from deepsky.report.figures import REGRESSION_FIGURES

        return list(REGRESSION_FIGURES)

    def report_sections(self, inputs):
        from deepsky.report.regression import regression_sections

        return regression_sections(inputs)


class ImageToImage(Objective):
    """An image out for every image in (deconvolution, denoising): L1 or mean squared error per pixel.

    Targets are (N, H, W, C) images in the units of the inputs. Scored by
    the mean squared error and the PSNR (peak: the largest absolute true
    pixel of each image) against the true images, for the network and for
    the task's classical restoration (its ``baseline_predictions``).

    With ``adversarial`` > 0 the loss adds that weight times a conditional
    GAN's generator term, as Schawinski et al. (2017) and pix2pix: a
    patch critic learns, step by step beside the network, to tell true
    images from restored ones given the input, and the network learns to
    fool it (sharper images than a pixel loss alone gives). The critic
    trains on the torch fast path, and is checkpointed with the run.

    The pixel loss and the critic's inputs are in units of the training
    targets' rms pixel, so the adversarial weight means the same whatever
    the images' flux units (nanomaggies, Jy/beam, counts).
    """

    name = "image-to-image"
    score_name = "mae"
    float32_head = True

    def __init__(self, loss: str = "l1", adversarial: float = 0.0, critic_width: int = 32, critic: str = "small"):
        if loss not in ("l1", "mse"):
            raise DeepskyError(f"image-to-image loss must be l1 or mse; received {loss!r}")
        if not adversarial >= 0:
            raise DeepskyError(f"the adversarial weight must be 0 or more; received {adversarial!r}")
        if critic not in CRITICS:
            raise DeepskyError(f"the critic must be one of {', '.join(CRITICS)}; received {critic!r}")
        self.loss, self.adversarial, self.critic_width = loss, float(adversarial), int(critic_width)
        self.critic = critic
        self.unit = 1.0  # the training targets' rms pixel (training_targets sets it)
        self._critic = self._critic_optimizer = self._pending_state = None

    # -- the adversary (torch only) ------------------------------------------------
    def _critic_input(self, inputs, images):
        """Channels-first critic input: the image, beside its input image when the two have the same size."""
        import torch

        if isinstance(inputs, dict):
            raise DeepskyError("the adversarial term needs one input image per object, not named inputs")
        images = images.float() / self.unit
        if inputs.shape[1:-1] == images.shape[1:-1]:
            images = torch.cat([inputs.float() / self.unit, images], dim=-1)
        return images.permute(0, 3, 1, 2)

    def _critic_for(self, critic_input):
        """The patch critic, built on first use from the channels it sees (:func:`_patch_critic`)."""
        import torch

        if self._critic is None:
            self._critic = _patch_critic(critic_input.shape[1], self.critic_width, self.critic).to(critic_input.device)
            self._critic_optimizer = torch.optim.Adam(self._critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
            if self._pending_state is not None:
                self._apply_state(self._pending_state)
                self._pending_state = None
        return self._critic

    def torch_step_loss(self, inputs, outputs, target, weights):
        import torch
        import torch.nn.functional as F

        loss, score = self.torch_loss(outputs, target, weights)
        if self.adversarial:
            critic_input = self._critic_input(inputs, outputs)
            judged = self._critic_for(critic_input)(critic_input)
            loss = loss + self.adversarial * F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
        return loss, score

    def after_torch_step(self, inputs, outputs, target, learning_rate):
        import torch
        import torch.nn.functional as F

        if not self.adversarial:
            return
        real = self._critic_input(inputs, target)
        fake = self._critic_input(inputs, outputs.detach())
        critic = self._critic_for(real)
        judged_real, judged_fake = critic(real), critic(fake)
        loss = (F.binary_cross_entropy_with_logits(judged_real, torch.ones_like(judged_real))
                + F.binary_cross_entropy_with_logits(judged_fake, torch.zeros_like(judged_fake))) / 2
        self._critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._critic_optimizer.step()

    def torch_state(self):
        if self._critic is None:
            return None
        return {"weights": {name: value.detach() for name, value in self._critic.state_dict().items()},
                "optimizer": self._critic_optimizer.state_dict()}

    def load_torch_state(self, state):
        if state is None:
            self._critic = self._critic_optimizer = self._pending_state = None
        elif self._critic is None:
            self._pending_state = state  # the critic is built from the first batch's shapes
        else:
            self._apply_state(state)

    def _apply_state(self, state):
        self._critic.load_state_dict(state["weights"])
        if state.get("optimizer") is not None:
            self._critic_optimizer.load_state_dict(state["optimizer"])

    def training_targets(self, y):
        y = np.asarray(y, dtype=np.float32)
        rms = float(np.sqrt(np.mean(np.square(y[:4000], dtype=np.float64))))
        self.unit = rms if rms > 0 and np.isfinite(rms) else 1.0
        return y

    def torch_loss(self, outputs, target, weights):
        import torch.nn.functional as F

        outputs = outputs.float()
        scaled, truth = outputs / self.unit, target / self.unit
        loss = F.l1_loss(scaled, truth) if self.loss == "l1" else F.mse_loss(scaled, truth)
        return loss, float((outputs.detach() - target).abs().mean()) * len(target)

    def keras_compile(self, model, optimizer):
        if self.adversarial:
            raise DeepskyError("the adversarial term trains on the torch fast path: use the torch backend "
                               "and the adamw optimizer")
        model.compile(optimizer=optimizer, loss="mae" if self.loss == "l1" else "mse", metrics=["mae"])

    def validation_metrics(self, outputs, y):
        diff = outputs - y
        loss = np.abs(diff).mean() / self.unit if self.loss == "l1" else (diff**2).mean() / self.unit**2
        return {"val_loss": float(loss), "val_mae": float(np.abs(diff).mean()),
                "val_psnr": float(np.median(psnr(outputs, y)))}

    def evaluate(self, task, run, model, test, stage, on_predict=None, on_fit=None):
        stage(f"predicting {len(test)} held-out images")
        outputs = task.predict_outputs(model, test.inputs, progress=on_predict)
        metrics = task.metrics(test, outputs)
        rng = np.random.default_rng(0)
        gallery = np.sort(rng.choice(len(test), min(GALLERY_SIZE, len(test)), replace=False))
        arrays = {"gallery/outputs": outputs[gallery], "gallery/targets": np.asarray(test.labels)[gallery]}
        baseline = task.baseline_predictions(test, progress=on_fit)
        if baseline is not None:
            metrics["baseline"] = {"name": task.baseline_name, **task.metrics(test, baseline)}
            arrays["gallery/baseline_outputs"] = np.asarray(baseline)[gallery]
        metrics.update(task.extra_metrics(model, test, metrics, stage))
        return Evaluation(metrics, arrays, {"examples": gallery})

    def prediction_columns(self, task, model, x, ids, valid, info, contract, batch_size=256, progress=None,
                           views=None):
        restored = task.predict_outputs(model, x, views=views, batch_size=batch_size, progress=progress)
        columns = {"id": np.asarray(ids), "image": restored}
        bands = contract.get("bands") or [f"band{i}" for i in range(restored.shape[-1])]
        for b, band in enumerate(bands):  # total flux in and out: restoration should keep it
            columns[f"flux_in_{band}"] = np.asarray(x[..., b], np.float64).sum(axis=(1, 2))
            columns[f"flux_out_{band}"] = restored[..., b].astype(np.float64).sum(axis=(1, 2))
        return columns

    def check_output(self, output):
        """A deepsky HDF5 stack, a table (FITS, CSV, Parquet) with the stack beside it, or a new folder of FITS images."""
        output = Path(output)
        if output.suffix == "":
            if output.exists() and (not output.is_dir() or any(output.iterdir())):
                raise DeepskyError(f"{output}: exists and is not an empty folder; name a new folder for the "
                                   "restored FITS images")
        elif output.suffix.lower() not in (".h5", ".hdf5"):
            from deepsky.data.tables import table_format

            table_format(output)

    def write_predictions(self, columns, output, meta):
        """``.h5``: the images with the table's columns; a table: the images in ``<stem>_images.h5``; a folder: FITS.

        A folder gets one FITS image per object (``<id>_restored.fits``,
        bands first, the input's header kept where the reader found one in
        a ``header`` column) and ``restored.csv``; it appears whole or not at all.
        """
        from deepsky.data.store import Dataset
        from deepsky.data.tables import write_table

        output = Path(output)
        headers = columns.get("header")
        table = {name: values for name, values in columns.items() if name not in ("image", "header")}
        if output.suffix == "":
            return _write_fits_folder(columns["image"], table, headers, output, meta)
        if output.suffix.lower() in (".h5", ".hdf5"):
            return Dataset(inputs=columns["image"], objects=table, meta=meta).save(output)
        stack = output.with_name(output.name.split(".")[0] + "_images.h5")
        Dataset(inputs=columns["image"], objects=table, meta=meta).save(stack)
        table["stack_row"] = np.arange(len(columns["id"]))
        return write_table(table, output, meta={**meta, "images": str(stack)})

    def read_evaluation(self, f, inputs):
        if "gallery" in f:
            inputs.gallery = {name: np.asarray(item[...]) for name, item in f["gallery"].items()
                              if not hasattr(item, "keys")}

    def figures(self):
        from deepsky.report.figures import FigureSpec
        from deepsky.report.restoration import plot_restoration_gallery

        return [FigureSpec(
            "restorations", "Restored images",
            "Random held-out objects, one per row: the degraded input, the network's restoration, the classical "
            "restoration and the truth, all four with the input's stretch (asinh, softened at three times its sky "
            "noise), so brightness and sharpness compare by eye.", plot_restoration_gallery)]


def _write_fits_folder(images, table, headers, output: Path, meta: dict) -> Path:
    """One FITS image per object and a CSV table in a new folder, written beside it and renamed into place."""
    import shutil
    import tempfile

    from astropy.io import fits

    from deepsky.data.tables import write_table

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        names = []
        for i, (image, object_id) in enumerate(zip(images, table["id"])):
            header = fits.Header.fromstring(str(headers[i])) if headers is not None and str(headers[i]) else None
            hdu = fits.PrimaryHDU(np.moveaxis(np.asarray(image, np.float32), -1, 0), header=header)
            hdu.header["HISTORY"] = f"restored by deepsky ({meta.get('task')}, model {meta.get('model')})"
            name = f"{Path(str(object_id)).name.split('.')[0]}_restored.fits"
            hdu.writeto(staging / name)
            names.append(name)
        write_table({**table, "file": np.array(names)}, staging / "restored.csv")
        if output.exists():
            output.rmdir()  # an empty folder, as check_output made sure
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output


CRITICS = ("small", "patchgan-70")


def _patch_critic(channels: int, width: int, kind: str):
    """A conditional patch critic: one real/fake logit per patch of the image.

    ``small``: two 4x4 stride-2 convolutions and a 3x3 one (a 22-pixel
    patch). ``patchgan-70``: pix2pix's 70x70 PatchGAN (Isola et al. 2017),
    C64-C128-C256-C512 with 4x4 kernels, strides 2, 2, 2, 1, batch norm
    from the second, leaky ReLU 0.2, then a 4x4 convolution to one logit;
    widths scaled by ``width / 64``.
    """
    import torch

    nn = torch.nn
    if kind == "small":
        return nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1))
    blocks, previous = [], channels
    for index, (factor, stride) in enumerate(((1, 2), (2, 2), (4, 2), (8, 1))):
        blocks.append(nn.Conv2d(previous, factor * width, 4, stride=stride, padding=1))
        if index:
            blocks.append(nn.BatchNorm2d(factor * width))
        blocks.append(nn.LeakyReLU(0.2))
        previous = factor * width
    return nn.Sequential(*blocks, nn.Conv2d(previous, 1, 4, padding=1))


def psnr(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio (dB) of each image; the peak is the image's largest absolute true pixel."""
    axes = tuple(range(1, np.ndim(targets)))
    mse = np.mean((np.asarray(outputs, np.float64) - targets) ** 2, axis=axes)
    peak = np.max(np.abs(targets), axis=axes)
    return 10 * np.log10(np.maximum(peak, 1e-30) ** 2 / np.maximum(mse, 1e-30))


def ssim(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
    """Structural similarity (Wang et al. 2004) of each (H, W, bands) image, as scikit-image computes it.

    The data range is the true image's (max - min); a 7x7 window (smaller
    for smaller images); bands averaged. None for images under 3 pixels.
    """
    from skimage.metrics import structural_similarity

    outputs, targets = np.asarray(outputs, np.float64), np.asarray(targets, np.float64)
    if targets.ndim == 3:
        outputs, targets = outputs[..., None], targets[..., None]
    window = min(7, *targets.shape[1:3])
    window -= 1 - window % 2  # odd
    if window < 3:
        return None
    return np.array([structural_similarity(o, t, win_size=window, channel_axis=-1,
                                           data_range=max(float(t.max() - t.min()), 1e-30))
                     for o, t in zip(outputs, targets)])


def image_metrics(outputs: np.ndarray, targets: np.ndarray) -> dict:
    """Mean squared error, mean absolute error, median PSNR (dB) and median SSIM of restored images against the truth."""
    diff = np.asarray(outputs, np.float64) - targets
    out = {"n": int(len(targets)), "mse": float((diff**2).mean()), "mae": float(np.abs(diff).mean()),
           "psnr_db": float(np.median(psnr(outputs, targets)))}
    similarity = ssim(outputs, targets)
    if similarity is not None:
        out["ssim"] = float(np.median(similarity))
    return out


def gaussian_nll(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean Gaussian negative log-likelihood (without the constant) of (N, 2K) outputs for (N, K) targets."""
    k = targets.shape[1]
    mean, log_sigma = outputs[:, :k], np.clip(outputs[:, k:], *LOG_SIGMA_RANGE)
    return float((0.5 * ((targets - mean) * np.exp(-log_sigma)) ** 2 + log_sigma).mean())


def class_weights(config, labels: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Per-class loss weights, normalised to a mean of one over the examples; None for ``"none"``.

    ``"balanced"`` weighs each class by 1/count, so every class counts as
    much as any other; ``"sqrt"`` by 1/sqrt(count), which lifts rare classes
    without letting a few dozen examples dominate the loss.

    >>> from deepsky.train import TrainConfig
    >>> class_weights(TrainConfig(class_weight="balanced"), np.array([0, 0, 0, 1]), 2).tolist()
    [0.6666666666666666, 2.0]
    """
    if config.class_weight == "none":
        return None
    if config.class_weight not in ("balanced", "sqrt"):
        raise DeepskyError(f"class_weight must be none, balanced or sqrt; received {config.class_weight!r}")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(float)
    raw = 1 / np.maximum(counts, 1) if config.class_weight == "balanced" else 1 / np.sqrt(np.maximum(counts, 1))
    raw = np.where(counts > 0, raw, 0.0)
    return raw * len(labels) / float((raw * counts).sum())


def undo_class_weights(model, weights: np.ndarray) -> bool:
    """Make a class-weighted classifier's softmax give probabilities of the real class mix again.

    Cross-entropy with class weights ``w`` is minimised by outputs
    proportional to ``w_c p(c | x)``: the weights buy rare classes a better
    representation in training, but leave the outputs overstating them
    (measured on Galaxy Zoo with 1/sqrt(frequency) weights: spirals and
    mergers predicted 1.3 and 1.5 times as often as they occur, 98
    ellipticals called spiral against 19 spirals called elliptical).
    Subtracting ``log w_c`` from the logits' biases divides that factor out
    exactly: the model stays the same and every later prediction
    (evaluate, predict, fine-tuning) gets the corrected probabilities.
    Returns False, changing nothing, when the model does not end in a
    biased dense layer with a softmax.
    """
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers:
        return False
    last = layers[-1]
    if isinstance(last, keras.layers.Activation) and getattr(last.activation, "__name__", "") == "softmax":
        dense = layers[-2] if len(layers) > 1 else None
        if not isinstance(dense, keras.layers.Dense) or getattr(dense.activation, "__name__", "") != "linear":
            return False
    elif isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "") == "softmax":
        dense = last
    else:
        return False
    if not dense.use_bias or dense.units != len(weights):
        return False
    weights = np.asarray(weights, dtype=np.float64)
    shift = np.log(np.where(weights > 0, weights, 1.0))  # a class absent from training keeps its bias
    bias = np.asarray(dense.bias.numpy(), dtype=np.float64) - shift
    dense.bias.assign(bias.astype(dense.bias.dtype))
    return True


def _forest_probabilities(task, features_path: Path, inputs) -> np.ndarray:
    """Fit the random forest on the stored training features; its class probabilities on ``inputs``."""
    import h5py

    from deepsky.baselines import fit_random_forest

    with h5py.File(features_path, "r") as f:
        features, labels = f["features"][...], f["labels"][...]
        state = {name: f[f"state/{name}"][...] for name in f["state"]} if "state" in f else {}
    forest = fit_random_forest(features, labels)
    return forest.predict_proba(task.baseline_features(inputs, state)).astype(np.float32)


def _take(x, rows):
    """Rows of an input array, or of each array of named inputs."""
    return {k: v[rows] for k, v in x.items()} if isinstance(x, dict) else x[rows]


def _group(prefix: str, values: dict, n: int) -> dict:
    """Per-object columns of ``values`` as ``prefix/name`` arrays (scalars such as timings are left out)."""
    return {f"{prefix}/{name}": np.asarray(v) for name, v in values.items() if np.ndim(v) == 1 and len(v) == n}


def _classification_gallery(test, probabilities: np.ndarray) -> dict:
    """Rows for the report's galleries: the worst mistakes, random examples, one clear example per class."""
    labels = np.asarray(test.labels)
    confidence_wrong = 1 - probabilities[np.arange(len(labels)), labels]
    worst = np.argsort(-confidence_wrong)[:GALLERY_SIZE]
    rng = np.random.default_rng(0)
    examples = np.sort(rng.choice(len(labels), min(GALLERY_SIZE, len(labels)), replace=False))
    picks = []
    for k in range(probabilities.shape[1]):
        right = np.flatnonzero((labels == k) & (probabilities[:, k] > 0.9))
        pool = right if right.size else np.flatnonzero(labels == k)
        if pool.size:
            # a clear example that is not the brightest outlier: the 80th percentile of total flux
            flux = np.asarray(test.inputs[pool]).reshape(len(pool), -1).sum(1) if not isinstance(
                test.inputs, dict) else np.zeros(len(pool))
            picks.append(pool[np.argsort(flux)][int(0.8 * (len(pool) - 1))])
    return {"worst": worst, "examples": examples, "feature_map_examples": np.array(picks, dtype=np.int64)}

