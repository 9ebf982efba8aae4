"""Galaxy-galaxy strong lenses and the galaxies that mimic them, drawn with lenstronomy.

A lens is a singular isothermal ellipsoid (SIE) plus external shear, with a Sersic lens galaxy
whose light follows its mass (the same centre, axis ratio within 0.1, angle within 10 deg). Its
source is an elliptical Sersic galaxy behind it, in half of them with 2-6 star-forming knots
(Gaussians holding 20-60% of its light): the clumpy sources of the lens-finding challenge.
lenstronomy's ``ImageModel`` (one per worker process, reused) ray-traces the source through the
lens on a supersampled grid; the PSF (Moffat of beta 2.5-5 or Gaussian, per band) and noise
(the survey's sky, varied by 0.8-1.25x, plus Poisson noise of the sources) are added here, once
for every band. Images are sky-subtracted nanomaggies per pixel.

A *lens* is a system whose source centre has two or more images (counted on a ray-traced grid).
For the survey populations (``lsst``, ``kids``, ``euclid``) it is also one LensPop (Collett 2015)
counts as detectable, the population Lanusse et al. (2018) trained and tested on: a source whose
total magnification is below 3 (a double whose counter-image hides in the lens light, seen as a
galaxy and a companion) moves half way towards the lens until it is 3 or more, and the source
lies close enough to the lens that its outer image falls in the cutout's inner 85%.
The non-lenses are hard, not blank: every kind but the morphologies shows a lens-like galaxy
drawn exactly as the lenses' are.

=====================  ========================================================================
``kind``               what it is
=====================  ========================================================================
lens                   SIE + shear, Sersic lens light, a source inside the caustic
lens galaxy alone      the same galaxy with nothing behind it
unlensed source        the same galaxy and mass with the source outside the caustic: one
                       distorted image beside it, never a counter-image
ring galaxy            the same galaxy inside a clumpy blue ring (a collisional or resonance
                       ring), not lensed
blend                  the same galaxy with 1-3 small galaxies 0.6-3 arcsec away
spiral, edge-on,       galaxies of :mod:`deepsky.simulate.morphology` at the survey's depth
merger, irregular
=====================  ========================================================================

Every image has, in half of the cases, 1-3 unrelated neighbours (stars or galaxies) further out.

Parameters and their ranges (per survey, :data:`POPULATIONS`): Einstein radius theta_E
log-uniform over the population's range (arcsec); lens magnitude ``lens_mag_at_1arcsec - 3
log10(theta_E / 1 arcsec)`` with 0.5 mag scatter (AB, r band; brighter lenses are more massive),
half-light radius 0.9 theta_E^0.6 arcsec (0.12 dex scatter), Sersic n 3-6, axis ratio 0.55-1;
shear 0-0.08 in any direction; source r magnitude (unlensed) over the population's range,
half-light radius 0.08-0.5 arcsec, n 0.5-2.5, axis ratio 0.4-1; source position uniform over
the disc of 0.9 theta_E (lenses; of survey populations, at most 0.85 of the half cutout less
theta_E). Colours: the lens is an early-type galaxy at z ~ 0.5 and the
source a star-forming galaxy at z ~ 2 (:data:`COLOURS`).

The lensed source's signal-to-noise ratio (``lensed_snr``, the figure Lanusse et al. 2018 bin
completeness by) is measured in the survey's reference band on the noise-free lensed source
``s`` seen through the PSF, over the pixels ``M`` where ``s`` exceeds the pixel's noise sigma
(sky plus the Poisson noise of all light there): ``sum_M s / sqrt(sum_M sigma^2)``; 0 where no
pixel does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.parallel import map_in_processes
from deepsky.simulate.surveys import Survey, get_survey, mag_to_nmgy

SIMULATOR_VERSION = "lensing-2"
LENS_CLASSES = ("non-lens", "lens")
KINDS = ("lens", "lens galaxy alone", "unlensed source", "ring galaxy", "blend", "spiral", "edge-on", "merger",
         "irregular")
MORPHOLOGY_KINDS = ("spiral", "edge-on", "merger", "irregular")
# shares of the non-lenses by kind (the morphologies split the last share equally)
# (rings are rare on the sky; a larger share would teach that every wide arc is a ring)
NEGATIVE_SHARES = {"lens galaxy alone": 0.35, "unlensed source": 0.1, "ring galaxy": 0.05, "blend": 0.15,
                   "morphology": 0.35}
CHUNK = 64  # systems per worker task, each chunk seeded on its own
MAX_KNOTS = 6  # star-forming knots of a clumpy source
MAX_EXTRAS = 6  # blended galaxies and neighbours per image
MIN_IMAGES = 2  # images of the source centre that make a lens
FLOAT_COLUMNS = ("theta_e_arcsec", "lens_x", "lens_y", "lens_mag", "lens_radius_arcsec", "lens_n", "lens_axis_ratio",
                 "lens_angle_deg", "mass_axis_ratio", "mass_angle_deg", "shear", "shear_angle_deg", "source_dx",
                 "source_dy", "source_mag", "source_radius_arcsec", "source_n", "source_axis_ratio",
                 "source_angle_deg", "knot_fraction", "ring_radius_arcsec", "ring_width_arcsec", "ring_mag",
                 "noise_scale", "psf_beta")

# AB colours relative to r (mag_band - mag_r) of an early-type lens at z ~ 0.5 and a star-forming
# source at z ~ 2 (Bruzual & Charlot 2003 templates seen through the bands); VIS and F814W
# are broad red bands.
COLOURS = {
    "lens": {"u": 3.2, "g": 1.5, "r": 0.0, "i": -0.6, "z": -1.0, "VIS": -0.35, "F475W": 1.4, "F814W": -0.6,
             "H": -1.6},
    "source": {"u": 0.6, "g": 0.25, "r": 0.0, "i": -0.1, "z": -0.15, "VIS": -0.05, "F475W": 0.2, "F814W": -0.1,
               "H": -0.4},
}


@dataclass(frozen=True)
class LensPopulation:
    """The lenses simulated for one survey: cutout size, Einstein radii and magnitudes (AB, r band)."""

    cutout_pixels: int
    theta_e_range_arcsec: tuple[float, float]
    lens_mag_at_1arcsec: float
    source_mag_range: tuple[float, float]
    supersampling: int  # sub-pixels per pixel side for ray tracing
    centre_offset_arcsec: float | None = None  # lens centres within +-this (arcsec; None: half a pixel)
    # LensPop's detectability (Collett 2015), which made Lanusse et al.'s lenses: a source magnified less than
    # this (in total) moves towards the lens until it is not (None: any multiply imaged source is a lens)
    min_magnification: float | None = None
    # the source close enough to the lens centre that its outer image lies in the cutout's inner 85%
    images_inside: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


POPULATIONS = {
    # Lanusse et al. (2018): 45x45 LSST g-band cutouts; Einstein radii mostly 0.5-3 arcsec
    "lsst": LensPopulation(45, (0.5, 3.0), 19.6, (22.0, 25.5), 2, min_magnification=3.0, images_inside=True),
    # KiDS, Petrillo et al. (2017) and the challenge's ground-based set: u, g, r, i
    "kids": LensPopulation(64, (0.5, 3.0), 19.6, (22.0, 25.5), 2, min_magnification=3.0, images_inside=True),
    # Euclid VIS: finer pixels resolve smaller Einstein radii and fainter sources
    "euclid": LensPopulation(64, (0.3, 2.5), 20.0, (22.5, 26.0), 2, min_magnification=3.0, images_inside=True),
    # HST-like images of Hezaveh et al. (2017): the lens-parameter task
    "hst-acs": LensPopulation(96, (0.5, 1.5), 19.8, (22.0, 25.0), 3, centre_offset_arcsec=0.2, images_inside=True),
}


def population_for(survey: Survey) -> LensPopulation:
    """The lens population simulated for ``survey``; surveys without one are refused."""
    if survey.name not in POPULATIONS:
        raise DeepskyError(f"no lens population for survey {survey.name!r}; lenses are simulated for "
                           f"{', '.join(POPULATIONS)}")
    return POPULATIONS[survey.name]


# -- parameters --------------------------------------------------------------------------------
def _kinds(rng, n: int, lens_fraction: float) -> np.ndarray:
    """Each system's kind (index into KINDS): ``lens_fraction`` lenses, the rest by NEGATIVE_SHARES."""
    shares = [lens_fraction]
    negatives = 1.0 - lens_fraction
    for kind in KINDS[1:]:
        share = NEGATIVE_SHARES.get(kind, NEGATIVE_SHARES["morphology"] / len(MORPHOLOGY_KINDS))
        shares.append(negatives * share)
    counts = np.floor(np.array(shares) * n).astype(int)
    counts[np.argsort(-(np.array(shares) * n - counts))[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(KINDS)), counts))


def draw_parameters(n: int, seed: int, survey: Survey, lens_fraction: float = 0.5, clumpy: bool = True,
                    neighbours: bool = True) -> dict:
    """Draw the parameters of ``n`` systems: a dict of (n, ...) arrays (arcsec, degrees, AB magnitudes in r)."""
    pop = population_for(survey)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    u = rng.uniform
    kind = _kinds(rng, n, lens_fraction)
    lo, hi = pop.theta_e_range_arcsec
    theta_e = np.exp(u(np.log(lo), np.log(hi), n))
    lens_mag = pop.lens_mag_at_1arcsec - 3 * np.log10(theta_e) + rng.normal(0, 0.5, n)
    lens_q = u(0.55, 1.0, n)
    lens_angle = u(0, 180, n)
    mass_q = np.clip(lens_q + rng.normal(0, 0.1, n), 0.45, 1.0)
    mass_angle = lens_angle + rng.normal(0, 10, n)
    shear = u(0, 0.08, n)
    shear_angle = u(0, 180, n)
    # positions: lenses' sources uniform over the disc of 0.9 theta_E; unlensed ones 1.3-2.5 theta_E
    # away but inside the cutout's inner 80%
    half_field = 0.5 * pop.cutout_pixels * survey.pixel_scale_arcsec
    lensed_reach = 0.9 * theta_e
    if pop.images_inside:  # the outer image lies about theta_E + the source's offset from the centre
        lensed_reach = np.clip(0.85 * half_field - theta_e, 0.1 * theta_e, lensed_reach)
    radius = np.where(kind == KINDS.index("unlensed source"),
                      np.minimum(u(1.3, 2.5, n) * theta_e, 0.8 * half_field), lensed_reach * np.sqrt(u(0, 1, n)))
    phi = u(0, 2 * np.pi, n)
    ring_radius = np.minimum(u(0.6, 2.5, n), 0.7 * half_field)
    centre_offset = pop.centre_offset_arcsec or 0.5 * survey.pixel_scale_arcsec
    seeing_lo, seeing_hi = survey.psf_fwhm_arcsec_range
    bands = len(survey.bands)
    return {
        "kind": kind.astype(np.int8),
        "theta_e_arcsec": theta_e,
        "lens_x": u(-1, 1, n) * centre_offset,
        "lens_y": u(-1, 1, n) * centre_offset,
        "lens_mag": lens_mag,
        "lens_radius_arcsec": np.clip(0.9 * theta_e**0.6 * 10 ** rng.normal(0, 0.12, n), 0.3, 3.0),
        "lens_n": u(3.0, 6.0, n),
        "lens_axis_ratio": lens_q,
        "lens_angle_deg": lens_angle,
        "mass_axis_ratio": mass_q,
        "mass_angle_deg": mass_angle,
        "shear": shear,
        "shear_angle_deg": shear_angle,
        "source_dx": radius * np.cos(phi),
        "source_dy": radius * np.sin(phi),
        "source_mag": u(*pop.source_mag_range, n),
        "source_radius_arcsec": np.exp(u(np.log(0.08), np.log(0.5), n)),
        "source_n": u(0.5, 2.5, n),
        "source_axis_ratio": u(0.4, 1.0, n),
        "source_angle_deg": u(0, 180, n),
        "knots": np.where((rng.random(n) < 0.5) & clumpy, rng.integers(2, MAX_KNOTS + 1, n), 0).astype(np.int8),
        "knot_fraction": u(0.2, 0.6, n),
        "ring_radius_arcsec": ring_radius,
        "ring_width_arcsec": u(0.08, 0.3, n),
        "ring_mag": u(21.5, 24.0, n),
        "blends": rng.integers(1, 4, n),
        "neighbours": np.where((rng.random(n) < 0.5) & neighbours, rng.integers(1, 4, n), 0),
        "colour_jitter": rng.normal(0, 0.15, (n, 2, bands)),
        "psf_fwhm_arcsec": u(seeing_lo, seeing_hi, n)[:, None] * np.array(survey.psf_fwhm_band_ratio)[None, :],
        "psf_beta": np.where(rng.random(n) < 0.3, 0.0, u(2.5, 5.0, n)),  # 0: Gaussian
        "noise_scale": u(0.8, 1.25, n),
        "object_seed": rng.integers(0, 2**31 - 1, n),
    }


# -- rendering ---------------------------------------------------------------------------------
_MODELS: dict = {}


def _models(pixels: int, scale: float, supersampling: int):
    """The worker's lenstronomy models for one pixel grid, built once (the first costs ~0.5 s)."""
    key = (pixels, scale, supersampling)
    if key not in _MODELS:
        from lenstronomy.Data.imaging_data import ImageData
        from lenstronomy.Data.psf import PSF
        from lenstronomy.ImSim.image_model import ImageModel
        from lenstronomy.LensModel.lens_model import LensModel
        from lenstronomy.LightModel.light_model import LightModel

        corner = -(pixels - 1) / 2 * scale
        data = ImageData(image_data=np.zeros((pixels, pixels)), transform_pix2angle=np.eye(2) * scale,
                         ra_at_xy_0=corner, dec_at_xy_0=corner)
        lens = LensModel(["SIE", "SHEAR"])
        source = LightModel(["SERSIC_ELLIPSE"] + ["GAUSSIAN"] * MAX_KNOTS)
        light = LightModel(["SERSIC_ELLIPSE"])
        image_model = ImageModel(data, PSF(psf_type="NONE"), lens, source, light,
                                 kwargs_numerics={"supersampling_factor": supersampling})
        fine = (np.arange(pixels * supersampling) + 0.5) / supersampling - 0.5
        x, y = np.meshgrid(corner + fine * scale, corner + fine * scale)
        _MODELS[key] = (image_model, lens, source, light, x, y)
    return _MODELS[key]


def ellipticity(axis_ratio, angle_deg):
    """lenstronomy's (e1, e2) of an ellipse of axis ratio b/a with its major axis at ``angle_deg`` from +x."""
    phi = np.radians(angle_deg)
    e = (1 - axis_ratio) / (1 + axis_ratio)
    return e * np.cos(2 * phi), e * np.sin(2 * phi)


def lens_kwargs(p: dict, i: int) -> list[dict]:
    """lenstronomy keyword arguments of system ``i``'s SIE and shear."""
    e1, e2 = ellipticity(p["mass_axis_ratio"][i], p["mass_angle_deg"][i])
    g = p["shear"][i]
    angle = np.radians(2 * p["shear_angle_deg"][i])
    return [{"theta_E": float(p["theta_e_arcsec"][i]), "e1": float(e1), "e2": float(e2),
             "center_x": float(p["lens_x"][i]), "center_y": float(p["lens_y"][i])},
            {"gamma1": float(g * np.cos(angle)), "gamma2": float(g * np.sin(angle))}]


def _unit_flux(light, kwargs: list[dict]) -> list[dict]:
    """``kwargs`` with each component's amplitude set so that its total flux is its ``amp`` as given."""
    norms = light.total_flux(kwargs, norm=True)
    return [{**k, "amp": float(k["amp"] / f)} for k, f in zip(kwargs, norms)]


def _source_kwargs(p, i, rng, source_model) -> list[dict]:
    """The source (unlensed total flux 1): a Sersic and, for clumpy sources, Gaussian knots."""
    x = float(p["lens_x"][i] + p["source_dx"][i])
    y = float(p["lens_y"][i] + p["source_dy"][i])
    knots = int(p["knots"][i])
    knot_share = float(p["knot_fraction"][i]) if knots else 0.0
    e1, e2 = ellipticity(p["source_axis_ratio"][i], p["source_angle_deg"][i])
    radius = float(p["source_radius_arcsec"][i])
    kwargs = [{"amp": 1.0 - knot_share, "R_sersic": radius, "n_sersic": float(p["source_n"][i]),
               "e1": float(e1), "e2": float(e2), "center_x": x, "center_y": y}]
    weights = rng.dirichlet(np.ones(knots)) * knot_share if knots else []
    for k in range(MAX_KNOTS):
        r, phi = 1.5 * radius * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        kwargs.append({"amp": float(weights[k]) if k < knots else 0.0, "sigma": float(rng.uniform(0.02, 0.08)),
                       "center_x": x + r * np.cos(phi), "center_y": y + r * np.sin(phi)})
    norms = source_model.total_flux(kwargs, norm=True)  # the flux at amp 1, whatever amp says
    return [{**k, "amp": float(k["amp"] / f)} for k, f in zip(kwargs, norms)]


def _moved_halfway_in(kwargs: list[dict], x: float, y: float) -> list[dict]:
    """The source's components moved half way towards (x, y) (arcsec)."""
    return [{**k, "center_x": x + 0.5 * (k["center_x"] - x), "center_y": y + 0.5 * (k["center_y"] - y)}
            for k in kwargs]


def _lens_light_kwargs(p, i, light_model) -> list[dict]:
    e1, e2 = ellipticity(p["lens_axis_ratio"][i], p["lens_angle_deg"][i])
    return _unit_flux(light_model, [{"amp": 1.0, "R_sersic": float(p["lens_radius_arcsec"][i]),
                                     "n_sersic": float(p["lens_n"][i]), "e1": float(e1), "e2": float(e2),
                                     "center_x": float(p["lens_x"][i]), "center_y": float(p["lens_y"][i])}])


def _binned(fine: np.ndarray, factor: int) -> np.ndarray:
    n = fine.shape[0] // factor
    return fine.reshape(n, factor, n, factor).sum(axis=(1, 3))


def image_count(lens_model, kwargs, source_x: float, source_y: float, theta_e: float, grid: int = 160) -> int:
    """Images of the source point (x, y) (arcsec): separate regions of a ray-traced grid that land near it."""
    from scipy import ndimage

    centre_x, centre_y = kwargs[0]["center_x"], kwargs[0]["center_y"]
    side = np.linspace(-2.5 * theta_e, 2.5 * theta_e, grid)
    x, y = np.meshgrid(side + centre_x, side + centre_y)
    bx, by = lens_model.ray_shooting(x.ravel(), y.ravel(), kwargs)
    near = (np.hypot(bx - source_x, by - source_y) < 0.05 * theta_e).reshape(grid, grid)
    return int(ndimage.label(near)[1])


def _sersic_image(light_model, x, y, factor, area, radius, n, q, angle, cx, cy) -> np.ndarray:
    """A Sersic galaxy of total flux 1 binned from the fine grid (x, y) to pixels."""
    e1, e2 = ellipticity(q, angle)
    kwargs = _unit_flux(light_model, [{"amp": 1.0, "R_sersic": radius, "n_sersic": n, "e1": float(e1),
                                       "e2": float(e2), "center_x": cx, "center_y": cy}])
    return _binned(light_model.surface_brightness(x, y, kwargs).reshape(x.shape) * area, factor)


def _ring_image(x, y, factor, area, p, i, rng) -> np.ndarray:
    """A clumpy, unlensed ring of total flux 1 around the galaxy: a Gaussian annulus modulated in angle."""
    q = np.sqrt(p["lens_axis_ratio"][i])
    phi = np.radians(p["lens_angle_deg"][i] + rng.normal(0, 20))
    dx, dy = x - p["lens_x"][i], y - p["lens_y"][i]
    along = dx * np.cos(phi) + dy * np.sin(phi)
    across = (-dx * np.sin(phi) + dy * np.cos(phi)) / q
    r, theta = np.hypot(along, across), np.arctan2(across, along)
    modulation = np.ones_like(theta)
    for m in range(1, 7):
        modulation += rng.uniform(0, 0.6) * np.cos(m * theta + rng.uniform(0, 2 * np.pi))
    ring = np.exp(-0.5 * ((r - p["ring_radius_arcsec"][i]) / p["ring_width_arcsec"][i]) ** 2) * np.clip(
        modulation, 0, None)
    image = _binned(ring, factor)
    return image / max(image.sum(), 1e-12)


def psf_kernel(fwhm_arcsec: float, beta: float, scale: float, pixels: int) -> np.ndarray:
    """A normalised PSF on a pixel grid: Moffat of index ``beta`` (Gaussian for beta 0), FWHM in arcsec."""
    half = min(int(np.ceil(2.5 * fwhm_arcsec / scale)) + 2, pixels // 2)
    grid = np.arange(-half, half + 1) * scale
    r2 = grid[None, :] ** 2 + grid[:, None] ** 2
    if beta > 0:
        alpha2 = (fwhm_arcsec / (2 * np.sqrt(2 ** (1 / beta) - 1))) ** 2
        kernel = (1 + r2 / alpha2) ** (-beta)
    else:
        kernel = np.exp(-0.5 * r2 / (fwhm_arcsec / 2.3548) ** 2)
    return kernel / kernel.sum()


def _band_offsets(bands, kind: str, jitter) -> np.ndarray:
    return np.array([COLOURS[kind].get(b, 0.0) for b in bands]) + jitter


def _draw_chunk(args):
    """Render one chunk of lens-like systems (runs in a worker): (images, labels, objects, noise-free lensed source)."""
    from scipy.signal import fftconvolve

    params, survey, noise, lens_light = args
    pop = population_for(survey)
    size, scale, factor = pop.cutout_pixels, survey.pixel_scale_arcsec, pop.supersampling
    image_model, lens_model, source_model, light_model, x, y = _models(size, scale, factor)
    area = (scale / factor) ** 2
    bands = survey.bands
    ref = bands.index(survey.reference_band) if survey.reference_band in bands else 0
    n, nb = len(params["kind"]), len(bands)
    out = np.zeros((n, size, size, nb), np.float32)
    clean_source = np.zeros((n, size, size, nb), np.float32)
    magnification = np.zeros(n)
    count = np.zeros(n, np.int8)
    snr = np.zeros(n)
    kinds = params["kind"]
    for i in range(n):
        rng = np.random.default_rng(int(params["object_seed"][i]))
        kind = KINDS[kinds[i]]
        kl = lens_kwargs(params, i)
        parts = []  # (image of total flux 1 or the lensed source's magnified flux, r magnitude, colour kind)
        if lens_light:
            light = image_model.lens_surface_brightness(_lens_light_kwargs(params, i, light_model), unconvolved=True)
            parts.append((light, params["lens_mag"][i], "lens", 0))
        source = None
        if kind in ("lens", "unlensed source"):
            ks = _source_kwargs(params, i, rng, source_model)
            # a lens's source outside the caustic (ellipticity, shear), or too little magnified to be detectable,
            # moves in until it is not
            for _ in range(6):
                count[i] = image_count(lens_model, kl, ks[0]["center_x"], ks[0]["center_y"],
                                       params["theta_e_arcsec"][i])
                source = image_model.source_surface_brightness(ks, kl, unconvolved=True)
                magnification[i] = source.sum()
                if kind != "lens" or (count[i] >= MIN_IMAGES and magnification[i] >= (pop.min_magnification or 0)):
                    break
                ks = _moved_halfway_in(ks, kl[0]["center_x"], kl[0]["center_y"])
                params["source_dx"][i] *= 0.5
                params["source_dy"][i] *= 0.5
            parts.append((source, params["source_mag"][i], "source", 1))
        elif kind == "ring galaxy":
            parts.append((_ring_image(x, y, factor, area, params, i, rng), params["ring_mag"][i], "source", 1))
        extras = (params["blends"][i] if kind == "blend" else 0, params["neighbours"][i])
        for how_many, near in zip(extras, (True, False)):
            for _ in range(how_many):
                distance = rng.uniform(0.6, 3.0) if near else rng.uniform(0.35, 0.7) * size * scale
                phi = rng.uniform(0, 2 * np.pi)
                cx, cy = distance * np.cos(phi), distance * np.sin(phi)
                star = not near and rng.random() < 0.3
                radius = 0.01 if star else float(np.exp(rng.uniform(np.log(0.1), np.log(0.8))))
                image = _sersic_image(light_model, x, y, factor, area, radius, 1.0 if star else rng.uniform(0.5, 4),
                                      1.0 if star else rng.uniform(0.3, 1.0), rng.uniform(0, 180), cx, cy)
                colour = "lens" if rng.random() < 0.4 else "source"
                parts.append((image, rng.uniform(19.0, 24.0) if not near else rng.uniform(21.0, 24.5), colour,
                              rng.integers(0, 2)))
        sky = np.array(survey.sky_noise_nmgy) * params["noise_scale"][i]
        electrons = survey.electrons_per_nmgy
        for b, band in enumerate(bands):
            kernel = psf_kernel(params["psf_fwhm_arcsec"][i][b], params["psf_beta"][i], scale, size)
            total = np.zeros((size, size))
            for image, mag, colour, jitter_row in parts:
                offset = COLOURS[colour].get(band, 0.0) + params["colour_jitter"][i][jitter_row][b]
                total += image * float(mag_to_nmgy(mag + offset))
            seen = fftconvolve(total, kernel, mode="same")
            out[i, :, :, b] = seen
            if source is not None:
                offset = COLOURS["source"].get(band, 0.0) + params["colour_jitter"][i][1][b]
                lensed = fftconvolve(source * float(mag_to_nmgy(params["source_mag"][i] + offset)), kernel,
                                     mode="same")
                clean_source[i, :, :, b] = lensed
                if b == ref:
                    sigma = np.sqrt(sky[b] ** 2 + np.clip(seen, 0, None) / electrons[b])
                    above = lensed > sigma
                    snr[i] = lensed[above].sum() / np.sqrt((sigma[above] ** 2).sum()) if above.any() else 0.0
        if noise:
            variance = sky[None, None, :] ** 2 + np.clip(out[i], 0, None) / electrons[None, None, :]
            out[i] += (rng.standard_normal(out[i].shape) * np.sqrt(variance)).astype(np.float32)
    label = ((kinds == KINDS.index("lens")) & (count >= MIN_IMAGES)).astype(np.int64)
    objects = {key: np.asarray(value, np.float32) for key, value in params.items()
               if key not in ("kind", "object_seed", "colour_jitter", "knots", "blends", "neighbours")}
    objects.update(kind=kinds, knots=params["knots"], image_count=count, magnification=magnification.astype(np.float32),
                   lensed_snr=snr.astype(np.float32))
    return out, label, objects, clean_source


def make_lenses(
    n: int,
    seed: int = 0,
    survey: str | Survey = "lsst",
    lens_fraction: float = 0.5,
    lens_light: bool = True,
    clumpy: bool = True,
    neighbours: bool = True,
    noise: bool = True,
    keep_clean_source: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Dataset:
    """Simulate ``n`` cutouts of lenses and hard non-lenses; the same seed gives the same bytes.

    Parameters
    ----------
    n : int
        Number of cutouts.
    seed : int
        Random seed; the images do not depend on ``workers``.
    survey : str or Survey
        ``lsst`` (g, 0.2 arcsec/pixel, 45x45), ``kids`` (u, g, r, i, 0.2 arcsec, 64x64),
        ``euclid`` (VIS, 0.1 arcsec, 64x64) or ``hst-acs`` (F814W, 0.04 arcsec, 96x96).
    lens_fraction : float
        Share of lenses (label 1); the rest are non-lenses of the kinds in the module's table.
        1.0 draws lenses only (the parameter task).
    lens_light : bool
        Draw the lens galaxy's light (False: the lens light already removed, as in Hezaveh et al.).
    clumpy : bool
        Give half of the sources star-forming knots (False: smooth Sersic sources only).
    neighbours : bool
        Put unrelated stars and galaxies in half of the cutouts (False: none).
    noise : bool
        Add sky and Poisson noise.
    keep_clean_source : bool
        Also return the noise-free lensed source through the PSF as ``clean_source`` (an extra input).
    workers : int, optional
        Processes to draw with (default: all cores).
    progress : callable, optional
        Called with the number of cutouts finished after each chunk.

    Returns
    -------
    Dataset
        ``images`` (n, side, side, bands) float32, sky-subtracted nanomaggies per pixel; ``labels``
        (n,) 1 for lenses; ``objects`` with ``kind`` (index into ``KINDS``), ``theta_e_arcsec``,
        lens centre ``lens_x``, ``lens_y`` (arcsec from the cutout centre, x along columns),
        ``mass_axis_ratio``, ``mass_angle_deg`` (degrees from +x), ``shear``, ``shear_angle_deg``,
        ``lens_mag`` and ``source_mag`` (AB, r band, unlensed), ``source_dx``, ``source_dy``
        (arcsec from the lens centre), ``magnification`` (lensed / unlensed flux), ``image_count``,
        ``lensed_snr`` (module docstring) and ``psf_fwhm_arcsec`` (n, bands); NaN or 0 where a kind
        has no such thing (morphologies).
    """
    import deepsky

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DeepskyError(f"the number of cutouts must be an integer of at least 1; received n={n!r}")
    if not 0.0 <= lens_fraction <= 1.0:
        raise DeepskyError(f"lens_fraction must be between 0 and 1; received {lens_fraction!r}")
    survey = get_survey(survey) if isinstance(survey, str) else survey
    pop = population_for(survey)
    params = draw_parameters(int(n), seed, survey, lens_fraction, clumpy, neighbours)
    morphology = np.isin(params["kind"], [KINDS.index(k) for k in MORPHOLOGY_KINDS])
    drawn_rows = np.flatnonzero(~morphology)
    images = np.zeros((n, pop.cutout_pixels, pop.cutout_pixels, len(survey.bands)), np.float32)
    labels = np.zeros(n, np.int64)
    clean = np.zeros_like(images) if keep_clean_source else None
    objects = {key: np.full(n, np.nan, np.float32) for key in FLOAT_COLUMNS}
    objects["psf_fwhm_arcsec"] = params["psf_fwhm_arcsec"].astype(np.float32)
    objects.update(kind=params["kind"].copy(), knots=np.zeros(n, np.int8), image_count=np.zeros(n, np.int8),
                   magnification=np.zeros(n, np.float32), lensed_snr=np.zeros(n, np.float32))
    chunks = [rows for rows in np.array_split(drawn_rows, range(CHUNK, len(drawn_rows), CHUNK)) if len(rows)]
    jobs = [({key: value[rows] for key, value in params.items()}, survey, noise, lens_light) for rows in chunks]
    for rows, (part_images, part_labels, part_objects, part_clean) in zip(chunks,
                                                                          map_in_processes(_draw_chunk, jobs, workers)):
        images[rows], labels[rows] = part_images, part_labels
        for key, column in part_objects.items():
            if key in objects:
                objects[key][rows] = column
        if clean is not None:
            clean[rows] = part_clean
        if progress:
            progress(len(rows))
    morphology_rows = np.flatnonzero(morphology)
    if len(morphology_rows):
        from deepsky.simulate.morphology import ALL_MORPHOLOGIES, make_morphology

        galaxies = make_morphology(len(morphology_rows), seed=seed + 7919, survey=survey, classes=MORPHOLOGY_KINDS,
                                   bands=survey.bands, cutout_pixels=pop.cutout_pixels, workers=workers,
                                   progress=progress, noise=noise)
        images[morphology_rows] = galaxies.images
        names = np.array(ALL_MORPHOLOGIES)[galaxies.objects["morphology"]]
        objects["kind"][morphology_rows] = [KINDS.index(name) for name in names]
        objects["psf_fwhm_arcsec"][morphology_rows] = galaxies.objects["psf_fwhm_arcsec"]
    meta = {
        "task": "lens-finding",
        "classes": list(LENS_CLASSES),
        "kinds": list(KINDS),
        "bands": list(survey.bands),
        "pixel_scale_arcsec": survey.pixel_scale_arcsec,
        "cutout_pixels": pop.cutout_pixels,
        "units": "nanomaggies",
        "survey": survey.to_dict(),
        "population": pop.to_dict(),
        "seed": int(seed),
        "lens_fraction": float(lens_fraction),
        "lens_light": bool(lens_light),
        "clumpy_sources": bool(clumpy),
        "simulator": SIMULATOR_VERSION,
        "simulator_description": ("lenstronomy SIE + external shear, Sersic lens light, Sersic source with "
                                  "Gaussian knots; non-lenses: lens galaxies alone, unlensed sources, ring "
                                  "galaxies, blends and GalSim spirals, edge-on disks, mergers, irregulars"),
        "noise": "Gaussian sky (0.8-1.25x the survey's) plus source Poisson noise" if noise else "none",
        "deepsky_version": deepsky.__version__,
    }
    inputs = {"images": images, "clean_source": clean} if clean is not None else images
    return Dataset(inputs=inputs, labels=labels, objects=objects, meta=meta)
