"""Read a user's stack of cutouts (.npy or deepsky .h5) into what a model expects.

The result is always (N, size, size, bands) float32 in nanomaggies, channels
last; anything that cannot be made so raises DeepskyError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.data.sdss import SDSS_BANDS, luptitudes_to_nanomaggies
from deepsky.data.store import CHUNK_ROWS
from deepsky.errors import DeepskyError, first_line

UNITS = ("nanomaggies", "luptitudes")
# Sky-subtracted flux images have a median pixel near zero; SDSS luptitude
# stacks sit at 20-25 mag, so a median above this means magnitudes.
LUPTITUDE_MEDIAN_THRESHOLD = 15.0
_MAX_LISTED = 10
_WHY = {"argument": "as asked", "metadata": "as the file says", "median": "median pixel above 15"}


def read_stack(path, bands: int, size: int, units: str = "auto", native_units: str | None = None):
    """Read cutouts from a ``.npy`` array or a deepsky HDF5 dataset.

    Parameters
    ----------
    path : str or path
        ``.npy`` (plain numeric array) or ``.h5``/``.hdf5`` written by
        :meth:`deepsky.data.store.Dataset.save`. Cutouts may be channels first
        (N, bands, size, size) or channels last (N, size, size, bands); a
        single 3-D cutout is read as N = 1.
    bands : int
        Number of bands the model expects.
    size : int
        Cutout side the model expects, in pixels.
    units : {"auto", "nanomaggies", "luptitudes"}
        Pixel units in the file. ``"auto"`` trusts the file's metadata, else
        takes a finite median pixel above 15 as SDSS asinh magnitudes.
        Luptitudes are only understood for the 5 SDSS bands u, g, r, i, z.
    native_units : str, optional
        The units the model was trained on (its contract's); a stack whose
        metadata names them is read as it is, whatever they are (Jy/beam,
        difference-image stamps).

    Returns
    -------
    images : numpy.ndarray
        (N, size, size, bands) float32, nanomaggies per pixel.
    ids : numpy.ndarray
        The dataset's ``objects/id`` column if present, else row numbers.
    info : dict
        ``path``, ``layout`` (channels_first or channels_last), ``units``
        (units found in the file), ``units_from`` (argument, metadata or
        median) and ``n``.
    """
    (part,) = iter_stack(path, bands, size, units, rows=None, native_units=native_units)
    return part


def iter_stack(path, bands: int, size: int, units: str = "auto", rows: int | None = CHUNK_ROWS,
               native_units: str | None = None):
    """:func:`read_stack` a chunk at a time: ``(images, ids, info)`` for consecutive runs of ``rows`` cutouts.

    Only one chunk is in memory at a time (``.npy`` files are memory-mapped,
    HDF5 read by slices); ``rows=None`` reads the whole stack in one chunk.
    Every check of :func:`read_stack` applies to every chunk, with cutouts
    numbered from the start of the file. With ``units="auto"`` and no
    units in the file, the median pixel of the first chunk decides.
    """
    path = Path(path)
    if units not in ("auto", *UNITS):
        raise DeepskyError(
            f"units={units!r} is not understood; use 'auto', 'nanomaggies' or 'luptitudes'"
        )
    if not path.is_file():
        raise DeepskyError(f"{path}: no such file")
    with _StackFile(path) as stack:
        shape = stack.shape
        single = len(shape) == 3
        if len(shape) not in (3, 4):
            raise DeepskyError(
                f"{path}: array has {len(shape)} dimensions {shape}; expected "
                f"(N, {size}, {size}, {bands}) or (N, {bands}, {size}, {size})"
            )
        n = 1 if single else shape[0]
        if n == 0:
            raise DeepskyError(f"{path}: the stack is empty (0 cutouts)")
        layout = _channels_last_layout(shape[-3:], path, bands, size)
        ids = stack.ids
        if ids is None:
            ids = np.arange(n)
        elif len(ids) != n:
            raise DeepskyError(f"{path}: objects/id has {len(ids)} entries for {n} cutouts")
        rows = n if rows is None else rows
        decided = None
        for start in range(0, n, rows):
            array = stack.read(slice(None)) if single else stack.read(slice(start, start + rows))
            if single:
                array = array[np.newaxis]
            if layout == "channels_first":
                array = array.transpose(0, 2, 3, 1)
            bad = np.flatnonzero(~np.isfinite(array).all(axis=(1, 2, 3))) + start
            if bad.size:
                listed = ", ".join(str(i) for i in bad[:_MAX_LISTED])
                more = f" (first {_MAX_LISTED} in this part of the file)" if bad.size > _MAX_LISTED else ""
                raise DeepskyError(
                    f"{path}: cutouts {listed}{more} have NaN or infinite pixels; drop or repair them"
                )
            if decided is None:
                decided = _decide_units(array, path, units, stack.units, native_units)
                if decided[0] == "luptitudes" and bands != len(SDSS_BANDS):
                    raise DeepskyError(
                        f"{path}: luptitudes ({_WHY[decided[1]]}) convert only for the 5 SDSS bands "
                        f"u,g,r,i,z, but the model has {bands}; pass units='nanomaggies' if pixels are flux"
                    )
            if decided[0] == "luptitudes":
                images = luptitudes_to_nanomaggies(array, axis=-1)
            else:
                images = array.astype(np.float32, copy=False)
            info = {"path": str(path), "layout": layout, "units": decided[0], "units_from": decided[1], "n": n,
                    "start": start}
            yield np.ascontiguousarray(images), ids[start : start + len(images)], info


class _StackFile:
    """A ``.npy`` (memory-mapped) or deepsky ``.h5`` stack: shape, ``read(rows)``, ids and units from metadata."""

    def __init__(self, path: Path):
        suffix = path.suffix.lower()
        self._dataset = None
        if suffix == ".npy":
            self._array = read_array(path, mmap=True)
            self.shape, self.ids, self.units = self._array.shape, None, None
            self.read = lambda rows: np.asarray(self._array[rows])
        elif suffix in (".h5", ".hdf5"):
            from deepsky.data.store import DatasetFile

            self._dataset = DatasetFile(path)  # raises DeepskyError naming the file
            if self._dataset.meta.get("layout", "cutouts") != "cutouts":
                self.close()
                raise DeepskyError(f"{path}: holds {self._dataset.meta.get('layout')}, not cutouts")
            ids = self._dataset.objects.get("id")
            if ids is not None and ids.dtype.kind in "SO":
                ids = ids.astype(str)  # h5py returns stored strings as bytes
            self.shape, self.ids, self.units = self._dataset.shape, ids, self._dataset.meta.get("units")
            self.read = self._dataset.read
        else:
            raise DeepskyError(f"{path}: unknown stack format; use a .npy array or a deepsky .h5 dataset")

    def close(self):
        if self._dataset is not None:
            self._dataset.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_array(path, mmap: bool = False) -> np.ndarray:
    """A real numeric array from a ``.npy`` file (no pickles), memory-mapped if ``mmap``; bad files raise DeepskyError."""
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except Exception as exc:  # noqa: BLE001 - numpy parses a damaged header with ast (SyntaxError, TokenError...)
        raise DeepskyError(f"{path}: not a readable .npy array ({first_line(exc)}); re-create it with numpy.save") from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DeepskyError(f"{path}: holds {array.dtype} values; expected a real numeric array")
    return array


def _channels_last_layout(shape, path: Path, bands: int, size: int) -> str:
    """``channels_last`` or ``channels_first`` for one cutout's shape, or DeepskyError if it fits the model neither way."""
    a, b, c = shape
    expected = f"the model expects {bands}" + (" (u,g,r,i,z)" if bands == len(SDSS_BANDS) else "")
    if a == b:  # (N, size, size, bands), preferred when both readings fit
        found, side, layout = c, a, "channels_last"
    elif b == c:
        found, side, layout = a, b, "channels_first"
    else:
        raise DeepskyError(
            f"{path}: cutouts of shape {tuple(shape)} are not square; expected "
            f"({size}, {size}, {bands}) or ({bands}, {size}, {size})"
        )
    if found != bands:
        raise DeepskyError(f"{path}: has {found} bands; {expected}")
    if side != size:
        raise DeepskyError(
            f"{path}: cutouts are {side}x{side} pixels; the model expects {size}x{size} "
            "(re-cut them at that size)"
        )
    return layout


def _decide_units(array, path, units, file_units, native_units=None):
    if units != "auto":
        return units, "argument"
    if file_units is not None and file_units == native_units:
        return file_units, "metadata"
    if file_units is not None:
        if file_units not in UNITS:
            raise DeepskyError(
                f"{path}: metadata says units {file_units!r}; "
                "convert to nanomaggies or luptitudes first"
            )
        return file_units, "metadata"
    median = float(np.median(array))  # all pixels are finite by now
    return ("luptitudes" if median > LUPTITUDE_MEDIAN_THRESHOLD else "nanomaggies"), "median"
