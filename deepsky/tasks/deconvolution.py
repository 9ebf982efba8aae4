"""Galaxy images restored beyond the deconvolution limit by a conditional GAN (Schawinski et al. 2017, MNRAS 467, L110).

Galaxy images are made worse on purpose (a Gaussian PSF, more sky noise:
:mod:`deepsky.simulate.degrade`) and a pix2pix generator learns to give the
original back, trained with an L1 loss and a 70x70 PatchGAN critic (L1
weight 100, Adam 2e-4 with beta1 0.5, as the paper). The images come from
the GalSim galaxy simulator, so the truth is known exactly: the noiseless
galaxy through the survey's PSF. Richardson-Lucy deconvolution with the
known degrading PSF is the classical baseline, with a Wiener filter and the
degraded input itself scored beside it: PSNR and SSIM per method. Each
classical method's settings (iterations and sky level, the filter's balance)
are chosen on one half of the held-out images and scored on the other, and
the other way round: never on the images they are scored on. The network's
restoration is the mean of its restorations of the 8 turns and flips of
each image.

Real images: ``--data FOLDER`` with a Galaxy Zoo folder (``labels.csv`` and
``images/``, as ``../shared/data/galaxyzoo1_sdss``) trains on SDSS colour
JPEGs degraded the same way, each its own truth, as the paper does with
SDSS images; a seeded stratified 20% is held out for ``evaluate``, and
``predict`` then takes JPEG or PNG files.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError
from deepsky.objectives import ImageToImage, image_metrics
from deepsky.tasks.base import Headline, HeldOutFolder, ImageTask
from deepsky.tasks.registry import register_task

RICHARDSON_LUCY_ITERATIONS = (20, 40, 80)
RICHARDSON_LUCY_BACKGROUNDS = (3.0, 10.0, 30.0)  # the sky level put back, in units of the degraded images' sky rms
WIENER_BALANCES = (0.01, 0.03, 0.1, 0.3, 1.0)
RL_CHUNK = 64  # images deconvolved at once
CALIBRATION_IMAGES = 16  # of the other half of the held-out images, at most, to choose a method's settings on
VIEWS_CHUNK = 512  # images whose 8 restorations are held at once
# Galaxy Zoo folders: the centre half of each 423-pixel JPEG averaged down to 64 pixels (as
# galaxy-morphology reads them), degraded by a Gaussian of 3 of those pixels (the crops have no one
# pixel scale: each JPEG is cut to its galaxy's size) and noise up to 1.5x the JPEGs' own
FOLDER_IMAGE_PIXELS = 64
FOLDER_CROP_FRACTION = 0.5
FOLDER_DEGRADATION = {"psf_fwhm_pixels": 3.0, "noise_factor": 1.5}


@register_task
class Deconvolution(HeldOutFolder, ImageTask):
    name = "deconvolution"
    description = ("Schawinski et al. (2017): a pix2pix conditional GAN restores galaxy images degraded by a "
                   "Gaussian PSF and extra noise, against Richardson-Lucy and Wiener deconvolution")
    classes = ()
    objective = ImageToImage(loss="l1", adversarial=0.01, critic="patchgan-70")  # pix2pix: L1 weight 100
    default_model = "pix2pix-unet"
    model_defaults = {"pix2pix-unet": {"base_filters": 32}}  # a quarter of pix2pix's 64-filter arithmetic
    default_train_size = 8000
    default_test_size = 500
    default_epochs = 20
    default_batch_size = 16
    default_learning_rate = 2e-4
    default_beta1 = 0.5
    default_views = 8
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

    def read_folder(self, folder, progress=None, select=None):
        """A Galaxy Zoo folder's JPEGs (only ``select``'s rows decoded) beside their degraded copies.

        The added noise is seeded by the objects read, so the training and
        the held-out part get independent noise, the same at every reading.
        """
        import zlib

        from deepsky.data.galaxyzoo import load_galaxy_zoo
        from deepsky.simulate.degrade import Degradation, degrade_originals
        from deepsky.tasks.base import border_noise

        data = load_galaxy_zoo(folder, size=FOLDER_IMAGE_PIXELS, crop_fraction=FOLDER_CROP_FRACTION,
                               classes="merged", progress=progress, select=select)
        seed = zlib.crc32(" ".join(map(str, data.objects["objid"])).encode())
        objects = {**data.objects, "morphology_label": data.labels}
        meta = {key: data.meta.get(key) for key in ("bands", "units", "channels", "pixel_scale_arcsec", "pixel_scale_note",
                                                     "survey", "source", "crop_fraction", "dropped")}
        meta["cutout_pixels"] = list(data.images.shape[1:3])
        return degrade_originals(data.images, border_noise(data.images), Degradation(**FOLDER_DEGRADATION), seed,
                                 objects=objects, meta=meta)

    def contract(self, data):
        out = super().contract(data)
        if data.meta.get("crop_fraction") is not None:
            out["crop_fraction"] = data.meta["crop_fraction"]
        return out

    def read_inputs(self, inputs, contract, catalog=None, units="auto"):
        """FITS images (one galaxy per file, headers kept), pictures for a model trained on them, or a stack."""
        from deepsky.data.readers import FITS_SUFFIXES, STACK_SUFFIXES, suffix

        stack = len(inputs) == 1 and suffix(inputs[0]) in STACK_SUFFIXES
        if catalog is None and not stack and contract.get("crop_fraction") is not None:
            from deepsky.data.image_folders import read_images

            images, ids, info = read_images(inputs, contract["cutout_pixels"][0], contract["bands"],
                                            crop_fraction=contract["crop_fraction"])
            return images, ids, None, info
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

    def predict_outputs(self, model, inputs, views=None, batch_size=64, progress=None):
        """Restored images, averaged over ``views`` orientations (1, 2, 4 or 8) of each input, each turned back.

        The generator is not exactly equivariant: its restorations of a
        turned galaxy differ by more than the noise, and their mean is
        closer to the truth than any one of them (measured on held-out
        galaxies with a model trained on 3,000 for 8 epochs: +0.6 dB of
        PSNR and SSIM 0.987 -> 0.989 for the 8 turns, at 8x the time).
        """
        from deepsky.data.augment import unturn, view_choices
        from deepsky.predict import predict_array

        choices = view_choices(views or self.default_views)
        restored = np.empty(np.shape(inputs), np.float32)
        for start in range(0, len(inputs), VIEWS_CHUNK):  # all views of a few images held at once, not of all
            outputs = predict_array(model, inputs[start : start + VIEWS_CHUNK], batch_size=batch_size,
                                    progress=progress, turns=choices, float32_head=self.objective.float32_head)
            total = np.zeros(outputs.shape[1:], np.float64)
            for choice, out in zip(choices, outputs):
                total += unturn(out, choice)
            restored[start : start + len(total)] = total / len(choices)
        return restored

    def build_model(self, model_name, train, **model_options):
        """The generator between a rescaling to sky-noise units and back, so it sees numbers of order one.

        The generator is pix2pix's (not residual: its output is a whole new
        image, so the input's noise is not passed through), 32 filters wide
        in its first block rather than 64 (a quarter of the arithmetic).
        """
        import keras

        from deepsky.tasks.base import border_noise

        shape = tuple(train.inputs.shape[1:])
        core = self.create_model(model_name, input_shape=shape, num_classes=None, **model_options)
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

    def baseline_predictions(self, test, progress=None):
        """Richardson-Lucy with the known PSF, its iterations and sky level chosen on the other half of the images."""
        if "degradation" not in test.meta:
            return None  # images degraded elsewhere: the PSF is not known
        kernel, rms = self._kernel(test), self._degraded_rms(test)

        def restore(images, setting):
            return richardson_lucy(images, kernel, setting[0], setting[1] * rms)

        settings = [(k, b) for k in RICHARDSON_LUCY_ITERATIONS for b in RICHARDSON_LUCY_BACKGROUNDS]
        restored, chosen = cross_calibrated(restore, settings, test.inputs, test.labels, progress=progress)
        self._richardson_lucy = {"iterations": [k for k, _ in chosen], "background_sky_rms": [b for _, b in chosen]}
        return restored

    @staticmethod
    def _degraded_rms(data):
        return np.asarray(data.meta["sky_noise"]) * data.meta["degradation"]["noise_factor"]

    def metrics(self, test, predicted):
        """MSE, MAE, median PSNR (dB) and median SSIM against the noiseless truth."""
        return image_metrics(predicted, np.asarray(test.labels))

    def extra_metrics(self, model, test, metrics, stage):
        """The Wiener filter and the degraded input scored the same way; images restored per second by each method."""
        out = {"degraded": image_metrics(test.inputs, test.labels)}
        if "degradation" not in test.meta:
            return out
        stage("restoring the held-out images with a Wiener filter")
        kernel = self._kernel(test)
        restored, chosen = cross_calibrated(lambda images, balance: wiener(images, kernel, balance), WIENER_BALANCES,
                                            test.inputs, test.labels)
        out["wiener"] = {"balance": chosen, **image_metrics(restored, test.labels)}
        settings = getattr(self, "_richardson_lucy", None)
        if settings is not None:
            out["richardson_lucy"] = settings
            sample = test.inputs[: min(len(test), 128)]
            start = time.perf_counter()
            richardson_lucy(sample, kernel, settings["iterations"][0],
                            settings["background_sky_rms"][0] * self._degraded_rms(test))
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


def cross_calibrated(restore, settings, inputs, truth, progress=None):
    """Restore each half of ``inputs`` with the setting that restores the other half best; (restored, settings chosen).

    ``restore(images, setting)`` is a classical method; its setting is the
    one of ``settings`` with the highest median PSNR on up to
    ``CALIBRATION_IMAGES`` of the other half's images against ``truth``, so
    no image is scored by a setting chosen on it. One image: the first
    setting.
    """
    halves = [np.arange(0, len(inputs), 2), np.arange(1, len(inputs), 2)]
    restored = np.empty(np.shape(inputs), np.float32)
    chosen = []
    for part, other in (halves, halves[::-1]):
        if not len(part):
            continue
        sample = other[:CALIBRATION_IMAGES]
        if len(sample):
            scores = [image_metrics(restore(inputs[sample], setting), truth[sample])["psnr_db"] for setting in settings]
            setting = settings[int(np.argmax(scores))]
        else:
            setting = settings[0]
        restored[part] = restore(inputs[part], setting)
        chosen.append(setting)
        if progress is not None:
            progress(len(part))
    return restored, chosen


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
