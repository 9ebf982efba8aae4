"""SDSS asinh magnitudes ("luptitudes") and Kim & Brunner's real cutouts.

SDSS reports fluxes as asinh magnitudes (Lupton, Gunn & Szalay 1999),

    mu = -(2.5 / ln 10) * [asinh(f / (2 b)) + ln b],

with ``f`` the flux in maggies and ``b`` a per-band softening. They behave like
AB magnitudes for bright objects but stay finite for zero and negative flux,
which is why pixel stacks can be stored in them. deepsky works in nanomaggies
(``1e9 * f``), linear in flux and sky-subtracted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError

# Softening parameter b per band, in maggies (Lupton et al. 1999; SDSS DR7 docs).
SDSS_SOFTENING_MAGGIES = {"u": 1.4e-10, "g": 0.9e-10, "r": 1.2e-10, "i": 1.8e-10, "z": 7.4e-10}

SDSS_BANDS = ("u", "g", "r", "i", "z")
_POGSON = 2.5 / np.log(10.0)


def _softening(bands, ndim: int, axis: int) -> np.ndarray:
    """Softening b (maggies) shaped to broadcast along ``axis`` of an ndim array."""
    unknown = [b for b in bands if b not in SDSS_SOFTENING_MAGGIES]
    if unknown:
        raise DeepskyError(
            f"no SDSS asinh softening for band(s) {unknown}; use bands from {SDSS_BANDS}"
        )
    shape = [1] * ndim
    shape[axis] = len(bands)
    return np.array([SDSS_SOFTENING_MAGGIES[b] for b in bands]).reshape(shape)


def _check_axis(values: np.ndarray, bands, axis: int) -> None:
    if values.ndim == 0 or values.shape[axis] != len(bands):
        raise DeepskyError(
            f"array of shape {values.shape} has no axis {axis} of length {len(bands)} "
            f"for bands {tuple(bands)}; pass the band axis as axis="
        )


def luptitudes_to_nanomaggies(lup, bands=SDSS_BANDS, axis: int = -1) -> np.ndarray:
    """Convert SDSS asinh magnitudes to flux in nanomaggies.

    Parameters
    ----------
    lup : array_like
        Asinh magnitudes (mag), one entry per band along ``axis``.
    bands : sequence of str
        Band names along ``axis`` (``u g r i z`` by default).
    axis : int
        The band axis of ``lup``.

    Returns
    -------
    numpy.ndarray
        Flux in nanomaggies (float32), same shape as ``lup``.

    Examples
    --------
    >>> import numpy as np
    >>> lup = nanomaggies_to_luptitudes(np.array([[1.0, 10.0, 100.0, 0.0, -0.1]]))
    >>> luptitudes_to_nanomaggies(lup).astype(float).round(3).tolist()
    [[1.0, 10.0, 100.0, 0.0, -0.1]]
    """
    lup = np.asarray(lup, dtype=np.float64)  # float64: the sinh of ~22 loses float32 precision
    _check_axis(lup, bands, axis)
    b = _softening(bands, lup.ndim, axis)
    maggies = 2.0 * b * np.sinh(-lup / _POGSON - np.log(b))
    return (maggies * 1e9).astype(np.float32)


def nanomaggies_to_luptitudes(nmgy, bands=SDSS_BANDS, axis: int = -1) -> np.ndarray:
    """Convert flux in nanomaggies to SDSS asinh magnitudes (mag, float32).

    The inverse of :func:`luptitudes_to_nanomaggies`; same parameters.
    """
    nmgy = np.asarray(nmgy, dtype=np.float64)
    _check_axis(nmgy, bands, axis)
    b = _softening(bands, nmgy.ndim, axis)
    lup = -_POGSON * (np.arcsinh(nmgy * 1e-9 / (2.0 * b)) + np.log(b))
    return lup.astype(np.float32)


def load_sdss_cutouts(directory) -> Dataset:
    """Read Kim & Brunner's real SDSS star/galaxy sample.

    Parameters
    ----------
    directory : str or path
        Folder holding ``sdss_test_images.npy`` ((N, 5, 48, 48) luptitudes,
        channels first) and ``sdss_test_labels.npy`` (+1 star, -1 galaxy).

    Returns
    -------
    Dataset
        Images (N, 48, 48, 5) float32 in nanomaggies per pixel (0.396 arcsec
        pixels), labels int64 with 0 = star and 1 = galaxy.
    """
    directory = Path(directory)
    images = _load_npy(directory / "sdss_test_images.npy")
    labels = _load_npy(directory / "sdss_test_labels.npy")
    if images.ndim != 4 or images.shape[1] != len(SDSS_BANDS):
        raise DeepskyError(
            f"{directory / 'sdss_test_images.npy'}: shape {images.shape}; "
            "expected (N, 5, height, width) u,g,r,i,z luptitudes"
        )
    if labels.shape != (len(images),) or not np.isin(labels, (-1, 1)).all():
        raise DeepskyError(
            f"{directory / 'sdss_test_labels.npy'}: expected {len(images)} labels of +1 (star) "
            f"or -1 (galaxy), got shape {labels.shape} with values {np.unique(labels)[:5]}"
        )
    nmgy = luptitudes_to_nanomaggies(images, axis=1).transpose(0, 2, 3, 1)
    meta = {
        "task": "star-galaxy",
        "classes": ["star", "galaxy"],
        "bands": list(SDSS_BANDS),
        "pixel_scale_arcsec": 0.396,
        "units": "nanomaggies",
        "source": "Kim & Brunner SDSS sample (luptitudes converted)",
    }
    # Kim & Brunner label stars +1 and galaxies -1; deepsky's classes are star=0, galaxy=1.
    return Dataset(
        inputs=np.ascontiguousarray(nmgy),
        labels=(labels < 0).astype(np.int64),
        meta=meta,
    )


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise DeepskyError(f"{path}: no such file; point to the Kim & Brunner data folder")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DeepskyError(f"{path}: not a readable .npy array ({exc}); re-download it") from None
