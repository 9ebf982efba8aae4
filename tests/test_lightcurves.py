"""Light curves in: FITS and CSV readers, detrending, the transit search and the folded views."""

import numpy as np
import pytest

from conftest import shared
from deepsky.data.lightcurves import (
    LightCurve,
    Signal,
    detrend,
    fold_views,
    read_light_curve,
    read_targets,
    search_transits,
    trial_periods,
)
from deepsky.errors import DeepskyError

K2 = "kepler_k2_lightcurves/k2"
KEPLER90 = "kepler_k2_lightcurves/kepler90"


def _synthetic(period=3.0, depth=2e-3, days=40.0, noise=3e-4, seed=0, cadence_days=0.02):
    rng = np.random.default_rng(seed)
    time = np.arange(0, days, cadence_days)
    flux = 1 + 5e-3 * np.sin(2 * np.pi * time / 11.0) + rng.normal(0, noise, len(time))  # slow variability
    phase = np.abs((time - 1.3 + period / 2) % period - period / 2)
    flux[phase < 0.05] -= depth
    return time, flux


def _write_fits(path, time, flux, quality=None, flux_name="PDCSAP_FLUX"):
    from astropy.io import fits

    columns = [fits.Column("TIME", "D", array=time), fits.Column(flux_name, "E", array=flux)]
    if quality is not None:
        columns.append(fits.Column("QUALITY", "J", array=quality))
    header = fits.Header({"OBJECT": "TEST 1"})
    fits.HDUList([fits.PrimaryHDU(header=header), fits.BinTableHDU.from_columns(columns)]).writeto(path)
    return path


def test_fits_and_csv_read_alike_and_bad_rows_are_dropped(tmp_path):
    time, flux = _synthetic()
    flux[10] = np.nan
    quality = np.zeros(len(time), np.int32)
    quality[20] = 128
    curve = read_light_curve(_write_fits(tmp_path / "lc.fits", time, 1000 * flux, quality))
    assert len(curve.time) == len(time) - 2 and curve.target == "TEST 1"
    assert np.median(curve.flux) == pytest.approx(1.0)
    with_header = tmp_path / "h.csv"
    with_header.write_text("time,flux\n" + "\n".join(f"{t},{f}" for t, f in zip(time, flux)))
    plain = tmp_path / "p.csv"
    plain.write_text("\n".join(f"{t},{f},0.0003" for t, f in zip(time, flux)))
    a, b = read_light_curve(with_header), read_light_curve(plain)
    assert len(a.time) == len(time) - 1 and b.flux_err is not None and a.flux_err is None
    np.testing.assert_allclose(a.flux, b.flux)


def test_bad_light_curve_files_are_one_clear_error(tmp_path):
    time, flux = _synthetic()
    good = _write_fits(tmp_path / "good.fits", time, flux)
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(DeepskyError, match="truncated.fits: truncated or not FITS"):
        read_light_curve(truncated)
    no_flux = _write_fits(tmp_path / "noflux.fits", time, flux, flux_name="COUNTS")
    with pytest.raises(DeepskyError, match="noflux.fits: no flux column"):
        read_light_curve(no_flux)
    nan = _write_fits(tmp_path / "nan.fits", time, np.full(len(time), np.nan))
    with pytest.raises(DeepskyError, match="nan.fits: only 0 usable points"):
        read_light_curve(nan)
    header = tmp_path / "cols.csv"
    header.write_text("mjd,counts\n1,2\n")
    with pytest.raises(DeepskyError, match="cols.csv: the header .* names no time and flux"):
        read_light_curve(header)
    text = tmp_path / "text.csv"
    text.write_text("1.0,1.0\n2.0,abc\n")
    with pytest.raises(DeepskyError, match="text.csv: line 2: 'abc' is not a number"):
        read_light_curve(text)
    short = tmp_path / "short.csv"
    short.write_text("1.0,1.0\n2.0\n")
    with pytest.raises(DeepskyError, match="short.csv: line 2 has 1 columns"):
        read_light_curve(short)


def test_detrending_keeps_the_transit_and_removes_the_variability_across_gaps():
    time, flux = _synthetic()
    keep = (time < 15) | (time > 18)  # a 3-day gap
    curve = detrend(LightCurve(time[keep], flux[keep], None, "synthetic"))
    out = np.abs((curve.time - 1.3 + 1.5) % 3.0 - 1.5) > 0.1
    assert np.std(curve.flux[out]) < 4e-4  # the 0.5% sinusoid is gone, the 0.03% noise stays
    assert 1 - np.median(curve.flux[~out & (np.abs((curve.time - 1.3 + 1.5) % 3.0 - 1.5) < 0.03)]) > 1.5e-3


def test_the_search_finds_the_period_and_the_views_are_normalised():
    time, flux = _synthetic()
    curve = detrend(LightCurve(time, flux, None, "synthetic"))
    signals = search_transits(curve, max_signals=2)
    assert signals[0].period_days == pytest.approx(3.0, rel=2e-3) and signals[0].transits >= 12
    assert signals[0].depth_ppm == pytest.approx(2000, rel=0.3)  # a box longer than the dip dilutes it
    views = fold_views(curve, signals[0], 201, 61)
    for view in views:
        assert np.median(view) == pytest.approx(0, abs=1e-6) and view.min() == pytest.approx(-1)
    assert views[1][25:36].mean() < -0.5 and abs(views[0][:40].mean()) < 0.2  # the dip is in the middle
    assert fold_views(curve, Signal(3.0, 1.3, 0.1, 2000, 30, 13), 201, 61)[0].shape == (201,)
    periods = trial_periods(40, 20)
    assert periods[0] == 0.5 and periods[-1] == 20 and np.all(np.diff(periods) > 0)


def test_k2_3s_three_planets_are_found():
    """K2-3 (EPIC 201367065): b 10.05 d, c 24.65 d, d 44.56 d (found at half its period: alternate transits fall in gaps)."""
    (curve,) = read_targets([shared(K2) / "EPIC201367065.csv"])
    periods = [s.period_days for s in search_transits(detrend(curve)) if not s.flag]
    for known in (10.054, 24.647):
        assert any(abs(p - known) / known < 2e-3 for p in periods), (known, periods)
    assert any(abs(p - 44.556) / 44.556 < 2e-3 or abs(2 * p - 44.556) / 44.556 < 2e-3 for p in periods), periods


def test_kepler_90s_quarters_are_stitched_and_its_planets_found():
    """Kepler-90 (three quarters, one truncated): b 7.008 d, d 59.74 d and e 91.94 d come out of the search."""
    files = sorted(shared(KEPLER90).glob("*.fits"))
    (curve,) = read_targets(files)
    assert curve.target == "KIC 11442793" and np.all(np.diff(curve.time) > 0)
    periods = [s.period_days for s in search_transits(detrend(curve), max_signals=6) if not s.flag]
    for known in (7.008, 59.737, 91.939):
        assert any(abs(p - known) / known < 2e-3 for p in periods), (known, periods)
