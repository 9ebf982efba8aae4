"""Galaxy images restored beyond the deconvolution limit by a conditional GAN (Schawinski et al. 2017, MNRAS 467, L110).

Galaxy images are made worse on purpose (a Gaussian PSF, more sky noise:
:mod:`deepsky.simulate.degrade`) and a pix2pix generator learns to give the
original back, trained with an L1 loss and a 70x70 PatchGAN critic (L1
weight 100, Adam 2e-4 with beta1 0.5, as the paper). The images come from
the GalSim galaxy simulator, so the truth is known exactly: the noiseless
galaxy through the survey's PSF. Richardson-Lucy deconvolution with the
known degrading PSF is the classical baseline (its iteration count chosen
on a calibration simulation of its own), with a Wiener filter and the
degraded input itself scored beside it: PSNR and SSIM per method.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError
from deepsky.objectives import ImageToImage, image_metrics
from deepsky.tasks.base import Headline, ImageTask
from deepsky.tasks.registry import register_task

RICHARDSON_LUCY_ITERATIONS = (20, 40, 80)
RICHARDSON_LUCY_BACKGROUNDS = (3.0, 10.0, 30.0)  # the sky level put back, in units of the degraded images' sky rms
WIENER_BALANCES = (0.01, 0.03, 0.1, 0.3, 1.0)
RL_CHUNK = 64  # images deconvolved at once
CALIBRATION_IMAGES = (8, 32)  # a quarter of the test set's size, within these bounds
CALIBRATION_SEED = 777_001  # neither a training nor a test seed of any run


@register_task
class Deconvolution(ImageTask):
    name = "deconvolution"
    description = ("Schawinski et al. (2017): a pix2pix conditional GAN restores galaxy images degraded by a "
                   "Gaussian PSF and extra noise, against Richardson-Lucy and Wiener deconvolution")
    classes = ()
    objective = ImageToImage(loss="l1", adversarial=0.01, critic="patchgan-70")  # pix2pix: L1 weight 100
    default_model = "pix2pix-unet"
    default_train_size = 8000
    default_test_size = 500
    default_epochs = 15
    default_batch_size = 16
    default_learning_rate = 2e-4
    default_beta1 = 0.5
    baseline_name = "Richardson-Lucy (known PSF, sky put back)"
    paper = {
        "citation": "Schawinski, Zhang, Zhang, Fowler & Santhanam 2017, MNRAS 467, L110 (arXiv:1702.00403)",
        "data": "4,550 SDSS g,r,i galaxy images at z ~ 0.02-0.1, degraded by a Gaussian PSF (worst seeing up to "
                "twice SDSS's) and noise up to 10x the original rms",
        "note": "The GAN recovers features that deconvolution cannot (spiral arms, dust lanes, star-forming "
                "knots); the paper shows it beats a blind deconvolution on PSNR and in the gallery.",
    }
    headline = (
        Headline("psnr_db", "PSNR of the GAN (dB)"),
        Headline("baseline.psnr_db", "PSNR of Richardson-Lucy (dB)"),
        Headline("ssim", "SSIM of the GAN"),
        Headline("baseline.ssim", "SSIM of Richardson-Lucy"),
        Headline("wiener.psnr_db", "PSNR of the Wiener filter (dB)"),
        Headline("degraded.psnr_db", "PSNR of the degraded input (dB)"),
        Headline("n", "Test images", digits=0),
    )

    def simulate(self, n, seed, progress=None):
        from deepsky.simulate.degrade import make_deconvolution

        return make_deconvolution(n, seed=seed, survey=self.survey, progress=progress)

    def read_inputs(self, inputs, contract, catalog=None, units="auto"):
        """FITS images, one galaxy per file (2-D, or a cube of bands), their headers kept; else a stack or FITS + catalogue."""
        from deepsky.data.readers import FITS_SUFFIXES, suffix

        if catalog is not None or not all(Path(p).is_dir() or suffix(p) in FITS_SUFFIXES for p in inputs):
            return super().read_inputs(inputs, contract, catalog, units)
        from deepsky.data.image_folders import expand_paths, load_image

        height, width = contract["cutout_pixels"]
        bands = len(contract["bands"])
        files = expand_paths(inputs)
        images = np.empty((len(files), height, width, bands), np.float32)
        headers = []
        for i, path in enumerate(files):
            image = load_image(path, bands=bands)
            if image.shape[:2] != (height, width):
                raise DeepskyError(f"{path}: image is {image.shape[1]}x{image.shape[0]} pixels; the model restores "
                                   f"{width}x{height}")
            images[i] = image
            headers.append(_first_image_header(path))
        return images, [p.name for p in files], None, {"units": contract.get("units"),
                                                       "columns": {"header": np.array(headers)}}

    @staticmethod
    def turn_targets(targets, choice):
        """The true images turn and flip with the degraded ones."""
        from deepsky.data.augment import dihedral

        return dihedral(targets, None, choice)

    @property
    def num_outputs(self):
        return None  # as many bands out as in

    def build_model(self, model_name, train, **model_options):
        """The generator between a rescaling to sky-noise units and back, so it sees numbers of order one.

        The generator is pix2pix's (not residual: its output is a whole new
        image, so the input's noise is not passed through), 32 filters wide
        in its first block rather than 64 (a quarter of the arithmetic).
        """
        import keras

        from deepsky import models
        from deepsky.tasks.base import border_noise

        shape = tuple(train.inputs.shape[1:])
        if model_name == "pix2pix-unet":
            model_options = {"base_filters": 32, **model_options}
        core = models.create(model_name, input_shape=shape, num_classes=None, **model_options)
        sky = train.meta.get("sky_noise")
        unit = float(np.mean(sky if sky is not None else border_noise(train.inputs)))
        inputs = keras.Input(shape, name="degraded")
        x = keras.layers.Rescaling(1.0 / unit, name="to_sky_noise_units")(inputs)
        x = core(x)
        outputs = keras.layers.Rescaling(unit, dtype="float32", name="to_image_units")(x)
        return keras.Model(inputs, outputs, name=core.name)

    # -- classical restorations ----------------------------------------------------
    def _kernel(self, data):
        from deepsky.simulate.degrade import Degradation, gaussian_kernel

        degradation = Degradation(**data.meta["degradation"])
        return gaussian_kernel(degradation.sigma_pixels(data.meta["pixel_scale_arcsec"]))

    def _calibration(self, like):
        """A small simulation of its own, like the test set, to choose the classical methods' settings on."""
        from deepsky.simulate.degrade import Degradation, make_deconvolution

        n = int(np.clip(len(like) // 4, *CALIBRATION_IMAGES))
        key = (n, self.survey, tuple(sorted(like.meta["degradation"].items())))
        cached = getattr(self, "_calibration_set", None)
        if cached is None or cached[0] != key:  # the baseline and the Wiener filter calibrate on one simulation
            self._calibration_set = (key, make_deconvolution(n, seed=CALIBRATION_SEED, survey=self.survey,
                                                             degradation=Degradation(**like.meta["degradation"]),
                                                             workers=1))
        return self._calibration_set[1]

    def baseline_predictions(self, test, progress=None):
        """Richardson-Lucy with the known PSF; iterations and sky level those that restore the calibration set best."""
        if "degradation" not in test.meta:
            return None  # images degraded elsewhere: the PSF is not known
        calibration, kernel = self._calibration(test), self._kernel(test)
        rms = np.asarray(test.meta["sky_noise"]) * test.meta["degradation"]["noise_factor"]
        scores = {(k, b): image_metrics(richardson_lucy(calibration.inputs, kernel, k, b * rms),
                                        calibration.labels)["psnr_db"]
                  for k in RICHARDSON_LUCY_ITERATIONS for b in RICHARDSON_LUCY_BACKGROUNDS}
        iterations, level = max(scores, key=scores.get)
        self._richardson_lucy = {"iterations": iterations, "background_sky_rms": level}
        return richardson_lucy(test.inputs, kernel, iterations, level * rms, progress=progress)

    def metrics(self, test, predicted):
        """MSE, MAE, median PSNR (dB) and median SSIM against the noiseless truth."""
        return image_metrics(predicted, np.asarray(test.labels))

    def extra_metrics(self, model, test, metrics, stage):
        """The Wiener filter and the degraded input scored the same way; images restored per second by each method."""
        out = {"degraded": image_metrics(test.inputs, test.labels)}
        if "degradation" not in test.meta:
            return out
        stage("restoring the held-out images with a Wiener filter")
        calibration, kernel = self._calibration(test), self._kernel(test)
        scores = {b: image_metrics(wiener(calibration.inputs, kernel, b), calibration.labels)["psnr_db"]
                  for b in WIENER_BALANCES}
        balance = max(scores, key=scores.get)
        out["wiener"] = {"balance": balance, **image_metrics(wiener(test.inputs, kernel, balance), test.labels)}
        settings = getattr(self, "_richardson_lucy", None)
        if settings is not None:
            out["richardson_lucy"] = settings
            rms = np.asarray(test.meta["sky_noise"]) * test.meta["degradation"]["noise_factor"]
            sample = test.inputs[: min(len(test), 128)]
            start = time.perf_counter()
            richardson_lucy(sample, kernel, settings["iterations"], settings["background_sky_rms"] * rms)
            rl_rate = len(sample) / (time.perf_counter() - start)
            start = time.perf_counter()
            self.predict_outputs(model, sample, batch_size=64)
            out["images_per_second"] = {"network": len(sample) / (time.perf_counter() - start),
                                        "richardson_lucy": rl_rate}
        return out

    def figures(self):
        from deepsky.report.figures import FigureSpec

        return [FigureSpec(
            "restoration_scores", "PSNR and SSIM of every restoration",
            "Median peak signal-to-noise ratio and structural similarity of the held-out images against the "
            "noiseless truth: the degraded input, the Wiener filter, Richardson-Lucy and the GAN. Higher is better "
            "on both.", plot_restoration_scores)]


def _first_image_header(path) -> str:
    """The header of a FITS file's first image HDU, as text (the one :func:`load_image` read)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            if getattr(hdu, "is_image", False) and hdu.data is not None and hdu.data.ndim >= 2:
                header = hdu.header.copy()
                for key in ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND",
                            "PCOUNT", "GCOUNT", "BSCALE", "BZERO"):
                    header.remove(key, ignore_missing=True)
                return header.tostring()
    return ""


def richardson_lucy(images: np.ndarray, kernel: np.ndarray, iterations: int, background, progress=None) -> np.ndarray:
    """Richardson-Lucy deconvolution of sky-subtracted (N, H, W, bands) images with one PSF ``kernel`` (pixels).

    The multiplicative update needs positive data, which sky-subtracted
    images are not: the sky level ``background`` (per band, image units)
    is put back in the model, ``data + b`` is compared with
    ``kernel * u + b``, and the estimate ``u`` of the galaxy alone stays
    positive (as astronomers' Lucy with a background does; scikit-image's
    has no background term and diverges on negative pixels).
    """
    from scipy.signal import fftconvolve

    kernel = np.asarray(kernel, np.float64)[None, None]
    flipped = kernel[..., ::-1, ::-1]
    out = np.empty(np.shape(images), np.float32)
    for start in range(0, len(images), RL_CHUNK):
        x = np.transpose(np.asarray(images[start : start + RL_CHUNK], np.float64), (0, 3, 1, 2))
        sky = np.asarray(background, np.float64).reshape(1, -1, 1, 1) * np.ones((1, x.shape[1], 1, 1))
        data = np.maximum(x + sky, 1e-6 * sky)
        estimate = np.maximum(fftconvolve(x, kernel, mode="same", axes=(2, 3)), 0) + 1e-3 * sky
        for _ in range(iterations):
            model = fftconvolve(estimate, kernel, mode="same", axes=(2, 3)) + sky
            estimate *= fftconvolve(data / model, flipped, mode="same", axes=(2, 3))
        out[start : start + len(x)] = np.transpose(estimate, (0, 2, 3, 1))
        if progress is not None:
            progress(len(x))
    return out


def wiener(images: np.ndarray, kernel: np.ndarray, balance: float) -> np.ndarray:
    """Wiener deconvolution (scikit-image) of each band of (N, H, W, bands) images, in their own units."""
    from skimage.restoration import wiener as deconvolve

    out = np.empty_like(np.asarray(images, np.float32))
    for i, image in enumerate(images):
        for b in range(image.shape[-1]):
            band = image[..., b].astype(np.float64)
            scale = max(float(np.abs(band).max()), 1e-30)  # skimage's regulariser assumes pixels of order one
            out[i, ..., b] = deconvolve(band / scale, kernel, balance, clip=False) * scale
    return out


def plot_restoration_scores(inputs, path) -> bool:
    """Bars of median PSNR and SSIM for the degraded input, Wiener, Richardson-Lucy and the network."""
    from deepsky.report.canvas import figure

    metrics = inputs.metrics
    methods = [("degraded input", metrics.get("degraded")), ("Wiener", metrics.get("wiener")),
               ("Richardson-Lucy", metrics.get("baseline")), ("GAN", metrics)]
    methods = [(name, values) for name, values in methods if values and "psnr_db" in values]
    if len(methods) < 2:
        return False
    with figure(path, (9.0, 3.6)) as fig:
        for axis, (key, label, digits) in zip(fig.subplots(1, 2), (("psnr_db", "median PSNR (dB)", 1),
                                                                     ("ssim", "median SSIM", 3))):
            values = [values.get(key, np.nan) for _, values in methods]
            bars = axis.bar(range(len(methods)), values, color=["grey", "tab:green", "tab:orange", "tab:blue"][
                -len(methods):])
            axis.bar_label(bars, [f"{v:.{digits}f}" for v in values], fontsize=8)
            axis.set_xticks(range(len(methods)), [name for name, _ in methods], fontsize=8)
            axis.set_ylabel(label)
            finite = [v for v in values if np.isfinite(v)]
            if finite:
                low, high = min(finite), max(finite)
                axis.set_ylim(low - 0.3 * (high - low + 1e-9), high + 0.15 * (high - low + 1e-9))
    return True
