"""Catalogues read part by part: Parquet row groups, CSV line ranges, FITS table slices, HATS pixels (LSDB).

A survey catalogue may hold more rows than memory. :func:`catalog_parts`
splits one into parts of bounded size without reading it whole (Parquet
metadata, one streaming pass over a CSV's lines, a FITS header, a HATS
catalogue's pixel list); each :class:`CatalogPart` is small, picklable and
read on its own, on whichever Dask worker it is sent to. Rows are numbered
in catalogue order from 0 (a HATS catalogue's order is its pixels' order,
then the rows within each pixel).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError, first_line

PART_ROWS = 200_000  # rows per part of a catalogue without partitions of its own (CSV, FITS)


@dataclass(frozen=True)
class CatalogPart:
    """Rows ``first_row .. first_row + rows`` of one catalogue, and how to read them."""

    path: str
    kind: str  # parquet, csv, fits or hats
    index: int
    first_row: int
    rows: int
    where: tuple = ()  # parquet: row groups; csv: (byte offset, byte length); hats: (order, pixel)

    @property
    def name(self) -> str:
        if self.kind == "hats":
            order, pixel = self.where
            return f"Norder={order}-Npix={pixel}"
        return f"rows-{self.first_row:012d}"

    def read(self, columns=None):
        """The part's rows as an astropy Table (only ``columns``, when given)."""
        from astropy.table import Table

        try:
            table = _READERS[self.kind](self, columns)
        except DeepskyError:
            raise
        except Exception as exc:  # noqa: BLE001 - pyarrow, astropy and lsdb raise many types for bad files
            raise DeepskyError(f"{self.path}: could not read rows {self.first_row}-{self.first_row + self.rows - 1} "
                               f"({first_line(exc)})") from None
        if len(table) != self.rows:
            raise DeepskyError(f"{self.path}: expected {self.rows} rows in part {self.name}, read {len(table)}; "
                               "the catalogue changed while it was being read")
        return Table(table) if not isinstance(table, Table) else table


def is_hats(path) -> bool:
    """True for a HATS catalogue or collection folder (``hats.properties``, ``properties`` or ``collection.properties``)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file()
                                 for name in ("hats.properties", "properties", "collection.properties"))


def catalog_parts(path, rows_per_part: int = PART_ROWS) -> list[CatalogPart]:
    """The parts of the catalogue at ``path`` (CSV, FITS table, Parquet file or HATS folder), in catalogue order."""
    path = Path(path)
    if is_hats(path):
        return _hats_parts(path)
    if not path.exists():
        raise DeepskyError(f"{path}: no such file")
    from deepsky.data.tables import table_format

    _, kind = table_format(path)
    try:
        parts = _SPLITTERS[kind](path, rows_per_part)
    except DeepskyError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DeepskyError(f"{path}: not a readable {kind} table ({first_line(exc)}); check or re-create it") from None
    if not parts or sum(part.rows for part in parts) == 0:
        raise DeepskyError(f"{path}: the catalogue is empty (no rows); give at least one object")
    return parts


def catalog_columns(path) -> list[str]:
    """The column names of a catalogue, from its metadata or first line."""
    path = Path(path)
    if is_hats(path):
        import hats

        catalog = hats.read_hats(path)
        catalog = getattr(catalog, "main_catalog", catalog)
        return list(catalog.schema.names)
    part = catalog_parts(path, rows_per_part=1)[0]
    if part.kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    return list(CatalogPart(part.path, part.kind, 0, 0, min(1, part.rows), part.where).read().colnames)


# -- splitting ---------------------------------------------------------------------------------
def _split_parquet(path: Path, rows_per_part: int) -> list[CatalogPart]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    parts, groups, rows, first = [], [], 0, 0
    for group in range(meta.num_row_groups):
        groups.append(group)
        rows += meta.row_group(group).num_rows
        if rows >= rows_per_part or group == meta.num_row_groups - 1:
            parts.append(CatalogPart(str(path), "parquet", len(parts), first, rows, tuple(groups)))
            first, groups, rows = first + rows, [], 0
    return parts


def _split_csv(path: Path, rows_per_part: int) -> list[CatalogPart]:
    """Byte ranges of ``rows_per_part`` data lines each, found in one streaming pass (comments and blanks skipped)."""
    parts = []
    with open(path, "rb") as f:
        header_seen = False
        start, rows, first, offset = None, 0, 0, 0
        for line in f:
            stripped = line.strip()
            here, offset = offset, offset + len(line)
            if not stripped or stripped.startswith(b"#"):
                continue
            if not header_seen:
                header_seen = True
                continue
            if start is None:
                start = here
            rows += 1
            if rows == rows_per_part:
                parts.append(CatalogPart(str(path), "csv", len(parts), first, rows, (start, offset - start)))
                first, start, rows = first + rows, None, 0
        if rows:
            parts.append(CatalogPart(str(path), "csv", len(parts), first, rows, (start, offset - start)))
    return parts


def _split_fits(path: Path, rows_per_part: int) -> list[CatalogPart]:
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdus:
        table = next((hdu for hdu in hdus if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU))), None)
        if table is None:
            raise DeepskyError(f"{path}: holds no table HDU")
        n = int(table.header.get("NAXIS2", 0))
    return [CatalogPart(str(path), "fits", k, start, min(rows_per_part, n - start))
            for k, start in enumerate(range(0, n, rows_per_part))]


def _hats_parts(path: Path) -> list[CatalogPart]:
    import hats
    import pyarrow.parquet as pq
    from hats.io import paths

    try:
        catalog = hats.read_hats(path)
    except Exception as exc:  # noqa: BLE001
        raise DeepskyError(f"{path}: not a readable HATS catalogue ({first_line(exc)})") from None
    catalog = getattr(catalog, "main_catalog", catalog)
    parts, first = [], 0
    for k, pixel in enumerate(catalog.get_healpix_pixels()):
        rows = pq.ParquetFile(str(paths.pixel_catalog_file(catalog.catalog_base_dir, pixel))).metadata.num_rows
        parts.append(CatalogPart(str(path), "hats", k, first, rows, (int(pixel.order), int(pixel.pixel))))
        first += rows
    return parts


_SPLITTERS = {"parquet": _split_parquet, "csv": _split_csv, "fits": _split_fits}


# -- reading -----------------------------------------------------------------------------------
def _read_parquet(part: CatalogPart, columns):
    import pyarrow.parquet as pq
    from astropy.table import Table

    from deepsky.data.tables import _column

    arrow = pq.ParquetFile(part.path).read_row_groups(list(part.where), columns=columns)
    return Table({name: _column(arrow[name]) for name in arrow.column_names})


def _read_csv(part: CatalogPart, columns):
    from astropy.io import ascii

    with open(part.path, "rb") as f:
        header = next(line for line in f if line.strip() and not line.strip().startswith(b"#"))
        start, length = part.where
        f.seek(start)
        body = f.read(length)
    text = (header + body).decode("utf-8-sig")
    table = ascii.read(text, format="csv", comment="#")
    return table[columns] if columns else table


def _read_fits(part: CatalogPart, columns):
    from astropy.io import fits
    from astropy.table import Table

    with fits.open(part.path, memmap=True) as hdus:
        hdu = next(hdu for hdu in hdus if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)))
        rows = hdu.data[part.first_row : part.first_row + part.rows]
        names = columns or list(hdu.columns.names)
        table = Table({name: _native(np.array(rows[name])) for name in names})
    table.convert_bytestring_to_unicode()
    return table


def _native(values: np.ndarray) -> np.ndarray:
    """FITS stores big-endian numbers; Arrow and torch take the machine's own order."""
    return values.astype(values.dtype.newbyteorder("=")) if values.dtype.byteorder == ">" else values


_HATS_CATALOGS: dict = {}  # (path, columns) -> lsdb catalogue, opened once per worker process


def _read_hats(part: CatalogPart, columns):
    import lsdb
    from astropy.table import Table

    key = (part.path, tuple(columns) if columns else None)
    if key not in _HATS_CATALOGS:
        _HATS_CATALOGS[key] = lsdb.read_hats(part.path, columns=list(columns) if columns else None)
    catalog = _HATS_CATALOGS[key]
    order, pixel = part.where
    frame = catalog.get_partition(order, pixel).to_delayed()[0].compute(scheduler="sync")
    return Table({name: np.asarray(frame[name].to_numpy()) for name in frame.columns})


_READERS = {"parquet": _read_parquet, "csv": _read_csv, "fits": _read_fits, "hats": _read_hats}
