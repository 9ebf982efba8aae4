"""Stars and galaxies in SDSS-like u,g,r,i,z cutouts, drawn with GalSim.

Stars are the PSF with colours along the SDSS stellar locus; galaxies are a
de Vaucouleurs bulge plus an exponential disk with their own colours, sizes
that shrink with magnitude, and inclination-dependent axis ratios. Seeing
varies from cutout to cutout and band to band; sky noise and source Poisson
noise are at SDSS depth; a quarter of the cutouts have a neighbour.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.parallel import map_in_processes
from deepsky.simulate.surveys import Survey, get_survey, mag_to_nmgy, nmgy_to_mag

SIMULATOR_VERSION = "stargalaxy-2"
CLASSES = ("star", "galaxy")
CHUNK = 200  # objects per worker task: each chunk has its own seed, so results do not depend on workers

# Median SDSS stellar locus (after Covey et al. 2007): colours as a function of g-r.
_LOCUS_GR = np.array([-0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6])
_LOCUS_UG = np.array([1.00, 1.00, 1.30, 1.80, 2.20, 2.40, 2.55, 2.60, 2.65])
_LOCUS_RI = np.array([-0.10, 0.02, 0.10, 0.20, 0.28, 0.35, 0.50, 0.90, 1.50])
_LOCUS_IZ = np.array([-0.05, -0.02, 0.02, 0.08, 0.14, 0.19, 0.28, 0.50, 0.80])


def _sample_magnitudes(rng, n, r_mag_range, steep_fraction, slope):
    """r magnitudes: a uniform part plus a part rising as 10^(slope * r) to the faint end."""
    lo, hi = r_mag_range
    uniform = rng.uniform(lo, hi, n)
    # inverse CDF of p(r) proportional to 10^(slope r) on [lo, hi]
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    steep = np.log10(a + rng.random(n) * (b - a)) / slope
    return np.where(rng.random(n) < steep_fraction, steep, uniform)


def _star_colours(rng, n):
    """(n, 4) colours u-g, g-r, r-i, i-z of stars along the stellar locus."""
    halo = rng.random(n) < 0.55  # turn-off stars of the halo vs M dwarfs of the disk
    gr = np.where(halo, rng.normal(0.35, 0.12, n), rng.uniform(0.5, 1.55, n) ** 0.7 * 1.3)
    gr = np.clip(gr, -0.1, 1.6)
    scatter = rng.normal(0, 0.05, (n, 3))
    ug = np.interp(gr, _LOCUS_GR, _LOCUS_UG) + 2 * scatter[:, 0]
    ri = np.interp(gr, _LOCUS_GR, _LOCUS_RI) + scatter[:, 1]
    iz = np.interp(gr, _LOCUS_GR, _LOCUS_IZ) + scatter[:, 2]
    return np.stack([ug, gr, ri, iz], axis=1)


def _galaxy_colours(rng, r_mag, red):
    """(n, 4) colours of bulges (``red``) or disks, redder for fainter (more distant) galaxies."""
    n = len(r_mag)
    k = np.clip(r_mag - 17.0, 0, None)  # crude k-correction with distance
    if red:
        means, sigmas, slopes = (1.8, 0.85, 0.40, 0.30), (0.25, 0.12, 0.08, 0.08), (0.05, 0.10, 0.06, 0.03)
    else:
        means, sigmas, slopes = (1.15, 0.45, 0.25, 0.15), (0.30, 0.15, 0.10, 0.10), (0.03, 0.06, 0.04, 0.02)
    return np.stack(
        [m + s * rng.standard_normal(n) + sl * k for m, s, sl in zip(means, sigmas, slopes)], axis=1
    )


def _colours_to_mags(r_mag, colours):
    """(n, 5) u,g,r,i,z magnitudes from r and the colours u-g, g-r, r-i, i-z."""
    ug, gr, ri, iz = colours.T
    g = r_mag + gr
    return np.stack([g + ug, g, r_mag, r_mag - ri, r_mag - ri - iz], axis=1)


def draw_parameters(n: int, seed: int, survey: Survey, galaxy_fraction=0.5, r_mag_range=(14.0, 22.0)):
    """Draw the physical parameters of ``n`` cutouts; returns a dict of (n, ...) arrays.

    Magnitudes are AB, sizes in arcsec, PSF FWHM in arcsec per band.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    nb = len(survey.bands)
    is_galaxy = rng.random(n) < galaxy_fraction
    r_mag = np.where(
        is_galaxy,
        _sample_magnitudes(rng, n, r_mag_range, 0.65, 0.35),
        _sample_magnitudes(rng, n, r_mag_range, 0.5, 0.2),
    )
    seeing = rng.uniform(*survey.psf_fwhm_arcsec_range, n)
    psf_fwhm = seeing[:, None] * np.array(survey.psf_fwhm_band_ratio) * rng.normal(1, 0.03, (n, nb))
    early = rng.random(n) < 0.35
    bulge_fraction = np.where(early, rng.uniform(0.6, 1.0, n), rng.beta(1.2, 4.0, n))
    # Galaxies shrink with magnitude (about 2 arcsec at r=18, 0.5 arcsec at r=22), 0.3 dex scatter.
    log_re = 0.3 - 0.15 * (r_mag - 18.0) + rng.normal(0, 0.3, n) - 0.15 * early
    half_light = np.clip(10**log_re, 0.2, 6.0)
    cos_i = rng.random(n)
    disk_q = np.sqrt(cos_i**2 * (1 - 0.15**2) + 0.15**2)
    bulge_q = rng.uniform(0.55, 1.0, n)
    bulge_colours = _galaxy_colours(rng, r_mag, red=True)
    disk_colours = _galaxy_colours(rng, r_mag, red=False)
    star_mags = _colours_to_mags(r_mag, _star_colours(rng, n))
    bulge_flux = bulge_fraction[:, None] * mag_to_nmgy(_colours_to_mags(r_mag, bulge_colours))
    disk_flux = (1 - bulge_fraction)[:, None] * mag_to_nmgy(_colours_to_mags(r_mag, disk_colours))
    galaxy_flux = bulge_flux + disk_flux
    total_flux = np.where(is_galaxy[:, None], galaxy_flux, mag_to_nmgy(star_mags))
    has_neighbour = rng.random(n) < 0.25
    neighbour_angle = rng.uniform(0, 2 * np.pi, n)
    neighbour_radius = rng.uniform(9, 22, n)  # pixels from the centre
    return {
        "label": is_galaxy.astype(np.int8),
        "r_mag": r_mag.astype(np.float32),
        "mag": nmgy_to_mag(total_flux).astype(np.float32),
        "psf_fwhm_arcsec": psf_fwhm.astype(np.float32),
        # a few Moffat betas, not a continuum: GalSim caches one profile table per beta (2x faster)
        "psf_beta": rng.choice(np.array([2.5, 3.0, 3.5, 4.5]), n).astype(np.float32),
        # some seeing is better described by pure atmospheric turbulence than by a Moffat
        "psf_kolmogorov": rng.random(n) < 0.3,
        "psf_g": rng.normal(0, 0.02, (n, 2)).astype(np.float32),
        "half_light_radius_arcsec": np.where(is_galaxy, half_light, 0).astype(np.float32),
        "bulge_fraction": np.where(is_galaxy, bulge_fraction, 0).astype(np.float32),
        "bulge_radius_ratio": rng.uniform(0.3, 0.7, n).astype(np.float32),
        "disk_axis_ratio": disk_q.astype(np.float32),
        "bulge_axis_ratio": bulge_q.astype(np.float32),
        "position_angle_deg": rng.uniform(0, 180, n).astype(np.float32),
        "bulge_flux": bulge_flux.astype(np.float32),
        "disk_flux": disk_flux.astype(np.float32),
        "star_flux": mag_to_nmgy(star_mags).astype(np.float32),
        "offset_pixels": rng.uniform(-1.0, 1.0, (n, 2)).astype(np.float32),
        "has_neighbour": has_neighbour,
        "neighbour_offset_pixels": np.stack(
            [neighbour_radius * np.cos(neighbour_angle), neighbour_radius * np.sin(neighbour_angle)], axis=1
        ).astype(np.float32),
        "neighbour_is_galaxy": rng.random(n) < 0.6,
        "neighbour_r_mag": np.clip(r_mag + rng.uniform(-1.0, 3.0, n), 14, 23).astype(np.float32),
        "neighbour_half_light_arcsec": np.clip(10 ** rng.normal(-0.1, 0.25, n), 0.2, 3).astype(np.float32),
        "noise_scale": rng.uniform(0.8, 1.3, (n, nb)).astype(np.float32),
        # residual sky: real SDSS cutout borders sit up to about 1 sigma above zero
        "sky_offset_sigma": rng.normal(0.2, 0.5, (n, nb)).astype(np.float32),
    }


def _draw_chunk(args):
    """Render one chunk of cutouts (runs in a worker process)."""
    import galsim

    params, start, seed, survey = args
    n = len(params["label"])
    nb, size, scale = len(survey.bands), survey.cutout_pixels, survey.pixel_scale_arcsec
    # Looser FFT thresholds than GalSim's defaults: 2x faster, far below SDSS noise.
    gsp = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1, start]))
    out = np.zeros((n, size, size, nb), np.float32)
    stamp = galsim.ImageF(size, size, scale=scale)
    electrons = survey.electrons_per_nmgy
    sky = np.array(survey.sky_noise_nmgy)
    for i in range(n):
        beta = galsim.Angle(float(params["position_angle_deg"][i]), galsim.degrees)
        if params["label"][i]:
            hlr = float(params["half_light_radius_arcsec"][i])
            bulge_hlr = hlr * float(params["bulge_radius_ratio"][i])
            bulge = galsim.DeVaucouleurs(half_light_radius=bulge_hlr, trunc=8 * bulge_hlr, gsparams=gsp)
            bulge = bulge.shear(q=float(params["bulge_axis_ratio"][i]), beta=beta)
            disk = galsim.Exponential(half_light_radius=hlr, gsparams=gsp)
            disk = disk.shear(q=float(params["disk_axis_ratio"][i]), beta=beta)
        neighbour = None
        if params["has_neighbour"][i]:
            flux_r = float(mag_to_nmgy(params["neighbour_r_mag"][i]))
            if params["neighbour_is_galaxy"][i]:
                neighbour = galsim.Exponential(
                    half_light_radius=float(params["neighbour_half_light_arcsec"][i]), flux=flux_r, gsparams=gsp
                )
            else:
                neighbour = galsim.DeltaFunction(flux=flux_r)
        for b in range(nb):
            fwhm = float(params["psf_fwhm_arcsec"][i, b])
            if params["psf_kolmogorov"][i]:
                psf = galsim.Kolmogorov(fwhm=fwhm, gsparams=gsp)
            else:
                psf = galsim.Moffat(beta=float(params["psf_beta"][i]), fwhm=fwhm, gsparams=gsp)
            psf = psf.shear(g1=float(params["psf_g"][i, 0]), g2=float(params["psf_g"][i, 1]))
            if params["label"][i]:
                source = bulge * float(params["bulge_flux"][i, b]) + disk * float(params["disk_flux"][i, b])
                obj = galsim.Convolve(source, psf, gsparams=gsp)
            else:
                obj = psf * float(params["star_flux"][i, b])
            obj.drawImage(image=stamp, offset=tuple(map(float, params["offset_pixels"][i])))
            if neighbour is not None:
                # neighbours share the band's PSF; colours are close to the central object's
                galsim.Convolve(neighbour, psf, gsparams=gsp).drawImage(
                    image=stamp, add_to_image=True, offset=tuple(map(float, params["neighbour_offset_pixels"][i]))
                )
            out[i, :, :, b] = stamp.array
    sigma_sky = sky * params["noise_scale"]
    variance = sigma_sky[:, None, None, :] ** 2 + np.clip(out, 0, None) / electrons
    out += rng.standard_normal(out.shape).astype(np.float32) * np.sqrt(variance).astype(np.float32)
    out += (params["sky_offset_sigma"] * sigma_sky)[:, None, None, :].astype(np.float32)
    return start, out


def make_star_galaxy(
    n: int = 20000,
    seed: int = 0,
    survey: str | Survey = "sdss",
    galaxy_fraction: float = 0.5,
    r_mag_range=(14.0, 22.0),
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Dataset:
    """Simulate ``n`` star and galaxy cutouts; the same seed gives the same bytes.

    Parameters
    ----------
    n : int
        Number of cutouts.
    seed : int
        Random seed.
    survey : str or Survey
        Survey preset (bands, pixel scale in arcsec, seeing, noise).
    galaxy_fraction : float
        Probability that a cutout holds a galaxy.
    r_mag_range : (float, float)
        Range of r-band AB magnitudes of the central object.
    workers : int, optional
        Processes to draw with (default: all cores).
    progress : callable, optional
        Called with the number of cutouts finished after each chunk.

    Returns
    -------
    Dataset
        Images in nanomaggies per pixel, (n, 48, 48, 5) for SDSS; labels 0 star, 1 galaxy.
    """
    if n < 1:
        raise DeepskyError(f"the number of cutouts must be at least 1; received n={n}")
    if not 0 <= galaxy_fraction <= 1:
        raise DeepskyError(f"galaxy_fraction must lie in [0, 1]; received {galaxy_fraction}")
    survey = get_survey(survey) if isinstance(survey, str) else survey
    params = draw_parameters(n, seed, survey, galaxy_fraction, r_mag_range)
    size, nb = survey.cutout_pixels, len(survey.bands)
    images = np.empty((n, size, size, nb), np.float32)
    jobs = [
        ({k: v[s : s + CHUNK] for k, v in params.items()}, s, seed, survey) for s in range(0, n, CHUNK)
    ]
    for start, block in map_in_processes(_draw_chunk, jobs, workers):
        images[start : start + len(block)] = block
        if progress:
            progress(len(block))
    objects = {
        "r_mag": params["r_mag"],
        "half_light_radius_arcsec": params["half_light_radius_arcsec"],
        "bulge_fraction": params["bulge_fraction"],
        "psf_fwhm_arcsec": params["psf_fwhm_arcsec"],
        "has_neighbour": params["has_neighbour"],
    }
    for b, band in enumerate(survey.bands):
        objects[f"mag_{band}"] = params["mag"][:, b]
    meta = {
        "task": "star-galaxy",
        "classes": list(CLASSES),
        "bands": list(survey.bands),
        "pixel_scale_arcsec": survey.pixel_scale_arcsec,
        "units": "nanomaggies",
        "survey": survey.to_dict(),
        "seed": int(seed),
        "simulator": SIMULATOR_VERSION,
        "galaxy_fraction": galaxy_fraction,
        "r_mag_range": list(r_mag_range),
        "psf": "Moffat (beta 2.5-4.5) or Kolmogorov, FWHM and ellipticity per cutout and band",
        "noise": "Gaussian sky at SDSS depth plus source Poisson noise",
    }
    return Dataset(inputs=images, labels=params["label"].astype(np.int64), objects=objects, meta=meta)
