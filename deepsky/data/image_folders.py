"""Images for a model from picture files: JPEG, PNG and FITS, one object per file.

One pipeline turns every picture into a model input, for training readers
(:mod:`deepsky.data.galaxyzoo`) and for ``deepsky predict`` alike, so a model
sees at prediction exactly what it saw in training:

1. decode: JPEG/PNG through Pillow, scaled to [0, 1]; FITS through astropy,
   values as they are (float32);
2. centre crop: a square of ``crop_fraction`` times the shorter side, centred
   on the image centre (fractional edges are honoured, not rounded);
3. downsample by area averaging to ``size`` x ``size``: each output pixel is
   the mean of the input area it covers, partial pixels weighted by overlap
   (a box filter: every input pixel counts, where nearest-neighbour picking
   would skip most of them and alias noise and small features).

Colour pictures become bands in order of increasing wavelength: blue, green,
red. For SDSS colour JPEGs, which show i, r, g as red, green, blue, that is
the band order g, r, i.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from deepsky.data.readers import FITS_SUFFIXES
from deepsky.errors import DeepskyError, first_line

PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png")
SUPPORTED_SUFFIXES = PICTURE_SUFFIXES + FITS_SUFFIXES
# Most threads used to decode; Pillow and numpy release the GIL while they work.
_MAX_WORKERS = 8


def read_images(paths, size: int, bands, crop_fraction: float = 0.5, progress=None, workers=None):
    """Read picture files into model inputs, in the order given.

    Parameters
    ----------
    paths : str, path or list of them
        Image files (JPEG, PNG, FITS) or folders. A folder stands for the
        supported files directly inside it, in sorted file-name order
        (sub-folders and other files are passed over).
    size : int
        Side of the model's input in pixels.
    bands : int or sequence of str
        Bands the model expects: a count, or the band names (their number is
        used). Grey JPEG/PNG have 1 band, colour ones 3 (blue, green, red:
        g, r, i for SDSS colour images); FITS are 2-D (1 band) or 3-D cubes
        with the bands first or last.
    crop_fraction : float
        Side of the centre crop as a fraction of the image's shorter side,
        in (0, 1]; 1 keeps the whole (square) image.
    progress : callable, optional
        Called with the number of images finished, as they finish.
    workers : int, optional
        Decoding threads; default one per available CPU core (at most 8).

    Returns
    -------
    images : numpy.ndarray
        (N, size, size, bands) float32: JPEG/PNG scaled to [0, 1], FITS in
        the file's own units (area averages of its pixels).
    ids : list of str
        File names without their folder.
    info : dict
        ``paths`` (the files read), ``n``, ``size``, ``bands``,
        ``crop_fraction`` and ``formats`` (count per format).
    """
    n_bands = bands if isinstance(bands, (int, np.integer)) else len(bands)
    check_geometry(size, crop_fraction)
    files = expand_paths(paths)

    images = np.empty((len(files), size, size, n_bands), dtype=np.float32)

    def one(index_path):
        index, path = index_path
        images[index] = prepare_image(path, size, n_bands, crop_fraction)[0]

    parallel_map(one, enumerate(files), progress=progress, workers=workers)
    formats: dict[str, int] = {}
    for path in files:
        kind = "fits" if _suffix(path) in FITS_SUFFIXES else _suffix(path).lstrip(".").replace("jpg", "jpeg")
        formats[kind] = formats.get(kind, 0) + 1
    info = {
        "paths": [str(p) for p in files],
        "n": len(files),
        "size": int(size),
        "bands": int(n_bands),
        "crop_fraction": float(crop_fraction),
        "formats": formats,
    }
    return images, [p.name for p in files], info


def expand_paths(paths) -> list[Path]:
    """Files named or held (directly, sorted by name) in folders, in input order."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise DeepskyError("no image files given")
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(
                (p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")),
                key=lambda p: p.name,
            )
            found = [p for p in inside if _suffix(p) in SUPPORTED_SUFFIXES]
            if not found:
                other = f", only {len(inside)} other file(s)" if inside else ""
                raise DeepskyError(
                    f"{path}: folder holds no images{other}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
                )
            files.extend(found)
        elif path.is_file():
            if _suffix(path) not in SUPPORTED_SUFFIXES:
                raise DeepskyError(
                    f"{path}: unsupported image format; supported: {', '.join(SUPPORTED_SUFFIXES)}"
                )
            files.append(path)
        else:
            raise DeepskyError(f"{path}: no such file or folder")
    return files


MIN_CROP_PIXELS = 2  # a crop of one pixel or less shows nothing: the picture is a dot or an icon


def prepare_image(path, size: int, bands: int | None = None, crop_fraction: float = 0.5):
    """One file through the whole pipeline: ``(image, source_shape)``.

    ``image`` is ``crop_and_resample(load_image(path, bands), size,
    crop_fraction)`` (equal to float32 rounding), computed on the file's raw
    pixels and scaled at the end, which is faster; ``source_shape`` is the
    file's (height, width) in pixels.
    """
    check_geometry(size, crop_fraction)
    raw, scale, reverse = _decode(Path(path), bands)
    if min(raw.shape[:2]) * crop_fraction < MIN_CROP_PIXELS:
        raise DeepskyError(f"{path}: {raw.shape[0]}x{raw.shape[1]} pixels, so the centre {crop_fraction:g} of it is "
                           f"under {MIN_CROP_PIXELS} pixels wide: too small to show a source; give a larger image")
    out = _crop_and_average(raw, size, crop_fraction)
    if reverse:
        out = out[..., ::-1]
    if scale != 1:
        out = out / scale
    return out.astype(np.float32), raw.shape[:2]


def load_image(path, bands: int | None = None, nan_to_zero: bool = False) -> np.ndarray:
    """One image as (height, width, bands) float32.

    JPEG and PNG are scaled to [0, 1] (8-bit by 255, 16-bit by 65535); a
    transparency channel is dropped; colour channels are ordered blue, green,
    red. FITS values are kept; NaN or infinite pixels raise DeepskyError,
    or become 0 with ``nan_to_zero`` (blanked pixels of survey cutouts), as
    long as some pixel is finite. If ``bands`` is given, an image with
    another band count raises DeepskyError naming the file and both counts.
    """
    raw, scale, reverse = _decode(Path(path), bands, nan_to_zero)
    image = raw[..., ::-1] if reverse else raw
    return (image.astype(np.float64) / scale).astype(np.float32)


def crop_and_resample(image: np.ndarray, size: int, crop_fraction: float = 0.5) -> np.ndarray:
    """Centre-crop ``image`` (H, W, bands) and area-average it to (size, size, bands) float32.

    The crop is the square of side ``crop_fraction * min(H, W)`` pixels
    centred on the image centre; its edges may fall inside pixels, which
    then count with the fraction that lies inside. Each output pixel is the
    mean over the crop area it covers (a box filter), so a constant image
    stays constant and the mean over the crop is preserved.

    >>> image = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    >>> crop_and_resample(image, 2, crop_fraction=1.0)[..., 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    check_geometry(size, crop_fraction)
    return _crop_and_average(np.asarray(image), size, crop_fraction).astype(np.float32)


def parallel_map(function, items, progress=None, workers=None) -> list:
    """``[function(item) for item in items]`` on a thread pool, in order.

    The first failure in item order is raised (work not yet started is
    cancelled); ``progress(1)`` is called as each item is collected.
    """
    items = list(items)
    if workers is None:
        workers = min(_MAX_WORKERS, _available_cores())
    workers = max(1, min(int(workers), len(items) or 1))
    if workers == 1:
        results = []
        for item in items:
            results.append(function(item))
            if progress is not None:
                progress(1)
        return results
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deepsky-images")
    try:
        results = []
        for result in pool.map(function, items):
            results.append(result)
            if progress is not None:
                progress(1)
        return results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_geometry(size, crop_fraction):
    """Raise DeepskyError unless ``size`` is a positive int and ``crop_fraction`` is in (0, 1]."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise DeepskyError(f"size must be a positive whole number of pixels. Received: size={size!r}")
    if not (isinstance(crop_fraction, (int, float, np.floating)) and 0 < crop_fraction <= 1):
        raise DeepskyError(
            f"crop_fraction must be in (0, 1] (1 keeps the whole image). Received: crop_fraction={crop_fraction!r}"
        )


# -- internals -----------------------------------------------------------------------


def _suffix(path) -> str:
    name = Path(path).name.lower()
    longest_first = sorted(SUPPORTED_SUFFIXES, key=len, reverse=True)  # .fits.gz before .gz
    return next((s for s in longest_first if name.endswith(s)), Path(path).suffix.lower())


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _crop_and_average(image: np.ndarray, size: int, crop_fraction: float) -> np.ndarray:
    """crop_and_resample in float64, without checks."""
    height, width = image.shape[:2]
    side = crop_fraction * min(height, width)
    out = _box_average(image, 0, *_box_weights(height, side, size))
    return _box_average(out, 1, *_box_weights(width, side, size))


@lru_cache(maxsize=32)
def _box_weights(n: int, side: float, size: int):
    """Box-filter taps along one axis: first pixel of each bin (size,) and weights (size, taps).

    ``size`` equal bins span the centred interval of length ``side`` in [0, n];
    weight t of bin j is the fraction of the bin covered by pixel
    ``first[j] + t``. Each bin touches at most a few pixels, so the filter is
    a handful of gathers rather than a dense (size, n) matrix product.
    """
    edges = (n - side) / 2.0 + side * np.arange(size + 1) / size
    first = np.clip(np.floor(edges[:-1]).astype(np.intp), 0, n - 1)
    taps = int(np.max(np.ceil(edges[1:]) - first))
    pixels = first[:, None] + np.arange(taps)
    overlap = np.minimum(edges[1:, None], pixels + 1) - np.maximum(edges[:-1, None], pixels)
    weights = np.clip(overlap, 0.0, None) / (side / size)
    first.setflags(write=False)
    weights.setflags(write=False)
    return first, weights


def _box_average(array: np.ndarray, axis: int, first: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sums of ``array`` along ``axis`` (0 or 1) with the taps of :func:`_box_weights`."""
    n = array.shape[axis]
    shape = [-1 if d == axis else 1 for d in range(array.ndim)]
    out = None
    for t in range(weights.shape[1]):
        # Taps past the edge have weight 0; clipping only keeps the index valid.
        term = np.take(array, np.minimum(first + t, n - 1), axis=axis) * weights[:, t].reshape(shape)
        out = term if out is None else out + term
    return out


def _decode(path: Path, bands: int | None, nan_to_zero: bool = False):
    """``(raw, scale, reverse)``: pixels as stored (H, W, bands), the divisor to [0, 1] units, and
    whether the channels are red, green, blue (to be reversed to blue, green, red)."""
    suffix = _suffix(path)
    if suffix in FITS_SUFFIXES:
        raw, scale = _load_fits(path, bands, nan_to_zero), 1.0
    elif suffix in PICTURE_SUFFIXES:
        raw, scale = _load_picture(path)
    else:
        raise DeepskyError(f"{path}: unsupported image format; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    found = raw.shape[-1]
    if bands is not None and found != bands:
        if suffix in FITS_SUFFIXES:
            kind = "a 2-D FITS image" if found == 1 else "a FITS cube"
        else:
            kind = {1: "a grey image", 3: "a colour image"}.get(found, "an image")
        hint = {1: "; convert it to greyscale", 3: "; give a colour (RGB) image"}.get(bands, "")
        raise DeepskyError(f"{path}: {kind} with {found} band(s); the model expects {bands}{hint}")
    return raw, scale, suffix in PICTURE_SUFFIXES and found == 3


def _load_picture(path: Path):
    """(pixels (H, W, 1 or 3) as stored, divisor to [0, 1]) from a JPEG or PNG."""
    from PIL import Image

    try:
        with Image.open(path) as picture:
            picture.load()  # decode now: truncated or corrupt data fails here, not later
            mode = picture.mode
            if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
                has_alpha = mode == "PA" or "transparency" in picture.info
                if mode == "1" or (mode == "P" and _grey_palette(picture)):
                    mode = "L"
                else:
                    mode = "RGBA" if has_alpha else "RGB"
                picture = picture.convert(mode)
            array = np.asarray(picture)
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, zlib.error...
        raise DeepskyError(f"{path}: corrupt or truncated image ({first_line(exc)}); re-download or re-export it") from None

    if array.ndim == 2:
        array = array[..., np.newaxis]
    if mode in ("LA", "RGBA"):
        array = array[..., :-1]  # transparency is not a band
    if mode == "F":
        if not np.isfinite(array).all():
            raise DeepskyError(f"{path}: has NaN or infinite pixels; repair the image")
        return array, 1.0
    return array, (65535.0 if mode.startswith("I") else 255.0)


def _grey_palette(picture) -> bool:
    palette = picture.getpalette() or []
    triples = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool(len(triples)) and bool((triples == triples[:, :1]).all())


def _load_fits(path: Path, bands: int | None, nan_to_zero: bool = False) -> np.ndarray:
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            # astropy only warns that a file "may have been truncated"; fail now instead.
            warnings.filterwarnings("error", message=".*truncated")
            with fits.open(path, memmap=False) as hdul:
                data = None
                for hdu in hdul:
                    if getattr(hdu, "is_image", False) and hdu.data is not None and hdu.data.ndim >= 2:
                        data = np.asarray(hdu.data, dtype=np.float32)
                        break
    except Exception as exc:  # noqa: BLE001 - bad files raise OSError, ValueError, TypeError...
        raise DeepskyError(f"{path}: corrupt or truncated FITS file ({first_line(exc)}); re-download it") from None
    if data is None:
        raise DeepskyError(f"{path}: no image in this FITS file (no HDU with 2-D or 3-D data)")
    if data.ndim == 2:
        image = data[..., np.newaxis]
    elif data.ndim == 3:
        first, last = data.shape[0], data.shape[2]
        if bands is not None and first == bands:
            image = np.moveaxis(data, 0, -1)  # FITS cubes usually keep the band in NAXIS3 (axis 0)
        elif bands is not None and last == bands:
            image = data
        elif bands is None and first <= last:
            image = np.moveaxis(data, 0, -1)
        elif bands is None:
            image = data
        else:
            raise DeepskyError(
                f"{path}: cube of shape {data.shape} has {first} or {last} bands (bands first or last); "
                f"the model expects {bands}"
            )
    else:
        raise DeepskyError(
            f"{path}: image has {data.ndim} dimensions {data.shape}; expected 2-D or a 3-D cube of bands"
        )
    bad = int(np.count_nonzero(~np.isfinite(image)))
    if bad and nan_to_zero:
        if bad == image.size:
            raise DeepskyError(f"{path}: every pixel is NaN or infinite; the image holds no data")
        return np.ascontiguousarray(np.where(np.isfinite(image), image, 0).astype(np.float32))
    if bad:
        raise DeepskyError(
            f"{path}: {bad} NaN or infinite pixels; fill or mask them before prediction"
        )
    return np.ascontiguousarray(image)
