"""The on-disk dataset: inputs, labels and per-object columns in one HDF5 file.

Inputs come in three layouts (``meta["layout"]``): ``cutouts`` (N, height,
width, bands), ``series`` (N, time steps, channels) and ``tables`` (N,
features), float32 in the units named by the metadata, channels last as
Keras expects; or several named inputs per object (a dict of such arrays,
e.g. a light curve's global and local views), which models with several
inputs take by name. On disk: ``/images`` (cutouts) or ``/inputs`` (other
layouts) or the group ``/inputs/<name>``; ``/labels`` (N,) integer class
indices or (N, ...) float targets (optional); ``/objects/<column>`` one
array per catalogue column (true magnitudes, PSF, sizes...); the root
attribute ``deepsky`` holds the metadata as JSON (task, layout, classes,
bands, pixel scale, units, survey, seed, simulator and version), so the
file describes itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError, first_line

FORMAT_VERSION = 1


LAYOUTS = {"cutouts": 4, "series": 3, "tables": 2}  # layout -> dimensions of its arrays, objects first


def layout_of(inputs) -> str:
    """The layout of an input array (or of the first of named inputs), from its number of dimensions."""
    first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    for name, ndim in LAYOUTS.items():
        if np.ndim(first) == ndim:
            return name
    raise DeepskyError(f"inputs of shape {np.shape(first)} fit no layout: cutouts (N, height, width, bands), "
                       "series (N, time steps, channels) or tables (N, features)")


@dataclass
class Dataset:
    """Inputs (one array or several named ones) with labels, per-object columns and provenance metadata."""

    inputs: np.ndarray | dict
    labels: np.ndarray | None = None
    objects: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.inputs, dict):
            lengths = {name: len(array) for name, array in self.inputs.items()}
            if not lengths or len(set(lengths.values())) != 1:
                raise DeepskyError(f"named inputs must hold one row per object each; received lengths {lengths}")

    @property
    def images(self) -> np.ndarray:
        """The cutouts (N, height, width, bands) of a cutout dataset: its inputs under their usual name."""
        return self.inputs

    @property
    def layout(self) -> str:
        """``cutouts``, ``series`` or ``tables``."""
        return self.meta.get("layout") or layout_of(self.inputs)

    def __len__(self) -> int:
        if isinstance(self.inputs, dict):
            return len(next(iter(self.inputs.values())))
        return len(self.inputs)

    def subset(self, index) -> "Dataset":
        """A new dataset holding the objects at ``index`` (array of ints or mask)."""
        return Dataset(
            inputs=take(self.inputs, index),
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
                if isinstance(self.inputs, dict):
                    for name, array in self.inputs.items():
                        f.create_dataset(f"inputs/{name}", data=array, chunks=_chunks(np.shape(array)))
                else:
                    key = "images" if self.layout == "cutouts" else "inputs"
                    f.create_dataset(key, data=self.inputs, chunks=_chunks(np.shape(self.inputs)))
                if self.labels is not None:
                    f.create_dataset("labels", data=self.labels)
                group = f.create_group("objects")
                for name, column in self.objects.items():
                    write_column(group, name, column)
                f.attrs["deepsky"] = _metadata_attribute({**self.meta, "layout": self.layout,
                                                           "format_version": FORMAT_VERSION})
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path) -> "Dataset":
        """Read a dataset written by :meth:`save`, or a folder of shards (its inputs read lazily); bad files raise
        DeepskyError."""
        from deepsky.data.shards import is_shard_folder, open_shards

        if is_shard_folder(path):
            return open_shards(path)
        with DatasetFile(path) as source:
            inputs = source.read(slice(None))
            try:
                return cls(inputs=inputs, labels=source.labels, objects=source.objects, meta=source.meta)
            except DeepskyError as exc:
                raise DeepskyError(f"{source.path}: {exc}") from None


def split(n: int, fraction: float, seed: int, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) index arrays, ``fraction`` of the ``n`` rows for validation.

    With ``groups`` (one key per row: a star's identifier...), whole groups
    go to one side, drawn in a seeded order until the validation side holds
    ``fraction`` of the rows, so that no group is on both sides.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    n_val = max(1, int(round(n * fraction))) if n > 1 else 0
    if groups is None:
        order = rng.permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    keys, member = np.unique(np.asarray(groups), return_inverse=True)
    sizes = np.bincount(member, minlength=len(keys))
    order = rng.permutation(len(keys))
    taken = order[: int(np.searchsorted(np.cumsum(sizes[order]), n_val) + 1)] if n_val else order[:0]
    validation = np.isin(member, taken)
    if validation.all() and len(keys) > 1:
        validation = np.isin(member, taken[:-1])
    return np.flatnonzero(~validation), np.flatnonzero(validation)


CHUNK_ROWS = 4096  # objects read at a time where a whole file need not be in memory (predict)


class DatasetFile:
    """A dataset file open for reading its inputs a slice at a time; labels, columns and metadata are read at once.

    Use it as a context manager: ``with DatasetFile(path) as f: for start, inputs in f.chunks(4096): ...``
    """

    def __init__(self, path):
        import h5py

        self.path = Path(path)
        if not self.path.exists():
            raise DeepskyError(f"{self.path}: no such file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise DeepskyError(f"{self.path}: not a readable HDF5 dataset ({first_line(exc)})") from None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self):
        import h5py

        f = self._file
        try:
            if "images" in f:
                self._arrays = f["images"]
            elif "inputs" in f and isinstance(f["inputs"], h5py.Group):
                self._arrays = {name: item for name, item in f["inputs"].items()}
            elif "inputs" in f:
                self._arrays = f["inputs"]
            else:
                raise DeepskyError(f"{self.path}: no 'images' or 'inputs' dataset; is this a deepsky dataset?")
            self.labels = f["labels"][...] if "labels" in f else None
            self.objects = {k: read_column(v) for k, v in f["objects"].items()} if "objects" in f else {}
            self.meta = json.loads(f.attrs["deepsky"]) if "deepsky" in f.attrs else {}
        except DeepskyError:
            raise
        except Exception as exc:  # noqa: BLE001 - h5py meets damaged files with any type (RuntimeError, AttributeError...)
            raise DeepskyError(f"{self.path}: not a readable HDF5 dataset ({first_line(exc)})") from None
        arrays = list(self._arrays.values()) if isinstance(self._arrays, dict) else [self._arrays]
        if not isinstance(self.meta, dict) or not all(isinstance(array, h5py.Dataset) for array in arrays):
            raise DeepskyError(f"{self.path}: not a readable HDF5 dataset (its inputs or metadata are damaged)")
        layout = self.meta.get("layout", "cutouts")
        expected = LAYOUTS.get(layout)
        if expected is None or any(array.ndim != expected for array in arrays):
            shapes = ", ".join(str(array.shape) for array in arrays)
            raise DeepskyError(f"{self.path}: inputs of shape {shapes} do not fit the layout {layout!r} "
                               f"({expected} dimensions, objects first)")
        lengths = {len(array) for array in arrays}
        if len(lengths) != 1:
            raise DeepskyError(f"{self.path}: named inputs hold different numbers of objects ({sorted(lengths)})")
        self.n = lengths.pop()
        if self.labels is not None and (np.ndim(self.labels) == 0 or len(self.labels) != self.n):
            raise DeepskyError(f"{self.path}: {np.size(self.labels)} labels for {self.n} objects; "
                               "give one label per object")
        if self.labels is not None and self.labels.dtype.kind not in "biuf":
            raise DeepskyError(f"{self.path}: labels of type {self.labels.dtype}; give numbers (class indices "
                               "or parameter values)")
        for name, column in self.objects.items():
            if np.ndim(column) == 0 or len(column) != self.n:
                raise DeepskyError(f"{self.path}: column {name!r} holds {np.size(column)} values for {self.n} objects")

    @property
    def shape(self) -> tuple:
        """Shape of the inputs (one array), objects first."""
        return self._arrays.shape

    def read(self, rows: slice):
        """Inputs of objects ``rows`` (float32; a dict for named inputs)."""
        try:
            if isinstance(self._arrays, dict):
                return {name: np.asarray(item[rows], dtype=np.float32) for name, item in self._arrays.items()}
            return np.asarray(self._arrays[rows], dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - a damaged file fails only when its damaged part is read
            raise DeepskyError(f"{self.path}: not a readable HDF5 dataset ({first_line(exc)})") from None

    def chunks(self, rows: int = CHUNK_ROWS):
        """``(start, inputs)`` for consecutive slices of at most ``rows`` objects."""
        for start in range(0, self.n, rows):
            yield start, self.read(slice(start, start + rows))

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def take(inputs, index):
    """Rows ``index`` of an input array, or of each of named inputs; of inputs read lazily from shards
    (:class:`~deepsky.data.shards.ShardedArray`), rows picked by an index array stay lazy (a view)."""
    if isinstance(inputs, dict):
        return {name: take(array, index) for name, array in inputs.items()}
    if hasattr(inputs, "rows") and not isinstance(index, slice):
        return inputs.rows(index)
    return inputs[index]


def read_rows(inputs, index):
    """Rows ``index`` of inputs as numpy arrays in memory (lazy inputs are read here)."""
    part = take(inputs, index)
    if isinstance(part, dict):
        return {name: np.asarray(array) for name, array in part.items()}
    return np.asarray(part)


def concatenate(parts: list[Dataset]) -> Dataset:
    """One dataset of ``parts`` in order (inputs, labels and the object columns all parts have); meta of the first."""
    labels = None if any(p.labels is None for p in parts) else np.concatenate([p.labels for p in parts])
    columns = [name for name in parts[0].objects if all(name in p.objects for p in parts)]
    first = parts[0].inputs
    inputs = ({name: np.concatenate([p.inputs[name] for p in parts]) for name in first}
              if isinstance(first, dict) else np.concatenate([p.inputs for p in parts]))
    return Dataset(inputs=inputs, labels=labels,
                   objects={name: np.concatenate([np.asarray(p.objects[name]) for p in parts]) for name in columns},
                   meta=dict(parts[0].meta))


def write_column(group, name: str, column) -> None:
    """Store one per-object column; numpy text becomes UTF-8 strings (HDF5 has no unicode type)."""
    column = np.asarray(column)
    if column.dtype.kind == "U":
        # fixed-length: variable-length strings live in HDF5's global heap, and a damaged heap
        # can hang libhdf5 while reading them (found by tests/test_fuzz_readers.py)
        encoded = np.char.encode(column, "utf-8")
        group.create_dataset(name, data=encoded)  # HDF5 labels these bytes ASCII; read_column decodes UTF-8
    else:
        group.create_dataset(name, data=column)


def read_column(dataset) -> np.ndarray:
    """A stored column; UTF-8 string columns (fixed or variable length) come back as numpy str arrays."""
    if dataset.dtype.kind == "O":
        return dataset.asstr()[...].astype(str)
    if dataset.dtype.kind == "S":
        return np.char.decode(dataset[...], "utf-8").astype(str)
    return dataset[...]


def _metadata_attribute(meta: dict) -> np.bytes_:
    """The dataset's metadata as fixed-length JSON bytes (no global-heap string: see write_column)."""
    return np.bytes_(json.dumps(meta).encode("utf-8"))


def _chunks(shape):
    # One chunk per 256 cutouts keeps random access and compression-free reads fast.
    return (min(shape[0], 256), *shape[1:]) if shape[0] else None
