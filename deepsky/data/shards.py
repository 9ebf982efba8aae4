"""Data sets larger than memory: HDF5 shards simulated in parallel and read back lazily.

``deepsky simulate TASK --n N -o FOLDER/`` writes ``FOLDER/shard-00000.h5``... of at most
``shard_size`` objects each, shard ``k`` simulated with its own seed (:func:`shard_seed`), so
that any shard can be made on any worker and the files are the same bytes however many
workers made them, or none (the serial loop). ``FOLDER/shards.json`` is written last and
lists them; a rerun makes only the shards missing.

:func:`open_shards` reads such a folder as a :class:`~deepsky.data.store.Dataset` whose
inputs are a :class:`ShardedArray`: labels and per-object columns are read at once (small),
the inputs only when rows are asked for, so training on it holds one batch of inputs at a time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from deepsky.errors import DeepskyError

INDEX = "shards.json"
SHARD_SIZE = 50_000  # objects per shard by default


def shard_seed(seed: int, shard: int) -> int:
    """The seed of shard ``shard`` of a data set simulated with ``seed``: independent streams per shard."""
    return int(np.random.SeedSequence([int(seed), int(shard)]).generate_state(1, np.uint32)[0])


def shard_sizes(n: int, shard_size: int) -> list[int]:
    """Objects per shard: ``shard_size`` each, the last one the rest."""
    return [min(shard_size, n - start) for start in range(0, n, shard_size)]


def simulate_shards(task, n: int, seed: int, folder, shard_size: int = SHARD_SIZE, workers: int | None = None,
                    scheduler: str | None = None, on_shard: Callable[[int], None] | None = None) -> dict:
    """Simulate ``n`` objects of ``task`` into HDF5 shards under ``folder``; return the index (``shards.json``).

    ``workers=1`` without a scheduler simulates in this process, one shard after another;
    otherwise the shards are Dask tasks (a LocalCluster of ``workers`` processes, or the
    cluster at ``scheduler``). The files do not depend on which. ``on_shard(objects)`` is
    called as each shard lands.
    """
    folder = Path(folder)
    sizes = shard_sizes(n, shard_size)
    job = {"task": task.name, "task_options": task.options, "n": n, "seed": seed, "shard_size": shard_size}
    index_path = folder / INDEX
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text())
        except ValueError:
            index = {}
        if {key: index.get(key) for key in job} != job:
            raise DeepskyError(f"{folder}: holds other shards ({index.get('task')}, n {index.get('n')}, seed "
                               f"{index.get('seed')}); give a new folder")
    elif folder.exists() and (not folder.is_dir() or any(p.suffix != ".h5" for p in folder.iterdir()
                                                          if not p.name.startswith("."))):
        raise DeepskyError(f"{folder}: exists and is not a folder of shards; -o names a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    shards = [{"file": f"shard-{k:05d}.h5", "n": size, "seed": shard_seed(seed, k)} for k, size in enumerate(sizes)]
    todo = [shard for shard in shards if not (folder / shard["file"]).is_file()]
    for shard in shards:
        if shard not in todo and on_shard:
            on_shard(shard["n"])
    jobs = [{"task": task.name, "task_options": task.options, "n": shard["n"], "seed": shard["seed"],
             "out": str(folder / shard["file"])} for shard in todo]
    if (workers or 0) <= 1 and not scheduler:
        for spec in jobs:
            on_shard_done = _simulate_shard(spec)
            if on_shard:
                on_shard(on_shard_done)
    elif jobs:
        from dask.distributed import as_completed

        from deepsky.scale import _client

        client, cluster = _client(scheduler, workers)
        try:
            futures = [client.submit(_simulate_shard, spec, key=f"deepsky-shard-{Path(spec['out']).name}-{os.getpid()}",
                                     retries=2, pure=False) for spec in jobs]
            for future in as_completed(futures):
                done = future.result()
                if on_shard:
                    on_shard(done)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    index = {**job, "shards": shards}
    tmp = folder / f".{INDEX}.part"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, index_path)
    return index


def _simulate_shard(spec) -> int:
    """(worker) Simulate one shard and write it atomically; its number of objects."""
    from deepsky import tasks

    task = tasks.get(spec["task"], **(spec["task_options"] or {}))
    data = task.simulate(spec["n"], spec["seed"])
    data.meta = {**data.meta, "shard_seed": spec["seed"]}
    data.save(spec["out"])
    return len(data)


def is_shard_folder(path) -> bool:
    """True for a folder written by :func:`simulate_shards`."""
    return Path(path).is_dir() and (Path(path) / INDEX).is_file()


def open_shards(folder):
    """The shards of ``folder`` as one Dataset: inputs lazy (:class:`ShardedArray`), the rest in memory."""
    from deepsky.data.store import Dataset, DatasetFile

    folder = Path(folder)
    try:
        index = json.loads((folder / INDEX).read_text())
        files = [folder / shard["file"] for shard in index["shards"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeepskyError(f"{folder / INDEX}: not a readable shard index ({exc})") from None
    labels, objects, meta, sizes, names = [], [], None, [], None
    for path in files:
        with DatasetFile(path) as source:
            labels.append(source.labels)
            objects.append(source.objects)
            meta = meta or source.meta
            sizes.append(source.n)
            names = sorted(source._arrays) if isinstance(source._arrays, dict) else None
    if any(label is None for label in labels):
        labels = None
    else:
        labels = np.concatenate(labels)
    columns = {name: np.concatenate([o[name] for o in objects]) for name in objects[0]
               if all(name in o for o in objects)}
    if names:
        inputs = {name: ShardedArray(files, sizes, name) for name in names}
    else:
        inputs = ShardedArray(files, sizes, None)
    meta = {**meta, "shards": str(folder)}
    meta.pop("shard_seed", None)
    return Dataset(inputs=inputs, labels=labels, objects=columns, meta=meta)


class ShardedArray:
    """The inputs of HDF5 shards as one read-only array, read only where indexed (float32).

    ``array[rows]`` (a slice, an int or an array of ints) reads those rows; ``array.rows(index)``
    is a lazy view of some rows (what :func:`deepsky.data.store.take` returns for it), so that a
    training/validation split holds no inputs until a batch is read.
    """

    def __init__(self, files, sizes, name: str | None, index: np.ndarray | None = None):
        self.files, self.sizes, self.name = [str(f) for f in files], list(sizes), name
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)])
        self.index = index  # rows of the whole that this view holds (None: all)
        self._handles: dict = {}
        first = self._dataset(0)
        self._row_shape, self.dtype = tuple(first.shape[1:]), np.dtype(np.float32)

    def __getstate__(self):  # open HDF5 handles do not travel to other processes
        return {**self.__dict__, "_handles": {}}

    def __len__(self) -> int:
        return int(self.starts[-1]) if self.index is None else len(self.index)

    @property
    def shape(self) -> tuple:
        return (len(self), *self._row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self._row_shape)

    def rows(self, index) -> "ShardedArray":
        """A lazy view of rows ``index`` (ints or a boolean mask) of this array."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        whole = index if self.index is None else self.index[index]
        return ShardedArray(self.files, self.sizes, self.name, np.asarray(whole, np.int64))

    def __array__(self, dtype=None, copy=None):
        array = self[slice(None)]
        return array if dtype is None else array.astype(dtype)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return self[key[0]][(slice(None), *key[1:])]
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        if isinstance(key, slice):
            rows = np.arange(len(self))[key]
        else:
            rows = np.asarray(key)
            rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        if len(rows) and (rows.max() >= len(self) or rows.min() < -len(self)):
            raise IndexError(f"rows up to {rows.max()} asked of {len(self)}")
        rows = np.where(rows < 0, rows + len(self), rows)
        whole = rows if self.index is None else self.index[rows]
        return self._read(whole)

    def reshape(self, *shape):
        return np.asarray(self).reshape(*shape)

    def _dataset(self, k: int):
        if k not in self._handles:
            import h5py

            f = h5py.File(self.files[k], "r")
            self._handles[k] = f["images"] if "images" in f else (f["inputs"][self.name] if self.name else f["inputs"])
        return self._handles[k]

    def _read(self, whole: np.ndarray) -> np.ndarray:
        out = np.empty((len(whole), *self._row_shape), np.float32)
        if not len(whole):
            return out
        order = np.argsort(whole, kind="stable")
        ordered = whole[order]
        shard_of = np.searchsorted(self.starts, ordered, side="right") - 1
        for k in np.unique(shard_of):
            mine = shard_of == k
            local = ordered[mine] - self.starts[k]
            unique, inverse = np.unique(local, return_inverse=True)  # h5py reads increasing, distinct rows
            dataset = self._dataset(int(k))
            if len(unique) > 1 and unique[-1] - unique[0] + 1 == len(unique):
                block = dataset[int(unique[0]) : int(unique[-1]) + 1]
            else:
                block = dataset[unique]
            out[order[mine]] = np.asarray(block, np.float32)[inverse]
        return out
