"""The image-classification task: what every cutout-classifying task shares.

A task names its simulator, its default model, its classes and metrics; the
model it builds carries its own preprocessing (crop, asinh stretch,
per-band standardisation), so a saved run takes raw cutouts in the units
recorded in its data contract.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError


class ImageClassificationTask:
    """Base class of tasks that classify multi-band cutouts."""

    name: str = ""
    description: str = ""
    classes: tuple[str, ...] = ()
    positive_class: str | None = None  # two-class tasks report p_<positive_class>
    default_model: str = ""
    input_pixels: int | None = None  # the centre the network sees; None: the whole cutout
    default_train_size: int = 10000
    default_test_size: int = 2000
    default_epochs: int = 10
    validation_fraction: float = 0.1
    paper: dict = {}

    # -- data ----------------------------------------------------------------------
    def simulate(self, n: int, seed: int, progress: Callable[[int], None] | None = None) -> Dataset:
        """The task's simulated data set (override)."""
        raise NotImplementedError

    def test_seed(self, train_seed: int) -> int:
        """Seed of the default held-out test set: never the training seed."""
        return train_seed + 1_000_003

    def check_dataset(self, data: Dataset, source: str) -> Dataset:
        """Refuse data this task cannot use, with a message naming ``source``."""
        if len(data) == 0:
            raise DeepskyError(f"{source}: the data set is empty")
        if data.labels is None:
            raise DeepskyError(f"{source}: the data set has no labels")
        if data.meta.get("classes") and list(data.meta["classes"]) != list(self.classes):
            raise DeepskyError(
                f"{source}: classes {data.meta['classes']} do not match task {self.name!r} ({list(self.classes)})"
            )
        bad = np.flatnonzero((data.labels < 0) | (data.labels >= len(self.classes)))
        if bad.size:
            raise DeepskyError(f"{source}: labels outside 0..{len(self.classes) - 1} at rows {bad[:10].tolist()}")
        finite = np.isfinite(data.images).all(axis=(1, 2, 3))
        if not finite.all():
            rows = np.flatnonzero(~finite)[:10].tolist()
            raise DeepskyError(f"{source}: cutouts {rows} have NaN or infinite pixels; mask or drop them")
        return data

    def contract(self, data: Dataset) -> dict:
        """What a trained model expects of its input, recorded in the run directory."""
        _, height, width, bands = data.images.shape
        return {
            "classes": list(self.classes),
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

    def build_model(self, model_name: str, train: Dataset):
        """The registered model ``model_name`` behind this task's preprocessing."""
        from deepsky import models
        from deepsky.models.compose import with_preprocessing

        _, height, width, bands = train.images.shape
        side = self.input_pixels or height
        core = models.create(model_name, input_shape=(side, side, bands), num_classes=len(self.classes))
        return with_preprocessing(core, self.preprocessing(train.images), (height, width, bands), name=core.name)

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, labels: np.ndarray, probabilities: np.ndarray, objects: dict) -> dict:
        """Held-out metrics (override to add the paper's)."""
        return {"accuracy": float((probabilities.argmax(1) == labels).mean()), "n": int(len(labels))}


def border_noise(images: np.ndarray, width: int = 4) -> np.ndarray:
    """Per-band sky noise (image units) from cutout borders: median of robust MAD sigmas."""
    border = np.concatenate(
        [images[:, :width].reshape(len(images), -1, images.shape[-1]),
         images[:, -width:].reshape(len(images), -1, images.shape[-1])], axis=1
    )
    mad = np.median(np.abs(border - np.median(border, axis=1, keepdims=True)), axis=1)
    noise = 1.4826 * np.median(mad, axis=0)
    return np.where(noise > 0, noise, 1.0).astype(np.float32)
