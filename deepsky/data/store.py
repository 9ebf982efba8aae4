"""The on-disk dataset: images, labels and per-object columns in one HDF5 file.

Layout: ``/images`` (N, height, width, bands) float32 in the units named by
the metadata, channels last as Keras expects; ``/labels`` (N,) integer class
indices (optional); ``/objects/<column>`` one array per catalogue column
(true magnitudes, PSF, sizes...); the root attribute ``deepsky`` holds the
metadata as JSON (task, classes, bands, pixel scale, units, survey, seed,
simulator and version), so the file describes itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError, first_line

FORMAT_VERSION = 1


@dataclass
class Dataset:
    """Cutouts with labels, per-object columns and provenance metadata."""

    images: np.ndarray
    labels: np.ndarray | None = None
    objects: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> "Dataset":
        """A new dataset holding the objects at ``index`` (array of ints or mask)."""
        return Dataset(
            images=self.images[index],
            labels=None if self.labels is None else self.labels[index],
            objects={k: v[index] for k, v in self.objects.items()},
            meta=dict(self.meta),
        )

    def save(self, path) -> Path:
        """Write the dataset to ``path`` (HDF5) atomically: all or nothing."""
        import h5py

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        try:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("images", data=self.images, chunks=_chunks(self.images.shape))
                if self.labels is not None:
                    f.create_dataset("labels", data=self.labels)
                group = f.create_group("objects")
                for name, column in self.objects.items():
                    write_column(group, name, column)
                f.attrs["deepsky"] = json.dumps({**self.meta, "format_version": FORMAT_VERSION})
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path) -> "Dataset":
        """Read a dataset written by :meth:`save`; bad files raise DeepskyError."""
        import h5py

        path = Path(path)
        if not path.exists():
            raise DeepskyError(f"{path}: no such file")
        try:
            with h5py.File(path, "r") as f:
                if "images" not in f:
                    raise DeepskyError(f"{path}: no 'images' dataset; is this a deepsky dataset?")
                images = np.asarray(f["images"][...], dtype=np.float32)
                labels = f["labels"][...] if "labels" in f else None
                objects = {k: read_column(v) for k, v in f["objects"].items()} if "objects" in f else {}
                meta = json.loads(f.attrs["deepsky"]) if "deepsky" in f.attrs else {}
        except DeepskyError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise DeepskyError(f"{path}: not a readable HDF5 dataset ({first_line(exc)})") from None
        if images.ndim != 4:
            raise DeepskyError(
                f"{path}: images have shape {images.shape}; expected (N, height, width, bands)"
            )
        return cls(images=images, labels=labels, objects=objects, meta=meta)


def concatenate(parts: list[Dataset]) -> Dataset:
    """One dataset of ``parts`` in order (images, labels and the object columns all parts have); meta of the first."""
    labels = None if any(p.labels is None for p in parts) else np.concatenate([p.labels for p in parts])
    columns = [name for name in parts[0].objects if all(name in p.objects for p in parts)]
    return Dataset(images=np.concatenate([p.images for p in parts]), labels=labels,
                   objects={name: np.concatenate([np.asarray(p.objects[name]) for p in parts]) for name in columns},
                   meta=dict(parts[0].meta))


def write_column(group, name: str, column) -> None:
    """Store one per-object column; numpy text becomes UTF-8 strings (HDF5 has no unicode type)."""
    import h5py

    column = np.asarray(column)
    if column.dtype.kind == "U":
        group.create_dataset(name, data=column.astype(object), dtype=h5py.string_dtype())
    else:
        group.create_dataset(name, data=column)


def read_column(dataset) -> np.ndarray:
    """A stored column; UTF-8 string columns come back as numpy str arrays."""
    if dataset.dtype.kind == "O":
        return dataset.asstr()[...].astype(str)
    return dataset[...]


def _chunks(shape):
    # One chunk per 256 cutouts keeps random access and compression-free reads fast.
    return (min(shape[0], 256), *shape[1:]) if shape[0] else None
