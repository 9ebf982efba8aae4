"""Galaxies of every morphology, drawn with GalSim: ellipticals, spirals, edge-on disks, mergers, irregulars.

Each class is built from GalSim profiles and convolved with the survey's PSF before drawing:

elliptical
    A Sersic profile with n on a grid (3, 4, 5 or 6), truncated at 6 half-light radii, axis
    ratio 0.6-1, red colours.
spiral
    A small de Vaucouleurs bulge (5-30% of the light, red), a smooth exponential disk, and
    spiral arms holding 40-70% of the disk light (blue): 2, 3 or 4 logarithmic-spiral arms
    of pitch angle 10-30 deg with star-forming knots along them, wound either way with equal
    probability. The arms are rendered with numpy on a grid in units of the disk's
    half-light radius and handed to GalSim as an ``InterpolatedImage``, which is then
    inclined (0-63 deg), rotated and convolved like any other profile.
edge-on
    A thin ``InclinedExponential`` disk (inclination 80-90 deg, scale height 0.07-0.14 of the
    scale radius), a small bulge, and in half of them a dust lane: a thinner disk of negative
    flux that dims the mid-plane to 44-77% of its light before the PSF.
merger
    Two galaxies (ellipticals or disturbed bulge + disk systems with a lopsided extra
    component), flux ratio 1:1 to 1:4, 0.8-2 half-light radii of the brighter one apart,
    and in 70% of them one or two curved tidal tails (8-20% of the light) rendered like the
    spiral arms.
irregular
    Star-forming clumps (GalSim ``RandomKnots`` smoothed by a small Gaussian, 40-70% of the
    light) offset from a faint irregular exponential disk, all blue.

Magnitudes and sizes follow the survey (``_POPULATIONS``): for SDSS, Galaxy Zoo-like bright
galaxies, r = 14-17.7 and half-light radii 1.5-8 arcsec (median about 2.4 arcsec) in 64-pixel
(25 arcsec) g, r, i cutouts; for Euclid, VIS = 19-23 and half-light radii 0.3-2 arcsec in
128-pixel (12.8 arcsec) cutouts. Noise is Gaussian sky at the survey's depth plus the
sources' Poisson noise; images are sky-subtracted nanomaggies per pixel.

Speed comes from what GalSim can reuse: Sersic profiles are built once per n on the grid (with
the truncation at a fixed multiple of the half-light radius) and only dilated per galaxy,
PSFs are cached per FWHM on a grid, FFT thresholds are loosened to well below the noise,
and chunks of galaxies are drawn in forked worker processes, each chunk with its own seed so
that the same seed gives the same bytes whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable, Sequence

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.parallel import map_in_processes
from deepsky.simulate.surveys import Survey, get_survey, mag_to_nmgy, nmgy_to_mag

SIMULATOR_VERSION = "morphology-1"
MORPHOLOGY_CLASSES = ("elliptical", "spiral", "edge-on", "merger")
ALL_MORPHOLOGIES = ("elliptical", "spiral", "edge-on", "merger", "irregular")
CHUNK = 64  # galaxies per worker task; each chunk has its own noise seed, so results do not depend on workers
SERSIC_N_GRID = (3.0, 4.0, 5.0, 6.0)  # a continuous n would cost GalSim a new profile table per galaxy
TRUNCATION_HLR = 6.0  # Sersic profiles end at this many half-light radii (a fixed ratio keeps GalSim's cache warm)
SEEING_GRID_ARCSEC = 0.05  # ground-based seeing is rounded to this step, so PSFs can be cached
SPACE_PSF_GRID_STEPS = 5  # FWHM values across the range of a diffraction-limited PSF

# Arms and tidal tails are rendered on a numpy grid of this many pixels a side, with this many
# template pixels per half-light radius (so the grid reaches 4.8 half-light radii from the centre).
_TEMPLATE_PIXELS = 96
_TEMPLATE_HLR_PIXELS = 10.0
_EXP_HLR_OVER_SCALE = 1.6783469900166605  # half-light radius / scale length of an exponential disk

# Magnitude offsets from the reference band r (mag_band - mag_r) of the three kinds of light:
# old stellar populations (ellipticals, bulges), disks, and young star-forming light (arms,
# clumps, irregulars); typical colours of low-redshift galaxies in SDSS (Strateva et al. 2001,
# Blanton et al. 2003). Bands outside this table (VIS, H) take the reference-band magnitude.
_COLOUR_OFFSETS = {
    "red": {"u": 2.53, "g": 0.78, "r": 0.0, "i": -0.40, "z": -0.70},
    "disk": {"u": 1.85, "g": 0.55, "r": 0.0, "i": -0.30, "z": -0.50},
    "blue": {"u": 1.30, "g": 0.30, "r": 0.0, "i": -0.15, "z": -0.20},
}
_KINDS = ("red", "disk", "blue")


@dataclass(frozen=True)
class Population:
    """The galaxies simulated for one survey: magnitudes, sizes, cutouts and PSF model.

    Half-light radii follow ``log10 hlr = log10(hlr_at_pivot_arcsec) + hlr_mag_slope_dex *
    (mag - pivot_mag)`` with a Gaussian scatter of ``hlr_scatter_dex``, times a per-class factor,
    clipped to ``hlr_range_arcsec``. Magnitudes are AB in the survey's reference band, with counts
    rising as ``10 ** (mag_count_slope * mag)``.
    """

    mag_range: tuple[float, float]
    mag_count_slope: float
    pivot_mag: float
    hlr_at_pivot_arcsec: float
    hlr_mag_slope_dex: float
    hlr_scatter_dex: float
    hlr_range_arcsec: tuple[float, float]
    cutout_pixels: int
    bands: tuple[str, ...] | None  # default bands for morphology; None: all of the survey's
    space: bool  # diffraction-limited PSF (Airy + Gaussian) rather than atmospheric seeing
    airy_lam_over_diam_arcsec: float = 0.0
    airy_obscuration: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


_SDSS_POPULATION = Population(
    # Galaxy Zoo's main sample (r < 17.77); radii of its galaxies (petroR50 mostly 1.5-5 arcsec)
    mag_range=(14.0, 17.7), mag_count_slope=0.3, pivot_mag=16.5, hlr_at_pivot_arcsec=2.6,
    hlr_mag_slope_dex=-0.12, hlr_scatter_dex=0.12, hlr_range_arcsec=(1.5, 8.0),
    cutout_pixels=64, bands=("g", "r", "i"), space=False,
)
_EUCLID_POPULATION = Population(
    # fainter, smaller galaxies that Euclid's 0.1 arcsec pixels still resolve
    mag_range=(19.0, 23.0), mag_count_slope=0.15, pivot_mag=21.0, hlr_at_pivot_arcsec=1.0,
    hlr_mag_slope_dex=-0.15, hlr_scatter_dex=0.15, hlr_range_arcsec=(0.3, 2.0),
    cutout_pixels=128, bands=None, space=True,
    # 1.2 m primary at VIS's ~0.72 micron effective wavelength; central obscuration ~0.3
    airy_lam_over_diam_arcsec=0.124, airy_obscuration=0.3,
)
_POPULATIONS = {
    "sdss": _SDSS_POPULATION,
    "cfhtls": replace(
        _SDSS_POPULATION, mag_range=(16.0, 21.0), pivot_mag=19.5, hlr_at_pivot_arcsec=1.3,
        hlr_range_arcsec=(0.6, 5.0), cutout_pixels=128,
    ),
    "euclid": _EUCLID_POPULATION,
    # the field galaxies of deep ground-based surveys, as faint and small as lens galaxies (r 18-22.5)
    "kids": replace(
        _SDSS_POPULATION, mag_range=(18.0, 22.5), pivot_mag=20.5, hlr_at_pivot_arcsec=0.9,
        hlr_range_arcsec=(0.3, 3.0), cutout_pixels=64, bands=None,
    ),
    "hst-candels": replace(
        _EUCLID_POPULATION, mag_range=(19.0, 24.0), pivot_mag=22.0, hlr_at_pivot_arcsec=0.5,
        hlr_range_arcsec=(0.2, 1.5), cutout_pixels=128,
        # 2.4 m primary at F160W's 1.54 micron; central obscuration 0.33
        airy_lam_over_diam_arcsec=0.132, airy_obscuration=0.33,
    ),
}

# Size of each class relative to the population's relation (ellipticals are more compact at
# a given magnitude; edge-on disks are quoted by their face-on half-light radius).
_POPULATIONS["lsst"] = replace(_POPULATIONS["kids"], mag_range=(19.0, 23.5), pivot_mag=21.5)  # g band

_CLASS_SIZE = {"elliptical": 0.8, "spiral": 1.0, "edge-on": 1.1, "merger": 0.85, "irregular": 0.85}


def population_for(survey: Survey) -> Population:
    """The galaxy population deepsky simulates for ``survey``.

    Surveys without a preset population borrow SDSS's (ground, pixels >= 0.15 arcsec) or
    Euclid's (space), with cutouts of 25.6 or 12.8 arcsec at their pixel scale and an Airy
    PSF whose first-null scale lambda/D is 0.75 of the mean FWHM.
    """
    if survey.name in _POPULATIONS:
        return _POPULATIONS[survey.name]
    if survey.pixel_scale_arcsec >= 0.15:
        pixels = int(round(25.6 / survey.pixel_scale_arcsec / 8)) * 8
        return replace(_SDSS_POPULATION, cutout_pixels=max(pixels, 32), bands=None)
    pixels = int(round(12.8 / survey.pixel_scale_arcsec / 8)) * 8
    return replace(
        _EUCLID_POPULATION, cutout_pixels=max(pixels, 32),
        airy_lam_over_diam_arcsec=0.75 * float(np.mean(survey.psf_fwhm_arcsec_range)), airy_obscuration=0.3,
    )


# -- parameters -----------------------------------------------------------------------------
def _sample_magnitudes(rng, n, mag_range, slope):
    """AB magnitudes with counts rising as 10^(slope * mag) over ``mag_range`` (inverse CDF)."""
    lo, hi = mag_range
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + rng.random(n) * (b - a)) / slope


def _disk_axis_ratio(cos_i, thickness=0.2):
    """Apparent axis ratio of a disk of intrinsic thickness ``thickness`` seen at inclination i."""
    return np.sqrt(cos_i**2 * (1 - thickness**2) + thickness**2)


def draw_parameters(
    n: int, seed: int, survey: Survey, classes=MORPHOLOGY_CLASSES, bands=None, cutout_pixels: int | None = None
) -> dict:
    """Draw the physical parameters of ``n`` galaxies; returns a dict of (n, ...) arrays.

    Every class's parameters are drawn for every galaxy (those of other classes are unused),
    so that one random stream serves all. Magnitudes are AB in the survey's reference band,
    sizes and offsets in arcsec unless the name says pixels, angles in degrees. Classes are
    balanced: each appears ``n // len(classes)`` or one more times, in random order.

    Parameters
    ----------
    n : int
        Number of galaxies.
    seed : int
        Random seed.
    survey : Survey
        Survey preset.
    classes : sequence of str
        Class names from ``ALL_MORPHOLOGIES``; labels index into it.
    bands : sequence of str, optional
        Bands to draw (default: the population's morphology bands).
    cutout_pixels : int, optional
        Cutout side in pixels (default: the population's); merging pairs are kept inside it.
    """
    pop = population_for(survey)
    bands = _resolve_bands(survey, bands)
    classes = tuple(classes)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    u = rng.uniform
    label = rng.permutation(np.arange(n) % len(classes))
    morph = np.array([ALL_MORPHOLOGIES.index(c) for c in classes])[label]
    names = np.array(ALL_MORPHOLOGIES)[morph]

    mag = _sample_magnitudes(rng, n, pop.mag_range, pop.mag_count_slope)
    size_factor = np.array([_CLASS_SIZE[c] for c in ALL_MORPHOLOGIES])[morph]
    log_hlr = (np.log10(pop.hlr_at_pivot_arcsec) + pop.hlr_mag_slope_dex * (mag - pop.pivot_mag)
               + rng.normal(0, pop.hlr_scatter_dex, n))
    hlr = np.clip(10**log_hlr * size_factor, *pop.hlr_range_arcsec)
    position_angle = u(0, 180, n)

    # ellipticals: a few n values, not a continuum (see SERSIC_N_GRID)
    sersic_n = rng.choice(np.array(SERSIC_N_GRID), n, p=[0.25, 0.35, 0.25, 0.15])
    elliptical_q = u(0.6, 1.0, n)
    # spirals: low to moderate inclination (cos i 0.45-1, i = 0-63 deg)
    spiral_cos_i = u(0.45, 1.0, n)
    arm_count = rng.choice(np.array([2, 3, 4]), n, p=[0.7, 0.2, 0.1])
    pitch = u(10, 30, n)
    winding = rng.choice(np.array([-1, 1]), n)
    # edge-on disks
    edge_inclination = u(80, 90, n)
    h_over_r = u(0.07, 0.14, n)
    dust_lane = rng.random(n) < 0.5
    # bulges of spirals and edge-on disks
    bulge_fraction = u(0.05, 0.3, n)
    bulge_radius_ratio = u(0.15, 0.3, n)
    bulge_q = u(0.7, 1.0, n)
    # mergers: the companion, its separation from the brighter galaxy, tidal tails
    companion_ratio = u(0.25, 1.0, n)  # companion flux / primary flux
    separation_hlr = u(0.8, 2.0, n)
    # irregulars
    knot_count = rng.integers(8, 26, n)

    inclination = np.zeros(n)
    axis_ratio = np.ones(n)
    is_ = {c: names == c for c in ALL_MORPHOLOGIES}
    axis_ratio[is_["elliptical"]] = elliptical_q[is_["elliptical"]]
    spiral_q = _disk_axis_ratio(spiral_cos_i)
    axis_ratio[is_["spiral"]] = spiral_q[is_["spiral"]]
    inclination[is_["spiral"]] = np.degrees(np.arccos(spiral_cos_i[is_["spiral"]]))
    inclination[is_["edge-on"]] = edge_inclination[is_["edge-on"]]
    # second-moment axis ratio of an inclined sech^2 disk: sigma_z = 0.907 h_z, sigma_x = 1.732 h_r
    cos_e = np.cos(np.radians(edge_inclination))
    edge_q = np.sqrt(cos_e**2 + (0.524 * h_over_r * np.sin(np.radians(edge_inclination))) ** 2)
    axis_ratio[is_["edge-on"]] = edge_q[is_["edge-on"]]
    primary_elliptical = rng.random(n) < 0.4
    merger_q = np.where(primary_elliptical, u(0.6, 1.0, n), u(0.35, 1.0, n))
    axis_ratio[is_["merger"]] = merger_q[is_["merger"]]
    irregular_q = u(0.4, 0.9, n)
    axis_ratio[is_["irregular"]] = irregular_q[is_["irregular"]]

    # seeing (ground) or diffraction-limited PSF (space), per galaxy, on a grid of FWHM values
    lo, hi = survey.psf_fwhm_arcsec_range
    if pop.space:
        grid = np.linspace(lo, hi, SPACE_PSF_GRID_STEPS)
        seeing = grid[rng.integers(0, len(grid), n)]
    else:
        seeing = np.round(u(lo, hi, n) / SEEING_GRID_ARCSEC) * SEEING_GRID_ARCSEC
    ratio = np.array([survey.psf_fwhm_band_ratio[survey.bands.index(b)] for b in bands])
    cutout = pop.cutout_pixels if cutout_pixels is None else cutout_pixels
    return {
        "label": label.astype(np.int64),
        "morphology": morph.astype(np.int8),
        "mag": mag,
        "half_light_radius_arcsec": hlr,
        "axis_ratio": axis_ratio,
        "position_angle_deg": position_angle,
        "inclination_deg": inclination,
        "sersic_n": np.where(is_["elliptical"], sersic_n, np.where(is_["irregular"], 1.0, 4.0)),
        "bulge_fraction": np.where(is_["spiral"] | is_["edge-on"], bulge_fraction, 0.0),
        "bulge_radius_ratio": bulge_radius_ratio,
        "bulge_axis_ratio": bulge_q,
        "arm_count": np.where(is_["spiral"], arm_count, 0).astype(np.int8),
        "pitch_angle_deg": np.where(is_["spiral"], pitch, 0.0),
        "winding": np.where(is_["spiral"], winding, 0).astype(np.int8),
        "arm_fraction": u(0.4, 0.7, n),  # of the disk light
        "arm_sharpness": u(3.0, 8.0, n),
        "arm_knot_fraction": u(0.1, 0.3, n),
        "arm_knots": rng.integers(6, 24, n),
        "scale_h_over_r": h_over_r,
        "dust_lane": is_["edge-on"] & dust_lane,
        "companion_flux_ratio": np.where(is_["merger"], companion_ratio, 0.0),
        "separation_arcsec": np.where(
            is_["merger"],
            # both galaxies stay inside the cutout: at most 60% of the half-width apart
            np.minimum(separation_hlr * hlr, 0.3 * cutout * survey.pixel_scale_arcsec),
            0.0,
        ),
        "separation_angle_deg": u(0, 360, n),
        "primary_elliptical": primary_elliptical,
        "companion_elliptical": rng.random(n) < 0.4,
        "companion_size": u(0.8, 1.2, n),
        "companion_q": u(0.35, 1.0, n),
        "companion_pa_deg": u(0, 180, n),
        "companion_n": rng.choice(np.array(SERSIC_N_GRID[:3]), n),
        "disturbed_fraction": u(0.1, 0.25, n),  # lopsided extra component of a merging disk
        "tidal_tails": np.where(
            is_["merger"], rng.choice(np.array([0, 1, 2]), n, p=[0.3, 0.35, 0.35]), 0
        ).astype(np.int8),
        "tail_fraction": u(0.08, 0.2, n),
        "knot_count": np.where(is_["irregular"], knot_count, 0).astype(np.int16),
        "knot_fraction": u(0.4, 0.7, n),
        "knot_offset_hlr": u(0.15, 0.4, n),
        "knot_angle_deg": u(0, 360, n),
        "knot_q": u(0.5, 1.0, n),
        "psf_fwhm_arcsec": seeing[:, None] * ratio[None, :],
        "psf_beta": rng.choice(np.array([2.5, 3.0, 3.5, 4.5]), n),
        "psf_kolmogorov": rng.random(n) < 0.3,
        "psf_g": rng.normal(0, 0.02, (n, 2)),
        "colour_jitter": u(0.85, 1.15, (n, len(_KINDS))),  # scales each kind's colours
        "offset_pixels": u(-0.5, 0.5, (n, 2)),
        "noise_scale": u(0.9, 1.1, (n, len(bands))),
        "object_seed": rng.integers(0, 2**31 - 1, n),  # arms, tails and knots of each galaxy
    }


# -- numpy templates: spiral arms and tidal tails ---------------------------------------------
def _template_grid():
    c = (_TEMPLATE_PIXELS - 1) / 2  # the array centre, where GalSim puts an InterpolatedImage's origin
    y, x = np.mgrid[0:_TEMPLATE_PIXELS, 0:_TEMPLATE_PIXELS].astype(np.float64) - c
    return x, y


def _gaussian_blobs(cx, cy, sigma, weight):
    """Sum of round Gaussians (template pixels) as an outer product: O(K N) exps, not O(K N^2)."""
    axis = np.arange(_TEMPLATE_PIXELS, dtype=np.float64) - (_TEMPLATE_PIXELS - 1) / 2
    s = np.asarray(sigma, np.float64)[:, None]
    gx = np.exp(-0.5 * ((axis[None, :] - np.asarray(cx)[:, None]) / s) ** 2)
    gy = np.exp(-0.5 * ((axis[None, :] - np.asarray(cy)[:, None]) / s) ** 2)
    norm = np.asarray(weight, np.float64)[:, None] / (2 * np.pi * s**2)
    return (gy * norm).T @ gx  # (y, x)


def spiral_arm_template(arms, pitch_deg, winding, sharpness, knot_fraction, n_knots, rng) -> np.ndarray:
    """Face-on light of logarithmic spiral arms, normalised to a sum of 1.

    The grid is ``_TEMPLATE_PIXELS`` a side with ``_TEMPLATE_HLR_PIXELS`` pixels per half-light
    radius of the disk, x along columns and y along rows. Arm ridges follow the logarithmic
    spiral ``theta = phase + winding * ln(r / h) / tan(pitch)``: with ``winding=+1`` the polar
    angle grows outwards (arms turn anticlockwise going out, with y up). Their light falls off
    as the disk's exponential and fades inside 0.6 scale lengths, where the bulge dominates;
    ``knot_fraction`` of it sits in ``n_knots`` star-forming knots on the ridges.
    """
    x, y = _template_grid()
    h = _TEMPLATE_HLR_PIXELS / _EXP_HLR_OVER_SCALE
    r = np.hypot(x, y)
    theta = np.arctan2(y, x)
    phase = rng.uniform(0, 2 * np.pi)
    cot = 1 / np.tan(np.radians(pitch_deg))
    psi = arms * (theta - phase - winding * np.log(np.maximum(r, 0.5) / h) * cot)
    envelope = np.exp(-r / h) * (1 - np.exp(-((r / (0.6 * h)) ** 2)))
    smooth = ((1 + np.cos(psi)) / 2) ** sharpness * envelope
    smooth /= smooth.sum()
    if n_knots == 0 or knot_fraction == 0:
        return smooth
    rk = h * np.clip(rng.gamma(3.0, 0.7, n_knots), 0.6, 4.5)  # radii follow the arms' light
    tk = (phase + winding * np.log(rk / h) * cot + 2 * np.pi * rng.integers(0, arms, n_knots) / arms
          + rng.normal(0, 0.12, n_knots))
    knots = _gaussian_blobs(rk * np.cos(tk), rk * np.sin(tk), rng.uniform(0.7, 1.4, n_knots),
                            rng.uniform(0.4, 1.6, n_knots) * np.exp(-rk / (2 * h)))
    knots /= knots.sum()
    return (1 - knot_fraction) * smooth + knot_fraction * knots


def tidal_tail_template(hosts, others, rng) -> np.ndarray:
    """Curved tidal tails, one per host galaxy, normalised to a sum of 1.

    ``hosts`` and ``others`` are (k, 2) positions in template pixels of each tail's galaxy and
    of its partner; a tail leaves its host on the far side from the partner and curls by
    35-90 deg over 1.5-3 half-light radii, widening and fading along its length.
    """
    total = np.zeros((_TEMPLATE_PIXELS, _TEMPLATE_PIXELS))
    steps = 40
    t = np.linspace(0.1, 1.0, steps)
    for host, other in zip(np.asarray(hosts, float), np.asarray(others, float)):
        away = host - other
        start = np.arctan2(away[1], away[0]) + rng.normal(0, 0.4) if np.any(away) else rng.uniform(0, 2 * np.pi)
        curl = rng.choice([-1, 1]) * rng.uniform(0.6, 1.6)
        length = rng.uniform(1.5, 3.0) * _TEMPLATE_HLR_PIXELS
        angle = start + curl * t
        px = host[0] + length * t * np.cos(angle)
        py = host[1] + length * t * np.sin(angle)
        sigma = (0.15 + 0.35 * t) * _TEMPLATE_HLR_PIXELS
        total += _gaussian_blobs(px, py, sigma, np.exp(-2.0 * t))
    return total / total.sum()


# -- GalSim objects, cached per process --------------------------------------------------------
_CACHE: dict = {}


def _gsparams():
    import galsim

    if "gsparams" not in _CACHE:
        # Looser FFT thresholds than GalSim's defaults (folding 5e-3, maxk 1e-3): about 2x
        # faster, and the aliased light is far below the sky noise.
        # minimum_fft_size 64 (default 128) lets a small galaxy use a 64-pixel FFT: 4x fewer
        # k-space values to compute (see also the centred stamp in _draw_chunk).
        _CACHE["gsparams"] = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3, minimum_fft_size=64)
    return _CACHE["gsparams"]


def _sersic(n: float, hlr: float):
    """A Sersic profile of unit flux and half-light radius ``hlr`` (arcsec), truncated at 6 hlr.

    The unit profile is built once per n and dilated: GalSim then computes its table once.
    """
    import galsim

    key = ("sersic", float(n))
    if key not in _CACHE:
        _CACHE[key] = galsim.Sersic(n, half_light_radius=1.0, trunc=TRUNCATION_HLR, gsparams=_gsparams())
    return _CACHE[key].dilate(hlr)


def _space_psf(fwhm: float, pop: Population):
    """Airy (telescope aperture) convolved with a Gaussian (jitter, charge diffusion) of total ``fwhm``."""
    import galsim

    key = ("space", round(fwhm, 6), pop.airy_lam_over_diam_arcsec, pop.airy_obscuration)
    if key not in _CACHE:
        gsp = _gsparams()
        airy = galsim.Airy(
            lam_over_diam=pop.airy_lam_over_diam_arcsec, obscuration=pop.airy_obscuration, gsparams=gsp
        )

        def measured(gauss_fwhm):
            psf = galsim.Convolve(airy, galsim.Gaussian(fwhm=gauss_fwhm, gsparams=gsp), gsparams=gsp)
            # 12 pixels per FWHM and a pixel on the peak (odd size): within 0.1% of a 40-pixel
            # rendering, in 3 ms instead of 100 ms
            return psf, psf.drawImage(nx=65, ny=65, scale=fwhm / 12, method="no_pixel").calculateFWHM()

        # the Gaussian's width is found by a few secant steps: adding FWHMs in quadrature is 4% off
        g0 = np.sqrt(max(fwhm**2 - (0.98 * pop.airy_lam_over_diam_arcsec) ** 2, (0.2 * fwhm) ** 2))
        g1 = g0 * 1.1
        f0, f1 = measured(g0)[1], measured(g1)[1]
        for _ in range(4):
            if abs(f1 - f0) < 1e-9:
                break
            g0, g1 = g1, max(g1 + (fwhm - f1) * (g1 - g0) / (f1 - f0), 1e-3)
            f0, f1 = f1, measured(g1)[1]
            if abs(f1 - fwhm) < 1e-4 * fwhm:
                break
        _CACHE[key] = measured(g1)[0]
    return _CACHE[key]


def _ground_psf(fwhm: float, beta: float, kolmogorov: bool):
    import galsim

    key = ("kolmogorov", round(fwhm, 6)) if kolmogorov else ("moffat", round(fwhm, 6), beta)
    if key not in _CACHE:
        gsp = _gsparams()
        _CACHE[key] = (galsim.Kolmogorov(fwhm=fwhm, gsparams=gsp) if kolmogorov
                       else galsim.Moffat(beta=beta, fwhm=fwhm, gsparams=gsp))
    return _CACHE[key]


def _psf(p, i, b, pop):
    fwhm = float(p["psf_fwhm_arcsec"][i, b])
    if pop.space:
        return _space_psf(fwhm, pop)
    psf = _ground_psf(fwhm, float(p["psf_beta"][i]), bool(p["psf_kolmogorov"][i]))
    return psf.shear(g1=float(p["psf_g"][i, 0]), g2=float(p["psf_g"][i, 1]))


def _warm_caches(params, pop):
    """Build the Sersic tables and PSFs the galaxies need, in this process.

    Called in the parent before the workers fork, so that they inherit GalSim's tables instead of
    each building them again (and a second call in the same process finds them ready).
    """
    import galsim

    gsp = _gsparams()
    names = np.array(ALL_MORPHOLOGIES)[params["morphology"]]
    ns = set(params["sersic_n"][names == "elliptical"].tolist()) | {4.0}
    ns |= set(params["companion_n"][names == "merger"].tolist())
    blur = galsim.Gaussian(sigma=0.5, gsparams=gsp)
    for n in sorted(ns):
        galsim.Convolve(_sersic(n, 1.0), blur, gsparams=gsp).drawImage(nx=8, ny=8, scale=0.5, method="no_pixel")
    if pop.space:
        for fwhm in np.unique(params["psf_fwhm_arcsec"]):
            _space_psf(float(fwhm), pop)


# -- drawing -----------------------------------------------------------------------------------
def _rotated_shift(dx, dy, angle_deg):
    a = np.radians(angle_deg)
    return dx * np.cos(a) - dy * np.sin(a), dx * np.sin(a) + dy * np.cos(a)


def _template_profile(template, hlr):
    """An InterpolatedImage of a numpy template whose grid has ``_TEMPLATE_HLR_PIXELS`` per ``hlr`` arcsec."""
    import galsim

    image = galsim.ImageD(template, scale=hlr / _TEMPLATE_HLR_PIXELS)
    # pad_factor 2 instead of 4: the template already ends where its light has faded; a cubic
    # k-interpolant (quintic by default) makes its k-values 20% cheaper for errors below 1% of
    # the sky noise in all but the brightest SDSS spirals (measured against GalSim's defaults)
    return galsim.InterpolatedImage(image, flux=1.0, pad_factor=2.0, k_interpolant="cubic", gsparams=_gsparams())


def _is_template(obj) -> bool:
    """Whether ``obj`` is an InterpolatedImage, perhaps sheared, rotated or shifted."""
    import galsim

    while isinstance(obj, galsim.Transformation):
        obj = obj.original
    return isinstance(obj, galsim.InterpolatedImage)


def _disk_galaxy(hlr, q, pa, bulge_fraction, bulge_radius_ratio, bulge_q):
    """(profile, kind, fraction) of a bulge + exponential disk of total light 1."""
    import galsim

    beta = pa * galsim.degrees
    bulge = _sersic(4.0, bulge_radius_ratio * hlr).shear(q=bulge_q, beta=beta)
    disk = galsim.Exponential(half_light_radius=hlr, gsparams=_gsparams()).shear(q=q, beta=beta)
    return [(bulge, "red", bulge_fraction), (disk, "disk", 1 - bulge_fraction)]


def galaxy_components(p: dict, i: int) -> list:
    """GalSim profiles of galaxy ``i``: a list of (unit-flux profile, kind of light, fraction).

    Fractions are of the reference-band flux and sum to 1 (a dust lane's is negative); kinds
    are ``red``, ``disk`` or ``blue`` and set each component's colours.
    """
    import galsim

    gsp = _gsparams()
    name = ALL_MORPHOLOGIES[int(p["morphology"][i])]
    hlr = float(p["half_light_radius_arcsec"][i])
    q = float(p["axis_ratio"][i])
    pa = float(p["position_angle_deg"][i])
    beta = pa * galsim.degrees
    rng = np.random.default_rng(int(p["object_seed"][i]))

    if name == "elliptical":
        return [(_sersic(float(p["sersic_n"][i]), hlr).shear(q=q, beta=beta), "red", 1.0)]

    if name == "spiral":
        fb = float(p["bulge_fraction"][i])
        fa = (1 - fb) * float(p["arm_fraction"][i])
        comps = _disk_galaxy(hlr, q, pa, fb, float(p["bulge_radius_ratio"][i]),
                             max(q, float(p["bulge_axis_ratio"][i])))
        comps[1] = (comps[1][0], "disk", 1 - fb - fa)
        arms = spiral_arm_template(int(p["arm_count"][i]), float(p["pitch_angle_deg"][i]), int(p["winding"][i]),
                                   float(p["arm_sharpness"][i]), float(p["arm_knot_fraction"][i]),
                                   int(p["arm_knots"][i]), rng)
        comps.append((_template_profile(arms, hlr).shear(q=q, beta=beta), "blue", fa))
        return comps

    if name == "edge-on":
        fb = float(p["bulge_fraction"][i])
        incl = float(p["inclination_deg"][i]) * galsim.degrees
        h_over_r = float(p["scale_h_over_r"][i])
        bulge_q = float(p["bulge_axis_ratio"][i]) * 0.85
        bulge = _sersic(4.0, float(p["bulge_radius_ratio"][i]) * hlr).shear(q=bulge_q, beta=beta)
        disk = galsim.InclinedExponential(incl, half_light_radius=hlr, scale_h_over_r=h_over_r, gsparams=gsp)
        comps = [(bulge, "red", fb)]
        if p["dust_lane"][i]:
            # a thinner disk of negative light: before the PSF the mid-plane keeps 44% (at 90 deg) to
            # 77% (at 80 deg) of its light, and no line of sight goes negative (measured)
            dust = galsim.InclinedExponential(incl, half_light_radius=hlr, scale_h_over_r=0.35 * h_over_r,
                                              gsparams=gsp)
            disk_fraction = (1 - fb) / 0.8
            comps += [(disk.rotate(beta), "disk", disk_fraction), (dust.rotate(beta), "disk", -0.2 * disk_fraction)]
        else:
            comps.append((disk.rotate(beta), "disk", 1 - fb))
        return comps

    if name == "merger":
        ratio = float(p["companion_flux_ratio"][i])
        tails = int(p["tidal_tails"][i])
        ft = float(p["tail_fraction"][i]) if tails else 0.0
        f1, f2 = (1 - ft) / (1 + ratio), (1 - ft) * ratio / (1 + ratio)
        sep = float(p["separation_arcsec"][i])
        angle = np.radians(float(p["separation_angle_deg"][i]))
        # the light-weighted centre of the pair sits at the centre of the cutout
        d1, d2 = -sep * f2 / (f1 + f2), sep * f1 / (f1 + f2)
        pos1 = np.array([d1 * np.cos(angle), d1 * np.sin(angle)])
        pos2 = np.array([d2 * np.cos(angle), d2 * np.sin(angle)])
        hlr2 = float(np.clip(hlr * np.sqrt(ratio) * float(p["companion_size"][i]), 0.5 * hlr, 1.5 * hlr))
        comps = []
        for pos, frac, ell, n, gh, gq, gpa in (
            (pos1, f1, p["primary_elliptical"][i], 4.0, hlr, q, pa),
            (pos2, f2, p["companion_elliptical"][i], float(p["companion_n"][i]), hlr2, float(p["companion_q"][i]),
             float(p["companion_pa_deg"][i])),
        ):
            if ell:
                # shaped as the ellipticals are
                parts = [(_sersic(n, gh).shear(q=max(gq, 0.6), beta=gpa * galsim.degrees), "red", 1.0)]
            else:
                fd = float(p["disturbed_fraction"][i])
                parts = _disk_galaxy(gh, gq, gpa, 0.25, 0.25, 0.85)
                parts = [(obj, kind, f * (1 - fd)) for obj, kind, f in parts]
                # a lopsided extra component: light torn to one side of the disturbed disk
                lop = rng.uniform(0, 2 * np.pi)
                lump = galsim.Exponential(half_light_radius=0.8 * gh, gsparams=gsp)
                lump = lump.shear(q=0.6, beta=lop * galsim.radians)
                lump = lump.shift(0.5 * gh * np.cos(lop), 0.5 * gh * np.sin(lop))
                parts.append((lump, "blue", fd))
            comps += [(obj.shift(*pos), kind, f * frac) for obj, kind, f in parts]
        if tails:
            pix = _TEMPLATE_HLR_PIXELS / hlr  # template pixels per arcsec
            hosts = [pos1 * pix, pos2 * pix][:tails]
            others = [pos2 * pix, pos1 * pix][:tails]
            comps.append((_template_profile(tidal_tail_template(hosts, others, rng), hlr), "disk", ft))
        return comps

    if name == "irregular":
        fk = float(p["knot_fraction"][i])
        disk = galsim.Exponential(half_light_radius=hlr, gsparams=gsp).shear(q=q, beta=beta)
        knots = galsim.RandomKnots(
            int(p["knot_count"][i]), profile=galsim.Exponential(half_light_radius=0.8 * hlr, gsparams=gsp),
            rng=galsim.BaseDeviate(int(p["object_seed"][i])), gsparams=gsp,
        )
        clump = galsim.Gaussian(sigma=0.12 * hlr, gsparams=gsp)  # star-forming clumps, not points
        knot_beta = float(p["knot_angle_deg"][i])
        dx, dy = _rotated_shift(float(p["knot_offset_hlr"][i]) * hlr, 0.0, knot_beta)
        knots = galsim.Convolve(knots, clump, gsparams=gsp)
        knots = knots.shear(q=float(p["knot_q"][i]), beta=knot_beta * galsim.degrees)
        return [(disk.shift(-0.4 * dx, -0.4 * dy), "blue", 1 - fk), (knots.shift(dx, dy), "blue", fk)]

    raise DeepskyError(f"unknown morphology {name!r}")  # unreachable: classes are checked up front


def _colour_factors(p, i, bands, reference):
    """(kinds, bands) flux of each kind of light per band relative to the reference band."""
    out = np.ones((len(_KINDS), len(bands)))
    for k, kind in enumerate(_KINDS):
        table = _COLOUR_OFFSETS[kind]
        if reference not in table:
            continue
        jitter = float(p["colour_jitter"][i, k])
        for b, band in enumerate(bands):
            if band in table:
                out[k, b] = 10 ** (-0.4 * jitter * (table[band] - table[reference]))
    return out


def _draw_chunk(args):
    """Render one chunk of galaxies (runs in a worker process); returns (start, images, band fluxes)."""
    import galsim

    params, start, seed, survey, bands, size, noise = args
    pop = population_for(survey)
    gsp = _gsparams()
    n, nb = len(params["label"]), len(bands)
    scale = survey.pixel_scale_arcsec
    out = np.zeros((n, size, size, nb), np.float32)
    band_flux = np.zeros((n, nb))
    stamp = galsim.ImageF(size, size, scale=scale)
    # Bounds centred on 0 (the profile still lands in the middle of the array): GalSim makes its
    # FFT at least twice the largest |bound|, i.e. 2x the cutout for bounds that start at 1.
    stamp.setCenter(0, 0)
    for i in range(n):
        comps = galaxy_components(params, i)
        total = float(mag_to_nmgy(params["mag"][i]))
        colours = _colour_factors(params, i, bands, survey.reference_band)
        offset = tuple(map(float, params["offset_pixels"][i]))
        # Arms and tails (InterpolatedImages) are drawn on their own: their k-values are costly
        # to interpolate, and alone they need k only up to their own maxk, not up to that of a
        # cuspy bulge or a diffraction-limited PSF (3-10x fewer k-space values).
        templated = [_is_template(obj) for obj, _, _ in comps]
        for b in range(nb):
            psf = _psf(params, i, b, pop)
            fluxes = [total * f * colours[_KINDS.index(kind), b] for _, kind, f in comps]
            analytic = [obj * fl for (obj, _, _), fl, t in zip(comps, fluxes, templated) if not t]
            source = galsim.Sum(analytic, gsparams=gsp)
            galsim.Convolve(source, psf, gsparams=gsp).drawImage(image=stamp, offset=offset)
            for (obj, _, _), fl, t in zip(comps, fluxes, templated):
                if t:
                    arms = galsim.Convolve(obj * fl, psf, gsparams=gsp)
                    arms.drawImage(image=stamp, offset=offset, add_to_image=True)
            out[i, :, :, b] = stamp.array
            band_flux[i, b] = sum(fluxes)
    if not noise:
        return start, out, band_flux
    band_index = [survey.bands.index(b) for b in bands]
    electrons = survey.electrons_per_nmgy[band_index]
    sky = np.array(survey.sky_noise_nmgy)[band_index] * params["noise_scale"]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1, start]))
    variance = sky[:, None, None, :] ** 2 + np.clip(out, 0, None) / electrons
    out += rng.standard_normal(out.shape).astype(np.float32) * np.sqrt(variance).astype(np.float32)
    return start, out, band_flux


# -- public API --------------------------------------------------------------------------------
def _resolve_bands(survey: Survey, bands) -> tuple[str, ...]:
    if bands is None:
        return population_for(survey).bands or survey.bands
    if isinstance(bands, str):
        if bands in survey.bands:
            bands = (bands,)
        elif all(c in survey.bands for c in bands):
            bands = tuple(bands)  # "gri"
        else:
            bands = (bands,)
    bands = tuple(bands)
    unknown = [b for b in bands if b not in survey.bands]
    if unknown:
        raise DeepskyError(
            f"unknown band(s) {unknown} for survey {survey.name!r}; received bands={bands}, "
            f"choose from {list(survey.bands)}"
        )
    if not bands or len(set(bands)) != len(bands):
        raise DeepskyError(f"bands must be distinct and at least one; received bands={bands}")
    return bands


def _resolve_classes(classes) -> tuple[str, ...]:
    classes = (classes,) if isinstance(classes, str) else tuple(classes)
    unknown = [c for c in classes if c not in ALL_MORPHOLOGIES]
    if unknown:
        raise DeepskyError(
            f"unknown morphology class(es) {unknown}; received classes={classes}, "
            f"choose from {list(ALL_MORPHOLOGIES)}"
        )
    if not classes or len(set(classes)) != len(classes):
        raise DeepskyError(f"classes must be distinct and at least one; received classes={classes}")
    return classes


def make_morphology(
    n: int,
    seed: int = 0,
    survey: str | Survey = "sdss",
    classes: Sequence[str] = MORPHOLOGY_CLASSES,
    bands: Sequence[str] | None = None,
    cutout_pixels: int | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    noise: bool = True,
) -> Dataset:
    """Simulate ``n`` galaxy cutouts of balanced morphology classes; the same seed gives the same bytes.

    Parameters
    ----------
    n : int
        Number of cutouts; each class gets ``n // len(classes)`` or one more.
    seed : int
        Random seed. The images do not depend on ``workers``.
    survey : str or Survey
        Survey preset: pixel scale (arcsec/pixel), PSF FWHM (arcsec), sky noise (nanomaggies).
        ``"sdss"`` draws Galaxy Zoo-like galaxies (r = 14-17.7 AB, half-light radii
        1.5-8 arcsec); ``"euclid"`` fainter, smaller ones (VIS = 19-23 AB, 0.3-2 arcsec).
    classes : sequence of str
        Morphologies to draw, from ``ALL_MORPHOLOGIES`` (``"elliptical"``, ``"spiral"``,
        ``"edge-on"``, ``"merger"``, ``"irregular"``); default ``MORPHOLOGY_CLASSES``, the first
        four. Labels are indices into this sequence.
    bands : sequence of str, optional
        Bands to draw, a subset of the survey's (default: g, r, i for SDSS and CFHTLS; the
        survey's only band for Euclid (VIS) and HST-CANDELS (H)).
    cutout_pixels : int, optional
        Cutout side in pixels (default: 64 for SDSS = 25.3 arcsec; 128 for Euclid = 12.8
        arcsec, CFHTLS = 23.9 arcsec and HST-CANDELS = 7.7 arcsec).
    workers : int, optional
        Processes to draw with (default: all cores, at most one per chunk of 64 galaxies).
    progress : callable, optional
        Called with the number of cutouts finished after each chunk.
    noise : bool
        Add the survey's sky and source Poisson noise (False: the noiseless
        images, seen through the PSF, that restoration is scored against).

    Returns
    -------
    Dataset
        ``images`` (n, cutout, cutout, bands) float32, sky-subtracted nanomaggies per pixel;
        ``labels`` (n,) int64 indices into ``classes``; ``objects`` with, per galaxy:
        ``morphology`` (index into ``ALL_MORPHOLOGIES``), ``mag`` (AB, survey reference band,
        whole system), ``mag_<band>`` per drawn band, ``half_light_radius_arcsec``
        (circularised, sqrt(a b), as GalSim's shears keep it: the semi-major axis holding half
        the light is this / sqrt(axis_ratio); the face-on disk's for edge-on disks, the brighter
        galaxy's for mergers),
        ``axis_ratio`` (second-moment b/a of the unconvolved light), ``position_angle_deg``
        (major axis, anticlockwise from +x, the column axis), ``inclination_deg`` (spirals and
        edge-on disks; 0 otherwise), ``psf_fwhm_arcsec`` (n, bands), ``offset_pixels`` (n, 2:
        x, y of the centre from the cutout centre; for mergers, of the pair's light-weighted
        centre), ``sersic_n`` (the elliptical's; 4 for bulges, 1 for irregulars),
        ``bulge_fraction``, ``arm_count``, ``pitch_angle_deg``, ``winding`` (+1: spiral arms
        turn anticlockwise going outwards, with y, the row axis, up; -1 clockwise; 0 if not a
        spiral), ``dust_lane``, ``companion_flux_ratio``, ``separation_arcsec``,
        ``tidal_tails`` and ``knot_count`` (0 where they do not apply); ``meta`` with the task,
        classes, bands, pixel scale, cutout size, units, survey, population, seed and
        simulator.

    Raises
    ------
    DeepskyError
        If ``n < 1``, a class or band is unknown, or ``cutout_pixels`` or ``workers`` is not a
        positive integer.

    Examples
    --------
    >>> from deepsky.simulate.morphology import make_morphology
    >>> data = make_morphology(4, seed=1, workers=1)
    >>> data.images.shape, data.meta["bands"], data.meta["classes"]
    ((4, 64, 64, 3), ['g', 'r', 'i'], ['elliptical', 'spiral', 'edge-on', 'merger'])
    """
    import deepsky

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DeepskyError(f"the number of galaxies must be an integer of at least 1; received n={n!r}")
    survey = get_survey(survey) if isinstance(survey, str) else survey
    if not isinstance(survey, Survey):
        raise DeepskyError(f"survey must be a preset name or a Survey; received survey={survey!r}")
    classes = _resolve_classes(classes)
    bands = _resolve_bands(survey, bands)
    pop = population_for(survey)
    size = pop.cutout_pixels if cutout_pixels is None else cutout_pixels
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise DeepskyError(
            f"cutout_pixels must be an integer of at least 16; received cutout_pixels={cutout_pixels!r}"
        )
    bad_workers = isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1
    if workers is not None and bad_workers:
        raise DeepskyError(f"workers must be a positive integer or None; received workers={workers!r}")
    size = int(size)

    params = draw_parameters(int(n), seed, survey, classes, bands, size)
    _warm_caches(params, pop)
    nb = len(bands)
    images = np.empty((n, size, size, nb), np.float32)
    band_flux = np.empty((n, nb))
    jobs = [
        ({k: v[s : s + CHUNK] for k, v in params.items()}, s, seed, survey, bands, size, noise)
        for s in range(0, n, CHUNK)
    ]
    # forked workers inherit the GalSim tables warmed above
    for start, block, flux in map_in_processes(_draw_chunk, jobs, workers):
        images[start : start + len(block)] = block
        band_flux[start : start + len(block)] = flux
        if progress:
            progress(len(block))

    objects = {
        "morphology": params["morphology"],
        "mag": params["mag"].astype(np.float32),
        **{f"mag_{band}": nmgy_to_mag(band_flux[:, b]).astype(np.float32) for b, band in enumerate(bands)},
        **{
            key: params[key].astype(np.float32)
            for key in ("half_light_radius_arcsec", "axis_ratio", "position_angle_deg", "inclination_deg",
                        "psf_fwhm_arcsec", "offset_pixels", "sersic_n", "bulge_fraction", "pitch_angle_deg",
                        "companion_flux_ratio", "separation_arcsec")
        },
        "arm_count": params["arm_count"],
        "winding": params["winding"],
        "dust_lane": params["dust_lane"],
        "tidal_tails": params["tidal_tails"],
        "knot_count": params["knot_count"],
    }
    meta = {
        "task": "galaxy-morphology",
        "classes": list(classes),
        "bands": list(bands),
        "pixel_scale_arcsec": survey.pixel_scale_arcsec,
        "cutout_pixels": size,
        "units": "nanomaggies",
        "survey": survey.to_dict(),
        "population": pop.to_dict(),
        "seed": int(seed),
        "simulator": SIMULATOR_VERSION,
        "simulator_description": (
            "GalSim: elliptical Sersic n in {3,4,5,6}; spiral bulge + exponential disk + logarithmic-spiral "
            "arms (InterpolatedImage); edge-on InclinedExponential + bulge (+ dust lane); merger of two "
            "galaxies with tidal tails; irregular RandomKnots on a faint disk"
        ),
        "deepsky_version": deepsky.__version__,
        "psf": ("Airy + Gaussian, FWHM on a grid across the survey's range" if pop.space
                else "Moffat (beta 2.5-4.5) or Kolmogorov, seeing on a 0.05 arcsec grid, FWHM per band"),
        "noise": "Gaussian sky at the survey's depth plus source Poisson noise" if noise else "none",
    }
    return Dataset(inputs=images, labels=params["label"], objects=objects, meta=meta)
