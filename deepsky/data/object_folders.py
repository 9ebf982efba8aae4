"""Cutouts from a folder of FITS files, one object per file or one sub-folder per band.

The two layouts a lens search is handed:

* ``FOLDER/*.fits``: one file per object, a 2-D image (one band) or a cube of bands (bands
  first or last);
* ``FOLDER/<band>/*.fits``: one sub-folder per band, one single-band file per object, the
  object's number in every band's file name, as the lens-finding challenge ships its images
  (``Public/Band1/imageSDSS_R-100001.fits``, ``Band2/imageSDSS_I-100001.fits`` ...; Metcalf et al.
  2019). Which band a sub-folder holds is read from its files' names
  (``image<SURVEY>_<BAND>-<number>``) or from the sub-folder's own name (``r``, ``VIS``), compared
  without case; sub-folders of bands the model does not use (the challenge's NISP bands beside
  VIS) are left out, and named in the summary.

Cutouts larger than the model's are cut to their centre, smaller ones padded by reflecting their
edges (which keeps the sky noise at the border that the network measures). A pixel scale in a
header (``CDELT1``/``CD1_1`` in degrees, or ``PIXSCALE`` in arcsec) must match the model's within
5%; files without one are taken at the model's scale.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from deepsky.data.readers import FITS_SUFFIXES, suffix
from deepsky.errors import DeepskyError

SCALE_TOLERANCE = 0.05  # relative difference of pixel scales accepted
_BAND_IN_NAME = re.compile(r"_([A-Za-z][A-Za-z0-9]*)-\d+$")  # image<SURVEY>_<BAND>-<number>
_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last run of digits in a name


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(suffix(path))] if suffix(path) else path.stem


def _fits_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and suffix(p) in FITS_SUFFIXES)


def object_number(path: Path) -> int | None:
    """The object number in a file name (its last run of digits), or None."""
    match = _NUMBER.search(_stem(path))
    return int(match.group(1)) if match else None


def band_of_folder(folder: Path, files: list[Path], bands) -> str | None:
    """The model band (one of ``bands``) a sub-folder holds, from its files' names or its own; None if neither says."""
    lower = {b.lower(): b for b in bands}
    names = {m.group(1).lower() for m in (_BAND_IN_NAME.search(_stem(p)) for p in files[:50]) if m}
    if len(names) == 1:
        return lower.get(names.pop(), "")  # "" : a band, but not one of the model's
    return lower.get(folder.name.lower())


def pixel_scale_arcsec(header) -> float | None:
    """The pixel scale a FITS header states (arcsec per pixel), or None."""
    for key in ("PIXSCALE", "PIXSCAL1", "SECPIX"):
        if key in header:
            return abs(float(header[key]))
    for key in ("CD1_1", "CDELT1"):
        if key in header and float(header[key]) != 0:
            scale = abs(float(header[key])) * 3600
            if key == "CD1_1" and "CD1_2" in header:
                scale = float(np.hypot(float(header["CD1_1"]), float(header["CD1_2"]))) * 3600
            return scale
    return None


def fit_to_size(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, bands) cut to its central ``size`` x ``size`` or padded to it by reflecting the edges."""
    for axis in (0, 1):
        n = image.shape[axis]
        if n > size:
            start = (n - size) // 2
            image = np.take(image, np.arange(start, start + size), axis=axis)
        elif n < size:
            before = (size - n) // 2
            pad = [(0, 0)] * image.ndim
            pad[axis] = (before, size - n - before)
            image = np.pad(image, pad, mode="reflect" if n > 1 else "edge")
            while image.shape[axis] < size:  # reflection cannot more than double a side: repeat
                image = np.pad(image, [(0, 0) if a != axis else (0, size - image.shape[axis]) for a in range(3)],
                               mode="edge")
    return np.ascontiguousarray(image)


def _read(path: Path, bands: int, expected_scale: float | None):
    from astropy.io import fits

    from deepsky.data.image_folders import load_image

    image = load_image(path, bands=bands)  # corrupt, truncated, NaN pixels, band counts: one clear line
    if expected_scale:
        try:
            header = fits.getheader(path)
        except Exception:  # noqa: BLE001 - load_image has read the file; a header it cannot parse says nothing
            header = {}
        scale = pixel_scale_arcsec(header)
        if scale is not None and abs(scale / expected_scale - 1) > SCALE_TOLERANCE:
            raise DeepskyError(f"{path}: pixels of {scale:.4g} arcsec; the model was trained on "
                               f"{expected_scale:.4g} arcsec pixels (resample the images first)")
    return image


def folder_layout(folder: Path, bands) -> tuple[list, list, dict]:
    """``(numbers or stems, [[file per band] per object], info)`` of a folder in either layout."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeepskyError(f"{folder}: no such folder")
    direct = _fits_files(folder)
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and _fits_files(p))
    if direct and subfolders:
        raise DeepskyError(f"{folder}: holds FITS files and sub-folders of them; give one object per file or "
                           "one sub-folder per band, not both")
    if direct:
        numbers = [object_number(p) for p in direct]
        ids = numbers if None not in numbers and len(set(numbers)) == len(numbers) else [_stem(p) for p in direct]
        return ids, [[p] for p in direct], {"layout": "one FITS file per object", "folder": str(folder)}
    if not subfolders:
        raise DeepskyError(f"{folder}: no FITS files in it or in its sub-folders")
    by_band, unused = {}, []
    for sub in subfolders:
        files = _fits_files(sub)
        band = band_of_folder(sub, files, bands)
        if band is None:
            raise DeepskyError(f"{sub}: cannot tell which band this folder holds (name it after a band, "
                               f"{', '.join(bands)}, or keep the band in its file names: "
                               "image<SURVEY>_<BAND>-<n>.fits)")
        if band == "":
            unused.append(sub.name)
            continue
        if band in by_band:
            raise DeepskyError(f"{sub}: a second folder of band {band} (the first is {by_band[band][0]})")
        numbered = {}
        for path in files:
            number = object_number(path)
            if number is None:
                raise DeepskyError(f"{path}: no object number in the file name; bands are matched by it")
            if number in numbered:
                raise DeepskyError(f"{path}: object {number} appears twice in {sub} (also {numbered[number].name})")
            numbered[number] = path
        by_band[band] = (sub, numbered)
    missing = [b for b in bands if b not in by_band]
    if missing:
        raise DeepskyError(f"{folder}: no sub-folder of band {', '.join(missing)}; the model needs "
                           f"{', '.join(bands)} (found {', '.join(by_band) or 'none of them'})")
    numbers = sorted(set().union(*(set(n) for _, n in by_band.values())))
    for band in bands:
        sub, numbered = by_band[band]
        absent = [n for n in numbers if n not in numbered]
        if absent:
            raise DeepskyError(f"{sub}: band {band} lacks object(s) {', '.join(map(str, absent[:10]))}"
                               f"{' ...' if len(absent) > 10 else ''} that other bands have")
    files = [[by_band[b][1][n] for b in bands] for n in numbers]
    info = {"layout": "one sub-folder per band", "folder": str(folder),
            "band_folders": {b: by_band[b][0].name for b in bands}}
    if unused:
        info["unused_folders"] = unused
    return numbers, files, info


def iter_object_folder(folder, bands, size: int, pixel_scale: float | None = None, rows: int | None = 4096):
    """Yield ``(cutouts (k, size, size, bands) float32, ids, info)`` for every object of ``folder``, ``rows`` at a time.

    Parameters
    ----------
    folder : path
        A folder in one of the two layouts (module docstring).
    bands : sequence of str
        The model's bands, in its order.
    size : int
        The model's cutout side (pixels).
    pixel_scale : float, optional
        The model's pixel scale (arcsec per pixel), checked against the headers.
    """
    ids, files, info = folder_layout(Path(folder), list(bands))
    nb = len(bands)
    rows = rows or len(files)
    for start in range(0, len(files), rows):
        block = files[start : start + rows]
        out = np.empty((len(block), size, size, nb), np.float32)
        for k, paths in enumerate(block):
            if len(paths) == 1:
                image = _read(paths[0], nb, pixel_scale)
            else:
                planes = [_read(p, 1, pixel_scale) for p in paths]
                shapes = {p.shape[:2] for p in planes}
                if len(shapes) > 1:
                    listed = ", ".join(f"{b} {p.shape[0]}x{p.shape[1]}" for b, p in zip(bands, planes))
                    raise DeepskyError(f"{paths[0].parent.parent}: object {ids[start + k]} has bands of different "
                                       f"sizes ({listed}); every band of an object must share one pixel grid")
                image = np.concatenate(planes, axis=-1)
            out[k] = fit_to_size(image, size)
        yield out, np.asarray(ids[start : start + rows]), info
