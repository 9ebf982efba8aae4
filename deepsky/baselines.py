"""Classical baselines measured beside the networks on the same data.

For cutout classification: a random forest on hand-made photometric and
morphological features (aperture colours, concentration, size), the kind of
catalogue features star-galaxy classifiers used before ConvNets (Kim &
Brunner compare against such a tree-based classifier).
"""

from __future__ import annotations

import numpy as np

APERTURE_RADII_PIXELS = (1.5, 3.0, 6.0)
BASELINE_NAME = "random forest on aperture colours, concentration and size"


def cutout_features(images: np.ndarray, softening: np.ndarray) -> np.ndarray:
    """Features of (N, H, W, bands) cutouts in flux units; returns (N, F) float32.

    Per band: asinh magnitude in a 6-pixel aperture, concentration (flux
    within 1.5 px / within 6 px) and flux within 3 px / within 6 px; plus
    colours of adjacent bands, and the flux-weighted second-moment radius
    (pixels) and peak/aperture flux of the band sum.
    """
    n, height, width, bands = images.shape
    yy, xx = np.mgrid[:height, :width]
    r = np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2)
    apertures = np.stack([(r <= radius).astype(np.float32) for radius in APERTURE_RADII_PIXELS])
    flux = np.einsum("nhwb,ahw->nab", images, apertures)  # (N, apertures, bands)
    mags = -np.arcsinh(flux[:, -1] / softening)
    total = np.where(np.abs(flux[:, -1]) > 1e-12, flux[:, -1], 1e-12)
    concentration = flux[:, 0] / total
    middle = flux[:, 1] / total
    colours = mags[:, :-1] - mags[:, 1:]
    summed = images.sum(axis=-1) * apertures[-1]
    weight = np.clip(summed, 0, None)
    norm = np.maximum(weight.sum(axis=(1, 2)), 1e-12)
    radius = np.sqrt((weight * r**2).sum(axis=(1, 2)) / norm)
    peak = summed.max(axis=(1, 2)) / np.maximum(summed.sum(axis=(1, 2)), 1e-12)
    return np.concatenate(
        [mags, np.clip(concentration, -2, 2), np.clip(middle, -2, 2), colours, radius[:, None], peak[:, None]], axis=1
    ).astype(np.float32)


def fit_random_forest(features: np.ndarray, labels: np.ndarray, seed: int = 0):
    """A scikit-learn random forest fitted to ``features``, ``labels``."""
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=200, min_samples_leaf=3, n_jobs=-1, random_state=seed)
    return forest.fit(features, labels)


DIFFERENCE_BASELINE_NAME = "random forest on difference-stamp features"


def difference_stamp_features(stamps: np.ndarray) -> np.ndarray:
    """Hand-made real/bogus features of (N, H, W, 4) template, science, difference, S/N stamps; (N, F) float32.

    The features of feature-engineered real/bogus classifiers (Bloom et al.
    2012; Förster et al. 2016 for HiTS), in pixels and S/N units: the peak
    and the deepest trough of the S/N near the centre, the fractions of
    pixels above +3 and below -3 sigma, the peak's offset from the centre,
    its sharpness (peak over the 3x3 sum: cosmic rays are sharper than the
    PSF), the number of pixels above half the peak (a width), second-moment
    size and elongation, point symmetry of the difference (dipoles are
    antisymmetric), how much of the |S/N| lies in one column or row (bad
    columns), and the template's and science image's central S/N-scaled
    brightness (asinh) and the difference's share of the science flux.
    """
    stamps = np.asarray(stamps, np.float64)
    n, height, width, _ = stamps.shape
    template, science, difference, snr = (stamps[..., c] for c in range(4))
    cy, cx = (height - 1) / 2, (width - 1) / 2
    yy, xx = np.mgrid[:height, :width]
    central = (np.abs(yy - cy) <= 2) & (np.abs(xx - cx) <= 2)
    inner = snr[:, central]
    peak_snr, trough_snr = inner.max(1), inner.min(1)
    flat = snr.reshape(n, -1)
    peak_index = np.where(central.ravel(), flat, -np.inf).argmax(1)
    py, px = np.unravel_index(peak_index, (height, width))
    offset = np.hypot(py - cy, px - cx)
    padded = np.pad(difference, ((0, 0), (1, 1), (1, 1)))
    rows = np.arange(n)
    box = sum(padded[rows, py + dy, px + dx] for dy in range(3) for dx in range(3))
    peak = difference[rows, py, px]
    sharpness = peak / np.where(np.abs(box) > 1e-12, box, 1e-12)
    above_half = (difference > 0.5 * peak[:, None, None]).reshape(n, -1).sum(1)
    aperture = np.hypot(yy - cy, xx - cx) <= 6  # pixels
    weight = np.clip(difference, 0, None) * aperture
    total = np.maximum(weight.sum((1, 2)), 1e-12)
    my, mx = (weight * yy).sum((1, 2)) / total, (weight * xx).sum((1, 2)) / total
    dy, dx = yy[None] - my[:, None, None], xx[None] - mx[:, None, None]
    qyy, qxx, qxy = ((weight * d).sum((1, 2)) / total for d in (dy * dy, dx * dx, dy * dx))
    size = np.sqrt(np.maximum(qyy + qxx, 0))
    elongation = np.hypot(qxx - qyy, 2 * qxy) / np.maximum(qxx + qyy, 1e-12)
    turned = difference[:, ::-1, ::-1]
    symmetry = (difference * turned).sum((1, 2)) / np.maximum((difference**2).sum((1, 2)), 1e-12)
    magnitude = np.abs(snr)
    line_share = np.maximum(magnitude.sum(1).max(1), magnitude.sum(2).max(1)) / np.maximum(
        magnitude.sum((1, 2)), 1e-12)
    noise = np.maximum(np.abs(difference[:, central]).sum(1) / np.maximum(np.abs(inner).sum(1), 1e-12), 1e-12)
    template_centre = np.arcsinh(template[:, central].sum(1) / noise)
    science_centre = np.arcsinh(science[:, central].sum(1) / noise)
    share = difference[:, central].sum(1) / np.maximum(np.abs(science[:, central].sum(1)), 1e-12)
    return np.stack([
        peak_snr, trough_snr, (snr > 3).reshape(n, -1).mean(1), (snr < -3).reshape(n, -1).mean(1), offset,
        np.clip(sharpness, -5, 5), above_half, size, elongation, symmetry, line_share, template_centre,
        science_centre, np.clip(share, -5, 5),
    ], axis=1).astype(np.float32)
