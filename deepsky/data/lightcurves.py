"""Light curves from files to transit signals: read, detrend, search, fold into AstroNet's views.

Kepler, K2 and TESS light-curve FITS files (a binary table with ``TIME`` and
``PDCSAP_FLUX``, else ``SAP_FLUX``; rows with a non-zero ``QUALITY`` or
``SAP_QUALITY`` flag are dropped) and CSV files (time, flux[, flux_err],
with or without a header) are read into a :class:`LightCurve`. Detrending
divides by a running median over a window three times longer than the
longest transit searched for, computed per segment between gaps, so
stellar variability and instrumental drifts go and transits stay.
:func:`search_transits` runs astropy's box least squares again and again,
masking each signal found; :func:`fold_views` folds a signal into the
global and local views the vetting network reads (median 0, transit
minimum -1, as in the TESS triage records).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

LIGHT_CURVE_SUFFIXES = {".fits", ".fit", ".fts", ".csv", ".txt"}
FLUX_COLUMNS = ("PDCSAP_FLUX", "SAP_FLUX", "FLUX")
QUALITY_COLUMNS = ("QUALITY", "SAP_QUALITY")
MIN_POINTS = 50
GAP_DAYS = 0.5  # a break longer than this starts a new segment for the running median
DURATIONS_DAYS = (0.04, 0.06, 0.08, 0.12, 0.16, 0.24, 0.33)  # 1 to 8 hours
DETREND_WINDOW_DAYS = 3 * DURATIONS_DAYS[-1]
MIN_TRANSITS = 2
MIN_SNR = 6.0  # box depth over its error; Kepler-90 b (7.0 days, 90 ppm) comes out at 7.1 in three quarters
LOCAL_DURATIONS = 4.0  # the local view spans this many transit durations (Shallue & Vanderburg)


@dataclass
class LightCurve:
    """Times (days, the file's own zero point), relative flux (median 1) and its uncertainty."""

    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray | None
    source: str
    target: str = ""


def read_light_curve(path) -> LightCurve:
    """A light-curve FITS or CSV file, normalised to median 1; bad rows (NaN, flagged) dropped."""
    path = Path(path)
    if not path.exists():
        raise DeepskyError(f"{path}: no such file")
    reader = _read_fits if path.suffix.lower() in {".fits", ".fit", ".fts"} else _read_csv
    time, flux, flux_err, target = reader(path)
    good = np.isfinite(time) & np.isfinite(flux)
    if flux_err is not None:
        good &= np.isfinite(flux_err)
    if good.sum() < MIN_POINTS:
        raise DeepskyError(f"{path}: only {int(good.sum())} usable points (finite time and flux); "
                           f"at least {MIN_POINTS} are needed")
    order = np.argsort(time[good])
    time, flux = time[good][order], flux[good][order]
    flux_err = None if flux_err is None else flux_err[good][order]
    level = np.median(flux)
    if not level > 0:
        raise DeepskyError(f"{path}: the median flux is {level:g}; a light curve needs positive fluxes")
    return LightCurve(time.astype(np.float64), flux / level, None if flux_err is None else flux_err / level,
                      str(path), target)


def _read_fits(path):
    from astropy.io import fits

    size = path.stat().st_size
    if size % 2880:
        raise DeepskyError(f"{path}: truncated or not FITS ({size} bytes, not a whole number of 2880-byte blocks)")
    try:
        with fits.open(path, memmap=False) as hdus:
            table = next((h for h in hdus[1:] if isinstance(h, fits.BinTableHDU)), None)
            if table is None:
                raise DeepskyError(f"{path}: no binary table extension; expected a light-curve file with TIME and "
                                   f"{' or '.join(FLUX_COLUMNS)}")
            names = [n.upper() for n in table.columns.names]
            if "TIME" not in names:
                raise DeepskyError(f"{path}: no TIME column (columns: {', '.join(names[:12])})")
            flux_name = next((n for n in FLUX_COLUMNS if n in names), None)
            if flux_name is None:
                raise DeepskyError(f"{path}: no flux column ({' or '.join(FLUX_COLUMNS)})")
            data = table.data
            time = np.asarray(data["TIME"], np.float64)
            flux = np.asarray(data[flux_name], np.float64)
            err_name = f"{flux_name}_ERR"
            flux_err = np.asarray(data[err_name], np.float64) if err_name in names else None
            quality_name = next((n for n in QUALITY_COLUMNS if n in names), None)
            if quality_name is not None:
                flux = np.where(np.asarray(data[quality_name]) == 0, flux, np.nan)
            header = hdus[0].header
            target = str(header.get("OBJECT") or header.get("KEPLERID") or header.get("TICID") or "")
    except DeepskyError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise DeepskyError(f"{path}: not a readable FITS light curve ({str(exc).splitlines()[0]})") from None
    return time, flux, flux_err, target


def _read_csv(path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: a BOM would hide the first name
            rows = [row for row in csv.reader(handle) if row and not row[0].lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise DeepskyError(f"{path}: cannot read as CSV ({exc})") from None
    if not rows:
        raise DeepskyError(f"{path}: empty; expected columns time, flux[, flux_err]")
    header = None
    try:
        float(rows[0][0])
    except ValueError:
        header, rows = [name.strip().lower() for name in rows[0]], rows[1:]
    if header is not None:
        time_col = next((i for i, n in enumerate(header) if n in {"time", "t", "bjd", "btjd", "jd"}), None)
        flux_col = next((i for i, n in enumerate(header) if n in {"flux", "pdcsap_flux", "sap_flux", "f"}), None)
        if time_col is None or flux_col is None:
            raise DeepskyError(f"{path}: the header ({', '.join(header)}) names no time and flux columns")
        err_col = next((i for i, n in enumerate(header) if n in {"flux_err", "error", "err", "pdcsap_flux_err"}), None)
    else:
        time_col, flux_col, err_col = 0, 1, 2 if len(rows[0]) > 2 else None
    columns = [c for c in (time_col, flux_col, err_col) if c is not None]
    values = np.full((len(rows), 3), np.nan)
    for i, row in enumerate(rows):
        if len(row) <= max(columns):
            raise DeepskyError(f"{path}: line {i + 1 + (header is not None)} has {len(row)} columns; "
                               f"expected at least {max(columns) + 1} (time, flux[, flux_err])")
        for j, c in enumerate((time_col, flux_col, err_col)):
            if c is not None:
                try:
                    values[i, j] = float(row[c]) if row[c].strip() else np.nan
                except ValueError:
                    raise DeepskyError(f"{path}: line {i + 1 + (header is not None)}: {row[c]!r} is not a number") \
                        from None
    return values[:, 0], values[:, 1], values[:, 2] if err_col is not None else None, Path(path).stem


def running_median(time: np.ndarray, flux: np.ndarray, window_days: float = DETREND_WINDOW_DAYS) -> np.ndarray:
    """The median of ``flux`` within ``window_days`` of each point, per segment between gaps of over half a day."""
    trend = np.empty_like(flux)
    breaks = np.flatnonzero(np.diff(time) > GAP_DAYS) + 1
    for segment in np.split(np.arange(len(time)), breaks):
        t, f = time[segment], flux[segment]
        lo = np.searchsorted(t, t - window_days / 2)
        hi = np.searchsorted(t, t + window_days / 2, side="right")
        trend[segment] = [np.median(f[a:b]) for a, b in zip(lo, hi)]
    return trend


def detrend(curve: LightCurve, window_days: float = DETREND_WINDOW_DAYS) -> LightCurve:
    """The light curve divided by its running median (see :func:`running_median`)."""
    trend = running_median(curve.time, curve.flux, window_days)
    err = None if curve.flux_err is None else curve.flux_err / trend
    return LightCurve(curve.time, curve.flux / trend, err, curve.source, curve.target)


@dataclass
class Signal:
    """A periodic dip: period and duration (days), epoch (mid-transit, the file's days), depth (ppm), BLS SNR."""

    period_days: float
    epoch: float
    duration_days: float
    depth_ppm: float
    snr: float
    transits: int
    flag: str = ""  # why the signal is not scored, or ""


def _noise(flux):
    return 1.4826 * np.median(np.abs(np.diff(flux))) / np.sqrt(2.0)


def expected_duration_days(period_days):
    """The central transit duration of a planet around a Sun-like star (13 hours at one year, as P^(1/3))."""
    return np.maximum(0.54 * (np.asarray(period_days) / 365.25) ** (1 / 3), DURATIONS_DAYS[0])


def trial_periods(span_days: float, longest_days: float, shortest_days: float = 0.5) -> np.ndarray:
    """Trial periods (days) spaced so a transit drifts by at most half its expected duration over the span."""
    periods = [shortest_days]
    while periods[-1] < longest_days:
        period = periods[-1]
        periods.append(period + period * expected_duration_days(period) / (2 * span_days))
    return np.asarray(periods[:-1] + [longest_days])


def _box_chunk(job):
    """The best box of one share of the trial periods: (power, period, epoch, duration, depth, depth SNR)."""
    from astropy.timeseries import BoxLeastSquares

    time, flux, noise, periods = job
    result = BoxLeastSquares(time, flux, np.full(len(time), noise)).power(periods, list(DURATIONS_DAYS))
    best = int(np.nanargmax(result.power))
    return (float(result.power[best]), float(result.period[best]), float(result.transit_time[best]),
            float(result.duration[best]), float(result.depth[best]), float(result.depth_snr[best]))


def _best_box(time, flux, noise, periods, workers=None):
    """``(period, epoch, duration, depth, snr)`` of the most likely box over all ``periods``."""
    from deepsky.parallel import map_in_processes

    count = max(1, min(workers or os.cpu_count() or 1, len(periods) // 2000))
    shares = [periods[k::count] for k in range(count)]  # interleaved: a long period costs more than a short one
    results = list(map_in_processes(_box_chunk, [(time, flux, noise, share) for share in shares], workers))
    return max(results, key=lambda r: r[0] if np.isfinite(r[0]) else -np.inf)[1:]


def search_transits(curve: LightCurve, max_signals: int = 5, min_snr: float = MIN_SNR,
                    max_period_days: float | None = None, workers: int | None = None) -> list[Signal]:
    """Periodic transit signals in a detrended light curve, strongest first (box least squares, then mask, repeat).

    Periods run from 0.5 days to half the time span (two transits at
    least); the search stops at ``max_signals`` or when the best signal's
    SNR falls below ``min_snr``. The trial periods are shared among
    ``workers`` processes (default: every core).
    """
    time, flux = curve.time.copy(), curve.flux.copy()
    span = np.ptp(time)
    longest = min(max_period_days or span / MIN_TRANSITS, span / MIN_TRANSITS)
    if longest <= 0.5:
        raise DeepskyError(f"{curve.source}: spans {span:.1f} days; a search for periodic transits needs over "
                           f"{MIN_TRANSITS * 0.5:.0f}")
    periods = trial_periods(span, longest)
    signals = []
    keep = np.ones(len(time), bool)
    for _ in range(max_signals):
        t, f = time[keep], flux[keep]
        noise = _noise(f)
        period, epoch, duration, depth, snr = _best_box(t, f, noise, periods, workers)
        if not np.isfinite(snr) or snr < min_snr:
            break
        count = len(_observed_epochs(time[keep], period, epoch, duration))
        phase = np.abs((time - epoch + 0.5 * period) % period - 0.5 * period)
        in_transit = phase < duration
        flag = "" if count >= MIN_TRANSITS else f"fewer than {MIN_TRANSITS} transits observed"
        signals.append(Signal(period, epoch, duration, depth * 1e6, snr, count, flag))
        keep &= ~in_transit
        if keep.sum() < MIN_POINTS:
            break
    return signals


def _observed_epochs(time, period, epoch, duration) -> np.ndarray:
    phase = np.abs((time - epoch + 0.5 * period) % period - 0.5 * period)
    return np.unique(np.round((time[phase < duration / 2] - epoch) / period).astype(np.int64))


def _binned(x, y, lo, hi, bins, width):
    """Median of ``y`` in ``bins`` windows of ``width`` centred evenly from ``lo`` to ``hi``; empty bins interpolated."""
    centres = np.linspace(lo, hi, bins)
    order = np.argsort(x)
    x, y = x[order], y[order]
    start = np.searchsorted(x, centres - width / 2)
    stop = np.searchsorted(x, centres + width / 2, side="right")
    values = np.array([np.median(y[a:b]) if b > a else np.nan for a, b in zip(start, stop)])
    filled = np.isfinite(values)
    if not filled.any():
        return None
    return np.interp(centres, centres[filled], values[filled])


def fold_views(curve: LightCurve, signal: Signal, global_bins: int = 201, local_bins: int = 61):
    """AstroNet's global view (the whole orbit) and local view (four transit durations) of one signal.

    Both are binned medians of the folded, detrended flux, then shifted and
    scaled to median 0 and minimum -1. Returns ``(global, local)`` float32
    arrays, or None where the fold leaves a view empty.
    """
    period, duration = signal.period_days, signal.duration_days
    phase = (curve.time - signal.epoch + 0.5 * period) % period - 0.5 * period
    glob = _binned(phase, curve.flux, -period / 2, period / 2, global_bins, period / global_bins)
    half = LOCAL_DURATIONS * duration / 2
    near = np.abs(phase) <= half + duration
    local = _binned(phase[near], curve.flux[near], -half, half, local_bins, 0.16 * duration)
    if glob is None or local is None:
        return None
    views = []
    for view in (glob, local):
        view = view - np.median(view)
        depth = -view.min()
        views.append((view / depth if depth > 0 else view).astype(np.float32))
    return views[0], views[1]


def read_targets(paths) -> list[LightCurve]:
    """Light-curve files grouped by target (files of one star, such as Kepler quarters, are stitched)."""
    targets: dict[str, list[LightCurve]] = {}
    for path in paths:
        curve = read_light_curve(path)
        targets.setdefault(curve.target or Path(path).stem, []).append(curve)
    stitched = []
    for name, curves in targets.items():
        if len(curves) == 1:
            stitched.append(curves[0])
            continue
        order = np.argsort([c.time[0] for c in curves])
        curves = [curves[i] for i in order]
        errors = None if any(c.flux_err is None for c in curves) else np.concatenate([c.flux_err for c in curves])
        stitched.append(LightCurve(np.concatenate([c.time for c in curves]), np.concatenate([c.flux for c in curves]),
                                   errors, ", ".join(Path(c.source).name for c in curves), name))
    return stitched


def light_curve_signals(paths, global_bins: int, local_bins: int, max_signals: int = 6, progress=None):
    """Each target's transit signals and their folded views, from light-curve files.

    Returns ``(views, rows)``: ``views`` a dict of (N, bins, 1) float32
    arrays ``global_view`` and ``local_view`` (zeros where a signal is
    flagged), ``rows`` a dict of per-signal columns (``target``,
    ``period_days``, ``epoch``, ``duration_days``, ``depth_ppm``,
    ``bls_snr``, ``transits``, ``flag``).
    """
    columns = {name: [] for name in ("target", "period_days", "epoch", "duration_days", "depth_ppm", "bls_snr",
                                     "transits", "flag")}
    global_views, local_views = [], []
    for curve in read_targets(paths):
        flat = detrend(curve)
        signals = search_transits(flat, max_signals=max_signals)
        if not signals:
            signals = [Signal(np.nan, np.nan, np.nan, np.nan, np.nan, 0, f"no periodic transit with SNR >= {MIN_SNR}")]
        for signal in signals:
            views = fold_views(flat, signal, global_bins, local_bins) if not signal.flag else None
            if views is None and not signal.flag:
                signal.flag = "the fold leaves a view empty"
            global_views.append(views[0] if views else np.zeros(global_bins, np.float32))
            local_views.append(views[1] if views else np.zeros(local_bins, np.float32))
            for name, value in (("target", curve.target or Path(curve.source).stem),
                                ("period_days", signal.period_days), ("epoch", signal.epoch),
                                ("duration_days", signal.duration_days), ("depth_ppm", signal.depth_ppm),
                                ("bls_snr", signal.snr), ("transits", signal.transits), ("flag", signal.flag)):
                columns[name].append(value)
        if progress is not None:
            progress(1)
    views = {"global_view": np.stack(global_views)[:, :, None], "local_view": np.stack(local_views)[:, :, None]}
    return views, {name: np.asarray(values) for name, values in columns.items()}
