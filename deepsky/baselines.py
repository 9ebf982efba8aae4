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
