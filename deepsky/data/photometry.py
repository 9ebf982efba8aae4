"""Catalogues of magnitudes: read them, and tell usable rows from missing or sentinel values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepsky.errors import DeepskyError

# Magnitudes outside this range are placeholders, not measurements: SDSS writes -9999 for
# "no measurement", other catalogues 99 or 9999. Real sources, even the Sun, are inside it.
PLAUSIBLE_MAGNITUDES = (-30.0, 40.0)
ID_COLUMNS = ("id", "objid", "obj_id", "objID", "obj_ID", "source_id", "specobjid")


@dataclass
class Photometry:
    """Magnitudes of one catalogue, with what could not be used.

    Attributes
    ----------
    magnitudes : ndarray
        (N, bands) float32, in the catalogue's magnitudes; unusable values are NaN.
    valid : ndarray
        (N,) True where every band holds a usable magnitude.
    flags : ndarray
        (N,) str: empty for usable rows, else what is wrong (``"u=-9999"``, ``"g missing"``).
    ids : ndarray
        (N,) the catalogue's id column, or the row number (0-based) when it has none.
    classes : ndarray or None
        (N,) str labels from the class column, when asked for and present.
    """

    magnitudes: np.ndarray
    valid: np.ndarray
    flags: np.ndarray
    ids: np.ndarray
    classes: np.ndarray | None = None


def load_photometry(path, bands, class_column: str | None = None) -> Photometry:
    """Read the ``bands`` magnitude columns (and a class column) of a CSV, FITS or Parquet catalogue.

    Parameters
    ----------
    path : path
        The catalogue file.
    bands : sequence of str
        Column names of the magnitudes, e.g. ``("u", "g", "r", "i", "z")``.
    class_column : str, optional
        Column holding each object's class, when the catalogue is labelled.

    Raises
    ------
    DeepskyError
        For an unreadable or empty file, or missing columns (named in the message).
    """
    from deepsky.data.tables import read_catalog

    return photometry_from_table(read_catalog(path), bands, class_column, path)


def photometry_from_table(table, bands, class_column: str | None = None, source="catalogue") -> Photometry:
    """:func:`load_photometry` of an astropy Table already read (``source`` names it in errors)."""
    needed = list(bands) + ([class_column] if class_column else [])
    missing = [name for name in needed if name not in table.colnames]
    if missing:
        raise DeepskyError(
            f"{source}: the catalogue has no column(s) {', '.join(missing)}; it needs "
            f"{', '.join(needed)} (found: {', '.join(table.colnames[:20])})"
        )
    n = len(table)
    magnitudes = np.full((n, len(bands)), np.nan, np.float32)
    flags = [[] for _ in range(n)]
    for k, band in enumerate(bands):
        values, problems = _magnitudes(table[band])
        magnitudes[:, k] = values
        for row in np.flatnonzero(problems != ""):
            flags[row].append(f"{band} {problems[row]}")
    flag_text = np.array(["; ".join(f) for f in flags], dtype=str)
    valid = flag_text == ""
    classes = None
    if class_column:
        classes = np.char.strip(np.asarray(table[class_column]).astype(str))
    return Photometry(magnitudes, valid, flag_text, _ids(table), classes)


def _magnitudes(column) -> tuple[np.ndarray, np.ndarray]:
    """Float magnitudes with NaN where unusable, and a short problem text per row."""
    data = np.ma.asarray(column)
    mask = np.ma.getmaskarray(data)
    try:
        values = np.ma.filled(data.astype(np.float64), np.nan)
    except (TypeError, ValueError):  # a text column with some non-numbers in it
        values = np.array([_to_float(v) for v in np.asarray(column)], dtype=np.float64)
    problems = np.full(len(values), "", dtype=object)
    problems[~np.isfinite(values)] = "not a number"
    problems[mask] = "missing"
    lo, hi = PLAUSIBLE_MAGNITUDES
    sentinel = np.isfinite(values) & ((values <= lo) | (values >= hi))
    problems[sentinel] = [f"placeholder {v:g}" for v in values[sentinel]]
    values[problems != ""] = np.nan
    return values.astype(np.float32), problems.astype(str)


def _to_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _ids(table) -> np.ndarray:
    lower = {name.lower(): name for name in table.colnames}
    for candidate in ID_COLUMNS:
        if candidate.lower() in lower:
            column = np.asarray(table[lower[candidate.lower()]])
            # SDSS object ids are 19-digit integers stored as floats in some files; keep them exact as text
            if column.dtype.kind == "f" and np.all(np.isfinite(column)) and np.all(column == np.round(column)):
                return np.array([f"{int(v)}" for v in column])
            return column.astype(str)
    return np.arange(len(table))
