"""Read a user's stack of cutouts (.npy or deepsky .h5) into what a model expects.

The result is always (N, size, size, bands) float32 in nanomaggies, channels
last; anything that cannot be made so raises DeepskyError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.data.sdss import SDSS_BANDS, luptitudes_to_nanomaggies
from deepsky.errors import DeepskyError, first_line

UNITS = ("nanomaggies", "luptitudes")
# Sky-subtracted flux images have a median pixel near zero; SDSS luptitude
# stacks sit at 20-25 mag, so a median above this means magnitudes.
LUPTITUDE_MEDIAN_THRESHOLD = 15.0
_MAX_LISTED = 10
_WHY = {"argument": "as asked", "metadata": "as the file says", "median": "median pixel above 15"}


def read_stack(path, bands: int, size: int, units: str = "auto"):
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
    path = Path(path)
    if units not in ("auto", *UNITS):
        raise DeepskyError(
            f"units={units!r} is not understood; use 'auto', 'nanomaggies' or 'luptitudes'"
        )
    if not path.is_file():
        raise DeepskyError(f"{path}: no such file")
    array, ids, file_units = _read(path)

    if array.ndim == 3:
        array = array[np.newaxis]
    if array.ndim != 4:
        raise DeepskyError(
            f"{path}: array has {array.ndim} dimensions {array.shape}; expected "
            f"(N, {size}, {size}, {bands}) or (N, {bands}, {size}, {size})"
        )
    if len(array) == 0:
        raise DeepskyError(f"{path}: the stack is empty (0 cutouts)")
    array, layout = _channels_last(array, path, bands, size)

    bad = np.flatnonzero(~np.isfinite(array).all(axis=(1, 2, 3)))
    if bad.size:
        listed = ", ".join(str(i) for i in bad[:_MAX_LISTED])
        more = f" (first {_MAX_LISTED} of {bad.size})" if bad.size > _MAX_LISTED else ""
        raise DeepskyError(
            f"{path}: cutouts {listed}{more} have NaN or infinite pixels; drop or repair them"
        )

    units, units_from = _decide_units(array, path, units, file_units)
    if units == "luptitudes":
        if bands != len(SDSS_BANDS):
            raise DeepskyError(
                f"{path}: luptitudes ({_WHY[units_from]}) convert only for the 5 SDSS bands "
                f"u,g,r,i,z, but the model has {bands}; pass units='nanomaggies' if pixels are flux"
            )
        images = luptitudes_to_nanomaggies(array, axis=-1)
    else:
        images = array.astype(np.float32, copy=False)

    if ids is None:
        ids = np.arange(len(images))
    elif len(ids) != len(images):
        raise DeepskyError(f"{path}: objects/id has {len(ids)} entries for {len(images)} cutouts")
    info = {
        "path": str(path),
        "layout": layout,
        "units": units,
        "units_from": units_from,
        "n": len(images),
    }
    return np.ascontiguousarray(images), ids, info


def read_array(path) -> np.ndarray:
    """A real numeric array from a ``.npy`` file (no pickles); bad files raise DeepskyError naming them."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DeepskyError(f"{path}: not a readable .npy array ({first_line(exc)}); re-create it with numpy.save") from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DeepskyError(f"{path}: holds {array.dtype} values; expected a real numeric array")
    return array


def _read(path: Path):
    """(array, ids or None, units from metadata or None) from a .npy or .h5 file."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_array(path), None, None
    if suffix in (".h5", ".hdf5"):
        from deepsky.data.store import Dataset

        dataset = Dataset.load(path)  # raises DeepskyError naming the file
        ids = dataset.objects.get("id")
        if ids is not None and ids.dtype.kind in "SO":
            ids = ids.astype(str)  # h5py returns stored strings as bytes
        return dataset.images, ids, dataset.meta.get("units")
    raise DeepskyError(f"{path}: unknown stack format; use a .npy array or a deepsky .h5 dataset")


def _channels_last(array: np.ndarray, path: Path, bands: int, size: int):
    _, a, b, c = array.shape
    expected = f"the model expects {bands}" + (" (u,g,r,i,z)" if bands == len(SDSS_BANDS) else "")
    if a == b:  # (N, size, size, bands), preferred when both readings fit
        found, side, layout = c, a, "channels_last"
    elif b == c:
        found, side, layout = a, b, "channels_first"
    else:
        raise DeepskyError(
            f"{path}: cutouts of shape {array.shape[1:]} are not square; expected "
            f"({size}, {size}, {bands}) or ({bands}, {size}, {size})"
        )
    if found != bands:
        raise DeepskyError(f"{path}: has {found} bands; {expected}")
    if side != size:
        raise DeepskyError(
            f"{path}: cutouts are {side}x{side} pixels; the model expects {size}x{size} "
            "(re-cut them at that size)"
        )
    if layout == "channels_first":
        array = array.transpose(0, 2, 3, 1)
    return array, layout


def _decide_units(array, path, units, file_units):
    if units != "auto":
        return units, "argument"
    if file_units is not None:
        if file_units not in UNITS:
            raise DeepskyError(
                f"{path}: metadata says units {file_units!r}; "
                "convert to nanomaggies or luptitudes first"
            )
        return file_units, "metadata"
    median = float(np.median(array))  # all pixels are finite by now
    return ("luptitudes" if median > LUPTITUDE_MEDIAN_THRESHOLD else "nanomaggies"), "median"
