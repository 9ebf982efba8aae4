"""Radio galaxy morphology, FRI against FRII, in VLA FIRST images (Aniyan & Thorat 2017, ApJS 230, 20).

Real data: MiraBest (Porter & Scaife 2023; ``../shared/data/radio_mirabest``,
or ``--data DIR`` holding ``labels.csv`` and ``images/``), FIRST cutouts of
sources classified by eye from Miraghaei & Best (2017). A seeded stratified
20% of the folder is held out for ``evaluate``. MiraBest's confidence codes
(middle digit 0 confident, 1 uncertain) are used so: every image trains (an
uncertain label is still the experts' best call), and the held-out score is
given for the confident ones alone beside all of them, as MiraBest's
papers do. Without the folder the task simulates FRI and FRII sources at
FIRST's resolution and noise.

Every image, FITS or PNG, goes through the paper's preprocessing
(:mod:`deepsky.data.radio`): NaN to 0, sigma-clipped rms, below 3 rms to 0,
the central 150x150 pixels, scaled by the brightest pixel. The network is
the paper's AlexNet (grouped convolutions, local response normalisation)
trained with rotations by any angle and flips; the same network averaged
over the 8 rotations and flips of each image, a model that respects the
problem's symmetry, is scored beside it, and a random forest on Fanaroff &
Riley's own ratio and shape features is the classical baseline. The
three-class fusion classifier of the paper (FRI, FRII, bent) is
``deepsky experiment radio-fusion``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.baselines import RADIO_BASELINE_NAME
from deepsky.errors import DeepskyError
from deepsky.tasks.base import Headline, HeldOutFolder, ImageClassificationTask, SimulatedTask, Task
from deepsky.tasks.registry import register_task

DATA_FOLDER = "radio_mirabest"


@register_task
class RadioMorphology(HeldOutFolder, ImageClassificationTask):
    name = "radio-morphology"
    description = ("Aniyan & Thorat (2017): FRI vs FRII radio galaxies in FIRST images (MiraBest), AlexNet with "
                   "rotations, against a random forest on the Fanaroff-Riley ratio")
    classes = ("FRI", "FRII")
    positive_class = "FRII"
    default_model = "alexnet"
    model_defaults = {"alexnet": {"grouped": True}}  # the paper's, as in Caffe's two-tower AlexNet
    default_train_size = 3000
    default_test_size = 1000
    default_epochs = 40
    default_batch_size = 32
    default_learning_rate = 1e-4
    default_rotations = "any"  # radio galaxies lie at any position angle, and the paper rotates by any angle
    default_zoom = 1.1
    default_shift_pixels = 3.0
    baseline_name = RADIO_BASELINE_NAME
    default_data_description = "reading MiraBest (or, where it is not here, simulating FRI and FRII)"
    paper = {
        "citation": "Aniyan & Thorat 2017, ApJS 230, 20 (arXiv:1705.03413); MiraBest: Porter & Scaife 2023, "
                    "RASTI 2, 293",
        "data": "FIRST 1.4 GHz cutouts, 1.8 arcsec pixels, 150x150 after sigma-clipping at 3 rms",
        "precision": {"FRI": 0.91, "FRII": 0.75, "bent": 0.95},
        "recall": {"FRI": 0.91, "FRII": 0.91, "bent": 0.79},
        "note": "Aniyan & Thorat's fusion classifier on their test set: FRI precision 0.91 / recall 0.91, FRII "
                "0.75 / 0.91, bent-tailed 0.95 / 0.79.",
    }
    headline = (
        Headline("accuracy", "Accuracy (held-out)"),
        Headline("confident.accuracy", "Accuracy, confident labels only"),
        Headline("rotation_averaged.accuracy", "Accuracy averaged over 8 rotations and flips"),
        Headline("precision_FRI", "FRI precision", paper=0.91),
        Headline("recall_FRI", "FRI recall", paper=0.91),
        Headline("precision_FRII", "FRII precision", paper=0.75),
        Headline("recall_FRII", "FRII recall", paper=0.91),
        Headline("roc_auc", "ROC AUC"),
        Headline("n", "Test images", digits=0),
    )

    def __init__(self):
        Task.__init__(self)  # FIRST only: no survey presets

    @property
    def options(self):
        return {}

    # -- data ----------------------------------------------------------------------
    def simulate(self, n, seed, progress=None):
        """Simulated FIRST cutouts of the task's classes, through the paper's preprocessing."""
        from deepsky.data.radio import BAND, UNITS, clip_and_scale
        from deepsky.simulate.radio import make_radio_galaxies

        data = make_radio_galaxies(n, seed=seed, classes=self.classes, progress=progress)
        data.inputs = np.stack([clip_and_scale(image, source=f"simulated image {i}")
                                for i, image in enumerate(data.inputs)])
        data.meta.update(units=UNITS, bands=[BAND], flux_units="Jy/beam before preprocessing")
        return data

    def data_folder(self, path=None):
        """``path``, or MiraBest in the shared data folder when present (None: simulate)."""
        if path is not None:
            return Path(path)
        from deepsky.paths import shared_data_dir

        return shared_data_dir(DATA_FOLDER)

    def read_folder(self, folder, progress=None, select=None):
        """The labelled images of the task's classes in ``folder`` (:func:`deepsky.data.radio.load_radio_folder`)."""
        from deepsky.data.radio import load_radio_folder

        data = load_radio_folder(folder, classes=self.classes, progress=progress)
        return data if select is None else data.subset(select(data.labels))

    def read_inputs(self, inputs, contract, catalog=None, units="auto"):
        """FITS or PNG files and folders (one row per file, the paper's preprocessing), or a stack."""
        from deepsky.data.readers import STACK_SUFFIXES, suffix

        if len(inputs) == 1 and suffix(inputs[0]) in STACK_SUFFIXES:
            return super().read_inputs(inputs, contract, catalog, units)
        from deepsky.data.radio import read_radio_images

        images, ids, info = read_radio_images(inputs, contract["cutout_pixels"][0])
        return images, ids, None, info

    def check_dataset(self, data, source):
        data = super().check_dataset(data, source)
        if np.ndim(data.inputs) != 4 or data.inputs.shape[-1] != 1:
            raise DeepskyError(f"{source}: radio images are (N, H, W, 1); received shape {np.shape(data.inputs)}")
        return data

    # -- model ---------------------------------------------------------------------
    def preprocessing(self, images):
        """The images are already in [0, 1] (the paper's preprocessing): standardise only."""
        return SimulatedTask.preprocessing(self, images)

    # -- classical baseline --------------------------------------------------------
    def baseline_state(self, train):
        return {}

    def baseline_features(self, inputs, state):
        """The Fanaroff-Riley ratio and shape features of each image."""
        from deepsky.baselines import radio_features

        return radio_features(inputs)

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, test, probabilities):
        """Per-class precision and recall, accuracy, ROC AUC; the same on the confident labels alone."""
        from deepsky.metrics import binary_metrics, multiclass_metrics

        labels = np.asarray(test.labels)
        out = multiclass_metrics(labels, probabilities, self.classes)
        out.update({k: v for k, v in binary_metrics(labels, probabilities[:, 1], self.classes).items()
                    if k in ("roc_auc", "average_precision")})
        for name in self.classes:
            per_class = out.get("per_class", {}).get(name, {})
            for key in ("precision", "recall"):
                if key in per_class:
                    out[f"{key}_{name}"] = per_class[key]
        confident = np.asarray(test.objects.get("confident", np.ones(len(labels), bool)), bool)
        if 0 < confident.sum() < len(labels):
            out["confident"] = multiclass_metrics(labels[confident], probabilities[confident], self.classes)
        elif confident.all():
            out["confident"] = {"accuracy": out["accuracy"], "n": out.get("n", len(labels))}
        return out

    def extra_metrics(self, model, test, metrics, stage):
        """The same network averaged over the 8 rotations and flips of each image."""
        from deepsky.metrics import multiclass_metrics
        from deepsky.predict import predict_array

        stage("predicting the held-out images in their 8 rotations and flips")
        averaged = predict_array(model, test.inputs, dihedral_average=True)
        return {"rotation_averaged": multiclass_metrics(np.asarray(test.labels), averaged, self.classes)}
