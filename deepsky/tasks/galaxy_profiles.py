"""Galaxy structural parameters with uncertainties (Tuccillo et al. 2018), against a GALFIT-style fit.

Simulated HST/CANDELS H-band single-Sersic galaxies
(:func:`deepsky.simulate.profiles.make_profiles`: 64x64 pixels at 0.06
arcsec, the H-band PSF, CANDELS-like sky and source noise). The paper used
31k simulated galaxies, 24k for training; so does the default here (31,000
simulated, 10% of them for validation, 2,000 held out with a seed never
trained on, and 1,500 more held out with H 19-21 for the bright end). The network (:mod:`deepsky.models.sersic_cnn`) predicts for
every galaxy a Gaussian (mean and standard deviation) of each of:

============  ======================================  ==========================
parameter     what the network regresses              column in predictions
============  ======================================  ==========================
magnitude     AB magnitude minus the cutout's own     ``mag``
              (sum of its pixels)
radius        log10 of the half-light semi-major      ``half_light_radius_arcsec``
              axis over the light-weighted mean
              radius of the cutout
Sersic n      log10 n                                 ``sersic_n``
axis ratio    b/a                                     ``axis_ratio``
angle         cos 2PA and sin 2PA (a 180-degree       ``position_angle_deg``
              angle has no jump there)
============  ======================================  ==========================

Why corrections to direct measurements (:mod:`deepsky.layers.references`):
a network regressing the magnitude itself kept an error floor of 0.026 mag at
the bright end (2.6 times the fit's), a few per cent of the 6-magnitude range
it must span; the correction to the cutout's summed magnitude spans 0.1-0.2
mag for bright galaxies. The two measurements also enter the network as
constant channels beside the stretched image (:class:`deepsky.layers.references.SersicInputs`),
so it knows what it corrects; ``decode`` adds them back from the same cutouts.

Each parameter's ``_err`` column is half its 68% interval. Training turns the
cutouts by the 8 rotations and flips of the square, and turns the angle with
them (:meth:`GalaxyProfiles.turn_targets`). The classical baseline, a
PSF-convolved Sersic least-squares fit (:mod:`deepsky.fitting.sersic`), is
run on the same test images with the PSF they were simulated with.
"""

from __future__ import annotations

import numpy as np

from deepsky.data.store import Dataset, concatenate
from deepsky.errors import DeepskyError
from deepsky.metrics import Parameter, parameter_metrics
from deepsky.objectives import GaussianRegression
from deepsky.tasks.base import Headline, ImageTask
from deepsky.tasks.registry import register_task

ANGLE_MAX_AXIS_RATIO = 0.8  # the angle is scored where it means something: b/a below this
# Errors: magnitudes and axis ratios as differences, radius and n relative (predicted / true - 1),
# angles in degrees. An outlier misses by more than its limit.
PARAMETER_SPECS = (
    Parameter("mag", "magnitude", "mag", outlier_limit=0.5),
    Parameter("half_light_radius_arcsec", "half-light radius", "arcsec", error="relative", outlier_limit=0.5,
              log=True),
    Parameter("sersic_n", "Sersic n", "", error="relative", outlier_limit=0.5, log=True),
    Parameter("axis_ratio", "axis ratio", "", outlier_limit=0.2),
    Parameter("position_angle_deg", "position angle", "deg", error="angle", outlier_limit=20.0,
              scored_where=("axis_ratio", ANGLE_MAX_AXIS_RATIO)),
)
PARAMETERS = tuple(p.name for p in PARAMETER_SPECS)
SPECS = {p.name: p for p in PARAMETER_SPECS}
# Network targets: (name, offset, scale); the network regresses (value - offset) / scale, so
# every target is of order one (offsets and scales from the 31k training galaxies). The angle is
# the unit vector (cos 2PA, sin 2PA), unscaled.
TARGET_SCALING = (("mag_minus_reference", -0.08, 0.25), ("log10_radius_over_reference", -0.07, 0.3),
                  ("log10_sersic_n", 0.3, 0.3), ("axis_ratio", 0.65, 0.2), ("cos_2pa", 0.0, 1.0),
                  ("sin_2pa", 0.0, 1.0))
MAGNITUDE_BINS = (19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0)
# the network sees the central 48 of the 64 pixels (the references all of them): 1.8x faster
INPUT_PIXELS = 48
BRIGHT_LIMIT = 21.0  # "the bright end": true magnitude below this
# evaluate's simulated test set adds this many galaxies brighter than BRIGHT_LIMIT per galaxy of
# the standard set: 1,500 to the 2,000, whose own 342 would leave about ±0.1 on a scatter ratio of 1.5
BRIGHT_SAMPLE_FRACTION = 0.75


@register_task
class GalaxyProfiles(ImageTask):
    name = "galaxy-profiles"
    description = ("Sersic magnitude, radius, n, axis ratio and angle with uncertainties from simulated HST "
                   "H-band galaxies (Tuccillo et al. 2018); baseline: PSF-convolved Sersic least squares")
    objective = GaussianRegression(PARAMETER_SPECS)
    classes = ()
    default_model = "sersic-cnn"
    default_survey = "hst-candels"
    default_train_size = 31000
    default_test_size = 2000
    # measured on 2,000 held-out galaxies (bright-end scatter / the fit's, magnitude, radius, n):
    # 20 epochs 2.97 / 3.23 / 2.19 (direct magnitude, no references), 40 epochs 1.28 / 1.57 / 1.80,
    # 80 epochs 1.24 / 1.59 / 1.70 (about 7 minutes on 2 cores)
    default_epochs = 80
    default_batch_size = 128
    default_learning_rate = 1e-3
    augment = True
    # orientations averaged by evaluate and predict (augment.VIEW_CHOICES), measured on 3,000 bright galaxies
    # (n scatter / the fit's): 1.58 for one, 1.48 for two, 1.41 for four; with two, evaluate's 1,842
    # bright galaxies read 1.51. Four cost about 110 microseconds per galaxy on 2 cores (the input
    # layer shared by the turns, ReLUs fused into the convolutions), two cost that before; the bar
    # is 1,000 times faster than the fit's 90-150 ms
    default_views = 4
    validation_fraction = 0.1
    baseline_name = "Sersic least-squares fit (GALFIT-style)"
    default_data_description = "simulating training galaxies"
    headline = (
        Headline("comparison.focus_scatter_ratio.mag", "bright-end scatter / the fit's: magnitude", paper=1.5,
                 digits=2),
        Headline("comparison.focus_scatter_ratio.half_light_radius_arcsec", "bright-end scatter / the fit's: radius",
                 paper=1.5, digits=2),
        Headline("comparison.focus_scatter_ratio.sersic_n", "bright-end scatter / the fit's: Sersic n", paper=1.5,
                 digits=2),
        Headline("comparison.speedup", "speed-up over the fit per galaxy", paper=1000.0, digits=0),
        Headline("parameters.mag.scatter", "magnitude scatter (mag)"),
        Headline("parameters.half_light_radius_arcsec.scatter", "radius scatter (relative)"),
        Headline("parameters.sersic_n.scatter", "Sersic n scatter (relative)"),
        Headline("views", "orientations averaged", digits=0),
        Headline("n", "Test galaxies", digits=0),
    )
    paper = {
        "citation": "Tuccillo et al. 2018, MNRAS 475, 894 (DeepLeGATo); Tuccillo et al. 2016, IAU Symp. 325",
        "data": "31k simulated HST/CANDELS F160W single-Sersic galaxies, 24k for training",
        "note": "The ConvNet is as accurate as GALFIT on simulated galaxies and about 3,000 times faster on a "
                "GPU (50 times on the same CPU). The bar here: scatter within 1.5x of the least-squares fit's "
                "for magnitude, radius and n at the bright end, and at least 1,000 times faster per galaxy.",
    }

    # -- data ----------------------------------------------------------------------
    def simulate(self, n, seed, progress=None, mag_range=None):
        from deepsky.simulate.profiles import make_profiles

        extra = {"mag_range": mag_range} if mag_range is not None else {}
        return make_profiles(n, seed=seed, survey=self.survey, progress=progress, **extra)

    def simulated_test_size(self, config, n=None):
        n = n or self.default_test_size
        return n + _bright_sample_size(n)

    def test_data(self, config, path=None, n=None, progress=None, on_stage=None):
        """A data set from ``path``, or the held-out simulation plus a bright-only sample (``bright_sample``).

        The simulated test set has the training set's magnitude counts, in
        which only about 17% of galaxies are brighter than ``BRIGHT_LIMIT``;
        ``BRIGHT_SAMPLE_FRACTION`` times as many again are simulated with H 19
        to ``BRIGHT_LIMIT`` only (the same magnitude law, another seed), so
        that the bright-end figures are not at the mercy of a few hundred
        galaxies. :func:`profile_metrics` keeps them out of the overall figures.
        """
        test, source, held_out = super().test_data(config, path, n, progress, on_stage)
        if path is not None:
            return test, source, held_out
        extra_n = _bright_sample_size(len(test))
        if not extra_n:
            return test, source, held_out
        seed = self.test_seed(self.test_seed(config["train"]["seed"]))
        if on_stage:
            on_stage(f"simulating {extra_n} more held-out galaxies with H {MAGNITUDE_BINS[0]:g}-{BRIGHT_LIMIT:g} "
                     f"(seed {seed}) for the bright-end figures")
        bright = self.prepare(self.simulate(extra_n, seed, progress, mag_range=(MAGNITUDE_BINS[0], BRIGHT_LIMIT)),
                              f"simulated {self.name}")
        test.objects["bright_sample"] = np.zeros(len(test), bool)
        bright.objects["bright_sample"] = np.ones(extra_n, bool)
        source = {**source, "n": len(test) + extra_n, "n_standard": len(test),
                  "bright_sample": {"n": extra_n, "seed": seed, "mag_range": [MAGNITUDE_BINS[0], BRIGHT_LIMIT]}}
        return concatenate([test, bright]), source, held_out and seed != config["train"]["seed"]

    def prepare(self, data: Dataset, source: str) -> Dataset:
        """The network's targets from the true parameters in ``data.objects``."""
        missing = [p for p in PARAMETERS if p not in data.objects]
        if missing:
            raise DeepskyError(f"{source}: the data set lacks the true parameters {', '.join(missing)}; "
                               "was it made by `deepsky simulate galaxy-profiles`?")
        return Dataset(inputs=data.images, labels=encode(data.objects, data.images, self._pixel_scale(data.meta)),
                       objects=data.objects, meta=data.meta)

    def _pixel_scale(self, meta: dict) -> float:
        from deepsky.simulate.surveys import get_survey

        return float(meta.get("pixel_scale_arcsec") or get_survey(self.survey).pixel_scale_arcsec)

    def preprocessing(self, images):
        """:class:`~deepsky.layers.references.SersicInputs`: the stretched image and the two reference channels."""
        from deepsky.layers.references import SersicInputs
        from deepsky.tasks.base import border_noise

        noise = float(border_noise(images)[0])
        margin = max(0, (images.shape[1] - INPUT_PIXELS) // 2)
        stretched = np.arcsinh(images[:4000, margin : images.shape[1] - margin] / noise)
        return [SersicInputs(noise, float(stretched.mean()), float(stretched.std()),
                             self._pixel_scale({}), crop=INPUT_PIXELS, name="sersic_inputs")]

    def build_model(self, model_name, train, **model_options):
        """The network on three channels (image, reference magnitude, reference radius)."""
        from deepsky.models.compose import with_preprocessing

        _, height, width, bands = train.images.shape
        if bands != 1:
            raise DeepskyError(f"{self.name} takes one band; the training cutouts have {bands}")
        side = min(INPUT_PIXELS, height)
        core = self.create_model(model_name, input_shape=(side, side, 3), num_classes=self.num_outputs,
                                  **model_options)
        return with_preprocessing(core, self.preprocessing(train.images), (height, width, 1), name=core.name)

    def check_dataset(self, data, source):
        data = super().check_dataset(data, source)
        bad = np.flatnonzero(~np.isfinite(data.labels).all(axis=1))
        if bad.size:
            raise DeepskyError(f"{source}: non-finite or non-positive true parameters at rows {bad[:10].tolist()}")
        return data

    def contract(self, data):
        return {"parameters": list(PARAMETERS), "targets": [list(t) for t in TARGET_SCALING],
                **super().contract(data)}

    @property
    def num_outputs(self) -> int:
        return 2 * len(TARGET_SCALING)

    @staticmethod
    def turn_targets(targets: np.ndarray, choice: np.ndarray) -> np.ndarray:
        """Targets of cutouts turned by :func:`deepsky.data.augment.dihedral` with ``choice``.

        A quarter turn of ``np.rot90`` over the (row, column) axes maps the
        direction at angle PA (counter-clockwise from +x, the columns) to
        PA - 90 degrees, so (cos 2PA, sin 2PA) changes sign; reversing the
        columns maps PA to 180 - PA, which flips sin 2PA.
        """
        out = np.array(targets, dtype=np.float32, copy=True)
        turns = np.asarray(choice) % 4
        sign = np.where(turns % 2 == 1, -1.0, 1.0).astype(np.float32)
        flip = np.where(np.asarray(choice) >= 4, -1.0, 1.0).astype(np.float32)
        c, s = _angle_columns()
        out[:, c] *= sign
        out[:, s] *= sign * flip
        return out

    # -- model outputs ---------------------------------------------------------------
    def decode(self, outputs: np.ndarray, images: np.ndarray, contract: dict | None = None) -> dict:
        """Parameters, their 68% intervals (``_lo``, ``_hi``) and ``_err`` (half the interval) from outputs.

        ``images`` are the cutouts the outputs came from: the network's
        magnitude and radius are corrections to what the cutouts show directly.
        """
        contract = contract or {}
        scale = contract.get("pixel_scale_arcsec") or self._pixel_scale({})
        return decode(outputs, images, scale, contract.get("targets"))

    def metrics(self, test, predicted: dict) -> dict:
        """Bias, scatter, outlier fraction and 68% coverage per parameter, overall, bright and per magnitude bin."""
        return profile_metrics(test.objects, predicted)

    def baseline_features(self, inputs, state):
        """None: the baseline fits each test image instead of learning from training features."""
        return None

    def predict_outputs(self, model, images, views=None, batch_size=512, progress=None):
        """Network outputs for ``images``, averaged over ``views`` orientations (1, 2, 4 or 8).

        Averaging the rotations and flips of each cutout (angles turned back
        with :meth:`turn_targets`) takes ``views`` times as long and
        removes the part of the error that changes with orientation; the
        predicted sigmas are averaged too, as they describe the noise, which
        averaging does not remove.
        """
        from deepsky.predict import predict_array

        from deepsky.data.augment import view_choices

        views = views or self.default_views
        choices = view_choices(views)
        outputs = predict_array(model, images, batch_size=batch_size, progress=progress, float32_head=True,
                                turns=choices)
        k = outputs.shape[2] // 2
        total = 0.0
        for choice, out in zip(choices, outputs):
            total = total + np.concatenate([self.turn_targets(out[:, :k], np.full(len(out), choice)), out[:, k:]], 1)
        return (total / views).astype(np.float32)

    def extra_metrics(self, model, test, metrics, stage):
        """The orientations averaged, the comparison with the fit, and the same with all 8 orientations."""
        import time

        extra = {"views": self.default_views}
        baseline = metrics.get("baseline")
        if baseline:
            extra["comparison"] = compare_with_baseline(metrics, baseline)
        stage("predicting them again averaged over 8 orientations")
        start = time.perf_counter()
        contract = {"pixel_scale_arcsec": self._pixel_scale(test.meta)}
        averaged = self.decode(self.predict_outputs(model, test.images, views=8), test.images, contract)
        averaged["seconds_per_object"] = (time.perf_counter() - start) / max(len(test), 1)
        extra["views_8"] = self.metrics(test, averaged)
        if baseline:
            extra["views_8"]["comparison"] = compare_with_baseline(extra["views_8"], baseline)
        return extra

    def report_sections(self, inputs):
        metrics = inputs.metrics
        extra = metrics.get("n_focus_sample")
        note = (f"{extra:,} of the galaxies at the bright end (magnitude below {metrics.get('bright_limit_mag')}) were "
                "simulated for the bright-end and per-magnitude figures only; the overall figures keep the survey's "
                "magnitude mix." if extra else "")
        return [f'<p class="note">{note}</p>' if note else "", _views_section(metrics)]

    def baseline_predictions(self, test: Dataset, progress=None) -> dict:
        """The least-squares Sersic fit of every test cutout, with its PSF; ``seconds_per_object`` included."""
        from deepsky.fitting.sersic import fit_profiles

        fit = fit_profiles(test, progress=progress)
        out = {k: np.asarray(v) for k, v in fit.items() if not np.isscalar(v)}
        for name in PARAMETERS:
            err = out.get(f"{name}_err")
            if err is not None:
                out[f"{name}_lo"], out[f"{name}_hi"] = out[name] - err, out[name] + err
        out["seconds_per_object"] = float(fit["seconds_per_galaxy"])
        return out

    def read_inputs(self, inputs, contract, catalog=None, units="auto"):
        """A cutout stack (``.h5``/``.npy``), FITS images with a catalogue, or FITS cutouts (files or folders).

        FITS cutouts must have the model's size and pixel scale and be in
        nanomaggies: resampling would change every radius it measures.
        """
        from deepsky.data.readers import FITS_SUFFIXES, STACK_SUFFIXES, suffix

        if catalog is not None or (len(inputs) == 1 and suffix(inputs[0]) in STACK_SUFFIXES):
            return super().read_inputs(inputs, contract, catalog, units)
        from deepsky.data.image_folders import expand_paths, load_image

        height, width = contract["cutout_pixels"]
        files = expand_paths(inputs)
        images = []
        for path in files:
            if suffix(path) not in FITS_SUFFIXES:
                raise DeepskyError(f"{path}: {self.name} measures fluxes, so it reads FITS cutouts in nanomaggies, "
                                   "not colour pictures")
            image = load_image(path, bands=len(contract["bands"]))
            if image.shape[:2] != (height, width):
                raise DeepskyError(
                    f"{path}: cutout is {image.shape[0]}x{image.shape[1]} pixels; the model expects {height}x{width} "
                    f"at {contract.get('pixel_scale_arcsec')} arcsec/pixel (resampling would change the radii)")
            images.append(image)
        ids = np.array([path.name for path in files])
        return np.stack(images).astype(np.float32), ids, None, {"units": contract.get("units")}


def _views_section(metrics: dict) -> str:
    """The bright-end ratios and time per galaxy with the default orientations and with all 8."""
    from deepsky.report.regression import seconds
    from deepsky.report.tables import fmt, table

    averaged = metrics.get("views_8")
    if not averaged:
        return ""
    rows = []
    for label, result in ((f"{metrics.get('views', 1)} (default)", metrics), ("8", averaged)):
        comparison = result.get("comparison") or {}
        ratios = comparison.get("focus_scatter_ratio") or {}
        speedup = comparison.get("speedup")
        rows.append([label] + [fmt(ratios.get(name), 2) for name in PARAMETERS]
                    + [seconds(result.get("seconds_per_object")), f"{speedup:,.0f}x" if speedup else "–"])
    header = (["orientations averaged"] + [f"bright-end scatter ratio: {SPECS[n].label}" for n in PARAMETERS]
              + ["time per galaxy", "speed-up over the fit"])
    return ("<h2>Orientations averaged</h2><p class=\"note\">Averaging the network's outputs over turned copies "
            "of each cutout removes the part of its error that changes with orientation, at the cost of time.</p>"
            + table(header, rows))


def _bright_sample_size(n: int) -> int:
    """Galaxies brighter than ``BRIGHT_LIMIT`` that evaluate adds to a simulated test set of ``n``."""
    return round(BRIGHT_SAMPLE_FRACTION * n)


def _angle_columns() -> tuple[int, int]:
    names = [t[0] for t in TARGET_SCALING]
    return names.index("cos_2pa"), names.index("sin_2pa")


def encode(objects: dict, images: np.ndarray, pixel_scale_arcsec: float) -> np.ndarray:
    """(N, 6) network targets from the true parameters of ``images`` (see ``TARGET_SCALING``)."""
    from deepsky.layers.references import references

    mag_ref, log_radius_ref = references(np.asarray(images, np.float64), pixel_scale_arcsec)
    pa = np.radians(np.asarray(objects["position_angle_deg"], dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = {
            "mag_minus_reference": np.asarray(objects["mag"], np.float64) - mag_ref,
            "log10_radius_over_reference": np.log10(np.asarray(objects["half_light_radius_arcsec"], np.float64))
            - log_radius_ref,
            "log10_sersic_n": np.log10(np.asarray(objects["sersic_n"], np.float64)),
            "axis_ratio": np.asarray(objects["axis_ratio"], np.float64),
            "cos_2pa": np.cos(2 * pa),
            "sin_2pa": np.sin(2 * pa),
        }
    return np.stack([(raw[name] - offset) / scale for name, offset, scale in TARGET_SCALING], 1).astype(np.float32)


def decode(outputs: np.ndarray, images: np.ndarray, pixel_scale_arcsec: float, scaling=None) -> dict:
    """Physical parameters with 68% intervals from (N, 12) network outputs (means, then log sigmas).

    The magnitude and radius outputs are corrections to the direct
    measurements on ``images`` (:func:`deepsky.layers.references.references`).

    Radius and n are Gaussian in log10, so their intervals are asymmetric;
    ``_err`` is half the interval's width. The angle's sigma comes from
    propagating the (cos 2PA, sin 2PA) sigmas through the arctangent.
    """
    from deepsky.layers.references import references
    from deepsky.objectives import LOG_SIGMA_RANGE

    scaling = [tuple(t) for t in (scaling or TARGET_SCALING)]
    k = len(scaling)
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[1] != 2 * k:
        raise DeepskyError(f"network outputs have shape {outputs.shape}; expected (N, {2 * k})")
    if len(images) != len(outputs):
        raise DeepskyError(f"{len(outputs)} network outputs for {len(images)} cutouts")
    mean = {n: outputs[:, i] * s + o for i, (n, o, s) in enumerate(scaling)}
    sigma = {n: np.exp(np.clip(outputs[:, k + i], *LOG_SIGMA_RANGE)) * s for i, (n, o, s) in enumerate(scaling)}
    mag_ref, log_radius_ref = references(np.asarray(images, np.float64), pixel_scale_arcsec)
    mean["mag"], sigma["mag"] = mean.pop("mag_minus_reference") + mag_ref, sigma.pop("mag_minus_reference")
    mean["log10_half_light_radius_arcsec"] = mean.pop("log10_radius_over_reference") + log_radius_ref
    sigma["log10_half_light_radius_arcsec"] = sigma.pop("log10_radius_over_reference")
    out = {}

    def put(name, value, lo, hi):
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = value, lo, hi
        out[f"{name}_err"] = (hi - lo) / 2

    put("mag", mean["mag"], mean["mag"] - sigma["mag"], mean["mag"] + sigma["mag"])
    for name in ("half_light_radius_arcsec", "sersic_n"):
        log_name = f"log10_{name}"
        m, s = mean[log_name], sigma[log_name]
        put(name, 10**m, 10 ** (m - s), 10 ** (m + s))
    q = mean["axis_ratio"]
    put("axis_ratio", q, q - sigma["axis_ratio"], q + sigma["axis_ratio"])
    c, s = mean["cos_2pa"], mean["sin_2pa"]
    r2 = np.maximum(c * c + s * s, 1e-12)
    pa = np.degrees(0.5 * np.arctan2(s, c)) % 180.0
    sigma_pa = np.degrees(0.5 * np.sqrt((s * sigma["cos_2pa"]) ** 2 + (c * sigma["sin_2pa"]) ** 2) / r2)
    sigma_pa = np.minimum(sigma_pa, 90.0)  # a round galaxy: any angle
    put("position_angle_deg", pa, pa - sigma_pa, pa + sigma_pa)
    return {key: value.astype(np.float32) for key, value in out.items()}


def errors(name: str, predicted, true) -> np.ndarray:
    """Signed errors of one parameter: differences (magnitude, axis ratio), relative (radius, n), wrapped degrees."""
    from deepsky.metrics import errors as parameter_errors

    return parameter_errors(SPECS[name], predicted, true)


def profile_metrics(truth: dict, predicted: dict) -> dict:
    """Per parameter: bias (median error), scatter (1.4826 x median absolute deviation), outlier fraction,
    68% interval coverage; overall, at the bright end (``focus``) and per bin of true magnitude (``per_bin``).

    Radius and n errors are relative, angles in degrees (scored for axis
    ratios below ``ANGLE_MAX_AXIS_RATIO`` only). Rows flagged in
    ``truth["bright_sample"]`` (an added bright-only sample, see
    :meth:`GalaxyProfiles.test_data`) count at the bright end and in their
    magnitude bins but not overall, which keeps the test set's magnitude mix.
    """
    mag = np.asarray(truth["mag"], np.float64)
    extra = np.asarray(truth.get("bright_sample", np.zeros(len(mag), bool)), bool)
    out = {"n": int((~extra).sum()), "n_focus_sample": int(extra.sum()), "bright_limit_mag": BRIGHT_LIMIT,
           "focus_label": f"magnitude < {BRIGHT_LIMIT:g}", "bin_label": "true magnitude", "extra_column": "bright_sample",
           "bin_edges": list(MAGNITUDE_BINS)}
    if "seconds_per_object" in predicted:
        out["seconds_per_object"] = float(predicted["seconds_per_object"])
    out["parameters"] = parameter_metrics(PARAMETER_SPECS, truth, predicted, mag, MAGNITUDE_BINS,
                                          focus=mag < BRIGHT_LIMIT, extra=extra)
    return out


def compare_with_baseline(network: dict, baseline: dict) -> dict:
    """Bright-end scatter ratios (network / fit) per parameter and the speed-up per galaxy."""
    ratios = {}
    for name in PARAMETERS:
        a = network["parameters"][name]["focus"].get("scatter")
        b = baseline["parameters"][name]["focus"].get("scatter")
        ratios[name] = float(a / b) if a is not None and b else None
    out = {"focus_scatter_ratio": ratios}
    if network.get("seconds_per_object") and baseline.get("seconds_per_object"):
        out["speedup"] = float(baseline["seconds_per_object"] / network["seconds_per_object"])
    return out

