"""Stars, galaxies and quasars from SDSS u,g,r,i,z magnitudes: the lecture's deep feed-forward network on real data."""

from __future__ import annotations

import numpy as np

from deepsky.tasks.base import Headline
from deepsky.tasks.registry import register_task
from deepsky.tasks.tabular import CatalogueClassificationTask

DEFAULT_CATALOGUE = "sdss_dr17_10k.csv"


@register_task
class SdssPhotometry(CatalogueClassificationTask):
    name = "sdss-photometry"
    description = "GALAXY / STAR / QSO from SDSS u,g,r,i,z magnitudes (real DR17 spectroscopic classes), deep feed-forward network"
    classes = ("GALAXY", "STAR", "QSO")
    bands = ("u", "g", "r", "i", "z")
    class_column = "class"  # redshift is never read: it nearly gives the class away
    default_model = "mlp"
    default_epochs = 40
    default_batch_size = 64
    default_learning_rate = 2e-3
    paper = {
        "citation": "the lecture's deep feed-forward network on SDSS DR17 photometry with spectroscopic classes",
        "data": "10,000 SDSS DR17 objects (GALAXY 5,975, STAR 2,139, QSO 1,886), u,g,r,i,z model magnitudes",
        "note": "Five magnitudes separate most quasars from stars by their UV excess (u-g) and galaxies by their "
                "redder, broader colours; the target is well above 90% held-out accuracy.",
    }

    headline = (Headline("accuracy", "Accuracy"), Headline("macro_f1", "Macro-averaged F1"),
                Headline("galaxy_vs_point_source_accuracy", "Galaxy vs point source (star or quasar) accuracy"),
                Headline("log_loss", "Log loss"), Headline("n", "Test objects", digits=0))

    def metrics(self, test, probabilities):
        """The three-class metrics, plus galaxies against point sources (stars and quasars together).

        Most of the confusion is between stars and quasars, whose u,g,r,i,z
        colours overlap where quasars at redshift 2.5-3 cross the stellar
        locus; separating extended galaxies from point sources is the easier
        half of the problem, and this says how well it is done.
        """
        out = super().metrics(test, probabilities)
        galaxy = self.classes.index("GALAXY")
        out["galaxy_vs_point_source_accuracy"] = float(
            ((probabilities.argmax(1) == galaxy) == (np.asarray(test.labels) == galaxy)).mean())
        return out

    def default_data_path(self):
        """``sdss_photometry/sdss_dr17_10k.csv`` in the shared data folder, when present."""
        from deepsky.paths import shared_data_dir

        folder = shared_data_dir("sdss_photometry")
        return folder / DEFAULT_CATALOGUE if folder is not None else None
