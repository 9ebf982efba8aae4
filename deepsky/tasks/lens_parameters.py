"""Lens parameters in microseconds (Hezaveh, Perreault Levasseur & Marshall 2017), against lenstronomy's own fit.

Simulated HST-like lenses (:func:`deepsky.simulate.lensing.make_lenses` on ``hst-acs``: F814W,
0.04 arcsec pixels, 96x96, the lens light removed as in the paper, no neighbours, smooth Sersic sources, so that
the fit below models exactly what was drawn: the network is compared with a fit at its best). For every lens the network
predicts a Gaussian of each of:

==================  ==========================================  ======================
parameter           what it is                                  column
==================  ==========================================  ======================
Einstein radius     theta_E of the SIE (arcsec)                 ``theta_e_arcsec``
ellipticity         lenstronomy's e1, e2 of the mass:           ``e1``, ``e2``
                    (1 - q)/(1 + q) (cos 2phi, sin 2phi)
lens centre         x, y from the cutout centre (arcsec;        ``lens_x``, ``lens_y``
                    x along columns, y along rows)
external shear      gamma1, gamma2                              ``gamma1``, ``gamma2``
==================  ==========================================  ======================

The ellipticity and shear are encoded as these spin-2 components, not as an axis ratio and an
angle: an ellipse turned by 180 degrees is the same ellipse, and (e1, e2) has no jump there (the
orientation ambiguity Hezaveh et al. handled the same way). Training turns cutouts by the 8
rotations and flips of the square and turns the targets with them. After training, each
parameter's sigma is scaled on the validation set so that 68% intervals hold 68% of the truths
there (:meth:`LensParameters.calibrate`); the held-out coverage is reported.

The report also scores the network on the same held-out lenses drawn with their lens light in
F475W and F814W: left in, and removed by FastICA across the two bands
(:func:`deepsky.fitting.lens_light.source_by_ica`). The baseline is lenstronomy's FittingSequence
(PSO, then MCMC) on the first ``FIT_LENSES`` held-out lenses, with the PSF they were drawn with.
"""

from __future__ import annotations

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.metrics import Parameter, parameter_metrics
from deepsky.objectives import GaussianRegression
from deepsky.tasks.base import Headline, ImageTask
from deepsky.tasks.registry import register_task

PARAMETER_SPECS = (
    Parameter("theta_e_arcsec", "Einstein radius", "arcsec", outlier_limit=0.1),
    Parameter("e1", "ellipticity e1", "", outlier_limit=0.1),
    Parameter("e2", "ellipticity e2", "", outlier_limit=0.1),
    Parameter("lens_x", "lens centre x", "arcsec", outlier_limit=0.05),
    Parameter("lens_y", "lens centre y", "arcsec", outlier_limit=0.05),
    Parameter("gamma1", "external shear gamma1", "", outlier_limit=0.05),
    Parameter("gamma2", "external shear gamma2", "", outlier_limit=0.05),
)
PARAMETERS = tuple(p.name for p in PARAMETER_SPECS)
# the network regresses (value - offset) / scale: every target of order one over the simulated ranges
TARGET_SCALING = (("theta_e_arcsec", 0.95, 0.3), ("e1", 0.0, 0.12), ("e2", 0.0, 0.12), ("lens_x", 0.0, 0.12),
                  ("lens_y", 0.0, 0.12), ("gamma1", 0.0, 0.035), ("gamma2", 0.0, 0.035))
SPIN2 = (("e1", "e2"), ("gamma1", "gamma2"))  # components that turn with twice the angle
SNR_BINS = (0.0, 10.0, 20.0, 40.0, 80.0, 1e9)
FIT_LENSES = 60  # held-out lenses the lenstronomy fit models (seconds each)...
FIT_SHARE = 30  # ... at most one in this many of the test set, at least 2
QUICK_FIT_BELOW = 100  # test sets smaller than this (smoke runs) get a short PSO and MCMC


def fitted_count(n: int) -> int:
    """How many of ``n`` held-out lenses (the first ones) the lenstronomy fit models."""
    return min(n, FIT_LENSES, max(2, n // FIT_SHARE))
IMAGE_BAND = "F814W"


def spin2(objects: dict) -> dict:
    """e1, e2 of the mass and gamma1, gamma2 of the shear from the simulator's axis ratio and angles."""
    from deepsky.simulate.lensing import ellipticity

    e1, e2 = ellipticity(np.asarray(objects["mass_axis_ratio"], float), np.asarray(objects["mass_angle_deg"], float))
    angle = np.radians(2 * np.asarray(objects["shear_angle_deg"], float))
    shear = np.asarray(objects["shear"], float)
    return {"e1": e1, "e2": e2, "gamma1": shear * np.cos(angle), "gamma2": shear * np.sin(angle)}


def _turn_matrices() -> np.ndarray:
    """(8, 2, 2): how each of :func:`deepsky.data.augment.turn`'s rotations and flips moves (x, y) in arcsec.

    Found by turning a probe image, so that the targets follow the pixels whatever convention the
    turns keep (x along columns, y along rows).
    """
    from deepsky.data.augment import turn

    probe = np.zeros((1, 5, 5, 1), np.float32)
    probe[0, 2, 3] = 1.0  # x = +1
    probe_y = np.zeros_like(probe)
    probe_y[0, 3, 2] = 1.0  # y = +1
    out = np.zeros((8, 2, 2))
    for k in range(8):
        for column, image in enumerate((probe, probe_y)):
            row, col = np.argwhere(turn(image, k)[0, :, :, 0] > 0)[0]
            out[k, :, column] = (col - 2, row - 2)
    return out


def turn_lens_targets(targets: np.ndarray, choice: np.ndarray, scaling=TARGET_SCALING) -> np.ndarray:
    """Scaled targets of cutouts turned by :func:`deepsky.data.augment.dihedral` with ``choice``."""
    names = [t[0] for t in scaling]
    scale = {name: s for name, _, s in scaling}
    out = np.array(targets, np.float32, copy=True)
    matrices = _turn_matrices()[np.asarray(choice)]  # (N, 2, 2)
    xi, yi = names.index("lens_x"), names.index("lens_y")
    centre = np.stack([targets[:, xi], targets[:, yi]], 1)  # offsets are 0: scaling commutes with the turn
    moved = np.einsum("nij,nj->ni", matrices, centre)
    out[:, xi], out[:, yi] = moved[:, 0], moved[:, 1]
    for a, b in SPIN2:
        ia, ib = names.index(a), names.index(b)
        value = (targets[:, ia] * scale[a]) + 1j * (targets[:, ib] * scale[b])
        # a direction at angle phi goes to M (cos phi, sin phi); spin-2: (e1, e2) follow 2 phi
        phi = 0.5 * np.angle(value)
        direction = np.einsum("nij,nj->ni", matrices, np.stack([np.cos(phi), np.sin(phi)], 1))
        turned = np.abs(value) * np.exp(2j * np.arctan2(direction[:, 1], direction[:, 0]))
        out[:, ia], out[:, ib] = turned.real / scale[a], turned.imag / scale[b]
    return out


def encode(objects: dict, scaling=TARGET_SCALING) -> np.ndarray:
    """(N, K) scaled targets from the true parameters."""
    values = {**{k: np.asarray(v, float) for k, v in objects.items()}, **spin2(objects)}
    return np.stack([(values[name] - offset) / scale for name, offset, scale in scaling], 1).astype(np.float32)


def decode(outputs: np.ndarray, scaling=TARGET_SCALING, sigma_scale=None) -> dict:
    """Parameters with 68% intervals (``_lo``, ``_hi``, ``_err`` = half the width) from (N, 2K) outputs."""
    from deepsky.objectives import LOG_SIGMA_RANGE

    outputs = np.asarray(outputs, np.float64)
    k = len(scaling)
    if outputs.ndim != 2 or outputs.shape[1] != 2 * k:
        raise DeepskyError(f"network outputs have shape {outputs.shape}; expected (N, {2 * k})")
    factors = np.ones(k) if sigma_scale is None else np.asarray(sigma_scale, float)
    out = {}
    for i, (name, offset, scale) in enumerate(scaling):
        value = outputs[:, i] * scale + offset
        sigma = np.exp(np.clip(outputs[:, k + i], *LOG_SIGMA_RANGE)) * scale * factors[i]
        out[name], out[f"{name}_lo"], out[f"{name}_hi"], out[f"{name}_err"] = value, value - sigma, value + sigma, sigma
    return {key: value.astype(np.float32) for key, value in out.items()}


@register_task
class LensParameters(ImageTask):
    name = "lens-parameters"
    description = ("Hezaveh et al. (2017): SIE Einstein radius, ellipticity, centre and external shear with "
                   "calibrated uncertainties from HST-like lens images; baseline: lenstronomy's own fit")
    objective = GaussianRegression(PARAMETER_SPECS)
    classes = ()
    default_model = "alexnet"
    default_survey = "hst-acs"
    default_train_size = 20000
    default_test_size = 2000
    default_epochs = 20
    default_batch_size = 64
    default_learning_rate = 5e-4
    # the original's grouped AlexNet: a quarter less time per lens than the single tower, as accurate here
    model_defaults = {"alexnet": {"grouped": True}}
    augment = True
    turn_targets = staticmethod(turn_lens_targets)
    validation_fraction = 0.1
    baseline_name = "lenstronomy fit (PSO + MCMC)"
    default_data_description = "simulating HST-like lenses"
    paper = {
        "citation": "Hezaveh, Perreault Levasseur & Marshall 2017, Nature 548, 555; Perreault Levasseur et al. "
                    "2017, ApJL 850, L7",
        "data": "simulated HST-like lenses (0.04 arcsec pixels), lens light removed; Inception-v4, AlexNet, "
                "OverFeat and their combination",
        "speedup": 1e7,
        "note": "Parameters with errors comparable to maximum-likelihood modelling, about ten million times "
                "faster; calibrated 68% intervals (Perreault Levasseur et al.). The bar here: theta_E scatter "
                "within 1.5x of lenstronomy's fit, 68% coverage 0.60-0.76, at least 10^4 times faster.",
    }
    headline = (
        Headline("comparison.theta_e_scatter_ratio", "theta_E scatter / the fit's (same lenses)", paper=1.5, digits=2),
        Headline("comparison.speedup", "speed-up over the fit per lens", paper=1e7, digits=0),
        Headline("parameters.theta_e_arcsec.scatter", "theta_E scatter (arcsec)"),
        Headline("parameters.theta_e_arcsec.coverage_68", "theta_E 68% coverage", paper=0.68, digits=3),
        Headline("coverage_range", "68% coverage, lowest and highest parameter"),
        Headline("n", "Test lenses", digits=0),
    )

    def __init__(self, survey: str | None = None):
        super().__init__(survey)
        if self.survey != "hst-acs":
            raise DeepskyError(f"lens-parameters simulates hst-acs lenses; received survey {self.survey!r}")

    # -- data ----------------------------------------------------------------------
    def simulate(self, n, seed, progress=None, lens_light: bool = False):
        """HST-like lenses; the F814W band alone (lens light absent), or both bands with lens light."""
        from deepsky.simulate.lensing import make_lenses

        data = make_lenses(n, seed=seed, survey=self.survey, lens_fraction=1.0, lens_light=lens_light,
                           clumpy=False, neighbours=False, progress=progress)
        if lens_light:
            return data
        band = data.meta["bands"].index(IMAGE_BAND)
        meta = {**data.meta, "bands": [IMAGE_BAND], "task": self.name}
        return Dataset(inputs=np.ascontiguousarray(data.images[..., band : band + 1]), labels=data.labels,
                       objects=data.objects, meta=meta)

    def prepare(self, data, source):
        missing = [p for p in ("theta_e_arcsec", "mass_axis_ratio", "shear", "lens_x") if p not in data.objects]
        if missing:
            raise DeepskyError(f"{source}: the data set lacks the true parameters {', '.join(missing)}; "
                               "was it made by `deepsky simulate lens-parameters`?")
        objects = {**data.objects, **{k: v.astype(np.float32) for k, v in spin2(data.objects).items()}}
        return Dataset(inputs=data.images, labels=encode(objects), objects=objects, meta=data.meta)

    def check_dataset(self, data, source):
        data = super().check_dataset(data, source)
        if data.images.shape[-1] != 1:
            raise DeepskyError(f"{source}: {self.name} takes single-band {IMAGE_BAND} images; these have "
                               f"{data.images.shape[-1]} bands")
        return data

    def contract(self, data):
        return {"parameters": list(PARAMETERS), "targets": [list(t) for t in TARGET_SCALING],
                **super().contract(data)}

    # -- model ---------------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        return 2 * len(TARGET_SCALING)

    def preprocessing(self, images):
        """Each image in units of its own sky noise, asinh-stretched and standardised (as lens-finding's)."""
        from deepsky.tasks.lens_finding import noise_scaled_preprocessing

        return noise_scaled_preprocessing(images)

    def build_model(self, model_name, train, **model_options):
        """The registered network with its softmax replaced by a linear head of means and log sigmas."""
        from deepsky.models.compose import linear_head, with_preprocessing

        shape = tuple(train.images.shape[1:])
        core = linear_head(self.create_model(model_name, input_shape=shape, num_classes=self.num_outputs,
                                             **model_options))
        return with_preprocessing(core, self.preprocessing(train.images), shape, name=core.name)

    def calibrate(self, model, validation) -> dict:
        """Per-parameter sigma factors that make 68% of validation truths fall in the 68% intervals."""
        outputs = self.predict_outputs(model, validation.inputs)
        k = len(TARGET_SCALING)
        mean, log_sigma = outputs[:, :k], outputs[:, k:]
        z = np.abs(validation.labels - mean) / np.exp(log_sigma)
        return {"sigma_scale": [float(v) for v in np.quantile(z, 0.6827, axis=0)]}

    def decode(self, outputs, inputs, contract=None):
        contract = contract or {}
        return decode(outputs, contract.get("targets") or TARGET_SCALING, contract.get("sigma_scale"))

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, test, predicted):
        """Bias, scatter, outliers and 68% coverage per parameter, overall, on the fitted lenses and per S/N bin."""
        objects = {**test.objects, **spin2(test.objects)}
        n = len(test)
        fitted = np.arange(n) < fitted_count(n)
        scored = np.isfinite(np.asarray(predicted["theta_e_arcsec"], float))
        snr = np.asarray(objects.get("lensed_snr", np.zeros(n)), float)
        out = {"n": int(scored.sum()), "focus_label": f"the {int(fitted.sum())} lenses the fit modelled",
               "bin_label": "lensed-source S/N", "bin_edges": list(SNR_BINS)}
        if "seconds_per_object" in predicted:
            out["seconds_per_object"] = float(predicted["seconds_per_object"])
        rows = np.flatnonzero(scored)
        truth = {k: np.asarray(v)[rows] for k, v in objects.items() if np.ndim(v) and len(v) == n}
        values = {k: np.asarray(v)[rows] for k, v in predicted.items() if np.ndim(v) and len(v) == n}
        out["parameters"] = parameter_metrics(PARAMETER_SPECS, truth, values, snr[rows], SNR_BINS,
                                              focus=fitted[rows])
        coverages = [out["parameters"][p]["coverage_68"] for p in PARAMETERS]
        out["coverage_range"] = [float(min(coverages)), float(max(coverages))] if None not in coverages else None
        return out

    def baseline_features(self, inputs, state):
        return None  # the baseline fits images; it learns nothing

    def baseline_count(self, n: int) -> int:
        return fitted_count(n)

    def baseline_predictions(self, test, progress=None):
        """lenstronomy's fit of the first ``FIT_LENSES`` held-out lenses; NaN for the rest."""
        from deepsky.fitting.lens_model import FIT_PARAMETERS, fit_lenses
        from deepsky.simulate.surveys import get_survey

        survey = get_survey(self.survey)
        band = survey.bands.index(IMAGE_BAND)
        rows = np.arange(fitted_count(len(test)))
        objects = test.objects
        quick = len(test) < QUICK_FIT_BELOW  # a smoke run (tests, --n 32): a short search, same code path
        fit = fit_lenses(test.images[rows], survey.pixel_scale_arcsec,
                         survey.sky_noise_nmgy[band] * np.asarray(objects["noise_scale"])[rows],
                         float(survey.electrons_per_nmgy[band]), np.asarray(objects["psf_fwhm_arcsec"])[rows, band],
                         np.asarray(objects["psf_beta"])[rows], progress=progress,
                         pso={"n_particles": 16, "n_iterations": 16, "sigma_scale": 1.0} if quick else None,
                         mcmc={"n_burn": 2, "n_run": 4, "walkerRatio": 2, "sigma_scale": 0.1} if quick else None)
        out = {}
        for name in FIT_PARAMETERS:
            for key in (name, f"{name}_lo", f"{name}_hi"):
                column = np.full(len(test), np.nan, np.float32)
                column[rows] = fit[key]
                out[key] = column
            out[f"{name}_err"] = (out[f"{name}_hi"] - out[f"{name}_lo"]) / 2
        out["seconds_per_object"] = fit["seconds_per_object"]
        return out

    def extra_metrics(self, model, test, metrics, stage):
        """The comparison with the fit on the same lenses, and the network on images with lens light."""
        extra = {}
        baseline = metrics.get("baseline")
        if baseline:
            a = metrics["parameters"]["theta_e_arcsec"]["focus"].get("scatter")
            b = baseline["parameters"]["theta_e_arcsec"]["focus"].get("scatter")
            extra["comparison"] = {"theta_e_scatter_ratio": float(a / b) if a is not None and b else None}
            if metrics.get("seconds_per_object") and baseline.get("seconds_per_object"):
                extra["comparison"]["speedup"] = float(baseline["seconds_per_object"] / metrics["seconds_per_object"])
        seed = test.meta.get("seed")
        if seed is None or test.meta.get("task") != self.name:
            return extra
        from deepsky.fitting.lens_light import source_by_ica

        stage(f"simulating the same {len(test)} lenses with their lens light in F475W and F814W")
        lit = self.simulate(len(test), int(seed), lens_light=True)
        band = lit.meta["bands"].index(IMAGE_BAND)
        stage("removing the lens light by FastICA across the two bands")
        views = {"lens light left in": lit.images[..., band : band + 1], "removed by ICA": source_by_ica(lit.images)}
        extra["lens_light"] = {}
        for label, images in views.items():
            decoded = self.decode(self.predict_outputs(model, images), images, {"targets": TARGET_SCALING})
            extra["lens_light"][label] = {
                p: {"scatter": self.metrics(test, decoded)["parameters"][p]["scatter"]} for p in PARAMETERS}
        return extra
