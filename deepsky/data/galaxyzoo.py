"""Galaxy Zoo 1 SDSS colour images with their volunteer classes, as a Dataset.

A Galaxy Zoo 1 folder holds ``labels.csv`` and ``images/``: one SDSS gri
colour JPEG per galaxy, named by its SDSS DR7 objID. ``labels.csv`` has the
columns ``filename`` (inside ``images/``), ``sdss_objid`` and ``gz1_class``
(0 elliptical, 1 clockwise spiral, 2 anticlockwise spiral, 3 edge-on,
4 don't know, 5 merger); ``gz1_name`` and other text columns are ignored,
other numeric columns are kept per object.

The images pass through :func:`deepsky.data.image_folders.prepare_image`
(centre crop, then area averaging), the function ``deepsky predict`` uses on
image files, so training and prediction see the same pixels. Dieleman et al.
(2015) cropped the Galaxy Zoo 2 images 424 -> 207 pixels (0.49) before
downsampling: the galaxy fills the centre because the cutouts were scaled to
each galaxy's size. Measured on this set's 5,326 images (g+r+i JPEG values,
sky = median of a 10-pixel border): the central half of the side, a quarter
of the area, holds for the median galaxy 99.7 per cent of the light of the
central source (pixels connected to the centre and 5 sigma above the sky,
after a 5x5 mean), at least 90 per cent of it for 84 per cent of galaxies,
and 73 per cent of all sky-subtracted light in the picture, neighbours and
noise included; hence the default ``crop_fraction=0.5``.

Bands: SDSS colour JPEGs show the i, r and g images as red, green and blue
(asinh-stretched, Lupton et al. 2004), so the channels, taken in order of
increasing wavelength (blue, green, red), are g, r, i.

Pixel scale: the Galaxy Zoo cutouts were made at a scale tied to each
galaxy's Petrosian radius (Lintott et al. 2008; Galaxy Zoo 2 used 0.02
petroR90_r arcsec/pixel, Willett et al. 2013), not at SDSS's fixed 0.396
arcsec/pixel; the file names and ``labels.csv`` carry no radius, so the scale
is not known per image and ``meta["pixel_scale_arcsec"]`` is None. What the
network sees is the galaxy at a roughly constant apparent size.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from deepsky.data.image_folders import check_geometry, parallel_map, prepare_image
from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError, first_line

TASK = "galaxy-morphology"
GZ1_CLASSES = ("elliptical", "clockwise spiral", "anticlockwise spiral", "edge-on", "don't know", "merger")
MERGED_CLASSES = ("elliptical", "spiral", "edge-on", "merger")
# GZ1 code -> merged index; None drops the object. Clockwise and anticlockwise
# spirals are mirror images of one another: a network that should not care
# about flips cannot, and need not, tell them apart.
MERGE = {0: 0, 1: 1, 2: 1, 3: 2, 4: None, 5: 3}
BANDS = ("g", "r", "i")
UNITS = "jpeg (0-1, asinh-stretched SDSS colour image)"
REQUIRED_COLUMNS = ("filename", "sdss_objid", "gz1_class")
_TEXT_COLUMNS = ("filename", "sdss_objid", "gz1_class", "gz1_name")


def load_galaxy_zoo(folder, size: int = 64, crop_fraction: float = 0.5, classes: str = "merged",
                    limit: int | None = None, progress=None, workers=None, select=None) -> Dataset:
    """Read a Galaxy Zoo 1 folder (``labels.csv`` and ``images/``) into a Dataset.

    Parameters
    ----------
    folder : str or path
        The folder holding ``labels.csv`` and ``images/``.
    size : int
        Side of the output images in pixels.
    crop_fraction : float
        Side of the centre crop as a fraction of the image side, in (0, 1]
        (0.5: 423 -> 211.5 pixels, then area-averaged to ``size``).
    classes : {"merged", "original"}
        ``"merged"``: elliptical, spiral (clockwise and anticlockwise
        together), edge-on, merger; "don't know" objects are dropped and
        counted in ``meta["dropped"]``. ``"original"``: the 6 GZ1 classes.
    limit : int, optional
        Read only the first ``limit`` rows of ``labels.csv`` (before
        dropping "don't know"), for quick looks and tests.
    progress : callable, optional
        Called with the number of images decoded, as they are decoded.
    workers : int, optional
        Decoding threads; default one per available CPU core.
    select : callable, optional
        Given the (N,) class labels of the rows kept, returns the indices of
        the rows to read: only their images are decoded (one part of a
        split, a subsample), in that order.

    Returns
    -------
    Dataset
        images (N, size, size, 3) float32 in [0, 1], bands g, r, i; labels
        (N,) int64 class indices; objects ``objid`` (str, SDSS DR7 objID
        exactly as written), ``gz1_class`` (the original code) and any other
        numeric column of ``labels.csv``; meta with task, classes, bands,
        units, pixel scale (None: see the module notes), source and the crop
        and size settings.
    """
    if classes not in ("merged", "original"):
        raise DeepskyError(f"classes must be 'merged' or 'original'. Received: classes={classes!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DeepskyError(f"limit must be a positive whole number of rows. Received: limit={limit!r}")
    check_geometry(size, crop_fraction)
    folder = Path(folder)
    if not folder.is_dir():
        raise DeepskyError(f"{folder}: no such folder; give the Galaxy Zoo folder holding labels.csv and images/")
    table = folder / "labels.csv"
    rows, extra = _read_labels(table, limit)

    codes = np.array([row["code"] for row in rows], dtype=np.int64)
    if classes == "merged":
        keep = np.array([MERGE[c] is not None for c in codes], dtype=bool)
        labels = np.array([MERGE[c] for c in codes[keep]], dtype=np.int64)
        names = MERGED_CLASSES
        dropped = {GZ1_CLASSES[4]: int((~keep).sum())}
    else:
        keep = np.ones(len(codes), dtype=bool)
        labels = codes.copy()
        names = GZ1_CLASSES
        dropped = {}
    rows = [row for row, k in zip(rows, keep) if k]
    chosen = np.arange(len(rows)) if select is None else np.asarray(select(labels), dtype=np.int64)
    rows, labels = [rows[i] for i in chosen], labels[chosen]

    paths = [folder / "images" / row["filename"] for row in rows]
    missing = [(row, p) for row, p in zip(rows, paths) if not p.is_file()]
    if missing:
        row, path = missing[0]
        more = f" ({len(missing)} listed images are missing)" if len(missing) > 1 else ""
        raise DeepskyError(f"{path}: listed in {table} (line {row['line']}) but absent{more}")

    images = np.empty((len(paths), size, size, len(BANDS)), dtype=np.float32)

    def read(index_path):
        index, path = index_path
        # The pipeline deepsky predict runs on image files; a grey or damaged JPEG fails here, naming it.
        images[index], shape = prepare_image(path, size, len(BANDS), crop_fraction)
        return shape

    shapes = parallel_map(read, enumerate(paths), progress=progress, workers=workers)
    sides = sorted({tuple(int(v) for v in s) for s in shapes})

    objects = {
        "objid": np.array([row["objid"] for row in rows], dtype=str),
        "gz1_class": codes[keep][chosen],
    }
    for name, values in extra.items():
        objects[name] = values[keep][chosen]
    meta = {
        "task": TASK,
        "classes": list(names),
        "class_scheme": classes,
        "bands": list(BANDS),
        "units": UNITS,
        "channels": {"g": "blue", "r": "green", "i": "red"},
        "pixel_scale_arcsec": None,
        "pixel_scale_note": (
            "Galaxy Zoo 1 cutouts are scaled to each galaxy's Petrosian radius (Lintott et al. 2008); "
            "labels.csv has no radius, so the arcsec/pixel scale is unknown per image"
        ),
        "survey": {"name": "SDSS", "images": "SDSS DR7 gri colour JPEG cutouts shown to Galaxy Zoo 1"},
        "source": str(folder.resolve()),
        "reader": "deepsky.data.galaxyzoo.load_galaxy_zoo",
        "size": int(size),
        "crop_fraction": float(crop_fraction),
        "resampling": "centre crop, then area average (box filter)",
        "source_pixels": [list(s) for s in sides],
        "limit": limit,
        "n_rows": len(codes),
        "dropped": dropped,
    }
    return Dataset(inputs=images, labels=labels, objects=objects, meta=meta)


def stratified_split(labels, fraction: float, seed: int):
    """Seeded (train_index, val_index) holding ``fraction`` of every class out for validation.

    Each class gives ``round(fraction * n_class)`` objects to validation, at
    least one and at most ``n_class - 1`` when the class has two or more, so
    every class with two members appears on both sides. Indices are sorted.

    >>> train, val = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), 0.5, seed=0)
    >>> len(train), len(val), set(train.tolist()) & set(val.tolist())
    (5, 5, set())
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DeepskyError(f"labels must be one class per object (1-D). Received: shape {labels.shape}")
    if not (isinstance(fraction, (int, float, np.floating)) and 0 < fraction < 1):
        raise DeepskyError(f"fraction must be between 0 and 1 (exclusive). Received: fraction={fraction!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    val = []
    for value in np.unique(labels):  # sorted, so the draw order does not depend on the data's order
        members = np.flatnonzero(labels == value)
        n_val = int(np.floor(fraction * len(members) + 0.5))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val.append(rng.permutation(members)[:n_val])
    val_index = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[val_index] = False
    return np.flatnonzero(train_mask).astype(np.int64), val_index.astype(np.int64)


# -- internals -----------------------------------------------------------------------


def _read_labels(table: Path, limit):
    """Rows {line, filename, objid, code} and the extra numeric columns, checked."""
    if not table.is_file():
        raise DeepskyError(f"{table}: no such file; a Galaxy Zoo folder holds labels.csv and images/")
    try:
        with open(table, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DeepskyError(f"{table}: empty file; expected a header with {', '.join(REQUIRED_COLUMNS)}")
            header = [name.strip() for name in header]
            absent = [name for name in REQUIRED_COLUMNS if name not in header]
            if absent:
                raise DeepskyError(
                    f"{table}: missing column(s) {', '.join(absent)}; found {', '.join(header)}"
                )
            where = {name: header.index(name) for name in header}
            raw = []
            for line, fields in enumerate(reader, start=2):
                if not fields or all(not f.strip() for f in fields):
                    continue  # blank line
                if len(fields) != len(header):
                    raise DeepskyError(
                        f"{table}: line {line} has {len(fields)} fields; the header has {len(header)}"
                    )
                raw.append((line, [f.strip() for f in fields]))
                if limit is not None and len(raw) >= limit:
                    break
    except DeepskyError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DeepskyError(f"{table}: not a readable CSV file ({first_line(exc)})") from None
    if not raw:
        raise DeepskyError(f"{table}: no rows under the header")

    rows, seen = [], {}
    for line, fields in raw:
        filename = fields[where["filename"]]
        objid = fields[where["sdss_objid"]]
        code_text = fields[where["gz1_class"]]
        if not (objid.isdigit() and objid.isascii()):
            raise DeepskyError(
                f"{table}: line {line}: sdss_objid {objid!r} is not a whole number; keep SDSS objIDs as "
                "digits (a spreadsheet may have turned them into floats)"
            )
        try:
            code = int(code_text)
        except ValueError:
            code = None
        if code is None or code not in MERGE:
            raise DeepskyError(
                f"{table}: line {line}: gz1_class {code_text!r} is not a Galaxy Zoo 1 class code (0-5: "
                + ", ".join(f"{i} {name}" for i, name in enumerate(GZ1_CLASSES)) + ")"
            )
        if not filename or Path(filename).name != filename:
            raise DeepskyError(f"{table}: line {line}: filename {filename!r} must be a file name inside images/")
        if objid in seen:
            raise DeepskyError(f"{table}: line {line}: sdss_objid {objid} repeats line {seen[objid]}")
        seen[objid] = line
        rows.append({"line": line, "filename": filename, "objid": objid, "code": code})

    extra = {}
    for name in header:
        if name in _TEXT_COLUMNS or not name:
            continue
        column = [fields[where[name]] for _, fields in raw]
        values = _numeric(column)
        if values is not None:
            extra[name] = values
    return rows, extra


def _numeric(column):
    """The column as int64 or float64 if every cell is a number (empty cells: NaN), else None."""
    try:
        return np.array([int(v) for v in column], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        return np.array([float(v) if v else np.nan for v in column], dtype=np.float64)
    except ValueError:
        return None
