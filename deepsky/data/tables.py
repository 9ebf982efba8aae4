"""Catalogue tables in and out: FITS, CSV and Parquet, chosen by file extension.

Writes are atomic (a temporary file in the same folder, then ``os.replace``),
so a crash or a full disk never leaves a half-written catalogue behind.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError, first_line

_FORMATS = {
    ".fits.gz": "fits",
    ".fit.gz": "fits",
    ".fits": "fits",
    ".fit": "fits",
    ".csv": "csv",
    ".parquet": "parquet",
}
_META_KEY = b"deepsky"  # Parquet schema-metadata key holding the JSON metadata


def table_format(path) -> tuple[str, str]:
    """The (suffix, format) of a catalogue path; unknown suffixes raise DeepskyError."""
    name = Path(path).name.lower()
    for suffix, fmt in _FORMATS.items():
        if name.endswith(suffix):
            return suffix, fmt
    raise DeepskyError(f"{path}: unknown table format; use one of {', '.join(_FORMATS)}")


def write_table(columns: dict[str, np.ndarray], path, meta: dict | None = None) -> Path:
    """Write one-dimensional columns to a FITS, CSV or Parquet table, atomically.

    Parameters
    ----------
    columns : dict of str to array_like
        Column name to values; all columns one-dimensional and of equal length.
        Units belong in the column names (``flux_nmgy``, ``ra_deg``).
    path : str or path
        Output file; the extension picks the format: ``.fits``, ``.fit``,
        ``.fits.gz`` (FITS binary table), ``.csv`` or ``.parquet``.
    meta : dict, optional
        Provenance metadata. FITS stores it as header cards (scalars as they
        are, other values as JSON), Parquet as JSON in the schema metadata,
        CSV stays plain (header and rows only) so that every CSV reader
        takes it.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    suffix, fmt = table_format(path)  # before anything touches the disk
    arrays = {name: np.asarray(values) for name, values in columns.items()}
    if not arrays:
        raise DeepskyError(f"{path}: no columns given; pass at least one column")
    for name, a in arrays.items():
        if a.ndim != 1:
            raise DeepskyError(
                f"{path}: column {name!r} has shape {a.shape}; write one 1-D column per quantity"
            )
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DeepskyError(f"{path}: columns differ in length {lengths}; give equal-length columns")

    # Same folder so os.replace is an atomic rename; the random part keeps concurrent
    # writers apart, and the real suffix lets astropy gzip a .fits.gz.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _WRITERS[fmt](arrays, tmp, dict(meta or {}))
        os.replace(tmp, path)
    except OSError as exc:
        raise DeepskyError(
            f"{path}: could not write ({first_line(exc)}); check the folder and free space"
        ) from None
    except (ValueError, TypeError) as exc:
        raise DeepskyError(
            f"{path}: cannot store these columns as {fmt} ({first_line(exc)})"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_fits(arrays, tmp, meta):
    from astropy.table import Table
    from astropy.io.fits.verify import VerifyWarning

    table = Table(arrays)
    for key, value in meta.items():
        table.meta[key] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
    with warnings.catch_warnings():
        # Keys longer than 8 characters become HIERARCH cards, which is what we want.
        warnings.filterwarnings("ignore", message=".*HIERARCH", category=VerifyWarning)
        table.write(tmp, format="fits", overwrite=True)


def _write_csv(arrays, tmp, meta):
    from astropy.table import Table

    Table(arrays).write(tmp, format="ascii.csv", overwrite=True)


def _write_parquet(arrays, tmp, meta):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(arrays)
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, tmp)


_WRITERS = {"fits": _write_fits, "csv": _write_csv, "parquet": _write_parquet}


def read_catalog(path):
    """Read a FITS, CSV or Parquet catalogue into an astropy Table.

    Parameters
    ----------
    path : str or path
        ``.fits``/``.fit``/``.fits.gz`` (first table HDU), ``.csv`` (comma
        separated, header row, ``#`` comments) or ``.parquet``.

    Returns
    -------
    astropy.table.Table
        At least one row; missing, corrupt or empty files raise DeepskyError.
    """
    path = Path(path)
    _, fmt = table_format(path)
    if not path.is_file():
        raise DeepskyError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # A truncated FITS file only warns on open; make it fail here instead of later.
            warnings.filterwarnings("error", message=".*truncated")
            table = _READERS[fmt](path)
    except Exception as exc:  # noqa: BLE001 - astropy/pyarrow raise many types for bad files
        raise DeepskyError(
            f"{path}: not a readable {fmt} table ({first_line(exc)}); check or re-create it"
        ) from None
    if len(table.colnames) == 0 or len(table) == 0:
        raise DeepskyError(f"{path}: the catalogue is empty (no rows); give at least one object")
    return table


def _read_fits(path):
    from astropy.table import Table

    table = Table.read(path, format="fits")
    table.convert_bytestring_to_unicode()  # FITS strings are bytes; users compare with str
    return table


def _read_csv(path):
    from astropy.table import Table

    text = path.read_text()
    if not text.strip():
        return Table()
    table = Table.read(path, format="ascii.csv", comment="#")
    first = table.colnames[0] if table.colnames else ""
    if first.startswith("\ufeff"):  # a byte-order mark (Excel's UTF-8) would hide the first column's name
        table.rename_column(first, first.lstrip("\ufeff"))
    table.meta.pop("comments", None)
    for line in text.splitlines():
        # Our own "# key = json" comment lines carry write_table's metadata.
        key, sep, value = line.lstrip("# ").partition(" = ")
        if line.startswith("#") and sep:
            try:
                table.meta[key] = json.loads(value)
            except ValueError:
                pass  # someone else's comment line, not metadata
    return table


def _read_parquet(path):
    import pyarrow.parquet as pq
    from astropy.table import Table

    arrow = pq.read_table(path)
    table = Table({name: _column(arrow[name]) for name in arrow.column_names})
    metadata = arrow.schema.metadata or {}
    if _META_KEY in metadata:
        table.meta.update(json.loads(metadata[_META_KEY]))
    return table


def _column(chunked) -> np.ndarray:
    import pyarrow as pa

    values = chunked.to_numpy(zero_copy_only=False)
    # Arrow hands strings back as an object array; a fixed-width str array matches CSV and FITS.
    if pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type):
        values = values.astype(str)
    return values


_READERS = {"fits": _read_fits, "csv": _read_csv, "parquet": _read_parquet}
