"""Classical transit detection in short light curves: a least-squares transit fit and box least squares.

Both return a detection statistic per curve (the fitted depth over its
standard error), which a threshold turns into a verdict. The least-squares
fit is linear: for every template (a batman transit of unit depth, at each
mid-time of a grid and each of a few durations) it fits a quadratic
baseline and the depth at once, and keeps the template with the most
significant dip. Box least squares is astropy's ``BoxLeastSquares`` over
one trial period longer than the window (so a single transit), after the
same quadratic baseline is removed.
"""

from __future__ import annotations

import numpy as np

BASELINE_DEGREE = 2  # quadratic: stellar variability over a few hours bends the baseline
TRIAL_PERIODS_DAYS = (2.0, 3.0, 4.0)  # transit durations of Pearson's grid (a/R* = 12)
TRIAL_DURATIONS_DAYS = (0.03, 0.05, 0.07, 0.09, 0.11)
MID_TIME_STEP = 2  # points between trial mid-times


def _baseline_design(times: np.ndarray) -> np.ndarray:
    x = (times - times.mean()) / max(np.ptp(times), 1e-12)
    return np.stack([x**k for k in range(BASELINE_DEGREE + 1)], axis=1)


def transit_templates(times: np.ndarray, a_over_rstar: float = 12.0) -> np.ndarray:
    """(K, T) transit shapes of unit depth: each trial period's duration at each trial mid-time."""
    import batman

    params = batman.TransitParams()
    params.t0, params.per, params.rp, params.a, params.inc = float(times.mean()), 3.0, 0.1, a_over_rstar, 90.0
    params.ecc, params.w, params.u, params.limb_dark = 0.0, 90.0, [0.5, 0.0], "quadratic"
    model = batman.TransitModel(params, times)
    shapes = []
    for period in TRIAL_PERIODS_DAYS:
        for mid in times[::MID_TIME_STEP]:
            params.per, params.t0 = period, float(mid)
            dip = 1.0 - model.light_curve(params)
            if dip.max() > 0:
                shapes.append(dip / dip.max())
    return np.asarray(shapes)


def least_squares_transit(flux: np.ndarray, times: np.ndarray, templates: np.ndarray | None = None) -> dict:
    """The best linear least-squares transit fit of each curve: ``snr`` (depth / its error), ``depth``, ``template``.

    ``flux`` is (N, T) relative flux; ``times`` (T,) days.
    """
    flux = np.asarray(flux, np.float64).reshape(len(flux), -1)
    templates = transit_templates(times) if templates is None else templates
    base = _baseline_design(times)
    dof = flux.shape[1] - base.shape[1] - 1
    best_snr = np.full(len(flux), -np.inf)
    best_depth = np.zeros(len(flux))
    best_template = np.zeros(len(flux), np.int64)
    for k, template in enumerate(templates):
        design = np.concatenate([base, -template[:, None]], axis=1)  # a dip: positive depth lowers the flux
        inverse = np.linalg.inv(design.T @ design)
        coefficients = flux @ (design @ inverse)  # (N, P)
        residual = flux - coefficients @ design.T
        sigma2 = (residual**2).sum(axis=1) / dof
        snr = coefficients[:, -1] / np.sqrt(sigma2 * inverse[-1, -1] + 1e-30)
        better = snr > best_snr
        best_snr[better], best_depth[better], best_template[better] = snr[better], coefficients[better, -1], k
    return {"snr": best_snr, "depth": best_depth, "template": best_template}


def box_least_squares(flux: np.ndarray, times: np.ndarray, progress=None) -> dict:
    """astropy's BoxLeastSquares on each curve (one transit: a trial period longer than the window).

    Returns ``snr`` (the box depth over its error), ``depth`` and
    ``duration_days`` of the best box per curve.
    """
    from astropy.timeseries import BoxLeastSquares

    flux = np.asarray(flux, np.float64).reshape(len(flux), -1)
    base = _baseline_design(times)
    detrended = flux - (flux @ np.linalg.pinv(base).T) @ base.T
    period = [1.05 * np.ptp(times) + max(TRIAL_DURATIONS_DAYS)]
    out = {"snr": np.empty(len(flux)), "depth": np.empty(len(flux)), "duration_days": np.empty(len(flux))}
    # the white noise of each curve from point-to-point differences (robust to the dip and to slow trends)
    noise = 1.4826 * np.median(np.abs(np.diff(detrended, axis=1)), axis=1) / np.sqrt(2.0)
    for i, curve in enumerate(detrended):
        dy = np.full(len(times), max(noise[i], 1e-12))
        result = BoxLeastSquares(times, curve, dy).power(period, list(TRIAL_DURATIONS_DAYS), objective="snr")
        out["snr"][i] = result.depth_snr[0] if np.isfinite(result.depth_snr[0]) else 0.0
        out["depth"][i] = result.depth[0]
        out["duration_days"][i] = result.duration[0]
        if progress is not None and (i + 1) % 500 == 0:
            progress(500)
    return out


def best_threshold(statistic: np.ndarray, labels: np.ndarray) -> float:
    """The threshold on ``statistic`` (called positive at or above it) with the highest accuracy on ``labels``."""
    order = np.argsort(statistic)
    values, truth = statistic[order], np.asarray(labels)[order].astype(bool)
    # accuracy when the threshold sits just above values[i]: negatives below, positives above
    negatives_below = np.concatenate([[0], np.cumsum(~truth)])
    positives_above = truth.sum() - np.concatenate([[0], np.cumsum(truth)])
    accuracy = negatives_below + positives_above
    i = int(np.argmax(accuracy))
    if i == 0:
        return float(values[0])
    if i == len(values):
        return float(values[-1] + 1e-9)
    return float(0.5 * (values[i - 1] + values[i]))
