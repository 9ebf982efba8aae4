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


RADIO_BASELINE_NAME = "random forest on the Fanaroff-Riley ratio and shape features"


def radio_features(images: np.ndarray) -> np.ndarray:
    """Fanaroff & Riley's own measure and shape features of (N, H, W, 1) thresholded radio images; (N, 9) float32.

    The FR ratio (Fanaroff & Riley 1974): the distance between the
    brightest points on either side of the host over the source's whole
    extent; below 0.5 an FRI (brightest near the core), above an FRII
    (brightest at the ends). Sides are split by the line through the
    centre across the flux-weighted major axis. Also: the extent (pixels),
    the flux-weighted mean radius over the extent, elongation, the share
    of flux within 5 pixels of the centre and beyond half an arm's length, the
    angle between the two brightest points seen from the centre (bent
    sources fold, straight ones do not), the bright fraction of pixels and
    the number of pixels above 5% of the peak.
    """
    from scipy import ndimage

    images = np.asarray(images, np.float64)[..., 0]
    n, height, width = images.shape
    yy, xx = np.mgrid[:height, :width]
    dy, dx = yy - (height - 1) / 2, xx - (width - 1) / 2
    r = np.hypot(dy, dx)
    out = np.zeros((n, 9))
    for i, image in enumerate(images):
        peak = max(image.max(), 1e-12)
        mask = _source_islands(image > 0.05 * peak, image, r, ndimage)
        weight = np.where(mask, image, 0.0)
        total = max(weight.sum(), 1e-12)
        qyy, qxx, qxy = ((weight * a).sum() / total for a in (dy * dy, dx * dx, dy * dx))
        angle = 0.5 * np.arctan2(2 * qxy, qxx - qyy)
        along = dx * np.cos(angle) + dy * np.sin(angle)
        extent_each = [r[mask & side].max() if (mask & side).any() else 0.0 for side in (along >= 0, along < 0)]
        extent = max(sum(extent_each), 1.0)
        outer = r >= 3  # away from the core
        brightest = []
        for side in (along >= 0, along < 0):
            candidates = np.where(mask & side & outer, image, -1.0)
            j = int(candidates.argmax())
            brightest.append((dy.flat[j], dx.flat[j]) if candidates.flat[j] > 0 else (0.0, 0.0))
        (y1, x1), (y2, x2) = brightest
        fr_ratio = np.hypot(y1 - y2, x1 - x2) / extent
        fold = np.degrees(np.arccos(np.clip((y1 * y2 + x1 * x2) / max(np.hypot(y1, x1) * np.hypot(y2, x2), 1e-12),
                                            -1, 1)))
        elongation = np.hypot(qxx - qyy, 2 * qxy) / max(qxx + qyy, 1e-12)
        out[i] = [fr_ratio, extent, (weight * r).sum() / total / extent, elongation,
                  weight[r <= 5].sum() / total, weight[r > extent / 4].sum() / total, fold,
                  (image > 0.5 * peak).sum() / max(mask.sum(), 1), mask.sum()]
    return out.astype(np.float32)


SOURCE_REACH_PIXELS = 45  # an island of the source comes this close to the host (arms up to ~100 arcsec)
SOURCE_ISLAND_SHARE = 0.02  # of the flux above 5% of the peak; fainter islands are unrelated or noise


def _source_islands(mask, image, r, ndimage):
    """The islands of ``mask`` that belong to the source: near the centre and not negligible in flux."""
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    index = np.arange(1, count + 1)
    nearest = ndimage.minimum(r, labels, index)
    flux = ndimage.sum(image, labels, index)
    keep = index[(nearest <= SOURCE_REACH_PIXELS) & (flux >= SOURCE_ISLAND_SHARE * flux.sum())]
    return np.isin(labels, keep) if len(keep) else mask
