"""Single Sersic galaxies in one band with space-telescope noise and PSF, drawn with GalSim.

The training set of structural-parameter networks (Tuccillo et al. 2016, 2018: a CNN trained
on simulated HST/CANDELS H-band galaxies and compared with GALFIT): one Sersic galaxy per
cutout with its magnitude, half-light radius, Sersic index, axis ratio, position angle and a
small centre offset; the survey's PSF (for HST an obscured Airy disk convolved with a Gaussian
for pointing jitter, charge diffusion and drizzling, the usual analytic stand-in for TinyTim);
Gaussian sky noise and source Poisson noise at the survey's depth.

Conventions (shared with :mod:`deepsky.fitting.sersic`, which fits these images):

- ``half_light_radius_arcsec`` is the semi-major axis of the ellipse holding half the light
  (GALFIT's ``R_e``); the circularised radius is ``R_e * sqrt(q)``;
- ``position_angle_deg`` is the angle of the major axis counter-clockwise from the +x axis
  (array axis 1, columns), in [0, 180);
- ``x_offset_pixels``/``y_offset_pixels`` place the centre relative to the cutout's centre,
  ``((width - 1) / 2, (height - 1) / 2)`` in 0-based array indices; +y is array axis 0.

Speed: GalSim builds a Hankel-transform table per Sersic index (up to 0.2 s for n = 6) and keeps
only 100 of them, so n is drawn on a grid (``N_GRID``) and galaxies are rendered in chunks
sorted by n: each table is built a few times per process, not once per galaxy. An untruncated
high-n profile makes GalSim use FFTs thousands of pixels wide (0.3 s for n = 6, 1.5 arcsec);
such profiles are truncated well outside the cutout, at a power-of-two multiple of the scale
radius (an exact, hence cacheable, ratio), with the flux of the untruncated profile: the pixels
change by less than 1e-4 of the peak.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Callable

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.parallel import map_in_processes
from deepsky.simulate.surveys import Survey, get_survey, mag_to_nmgy

SIMULATOR_VERSION = "profiles-1"
CHUNK = 250  # galaxies per worker task, in n-sorted order, each with its own seed

# Sersic indices: steps of 0.05 up to n = 3 and 0.1 beyond (81 values, under GalSim's cache of 100)
N_GRID = np.round(np.concatenate([np.arange(0.5, 3.0, 0.05), np.arange(3.0, 6.0 + 1e-9, 0.1)]), 2)
# PSF FWHM values drawn across the survey's range (a PSF object per value and worker)
N_PSF_FWHM = 5

# Space telescopes: effective wavelength (micron), mirror diameter (m), linear obscuration.
_TELESCOPES = {
    "hst-candels": (1.537, 2.4, 0.33),  # WFC3/IR F160W pivot wavelength
    "euclid": (0.715, 1.2, 0.3),  # VIS band centre
}
_ARCSEC_PER_RAD = 180 * 3600 / math.pi


# --------------------------------------------------------------------------------------------
# PSF


def psf_model(survey: Survey) -> dict:
    """The PSF recipe of ``survey`` as a JSON-able dict (stored in a dataset's metadata).

    Space surveys get an obscured Airy disk convolved with a Gaussian whose width makes the
    FWHM come out right; ground-based ones a Moffat with beta = 3. ``fwhm_grid_arcsec`` lists
    the FWHM values the simulator draws from.
    """
    grid = psf_model_grid(survey)
    if survey.name in _TELESCOPES:
        wavelength_um, diameter_m, obscuration = _TELESCOPES[survey.name]
        lam_over_diam = wavelength_um * 1e-6 / diameter_m * _ARCSEC_PER_RAD
        return {
            "type": "airy-gaussian",
            "wavelength_um": wavelength_um,
            "diameter_m": diameter_m,
            "lam_over_diam_arcsec": lam_over_diam,
            "obscuration": obscuration,
            "fwhm_grid_arcsec": grid,
            "gaussian_fwhm_arcsec": [gaussian_fwhm_for(lam_over_diam, obscuration, f) for f in grid],
        }
    return {"type": "moffat", "beta": 3.0, "fwhm_grid_arcsec": grid}


@functools.lru_cache(maxsize=64)
def gaussian_fwhm_for(lam_over_diam_arcsec: float, obscuration: float, fwhm_arcsec: float) -> float:
    """FWHM (arcsec) of the Gaussian that, convolved with the obscured Airy disk, gives ``fwhm_arcsec``.

    The radial profile of the convolution is the Hankel transform of the product of the two
    transfer functions (the Airy's cuts off at ``2 pi / (lambda / D)``); solved by bisection.
    """
    import galsim
    from scipy.optimize import brentq
    from scipy.special import j0

    airy = galsim.Airy(lam_over_diam=lam_over_diam_arcsec, obscuration=obscuration)
    k_cut = 2 * np.pi / lam_over_diam_arcsec
    k = np.linspace(0, k_cut, 1201)
    mtf = np.array([airy.kValue(float(kk), 0.0).real for kk in k])

    def fwhm_of(gauss_fwhm):
        sigma = gauss_fwhm / (2 * np.sqrt(2 * np.log(2)))
        weight = mtf * np.exp(-0.5 * (k * sigma) ** 2) * k

        def profile(r):
            return np.trapezoid(weight * j0(k * r), k)

        half = 0.5 * profile(0.0)
        return 2 * brentq(lambda r: profile(r) - half, 1e-4, 2.0 * lam_over_diam_arcsec + 2 * gauss_fwhm)

    airy_fwhm = fwhm_of(0.0)
    if fwhm_arcsec <= airy_fwhm:
        raise DeepskyError(
            f"a PSF FWHM of {fwhm_arcsec} arcsec is below the diffraction limit of this telescope "
            f"({airy_fwhm:.4f} arcsec for lambda/D = {lam_over_diam_arcsec:.4f} arcsec); ask for a wider PSF"
        )
    return float(brentq(lambda g: fwhm_of(g) - fwhm_arcsec, 0.0, 2 * fwhm_arcsec, xtol=1e-7))


def build_psf(model: dict, fwhm_arcsec: float, gsparams=None):
    """The GalSim PSF of ``model`` (see :func:`psf_model`) at ``fwhm_arcsec``."""
    import galsim

    fwhm_arcsec = float(fwhm_arcsec)
    kind = model.get("type")
    if kind == "airy-gaussian":
        lod, obsc = float(model["lam_over_diam_arcsec"]), float(model["obscuration"])
        grid = model.get("fwhm_grid_arcsec", [])
        # the stored widths, when the FWHM is a grid value, so fits rebuild the very same PSF
        matches = [g for f, g in zip(grid, model.get("gaussian_fwhm_arcsec", [])) if abs(f - fwhm_arcsec) < 1e-6]
        gauss = float(matches[0]) if matches else gaussian_fwhm_for(lod, obsc, fwhm_arcsec)
        airy = galsim.Airy(lam_over_diam=lod, obscuration=obsc, gsparams=gsparams)
        return galsim.Convolve(airy, galsim.Gaussian(fwhm=gauss, gsparams=gsparams), gsparams=gsparams)
    if kind == "moffat":
        return galsim.Moffat(beta=float(model["beta"]), fwhm=fwhm_arcsec, gsparams=gsparams)
    raise DeepskyError(f"unknown PSF model type {kind!r}; expected 'airy-gaussian' or 'moffat'")


# --------------------------------------------------------------------------------------------
# parameters


def _magnitudes(rng, n, mag_range, steep_fraction=0.6, slope=0.3):
    """H magnitudes: a uniform part plus galaxy counts rising as 10^(0.3 m) to the faint end."""
    lo, hi = mag_range
    uniform = rng.uniform(lo, hi, n)
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    steep = np.log10(a + rng.random(n) * (b - a)) / slope
    return np.where(rng.random(n) < steep_fraction, steep, uniform)


def _redraw_outside(values, lo, hi, draw):
    """Replace values outside [lo, hi] by fresh draws until none is left (a truncated law)."""
    for _ in range(1000):
        bad = np.flatnonzero((values < lo) | (values > hi))
        if not len(bad):
            return values
        values[bad] = draw(bad)
    return np.clip(values, lo, hi)


def draw_parameters(n: int, seed: int, survey: Survey, mag_range=(19.0, 25.0)) -> dict:
    """Draw the parameters of ``n`` galaxies; returns a dict of (n,) arrays with units in the names."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    mag = _magnitudes(rng, n, mag_range)
    # Sersic index: disks (n ~ 1), spheroids (n ~ 3.5) and a flat part covering the whole range
    kind = rng.choice(3, size=n, p=[0.45, 0.3, 0.25])
    log_centre = np.array([0.0, np.log10(3.5), 0.0])[kind]
    log_sigma = np.array([0.15, 0.12, 0.0])[kind]

    def draw_n(idx):
        flat = kind[idx] == 2
        return np.where(
            flat,
            rng.uniform(N_GRID[0], N_GRID[-1], len(idx)),
            10 ** (log_centre[idx] + log_sigma[idx] * rng.standard_normal(len(idx))),
        )

    sersic = _redraw_outside(draw_n(np.arange(n)), N_GRID[0], N_GRID[-1], draw_n)
    n_index = np.abs(sersic[:, None] - N_GRID[None, :]).argmin(axis=1)
    # sizes shrink with magnitude (about 1 arcsec at H = 19, 0.2 arcsec at H = 25), spheroids
    # are smaller at a given magnitude; 0.2 dex scatter
    log_re_mean = -0.35 - 0.12 * (mag - 22.0) - 0.1 * (N_GRID[n_index] > 2.5)

    def draw_re(idx):
        return 10 ** (log_re_mean[idx] + 0.2 * rng.standard_normal(len(idx)))

    half_light = _redraw_outside(draw_re(np.arange(n)), 0.1, 1.5, draw_re)
    # disks: random inclinations of a disk 0.15 thick; spheroids: rounder
    disky = N_GRID[n_index] < 2.0

    def draw_q(idx):
        cos_i = rng.random(len(idx))
        disk_q = np.sqrt(cos_i**2 * (1 - 0.15**2) + 0.15**2)
        return np.where(disky[idx], disk_q, rng.normal(0.72, 0.17, len(idx)))

    axis_ratio = _redraw_outside(draw_q(np.arange(n)), 0.2, 1.0, draw_q)
    fwhm_grid = np.array(psf_model_grid(survey))
    return {
        "mag": mag.astype(np.float32),
        "half_light_radius_arcsec": half_light.astype(np.float32),
        "sersic_n": N_GRID[n_index].astype(np.float32),
        "n_index": n_index.astype(np.int16),
        "axis_ratio": axis_ratio.astype(np.float32),
        "position_angle_deg": rng.uniform(0, 180, n).astype(np.float32),
        "x_offset_pixels": rng.uniform(-1.0, 1.0, n).astype(np.float32),
        "y_offset_pixels": rng.uniform(-1.0, 1.0, n).astype(np.float32),
        "psf_fwhm_arcsec": fwhm_grid[rng.integers(0, len(fwhm_grid), n)].astype(np.float32),
    }


def psf_model_grid(survey: Survey) -> list[float]:
    """The PSF FWHM values (arcsec) the simulator draws from for ``survey``."""
    lo, hi = survey.psf_fwhm_arcsec_range
    return [round(float(v), 5) for v in np.linspace(lo, hi, N_PSF_FWHM)]


@functools.lru_cache(maxsize=None)
def _hlr_over_r0(n: float) -> float:
    """Half-light radius / scale radius of an untruncated Sersic profile, as GalSim computes it."""
    import galsim

    return float(galsim.Sersic(n=n, scale_radius=1.0).half_light_radius)


def _truncation_power(params, safe_radius_arcsec):
    """log2(trunc / scale radius) per galaxy, or -1 where the profile is drawn untruncated.

    The truncation ellipse (minor semi-axis ``trunc * sqrt(q)`` after the area-preserving
    shear) must lie beyond ``safe_radius_arcsec``; a power-of-two ratio is exact in floating
    point, so GalSim's table cache (keyed on n and trunc / r0) hits.
    """
    n = params["sersic_n"].astype(np.float64)
    q = params["axis_ratio"].astype(np.float64)
    hlr_circ = params["half_light_radius_arcsec"] * np.sqrt(q)
    r0 = hlr_circ / np.array([_hlr_over_r0(float(v)) for v in N_GRID])[params["n_index"]]
    power = np.ceil(np.log2(safe_radius_arcsec / (r0 * np.sqrt(q)))).astype(np.int64)
    # low-n or compact profiles are cheap to draw untruncated
    return np.where((n > 1.5) & (hlr_circ > 0.12), power, -1)


# --------------------------------------------------------------------------------------------
# drawing


def _draw_chunk(args):
    """Render one chunk of galaxies (runs in a worker process)."""
    import galsim

    params, chunk_id, seed, settings = args
    n = len(params["mag"])
    size, scale = settings["size"], settings["scale"]
    # Looser FFT thresholds than GalSim's defaults: about 2x faster; errors below 1e-3 of the peak
    gsp = galsim.GSParams(folding_threshold=5e-3, maxk_threshold=1e-3)
    psfs = {}
    out = np.zeros((n, size, size), np.float32)
    stamp = galsim.ImageF(size, size, scale=scale)
    for i in range(n):
        fwhm = float(params["psf_fwhm_arcsec"][i])
        if fwhm not in psfs:
            psfs[fwhm] = build_psf(settings["psf_model"], fwhm, gsparams=gsp)
        sersic_n = float(N_GRID[params["n_index"][i]])
        q = float(params["axis_ratio"][i])
        hlr_circ = float(params["half_light_radius_arcsec"][i]) * math.sqrt(q)
        flux = float(mag_to_nmgy(params["mag"][i]))
        power = int(params["trunc_power"][i])
        if power >= 0:
            r0 = hlr_circ / _hlr_over_r0(sersic_n)
            gal = galsim.Sersic(
                n=sersic_n, scale_radius=r0, trunc=r0 * 2.0**power, flux=flux, flux_untruncated=True, gsparams=gsp
            )
        else:
            gal = galsim.Sersic(n=sersic_n, half_light_radius=hlr_circ, flux=flux, gsparams=gsp)
        gal = gal.shear(q=q, beta=float(params["position_angle_deg"][i]) * galsim.degrees)
        offset = (float(params["x_offset_pixels"][i]), float(params["y_offset_pixels"][i]))
        galsim.Convolve(gal, psfs[fwhm], gsparams=gsp).drawImage(image=stamp, offset=offset)
        out[i] = stamp.array
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1, chunk_id]))
    variance = settings["sky_sigma"] ** 2 + np.clip(out, 0, None) / settings["electrons_per_nmgy"]
    out += rng.standard_normal(out.shape).astype(np.float32) * np.sqrt(variance).astype(np.float32)
    return chunk_id, out


def make_profiles(
    n: int = 31000,
    seed: int = 0,
    survey: str | Survey = "hst-candels",
    cutout_pixels: int = 64,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    mag_range=(19.0, 25.0),
) -> Dataset:
    """Simulate ``n`` single-Sersic galaxies; the same seed gives the same bytes.

    Parameters
    ----------
    n : int
        Number of cutouts.
    seed : int
        Random seed.
    survey : str or Survey
        Survey preset: pixel scale (arcsec), PSF FWHM range (arcsec), sky noise (nanomaggies per
        pixel); the reference band is drawn (H for ``hst-candels``).
    cutout_pixels : int
        Cutout side in pixels.
    workers : int, optional
        Processes to draw with (default: all cores).
    progress : callable, optional
        Called with the number of cutouts finished after each chunk.
    mag_range : (float, float)
        Range of AB magnitudes in the drawn band.

    Returns
    -------
    Dataset
        Images (n, cutout_pixels, cutout_pixels, 1) float32 in nanomaggies per pixel, labels
        ``None``; ``objects`` hold the true parameters (``mag``, ``half_light_radius_arcsec``
        (semi-major axis), ``sersic_n``, ``axis_ratio``, ``position_angle_deg`` (from +x,
        counter-clockwise), ``x_offset_pixels``, ``y_offset_pixels``, ``psf_fwhm_arcsec``);
        ``meta["psf_model"]`` lets :func:`deepsky.fitting.psf_image` rebuild the PSF.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DeepskyError(f"the number of galaxies must be an integer of at least 1; received n={n!r}")
    if not isinstance(cutout_pixels, (int, np.integer)) or cutout_pixels < 8:
        raise DeepskyError(f"cutout_pixels must be an integer of at least 8; received cutout_pixels={cutout_pixels!r}")
    lo, hi = mag_range
    if not lo < hi:
        raise DeepskyError(f"mag_range must be (bright, faint) with bright < faint; received {mag_range}")
    survey = get_survey(survey) if isinstance(survey, str) else survey
    band = survey.bands.index(survey.reference_band) if survey.reference_band in survey.bands else 0
    scale = survey.pixel_scale_arcsec
    model = psf_model(survey)
    params = draw_parameters(int(n), seed, survey, mag_range)
    # truncate beyond 1.5x the distance to the cutout's corner (PSF wings included)
    safe_radius = 1.5 * (cutout_pixels / math.sqrt(2) + 1.5) * scale
    params["trunc_power"] = _truncation_power(params, safe_radius)
    settings = {
        "size": int(cutout_pixels),
        "scale": scale,
        "psf_model": model,
        "sky_sigma": float(survey.sky_noise_nmgy[band]),
        "electrons_per_nmgy": float(survey.electrons_per_nmgy[band]),
    }
    # n-sorted chunks: each GalSim table is built about once per chunk it appears in
    order = np.lexsort((params["trunc_power"], params["n_index"]))
    jobs = [
        ({k: v[order[s : s + CHUNK]] for k, v in params.items()}, s // CHUNK, seed, settings)
        for s in range(0, n, CHUNK)
    ]
    images = np.empty((n, cutout_pixels, cutout_pixels, 1), np.float32)

    # runs of neighbouring (similar-n) chunks per worker task, so each worker builds fewer tables
    run = max(1, math.ceil(len(jobs) / (4 * (workers or os.cpu_count() or 1))))
    for chunk_id, block in map_in_processes(_draw_chunk, jobs, workers, chunksize=run):
        images[order[chunk_id * CHUNK : chunk_id * CHUNK + len(block)], :, :, 0] = block
        if progress:
            progress(len(block))
    objects = {
        k: params[k]
        for k in (
            "mag",
            "half_light_radius_arcsec",
            "sersic_n",
            "axis_ratio",
            "position_angle_deg",
            "x_offset_pixels",
            "y_offset_pixels",
            "psf_fwhm_arcsec",
        )
    }
    meta = {
        "task": "galaxy-profiles",
        "bands": [survey.bands[band]],
        "pixel_scale_arcsec": scale,
        "units": "nanomaggies",
        "survey": {**survey.to_dict(), "psf_model": model},
        "psf_model": model,
        "seed": int(seed),
        "simulator": SIMULATOR_VERSION,
        "mag_range": [float(lo), float(hi)],
        "sersic_n_grid": [float(v) for v in N_GRID],
        "sky_noise_nmgy": settings["sky_sigma"],
        "electrons_per_nmgy": settings["electrons_per_nmgy"],
        "conventions": (
            "half_light_radius_arcsec: semi-major axis; position_angle_deg: major axis from +x "
            "(array axis 1) counter-clockwise; offsets from the cutout centre ((size - 1) / 2) in pixels"
        ),
        "psf": "obscured Airy disk convolved with a Gaussian (space) or Moffat beta=3 (ground), FWHM per cutout",
        "noise": "Gaussian sky at the survey's depth plus source Poisson noise",
    }
    return Dataset(inputs=images, labels=None, objects=objects, meta=meta)
