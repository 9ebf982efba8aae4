"""Star-galaxy classification in SDSS cutouts (Kim & Brunner 2017, MNRAS 464, 4463)."""

from __future__ import annotations

import numpy as np

from deepsky.metrics import binary_metrics, binned
from deepsky.tasks.base import Headline, ImageClassificationTask
from deepsky.tasks.registry import register_task

R_MAG_BINS = np.arange(14.0, 22.01, 1.0)


@register_task
class StarGalaxy(ImageClassificationTask):
    name = "star-galaxy"
    description = "Kim & Brunner (2017): stars vs galaxies in SDSS u,g,r,i,z cutouts"
    classes = ("star", "galaxy")
    positive_class = "galaxy"
    default_model = "kim-brunner"
    input_pixels = 44
    default_train_size = 20000
    default_test_size = 5000
    default_epochs = 10
    paper = {
        "citation": "Kim, E. J. & Brunner, R. J. 2017, MNRAS 464, 4463",
        "data": "SDSS DR13 u,g,r,i,z cutouts with spectroscopic labels",
        "roc_auc": 0.99,
        "note": "ROC AUC about 0.99 on SDSS; purity and completeness fall at the faint end (r > 20).",
    }
    headline = (
        Headline("roc_auc", "ROC AUC", paper=0.99),
        Headline("accuracy", "Accuracy"),
        Headline("mse", "Mean squared error of the probability"),
        Headline("purity_galaxy", "Galaxy purity"),
        Headline("completeness_galaxy", "Galaxy completeness"),
        Headline("purity_star", "Star purity"),
        Headline("completeness_star", "Star completeness"),
        Headline("n", "Test objects", digits=0),
    )

    def simulate(self, n, seed, progress=None):
        from deepsky.simulate.stargalaxy import make_star_galaxy

        return make_star_galaxy(n=n, seed=seed, survey=self.survey, progress=progress)

    def real_data(self):
        """Kim & Brunner's 20 real SDSS cutouts, where the shared data folder is present."""
        from deepsky.data.sdss import load_sdss_cutouts
        from deepsky.paths import shared_data_dir

        if self.survey != "sdss":
            return None  # SDSS cutouts would test another survey than the one trained on

        folder = shared_data_dir("sdss_stargalaxy_cutouts")
        return load_sdss_cutouts(folder) if folder is not None else None

    def metrics(self, test, predicted):
        """ROC AUC, purity and completeness of stars and galaxies, overall and per bin of true r magnitude."""
        out = binary_metrics(test.labels, predicted[:, 1], self.classes)
        if "r_mag" in test.objects:
            r = np.asarray(test.objects["r_mag"])
            out["by_bin"] = {"column": "r_mag", "label": "r magnitude (AB)", "bins": binned(
                r, R_MAG_BINS, lambda rows: binary_metrics(test.labels[rows], predicted[rows, 1], self.classes))}
        return out

    def figures(self):
        from deepsky.report.binned import plot_purity_completeness
        from deepsky.report.figures import FigureSpec

        return [FigureSpec(
            "purity_completeness", "Purity and completeness against r magnitude",
            "The paper's key figure (cf. Kim & Brunner 2017): both classes are near-perfect when bright and degrade "
            "in the faintest bins, where galaxies shrink to the size of the PSF and look like stars; the bars count "
            "objects per bin.", plot_purity_completeness)]

    def report_sections(self, inputs):
        from deepsky.report.binned import binned_section

        return [binned_section(inputs)]
