"""Star-galaxy classification in SDSS cutouts (Kim & Brunner 2017, MNRAS 464, 4463)."""

from __future__ import annotations

import numpy as np

from deepsky.tasks.base import ImageClassificationTask
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

    def metrics(self, labels, probabilities, objects):
        p_galaxy = probabilities[:, 1]
        out = binary_metrics(labels, p_galaxy)
        if "r_mag" in objects:
            r = np.asarray(objects["r_mag"])
            out["by_r_mag"] = []
            for lo, hi in zip(R_MAG_BINS[:-1], R_MAG_BINS[1:]):
                sel = (r >= lo) & (r < hi) if hi < R_MAG_BINS[-1] else (r >= lo) & (r <= hi)
                if sel.any():
                    out["by_r_mag"].append({"r_min": float(lo), "r_max": float(hi), **binary_metrics(labels[sel], p_galaxy[sel])})
        return out


def binary_metrics(labels: np.ndarray, p_galaxy: np.ndarray, threshold: float = 0.5) -> dict:
    """ROC AUC, accuracy, MSE, and purity/completeness of both classes at ``threshold``."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    is_galaxy = p_galaxy >= threshold
    out = {"n": int(len(labels)), "n_galaxy": int(labels.sum()), "n_star": int((labels == 0).sum())}
    out["roc_auc"] = float(roc_auc_score(labels, p_galaxy)) if 0 < labels.sum() < len(labels) else None
    out["accuracy"] = float((is_galaxy == labels.astype(bool)).mean())
    out["mse"] = float(np.mean((p_galaxy - labels) ** 2))
    for name, truth, called in (("galaxy", labels == 1, is_galaxy), ("star", labels == 0, ~is_galaxy)):
        hits = float((truth & called).sum())
        out[f"purity_{name}"] = hits / called.sum() if called.any() else None
        out[f"completeness_{name}"] = hits / truth.sum() if truth.any() else None
    return out
