"""Galaxy images made worse on purpose, to learn to make them better (Schawinski et al. 2017, MNRAS 467, L110).

Schawinski et al. take SDSS images, convolve them with a Gaussian PSF of a
chosen FWHM and add noise until the background rms has grown by a chosen
factor; a conditional GAN learns to give the original back. Here the
originals come from the GalSim galaxy simulator
(:func:`deepsky.simulate.morphology.make_morphology`), so the truth is known
exactly: the noiseless galaxy seen through the survey's own PSF. The
original carries the survey's sky and Poisson noise, as an SDSS image does;
the degraded image is that original convolved with the extra Gaussian and
given extra sky noise so that its background rms is ``noise_factor`` times
the original's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.simulate.surveys import Survey, get_survey

SIMULATOR_VERSION = "degrade-1"
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Degradation:
    """How an image is degraded: a Gaussian PSF, then noise up to ``noise_factor`` x the original's rms.

    The PSF's FWHM is ``psf_fwhm_arcsec``, or ``psf_fwhm_pixels`` when given
    (images without one pixel scale, as Galaxy Zoo's JPEGs, each cut to the
    size of its galaxy).
    """

    psf_fwhm_arcsec: float = 2.0
    noise_factor: float = 1.5
    psf_fwhm_pixels: float | None = None

    def __post_init__(self):
        if not self.psf_fwhm_arcsec > 0:
            raise DeepskyError(f"the degrading PSF's FWHM must be positive (arcsec); received {self.psf_fwhm_arcsec!r}")
        if self.psf_fwhm_pixels is not None and not self.psf_fwhm_pixels > 0:
            raise DeepskyError(f"the degrading PSF's FWHM must be positive (pixels); received {self.psf_fwhm_pixels!r}")
        if not self.noise_factor >= 1:
            raise DeepskyError(f"the noise factor must be at least 1; received {self.noise_factor!r}")

    def sigma_pixels(self, pixel_scale_arcsec: float | None) -> float:
        """Standard deviation of the Gaussian kernel in pixels."""
        if self.psf_fwhm_pixels is not None:
            return self.psf_fwhm_pixels / FWHM_PER_SIGMA
        if not pixel_scale_arcsec:
            raise DeepskyError("these images have no pixel scale: give the degrading PSF's FWHM in pixels")
        return self.psf_fwhm_arcsec / FWHM_PER_SIGMA / pixel_scale_arcsec


def gaussian_kernel(sigma_pixels: float, size: int | None = None) -> np.ndarray:
    """A normalised 2-D Gaussian kernel (odd side, default 8 sigma + 1 pixels), as Richardson-Lucy and Wiener take it."""
    size = size or 2 * int(np.ceil(4 * sigma_pixels)) + 1
    axis = np.arange(size) - (size - 1) / 2
    profile = np.exp(-0.5 * (axis / sigma_pixels) ** 2)
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def degrade(images: np.ndarray, pixel_scale_arcsec: float | None, sky_noise, degradation: Degradation,
            rng: np.random.Generator) -> np.ndarray:
    """Convolve (N, H, W, bands) images with the degrading Gaussian and add sky noise.

    ``sky_noise`` is the originals' background rms per band (image units);
    the added noise brings the convolved image's background rms to
    ``noise_factor`` times it (convolution smooths the original noise, so
    more is added than ``noise_factor - 1`` would suggest).
    """
    from scipy.ndimage import gaussian_filter

    sigma = degradation.sigma_pixels(pixel_scale_arcsec)
    blurred = gaussian_filter(np.asarray(images, np.float32), sigma=(0, sigma, sigma, 0), mode="constant")
    # rms of white noise after the kernel: sqrt(sum of the kernel's squares)
    kept = float(np.sqrt((gaussian_kernel(sigma) ** 2).sum()))
    sky = np.asarray(sky_noise, np.float64)
    added = sky * np.sqrt(degradation.noise_factor**2 - kept**2)
    return (blurred + rng.standard_normal(blurred.shape) * added.astype(np.float32)).astype(np.float32)


def make_deconvolution(n: int, seed: int = 0, survey: str | Survey = "sdss", degradation: Degradation = Degradation(),
                       workers: int | None = None, progress: Callable[[int], None] | None = None) -> Dataset:
    """``n`` degraded galaxy images (inputs) and their noiseless originals (labels); the same seed gives the same bytes.

    Parameters
    ----------
    n : int
        Number of galaxies (ellipticals, spirals, edge-on disks and mergers in equal shares).
    seed : int
        Random seed.
    survey : str or Survey
        The survey the originals look like (pixel scale in arcsec, PSF, sky noise in nanomaggies).
    degradation : Degradation
        The extra Gaussian PSF (FWHM in arcsec) and noise factor.
    workers, progress
        As :func:`deepsky.simulate.morphology.make_morphology`.

    Returns
    -------
    Dataset
        ``inputs`` (n, 64, 64, bands) degraded images and ``labels`` the
        same shape, noiseless, both in nanomaggies per pixel; ``objects``
        the galaxies' parameters; ``meta`` the degradation.
    """
    from deepsky.simulate.morphology import make_morphology

    survey = get_survey(survey) if isinstance(survey, str) else survey
    clean = make_morphology(n, seed=seed, survey=survey, workers=workers, progress=progress, noise=False)
    band_index = [survey.bands.index(b) for b in clean.meta["bands"]]
    sky = np.asarray(survey.sky_noise_nmgy)[band_index]
    electrons = survey.electrons_per_nmgy[band_index]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    truth = clean.images
    variance = sky**2 + np.clip(truth, 0, None) / electrons
    original = truth + (rng.standard_normal(truth.shape) * np.sqrt(variance)).astype(np.float32)
    degraded = degrade(original, survey.pixel_scale_arcsec, sky, degradation, rng)
    objects = dict(clean.objects)
    objects["morphology_label"] = clean.labels
    meta = {key: clean.meta[key] for key in ("bands", "pixel_scale_arcsec", "cutout_pixels", "units", "survey")}
    meta.update({
        "task": "deconvolution", "seed": int(seed), "simulator": SIMULATOR_VERSION,
        "degradation": asdict(degradation), "sky_noise": sky.tolist(),
        "truth": "noiseless galaxy through the survey's PSF (GalSim)",
        "inputs_description": (f"original (survey noise) convolved with a Gaussian of FWHM "
                               f"{degradation.psf_fwhm_arcsec} arcsec, background rms x{degradation.noise_factor}"),
    })
    return Dataset(inputs=degraded, labels=truth, objects=objects, meta=meta)


def degrade_originals(originals, sky_noise, degradation: Degradation, seed: int, objects=None,
                      meta=None) -> Dataset:
    """Degraded copies (inputs) of real images that are their own truth (labels), as Schawinski et al. do with SDSS.

    ``originals`` (N, H, W, bands) are images as observed, with their own
    noise; ``sky_noise`` their background rms per band (image units);
    ``meta`` their metadata (bands, units, pixel scale or None), to which
    the degradation is added. The truth is the original itself, noise
    included: what can be recovered is the image the survey took.
    """
    meta = dict(meta or {})
    sky = np.asarray(sky_noise, np.float64)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3]))
    originals = np.asarray(originals, np.float32)
    degraded = degrade(originals, meta.get("pixel_scale_arcsec"), sky, degradation, rng)
    meta.update({"task": "deconvolution", "seed": int(seed), "degradation": asdict(degradation),
                 "sky_noise": sky.tolist(), "truth": "the original images, with their own noise",
                 "inputs_description": "originals convolved with a Gaussian "
                                       + (f"of FWHM {degradation.psf_fwhm_pixels} pixels" if degradation.psf_fwhm_pixels
                                          else f"of FWHM {degradation.psf_fwhm_arcsec} arcsec")
                                       + f", background rms x{degradation.noise_factor}"})
    return Dataset(inputs=degraded, labels=originals, objects=dict(objects or {}), meta=meta)
