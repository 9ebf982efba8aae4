"""Cut (size, size, bands) stamps from FITS band images at catalogue positions."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from deepsky.data.tables import read_catalog
from deepsky.errors import DeepskyError, first_line

ID_COLUMNS = ("id", "objid", "object_id")
_MAX_LISTED = 10
# Bands used with ra/dec must map sky to pixels alike to this many pixels.
_WCS_TOLERANCE_PIXELS = 0.01


def cutouts_from_fits(images, catalog, bands: int, size: int):
    """Cut one multi-band stamp per catalogue row from FITS images.

    Parameters
    ----------
    images : str, path or list of them
        Either one multi-extension FITS file whose 2-D image HDUs (the primary
        if it has data, then the extensions) are the bands in order, or one
        single-band FITS file per band, in band order. All bands share one
        pixel grid.
    catalog : str or path
        CSV, FITS or Parquet table (see :func:`deepsky.data.tables.read_catalog`).
        Ids come from an ``id``, ``objid`` or ``object_id`` column (any case),
        else the row number. Positions come from ``ra``/``dec`` in degrees,
        mapped to pixels with the first band's WCS, or else from ``x``/``y``
        in 0-based pixel coordinates (numpy indices: pixel ``[y, x]``; FITS
        and SExtractor count from 1, so subtract 1 from those).
    bands : int
        Number of bands the model expects.
    size : int
        Cutout side in pixels. The pixel nearest each position lands at
        index ``size // 2`` of the cutout.

    Returns
    -------
    cutouts : numpy.ndarray
        (N, size, size, bands) float32 in the images' units, one per
        catalogue row, in catalogue order.
    ids : numpy.ndarray
        Object ids.
    info : dict
        ``images`` (file names), ``catalog``, ``positions`` ("ra/dec" or
        "x/y"), ``image_shape`` (ny, nx) and ``x``, ``y`` (0-based pixels).
    """
    if isinstance(images, (str, Path)):
        images = [images]
    paths = [Path(p) for p in images]
    if not paths:
        raise DeepskyError(
            "no FITS images given; pass one multi-extension file or one file per band"
        )
    catalog = Path(catalog)
    for path in paths:
        if not path.is_file():
            raise DeepskyError(f"{path}: no such file")

    planes = _read_bands(paths)  # [(label, data, header)]
    where = str(paths[0]) if len(paths) == 1 else ", ".join(p.name for p in paths)
    if len(planes) != bands:
        expects = f"the model expects {bands}" + (" (u,g,r,i,z)" if bands == 5 else "")
        raise DeepskyError(
            f"{where}: has {len(planes)} band images; {expects}; give one 2-D image HDU "
            "per band in one file, or one file per band"
        )
    shape = planes[0][1].shape
    for label, data, _ in planes[1:]:
        if data.shape != shape:
            raise DeepskyError(
                f"{label}: image is {data.shape[1]}x{data.shape[0]} pixels but {planes[0][0]} is "
                f"{shape[1]}x{shape[0]}; all bands must share one pixel grid"
            )

    table = read_catalog(catalog)
    columns = {name.lower(): name for name in table.colnames}
    id_name = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    ids = np.arange(len(table)) if id_name is None else np.asarray(table[id_name])
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():  # a table joined back on id would mix two objects' predictions
        raise DeepskyError(f"{catalog}: id {values[counts > 1][0]} appears {counts[counts > 1][0]} times; "
                           "give each object its own id")
    if "ra" in columns and "dec" in columns:
        x, y = _sky_to_pixels(table, columns, planes, catalog)
        positions = "ra/dec"
    elif "x" in columns and "y" in columns:
        x = _float_column(table, columns["x"], catalog)
        y = _float_column(table, columns["y"], catalog)
        positions = "x/y"
    else:
        raise DeepskyError(
            f"{catalog}: no position columns; need ra/dec (degrees) or x/y (0-based pixels), "
            f"found {', '.join(table.colnames)}"
        )

    if size > min(shape):
        raise DeepskyError(
            f"{where}: a {size}x{size} cutout does not fit in the {shape[1]}x{shape[0]} image"
        )
    cube = np.stack([data for _, data, _ in planes], axis=-1)
    cutouts = _cut(cube, x, y, size, ids, catalog, where)
    info = {
        "images": [str(p) for p in paths],
        "catalog": str(catalog),
        "positions": positions,
        "image_shape": shape,
        "x": x,
        "y": y,
    }
    return cutouts, ids, info


def _read_bands(paths):
    """The 2-D image HDUs as (label, float32 data, header), in band order."""
    planes = []
    for path in paths:
        hdus = _read_image_hdus(path)
        if not hdus:
            raise DeepskyError(f"{path}: no 2-D image in this FITS file")
        # One file per band: the first image is the band; one file: every image is a band.
        planes.extend(hdus if len(paths) == 1 else hdus[:1])
    return planes


def _read_image_hdus(path: Path):
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            # astropy only warns that a file "may have been truncated"; fail now, not mid-cutout.
            warnings.filterwarnings("error", message=".*truncated")
            with fits.open(path, memmap=False) as hdul:
                out = []
                for index, hdu in enumerate(hdul):
                    data = hdu.data  # reading here is what exposes truncated data
                    if data is not None and data.ndim == 2:  # tables are 1-D record arrays
                        label = f"{path}[{index}]" if len(hdul) > 1 else str(path)
                        out.append((label, np.asarray(data, dtype=np.float32), hdu.header.copy()))
                return out
    except Exception as exc:  # noqa: BLE001 - bad files raise OSError, ValueError, TypeError...
        raise DeepskyError(
            f"{path}: corrupt or truncated FITS file ({first_line(exc)}); re-download it"
        ) from None


def _float_column(table, name, catalog) -> np.ndarray:
    column = table[name]
    try:
        values = np.ma.asarray(column).astype(np.float64)
    except (TypeError, ValueError):
        raise DeepskyError(
            f"{catalog}: column {name!r} is not numeric ({column.dtype}); "
            "give decimal degrees or pixels"
        ) from None
    # Masked cells (empty CSV fields) become NaN and then fail the edge test with their ids.
    return np.ma.filled(values, np.nan)


def _sky_to_pixels(table, columns, planes, catalog):
    label, _, header = planes[0]
    wcs = _celestial_wcs(header, label, catalog)
    ra = _float_column(table, columns["ra"], catalog)
    dec = _float_column(table, columns["dec"], catalog)
    # quiet: far-off positions get a best guess instead of an exception, then fail the edge test.
    x, y = wcs.all_world2pix(ra, dec, 0, quiet=True)

    # The other bands must put the same sky position on the same pixel.
    ny, nx = planes[0][1].shape
    grid_x = np.array([0.0, nx - 1, 0.0, nx - 1, nx / 2])
    grid_y = np.array([0.0, 0.0, ny - 1, ny - 1, ny / 2])
    sky = wcs.all_pix2world(grid_x, grid_y, 0)
    for other_label, _, other_header in planes[1:]:
        other = _celestial_wcs(other_header, other_label, catalog)
        ox, oy = other.all_world2pix(*sky, 0, quiet=True)
        if np.nanmax(np.hypot(ox - grid_x, oy - grid_y)) > _WCS_TOLERANCE_PIXELS:
            raise DeepskyError(
                f"{other_label}: its WCS differs from {label}'s; reproject the bands onto one grid"
            )
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _celestial_wcs(header, label, catalog):
    from astropy.wcs import WCS

    try:
        wcs = WCS(header).celestial
    except Exception as exc:  # noqa: BLE001 - malformed WCS keywords raise assorted errors
        raise DeepskyError(f"{label}: unreadable WCS in the header ({exc})") from None
    if not wcs.has_celestial:
        raise DeepskyError(
            f"{label}: no celestial WCS in the header, but {catalog} gives ra/dec; "
            "add a WCS or give x/y pixel columns instead"
        )
    return wcs


def _cut(cube, x, y, size, ids, catalog, where):
    ny, nx, _ = cube.shape
    half = size // 2
    with np.errstate(invalid="ignore"):
        # Round half up: numpy's round-half-to-even would shift .5 positions by parity.
        x0 = np.floor(x + 0.5) - half
        y0 = np.floor(y + 0.5) - half
        inside = (x0 >= 0) & (y0 >= 0) & (x0 + size <= nx) & (y0 + size <= ny)
    if not inside.all():
        raise DeepskyError(
            f"{catalog}: ids {_listed(ids[~inside])} are off the image or within {half} pixels "
            f"of its edge (image is {nx}x{ny} pixels, cutouts {size}x{size}); drop them or use "
            "a smaller cutout size"
        )
    x0, y0 = x0.astype(int), y0.astype(int)
    cutouts = np.stack([cube[j : j + size, i : i + size] for i, j in zip(x0, y0)])
    bad = ~np.isfinite(cutouts).all(axis=(1, 2, 3))
    if bad.any():
        raise DeepskyError(
            f"{where}: cutouts for ids {_listed(ids[bad])} (from {catalog.name}) contain NaN or "
            "infinite pixels; drop those objects or fill the masked pixels"
        )
    return cutouts.astype(np.float32, copy=False)


def _listed(values) -> str:
    values = list(values)
    more = f" (first {_MAX_LISTED} of {len(values)})" if len(values) > _MAX_LISTED else ""
    return ", ".join(str(v) for v in values[:_MAX_LISTED]) + more
