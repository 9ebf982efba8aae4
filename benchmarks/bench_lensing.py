"""Strong lensing: lens images simulated per second and lenses modelled per second, side by side.

    .venv/bin/python benchmarks/bench_lensing.py            # a few minutes on an idle 2-core machine
    .venv/bin/python benchmarks/bench_lensing.py --quick    # a smoke test of the script

1. Lens images (KiDS u, g, r, i, 64x64): a naive lenstronomy loop, as a first script would write
   it (an ``ImageModel`` with the band's PSF built for every image and band, each band rendered
   and convolved by lenstronomy), against deepsky's generator
   (:func:`deepsky.simulate.lensing.make_lenses`: one ``ImageModel`` per worker reused, the
   lensed source ray-traced once per system and convolved per band) on one process and on every
   core. The same systems (lenses only, no neighbours) in both.
2. Lenses modelled (HST-like F814W, 96x96): the lens-parameters network as the task builds it
   (the noise-scaled asinh stretch, grouped AlexNet, a Gaussian head; untrained: speed does not
   depend on training) against lenstronomy's FittingSequence (PSO twice, then MCMC) on the same
   images.

Ratios are measured side by side in one run; absolute times drift on a shared machine. The
exit code is 0 unless the script crashes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import best_of  # noqa: E402


def naive_images(params, survey, size, supersampling):
    """The lens images drawn one at a time with lenstronomy's own ImageModel and PSF convolution per band."""
    import numpy as np
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    from deepsky.simulate.lensing import COLOURS, _lens_light_kwargs, _source_kwargs, lens_kwargs, psf_kernel
    from deepsky.simulate.surveys import mag_to_nmgy

    scale = survey.pixel_scale_arcsec
    corner = -(size - 1) / 2 * scale
    out = np.zeros((len(params["kind"]), size, size, len(survey.bands)), np.float32)
    for i in range(len(params["kind"])):
        for b, band in enumerate(survey.bands):
            data = ImageData(image_data=np.zeros((size, size)), transform_pix2angle=np.eye(2) * scale,
                             ra_at_xy_0=corner, dec_at_xy_0=corner)
            kernel = psf_kernel(params["psf_fwhm_arcsec"][i][b], params["psf_beta"][i], scale, size)
            source_model = LightModel(["SERSIC_ELLIPSE"] + ["GAUSSIAN"] * 6)
            light_model = LightModel(["SERSIC_ELLIPSE"])
            model = ImageModel(data, PSF(psf_type="PIXEL", kernel_point_source=kernel), LensModel(["SIE", "SHEAR"]),
                               source_model, light_model, kwargs_numerics={"supersampling_factor": supersampling})
            source = _source_kwargs(params, i, np.random.default_rng(int(params["object_seed"][i])), source_model)
            light = _lens_light_kwargs(params, i, light_model)
            f_source = float(mag_to_nmgy(params["source_mag"][i] + COLOURS["source"].get(band, 0.0)))
            f_lens = float(mag_to_nmgy(params["lens_mag"][i] + COLOURS["lens"].get(band, 0.0)))
            source = [{**k, "amp": k["amp"] * f_source} for k in source]
            light = [{**k, "amp": k["amp"] * f_lens} for k in light]
            out[i, :, :, b] = model.image(lens_kwargs(params, i), source, light)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that the script runs")
    args = parser.parse_args(argv)
    quick = args.quick
    import numpy as np

    from deepsky.config import keep_freed_memory

    keep_freed_memory()  # as deepsky's command line runs, for both sides of each comparison

    from deepsky.simulate.lensing import draw_parameters, make_lenses, population_for
    from deepsky.simulate.surveys import get_survey

    cores = os.cpu_count() or 1
    kids = get_survey("kids")
    pop = population_for(kids)
    n = 16 if quick else 256
    params = draw_parameters(n, 3, kids, lens_fraction=1.0, neighbours=False)
    make_lenses(8, seed=0, survey="kids", lens_fraction=1.0, neighbours=False, workers=1)  # models built, numba warm
    naive = best_of(lambda: naive_images(params, kids, pop.cutout_pixels, pop.supersampling), 1)
    one = best_of(lambda: make_lenses(n, seed=3, survey="kids", lens_fraction=1.0, neighbours=False, workers=1),
                  1 if quick else 2)
    many = best_of(lambda: make_lenses(n, seed=3, survey="kids", lens_fraction=1.0, neighbours=False,
                                       workers=cores), 1 if quick else 2)
    print(f"KiDS lens images (4 bands, 64x64) simulated: naive lenstronomy loop {n / naive:,.0f}/s, deepsky "
          f"{n / one:,.0f}/s on 1 process ({naive / one:.1f}x), {n / many:,.0f}/s on {cores} ({naive / many:.1f}x)")

    from deepsky.data.store import Dataset
    from deepsky.fitting.lens_model import fit_lenses
    from deepsky.predict import predict_array
    from deepsky.tasks.lens_parameters import LensParameters

    hst = get_survey("hst-acs")
    fits = 2 if quick else 6
    lenses = make_lenses(max(fits, 64), seed=4, survey="hst-acs", lens_fraction=1.0, lens_light=False, clumpy=False,
                         neighbours=False)
    images = np.ascontiguousarray(lenses.images[..., 1:])
    network = LensParameters().build_model("alexnet", Dataset(inputs=images, labels=None))
    batch = np.repeat(images, 2048 // len(images) if not quick else 1, axis=0)
    predict_array(network, batch[:256])  # kernels chosen, caches warm
    # both times are wall time over lenses with the whole machine busy: the network on every core, the fit in one
    # process per core
    seconds_network = best_of(lambda: predict_array(network, batch), 2) / len(batch)
    o = lenses.objects
    start = time.perf_counter()
    fit = fit_lenses(images[:fits], hst.pixel_scale_arcsec, hst.sky_noise_nmgy[1] * o["noise_scale"][:fits],
                     float(hst.electrons_per_nmgy[1]), o["psf_fwhm_arcsec"][:fits, 1], o["psf_beta"][:fits],
                     workers=cores)
    seconds_fit = (time.perf_counter() - start) / fits
    print(f"HST-like lenses modelled: network {1 / seconds_network:,.0f}/s on {cores} cores "
          f"({seconds_network * 1e6:.0f} microseconds each), lenstronomy's fit {1 / seconds_fit:.2f}/s on {cores} "
          f"processes ({float(np.mean(fit['seconds'])):.1f} s each in its process): "
          f"{seconds_fit / seconds_network:,.0f}x per lens")

if __name__ == "__main__":
    main()
