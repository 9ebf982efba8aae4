"""The classical lens model: lenstronomy's own fit (its FittingSequence, PSO then a short MCMC) of each image.

The model fitted is the one the images were drawn with (the parameter task draws smooth
sources): an SIE plus external shear lensing an elliptical Sersic source, seen through the
image's own PSF, with the simulation's noise model (sky plus Poisson). A first PSO fits a round
lens without shear (Einstein radius, centre and source), a second frees the ellipticity and
shear from there; the MCMC (emcee) that follows gives each parameter's 68% interval. The start
is what an analyst would read off the image: theta_E the median radius of the pixels above
3 sigma (:func:`einstein_radius_guess`). Hezaveh et al. (2017) quote such fits at hours per lens;
here they run for seconds each (one process per core).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from deepsky.parallel import map_in_processes

FIT_PARAMETERS = ("theta_e_arcsec", "e1", "e2", "lens_x", "lens_y", "gamma1", "gamma2")
PSO = {"n_particles": 50, "n_iterations": 80, "sigma_scale": 1.0}
MCMC = {"n_burn": 20, "n_run": 30, "walkerRatio": 4, "sigma_scale": 0.1}


def einstein_radius_guess(image: np.ndarray, scale: float, sky: float) -> float:
    """A first guess of theta_E (arcsec): the median radius of the pixels 3 sigma above the sky.

    What an analyst reads off the image before a fit: lensed arcs and rings sit near theta_E.
    """
    size = image.shape[0]
    y, x = (np.indices(image.shape) - (size - 1) / 2) * scale
    bright = image > 3 * sky
    if bright.sum() < 3:
        return 1.0
    return float(np.clip(np.median(np.hypot(x, y)[bright]), 0.3, 2.5))


def _fit_one(job) -> dict:
    import contextlib
    import io
    import warnings

    from lenstronomy.Workflow.fitting_sequence import FittingSequence

    from deepsky.simulate.lensing import psf_kernel

    image, scale, sky, electrons, fwhm, beta, pso, mcmc, seed = job
    np.random.seed(seed)  # lenstronomy's PSO and emcee draw from numpy's global generator
    start = time.perf_counter()
    size = image.shape[0]
    corner = -(size - 1) / 2 * scale
    kernel = psf_kernel(fwhm, beta, scale, size)
    kwargs_data = {"image_data": image.astype(np.float64), "background_rms": float(sky),
                   "exposure_time": float(electrons), "ra_at_xy_0": corner, "dec_at_xy_0": corner,
                   "transform_pix2angle": np.eye(2) * scale}
    kwargs_psf = {"psf_type": "PIXEL", "kernel_point_source": kernel}
    data_joint = {"multi_band_list": [[kwargs_data, kwargs_psf, {"supersampling_factor": 2}]],
                  "multi_band_type": "single-band"}
    model = {"lens_model_list": ["SIE", "SHEAR"], "source_light_model_list": ["SERSIC_ELLIPSE"]}
    half = 0.5 * size * scale
    guess = einstein_radius_guess(image, scale, sky)
    lens = [[{"theta_E": guess, "e1": 0.0, "e2": 0.0, "center_x": 0.0, "center_y": 0.0},
             {"gamma1": 0.0, "gamma2": 0.0}],
            [{"theta_E": 0.15 * guess, "e1": 0.1, "e2": 0.1, "center_x": 0.05, "center_y": 0.05},
             {"gamma1": 0.03, "gamma2": 0.03}],
            [{}, {"ra_0": 0.0, "dec_0": 0.0}],
            [{"theta_E": 0.6 * guess, "e1": -0.5, "e2": -0.5, "center_x": -0.4, "center_y": -0.4},
             {"gamma1": -0.15, "gamma2": -0.15}],
            [{"theta_E": 1.6 * guess, "e1": 0.5, "e2": 0.5, "center_x": 0.4, "center_y": 0.4},
             {"gamma1": 0.15, "gamma2": 0.15}]]
    # sources are small galaxies behind the inner part of the lens: what a modeller's priors say
    reach = min(1.2 * guess, half)
    source = [[{"R_sersic": 0.2, "n_sersic": 1.5, "e1": 0.0, "e2": 0.0, "center_x": 0.0, "center_y": 0.0}],
              [{"R_sersic": 0.1, "n_sersic": 0.5, "e1": 0.2, "e2": 0.2, "center_x": 0.2, "center_y": 0.2}],
              [{}],
              [{"R_sersic": 0.03, "n_sersic": 0.3, "e1": -0.6, "e2": -0.6, "center_x": -reach, "center_y": -reach}],
              [{"R_sersic": 0.8, "n_sersic": 4.0, "e1": 0.6, "e2": 0.6, "center_x": reach, "center_y": reach}]]
    params = {"lens_model": lens, "source_model": source}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # lenstronomy prints its progress
        warnings.simplefilter("ignore")
        fitting = FittingSequence(data_joint, model, {}, {"check_bounds": True}, params, verbose=False)
        # as modellers do: a round lens first (theta_E, centre and source), then everything free
        shape = [[0, ["e1", "e2"]], [1, ["gamma1", "gamma2"]]]
        chains = fitting.fit_sequence([
            ["update_settings", {"lens_add_fixed": shape}],
            ["PSO", {**pso, "n_iterations": max(10, pso["n_iterations"] // 2)}],
            ["update_settings", {"lens_remove_fixed": shape}],
            ["PSO", dict(pso)],
            ["MCMC", {**mcmc, "progress": False}]])
    best = fitting.best_fit()["kwargs_lens"]
    values = {"theta_e_arcsec": best[0]["theta_E"], "e1": best[0]["e1"], "e2": best[0]["e2"],
              "lens_x": best[0]["center_x"], "lens_y": best[0]["center_y"], "gamma1": best[1]["gamma1"],
              "gamma2": best[1]["gamma2"]}
    _, samples, names, _ = chains[-1]
    columns = {"theta_E_lens0": "theta_e_arcsec", "e1_lens0": "e1", "e2_lens0": "e2", "center_x_lens0": "lens_x",
               "center_y_lens0": "lens_y", "gamma1_lens1": "gamma1", "gamma2_lens1": "gamma2"}
    out = dict(values)
    for k, name in enumerate(names):
        if name in columns:
            lo, hi = np.percentile(samples[:, k], [16, 84])
            out[f"{columns[name]}_lo"], out[f"{columns[name]}_hi"] = float(lo), float(hi)
    out["log_likelihood"] = float(fitting.best_fit_likelihood())
    out["seconds"] = time.perf_counter() - start
    return out


def fit_lenses(images, pixel_scale_arcsec: float, sky_noise, electrons_per_nmgy: float, psf_fwhm_arcsec,
               psf_beta, pso: dict | None = None, mcmc: dict | None = None, workers: int | None = None,
               progress: Callable[[int], None] | None = None) -> dict:
    """Fit every (N, H, W) or (N, H, W, 1) lens image with lenstronomy; returns arrays per parameter.

    Parameters
    ----------
    images : ndarray
        Images in nanomaggies per pixel, lens light already absent.
    pixel_scale_arcsec : float
        Pixel scale (arcsec per pixel).
    sky_noise : float or ndarray
        Per-image sky noise sigma (nanomaggies per pixel).
    electrons_per_nmgy : float
        Gain of the Poisson noise (photo-electrons per nanomaggy).
    psf_fwhm_arcsec, psf_beta : ndarray
        Each image's PSF: FWHM (arcsec) and Moffat index (0: Gaussian).
    pso, mcmc : dict, optional
        Settings of lenstronomy's PSO and MCMC stages (``PSO`` and ``MCMC`` by default).

    Returns
    -------
    dict
        ``theta_e_arcsec``, ``e1``, ``e2``, ``lens_x``, ``lens_y``, ``gamma1``, ``gamma2`` (N,) with
        ``_lo``/``_hi`` 68% intervals from the MCMC, ``seconds`` each fit took in its process, and
        ``seconds_per_object``: the wall time of all the fits over their number, with every worker busy (the
        machine's time per lens, as the network's is measured).
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    n = len(images)
    sky = np.broadcast_to(np.asarray(sky_noise, float), (n,))
    fwhm = np.broadcast_to(np.asarray(psf_fwhm_arcsec, float).reshape(n, -1)[:, 0], (n,))
    beta = np.broadcast_to(np.asarray(psf_beta, float), (n,))
    jobs = [(images[i], pixel_scale_arcsec, sky[i], electrons_per_nmgy, fwhm[i], beta[i], pso or PSO, mcmc or MCMC,
             i) for i in range(n)]
    results = []
    start = time.perf_counter()
    for result in map_in_processes(_fit_one, jobs, workers):
        results.append(result)
        if progress:
            progress(1)
    out = {key: np.array([r.get(key, np.nan) for r in results]) for key in results[0]}
    out["seconds_per_object"] = (time.perf_counter() - start) / n
    return out
