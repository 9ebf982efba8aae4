"""Cutouts for prediction from the files a user gives: a stack, or FITS images with a catalogue."""

from __future__ import annotations

from pathlib import Path

from deepsky.errors import DeepskyError

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")
STACK_SUFFIXES = (".h5", ".hdf5", ".npy")


def suffix(path) -> str:
    """The recognised FITS or stack suffix of ``path``, or ``""``."""
    name = str(path).lower()
    return next((s for s in FITS_SUFFIXES + STACK_SUFFIXES if name.endswith(s)), "")


def read_cutout_inputs(inputs, contract: dict, catalog=None, units: str = "auto"):
    """``(images, ids, info)`` from one cutout stack or FITS images plus a catalogue.

    Parameters
    ----------
    inputs : list of path
        One ``.h5``/``.npy`` stack (channels first or last), or FITS images:
        one multi-extension file or one file per band.
    contract : dict
        The run's data contract (bands, cutout size in pixels).
    catalog : path, optional
        CSV or FITS table with an id column and ra/dec (degrees) or x/y
        (0-based pixels); needed for FITS images.
    units : str
        Pixel units of a stack: auto, nanomaggies or luptitudes.
    """
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise DeepskyError("no input files given")
    bands, (size, _) = len(contract["bands"]), contract["cutout_pixels"]
    kinds = {suffix(p) in FITS_SUFFIXES for p in inputs}
    if kinds == {True}:
        if catalog is None:
            raise DeepskyError(f"{inputs[0]}: FITS images need a --catalog of object positions")
        from deepsky.data.fits_cutouts import cutouts_from_fits

        return cutouts_from_fits(inputs, catalog, bands=bands, size=size)
    if len(inputs) == 1 and suffix(inputs[0]) in STACK_SUFFIXES:
        from deepsky.data.stacks import read_stack

        return read_stack(inputs[0], bands=bands, size=size, units=units, native_units=contract.get("units"))
    raise DeepskyError(
        f"{inputs[0]}: give one cutout stack ({', '.join(STACK_SUFFIXES)}) or FITS images "
        f"({', '.join(FITS_SUFFIXES)}) with --catalog"
    )
