"""FIRST radio galaxy images for a classifier: Aniyan & Thorat's preprocessing, FITS and PNG alike.

Aniyan & Thorat (2017) and MiraBest (Porter & Scaife 2023) prepare VLA
FIRST cutouts the same way, and so does everything here, so that a model
sees at prediction what it saw in training:

1. blanked (NaN) pixels become 0;
2. the background rms is measured with sigma-clipped statistics (3 sigma,
   astropy) over the whole cutout, and every pixel below 3 rms above the
   clipped median is set to 0, which leaves the source and little noise;
3. the central 150 x 150 pixels (270 arcsec at FIRST's 1.8 arcsec/pixel)
   are kept; a smaller image is area-resampled to 150 x 150;
4. pixels are scaled to [0, 1] by the brightest one.

MiraBest's PNGs have been through steps 1-3 and were scaled to 0-255, so
they only need step 4 (and the resampling, if another size).

A labelled folder holds the images and ``labels.csv`` with columns
``filename``, ``label`` (FRI, FRII...) and optionally ``mirabest_code``:
MiraBest's three digits, the first the class (1 FRI, 2 FRII), the second
the confidence (0 confident, 1 uncertain), the third the morphology
within the class (0 standard; 2 double-double, 3 wide-angle tail, 4
diffuse, 5 head-tail). FITS examples named like MiraBest's
(``<code>_<RA><Dec>_<z>_<size>.fits``) carry the code in the name.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError

RADIO_PIXELS = 150
THRESHOLD_SIGMAS = 3.0
PIXEL_SCALE_ARCSEC = 1.8  # FIRST
BAND = "1.4GHz"
UNITS = "FIRST intensity scaled to [0, 1] by the brightest pixel, 0 below 3 rms"
_CLASS_DIGITS = {"1": "FRI", "2": "FRII"}


def clip_and_scale(image: np.ndarray, size: int = RADIO_PIXELS, source: str = "image") -> np.ndarray:
    """Aniyan & Thorat's preprocessing of one (H, W) or (H, W, 1) image in flux units (Jy/beam); (size, size, 1) float32."""
    from astropy.stats import sigma_clipped_stats

    image = np.asarray(image, np.float64)
    image = image[..., 0] if image.ndim == 3 else image
    image = np.where(np.isfinite(image), image, 0.0)
    _, median, rms = sigma_clipped_stats(image, sigma=3.0, maxiters=10)
    kept = np.where(image - median >= THRESHOLD_SIGMAS * rms, image - median, 0.0)
    return _centre_and_scale(kept, size, source)


def _centre_and_scale(image: np.ndarray, size: int, source: str) -> np.ndarray:
    from deepsky.data.image_folders import crop_and_resample

    height, width = image.shape
    if min(height, width) >= size:
        top, left = (height - size) // 2, (width - size) // 2
        image = image[top : top + size, left : left + size]
    else:
        image = crop_and_resample(image[..., None], size, crop_fraction=1.0)[..., 0]
    peak = float(image.max())
    if not peak > 0:
        raise DeepskyError(f"{source}: nothing above {THRESHOLD_SIGMAS:g} rms in the central {size}x{size} pixels; "
                           f"is a source at the centre?")
    return (image / peak).astype(np.float32)[..., None]


def read_radio_image(path, size: int = RADIO_PIXELS) -> np.ndarray:
    """One FITS (flux, preprocessed here) or PNG/JPEG (already clipped) file as a (size, size, 1) input."""
    from deepsky.data.image_folders import load_image
    from deepsky.data.readers import FITS_SUFFIXES, suffix

    path = Path(path)
    image = load_image(path, bands=1, nan_to_zero=True)[..., 0]
    if suffix(path) in FITS_SUFFIXES:
        return clip_and_scale(image, size, str(path))
    return _centre_and_scale(image.astype(np.float64), size, str(path))


def read_radio_images(paths, size: int = RADIO_PIXELS, progress=None):
    """Files or folders of FITS/PNG radio images: ``(images (N, size, size, 1), ids (file names), info)``.

    A folder holding ``images/`` (a labelled folder, as MiraBest) stands for the files in it.
    """
    from deepsky.data.image_folders import expand_paths, parallel_map

    paths = [paths] if isinstance(paths, (str, Path)) else paths
    # a labelled folder (labels.csv beside images/) stands for its images
    files = expand_paths([Path(p) / "images" if (Path(p) / "images").is_dir() else p for p in paths])
    images = np.empty((len(files), size, size, 1), np.float32)

    def one(index_path):
        index, path = index_path
        images[index] = read_radio_image(path, size)

    parallel_map(one, enumerate(files), progress=progress)
    return images, [p.name for p in files], {"paths": [str(p) for p in files], "n": len(files), "size": size}


def mirabest_code(name: str) -> str | None:
    """The three-digit MiraBest code a file name starts with (``100_...``), or None."""
    head = Path(name).name.split("_", 1)[0]
    return head if len(head) == 3 and head.isdigit() else None


def load_radio_folder(folder, classes=("FRI", "FRII"), size: int = RADIO_PIXELS, progress=None) -> Dataset:
    """A labelled folder: ``labels.csv`` beside ``images/`` (or the images themselves), or MiraBest-named FITS.

    Rows whose label is not one of ``classes`` are left out and counted in
    ``meta["dropped"]``. ``objects`` holds ``filename``, ``mirabest_code``
    (empty if unknown) and ``confident`` (False only for codes whose middle
    digit is 1).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DeepskyError(f"{folder}: no such folder")
    table = folder / "labels.csv"
    image_dir = folder / "images" if (folder / "images").is_dir() else folder
    if table.is_file():
        names, labels, codes = _read_labels(table)
    else:
        from deepsky.data.image_folders import expand_paths

        files = expand_paths([image_dir])
        codes = [mirabest_code(f.name) or "" for f in files]
        if not all(codes):
            missing = files[codes.index("")].name
            raise DeepskyError(f"{folder}: no labels.csv, and {missing} does not start with a MiraBest code "
                               f"(e.g. 100_...); add labels.csv with columns filename,label")
        names = [f.name for f in files]
        labels = [_CLASS_DIGITS.get(code[0], code) for code in codes]
    keep = [i for i, label in enumerate(labels) if label in classes]
    if not keep:
        raise DeepskyError(f"{folder}: no images labelled {' or '.join(classes)}")
    paths = [image_dir / names[i] for i in keep]
    for path in paths:
        if not path.is_file():
            raise DeepskyError(f"{table}: lists {path.name}, which is not in {image_dir}")
    images, ids, _ = read_radio_images(paths, size, progress=progress)
    kept_codes = np.array([codes[i] for i in keep])
    objects = {"id": np.array(ids), "filename": np.array(ids), "mirabest_code": kept_codes,
               "confident": np.array([not (len(c) == 3 and c[1] == "1") for c in kept_codes])}
    meta = {"classes": list(classes), "bands": [BAND], "units": UNITS, "pixel_scale_arcsec": PIXEL_SCALE_ARCSEC,
            "cutout_pixels": size, "source": str(folder.resolve()), "dropped": len(labels) - len(keep)}
    return Dataset(inputs=images, labels=np.array([classes.index(labels[i]) for i in keep]), objects=objects,
                   meta=meta)


def _read_labels(table: Path):
    try:
        with table.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DeepskyError(f"{table}: not a readable CSV table ({exc})") from None
    if not rows or not {"filename", "label"} <= set(rows[0]):
        raise DeepskyError(f"{table}: needs the columns filename and label (e.g. FRI, FRII)")
    names = [row["filename"].strip() for row in rows]
    labels = [row["label"].strip() for row in rows]
    codes = [(row.get("mirabest_code") or mirabest_code(row["filename"]) or "").strip() for row in rows]
    return names, labels, codes
