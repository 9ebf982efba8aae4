"""Fit the Galaxy Zoo colour rendering of simulated galaxies to the real pictures' statistics.

Measurement, not a test: prints the fitted ``ColourRendering`` and a table of
real against rendered statistics (``deepsky.simulate.colour_images.image_statistics``).
Real statistics come from the training part (80%) of a Galaxy Zoo folder, labels
unused; simulated galaxies are ``make_morphology`` SDSS galaxies drawn on
128-pixel stamps (as ``deepsky experiment sim-to-real`` draws them).

    .venv/bin/python benchmarks/calibrate_colour_images.py [--data FOLDER] [--n 800] [--check 4000]

Field stars and neighbours (``stars_per_arcmin2``, ``neighbours_per_arcmin2``) are not
fitted here: they are set by hand to the number of other sources detected 8 sigma above
the sky (``field_sources``, in the table), and since more of them enlarge the central
source now and then, the sizes are refitted after each change. The photometric
constants (band scales, stretch, Q, sky pedestal) are fitted by Nelder-Mead on sky,
sky noise, centre brightness and colour with the sizes fixed; the size constants
(median Petrosian radius in Galaxy Zoo pixels, its scatter) by proportional steps on
the median half-light radius for a few scatters, keeping the one that best matches
the 10th/50th/90th percentiles, with the photometry fixed; twice round. ``--check`` renders that many fresh galaxies with the result.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def real_training_images(folder, seed=0):
    from deepsky import tasks

    task = tasks.get("galaxy-morphology")
    train, _ = task.training_data(folder, None, seed)
    return train.images


def main():
    from scipy.optimize import minimize

    from deepsky import paths
    from deepsky.simulate import colour_images as ci
    from deepsky.simulate.morphology import make_morphology

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=paths.shared_data_dir("galaxyzoo1_sdss"))
    parser.add_argument("--n", type=int, default=800, help="simulated galaxies to fit on")
    parser.add_argument("--photometry-n", type=int, default=256, help="of them, fitted for the photometry")
    parser.add_argument("--size-n", type=int, default=400, help="of them, rendered for the sizes")
    parser.add_argument("--check", type=int, default=4000, help="fresh galaxies to check the fit on")
    args = parser.parse_args()
    start = time.perf_counter()

    real = real_training_images(args.data)
    target = ci.image_statistics(real)
    print(f"real: {len(real)} training images: {target}")
    sims = make_morphology(args.n, seed=101, cutout_pixels=128)
    offsets, psf = sims.objects["offset_pixels"], sims.objects["psf_fwhm_arcsec"]
    radius = ci.petrosian_radius(sims.images, offsets)
    rendering = ci.GALAXY_ZOO_SDSS

    def photometric_loss(values, base, grid, size_rng):
        sg, sr, stretch, q, k0, k1, k2 = np.exp(values[:4]).tolist() + list(values[4:])
        trial = replace(base, band_scales=(sg, sr, 1.0), stretch_nmgy=stretch, q=q, sky_level=(k0, k1, k2))
        out = np.concatenate([ci._finish(part, trial) for part in grid])
        stats = _fast_statistics(out)
        loss = 0.0
        for key in ("sky", "noise", "centre", "colour"):
            loss += float(np.sum((np.log(np.maximum(stats[key], 1e-4)) - np.log(target[key])) ** 2))
        return loss

    for round_ in range(2):
        # photometry at fixed sizes: resample once, stretch many times
        k = args.photometry_n
        grid = _resampled(sims.images[:k], radius[:k], offsets[:k], psf[:k], rendering)
        x0 = np.array([*np.log([rendering.band_scales[0], rendering.band_scales[1], rendering.stretch_nmgy,
                                rendering.q]), *rendering.sky_level])
        fit = minimize(photometric_loss, x0, args=(rendering, grid, None), method="Nelder-Mead",
                       options={"maxiter": 400, "xatol": 1e-3, "fatol": 1e-6})
        sg, sr, stretch, q = np.exp(fit.x[:4])
        rendering = replace(rendering, band_scales=(round(float(sg), 4), round(float(sr), 4), 1.0),
                            stretch_nmgy=round(float(stretch), 5), q=round(float(q), 4),
                            sky_level=tuple(round(float(v), 5) for v in fit.x[4:]))
        print(f"round {round_ + 1}: photometry loss {fit.fun:.5f}: {rendering}")
        # sizes at fixed photometry: the half-light radius in output pixels grows in proportion to the
        # Petrosian radius on the Galaxy Zoo grid, so a few proportional steps find the median
        best = None
        for scatter in (0.0, 0.05, 0.1, 0.15):
            trial = replace(rendering, petrosian_scatter_dex=scatter)
            for _ in range(3):
                r50 = np.nanpercentile(ci.central_source_size(ci.render_colour_images(
                    sims.images[:args.size_n], offsets_pixels=offsets[:args.size_n], psf_fwhm_arcsec=psf[:args.size_n],
                    rendering=trial)), [10, 50, 90])
                step = trial.petrosian_radius_gz_pixels * target["half_light_radius"][1] / r50[1]
                trial = replace(trial, petrosian_radius_gz_pixels=round(float(step), 2))
            loss = float(np.sum((np.log(r50) - np.log(target["half_light_radius"])) ** 2))
            print(f"  scatter {scatter}: R_P {trial.petrosian_radius_gz_pixels} GZ pixels, r50 {r50.round(2)}")
            if best is None or loss < best[0]:
                best = (loss, trial)
        rendering = best[1]
        print(f"round {round_ + 1}: size loss {best[0]:.5f}: {rendering}")

    check = make_morphology(args.check, seed=202, cutout_pixels=128)
    rendered = ci.render_dataset(check, rendering=rendering).images
    got = ci.image_statistics(rendered)
    print(f"\n{'statistic':<20} {'real':<32} rendered ({args.check} fresh galaxies)")
    for key in ("sky", "noise", "centre", "colour", "half_light_radius", "field_sources"):
        print(f"{key:<20} {' '.join(f'{v:.3f}' for v in target[key]):<32} {' '.join(f'{v:.3f}' for v in got[key])}")
    labels = check.labels
    for k, name in enumerate(check.meta["classes"]):
        r50 = ci.central_source_size(rendered[labels == k])
        print(f"  {name:<12} half-light radius 10/50/90%: {np.nanpercentile(r50, [10, 50, 90]).round(1)}")
    print(f"\nfitted: {rendering}\n({time.perf_counter() - start:.0f} s)")


def _resampled(images, radius, offsets, psf, rendering):
    """The calibration galaxies on the Galaxy Zoo grid with their field, in nanomaggies (before the stretch)."""
    from deepsky.simulate import colour_images as ci

    step = radius / rendering.petrosian_radius_gz_pixels
    rng = np.random.default_rng(0)
    out = []
    for s in range(0, len(images), 128):
        part = slice(s, s + 128)
        grid = ci._resample_batch(images[part], step[part], offsets[part], 0.396, rendering, rng)
        ci._add_field(grid, step[part] * 0.396, psf[part], rendering, rng)
        out.append(grid)
    return out


def _fast_statistics(images):
    from deepsky.simulate import colour_images as ci

    sky, noise = ci._border_stats(images)
    side = images.shape[1]
    c = slice(side // 2 - 4, side // 2 + 4)
    bright = images[images.sum(axis=-1) > 0.6]
    return {"sky": np.median(sky, 0), "noise": np.median(noise, 0),
            "centre": np.median(images[:, c, c].mean(axis=(1, 2)), 0),
            "colour": bright.mean(0) / bright.sum(-1).mean()}


if __name__ == "__main__":
    main()
