"""Strong-lens finding (Lanusse et al. 2018 CMU DeepLens; Jacobs et al. 2017; Petrillo et al. 2017).

Simulated cutouts (:func:`deepsky.simulate.lensing.make_lenses`): half galaxy-galaxy lenses, half
hard non-lenses (lens-like galaxies alone, with an unlensed source beside them, inside a ring,
blended, and spirals, edge-on disks, mergers, irregulars), in LSST g (45x45), KiDS u,g,r,i (64x64)
or Euclid VIS (64x64). The network sees each cutout in units of its own sky noise
(:class:`deepsky.layers.noise_scale.NoiseScaledAsinh`), so a model does not depend on the flux
units or depth of the images it is given: what lets it score lenses drawn by another simulator.

Metrics are the lens-search ones: ROC AUC; completeness at 99% rejection of non-lenses (the
threshold is the score 99% of held-out non-lenses stay below), in bins of Einstein radius and
lensed-source S/N as in Lanusse et al.'s figure; and the lens-finding challenge's TPR0 and TPR10
(Metcalf et al. 2019): the share of lenses scored above every non-lens, and above all but ten.
Both depend on how many non-lenses there are (the challenge had about 50,000): the count is
reported beside them.
"""

from __future__ import annotations

import numpy as np

from deepsky.errors import DeepskyError
from deepsky.metrics import binary_metrics
from deepsky.tasks.base import Headline, ImageClassificationTask
from deepsky.tasks.registry import register_task

REJECTION = 0.99  # share of non-lenses below the threshold completeness is measured at
THETA_E_BINS = (0.5, 0.8, 1.1, 1.4, 2.0, 3.0)  # arcsec
SNR_BINS = (0.0, 10.0, 20.0, 40.0, 80.0, np.inf)
FOCUS_THETA_E = 1.4  # arcsec: Lanusse et al.'s 90% completeness holds above this Einstein radius...
FOCUS_SNR = 20.0  # ... and this S/N
SURVEYS = ("lsst", "kids", "euclid")


def noise_scaled_preprocessing(images) -> list:
    """Keras layers: each cutout less its sky, over its own sky noise, asinh-stretched, then standardised with the
    training set's statistics."""
    import keras

    from deepsky.layers.noise_scale import NoiseScaledAsinh

    stretch = NoiseScaledAsinh(subtract_sky=True, name="noise_scaled_asinh")
    sample = keras.ops.convert_to_numpy(stretch(np.asarray(images[:2000], np.float32)))
    return [stretch, keras.layers.Normalization(axis=-1, mean=sample.mean(axis=(0, 1, 2)).tolist(),
                                                variance=np.maximum(sample.var(axis=(0, 1, 2)), 1e-6).tolist(),
                                                name="standardise")]


def completeness_at_rejection(labels, scores, rejection: float = REJECTION) -> tuple[float, float]:
    """``(threshold, completeness)``: the score ``rejection`` of non-lenses stay below; the share of lenses above it."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    threshold = float(np.quantile(scores[labels == 0], rejection))
    return threshold, float(np.mean(scores[labels == 1] > threshold))


def true_positive_rate_at(labels, scores, false_positives: int) -> float | None:
    """Share of lenses scored above all but ``false_positives`` non-lenses (TPR0, TPR10 of the challenge)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    negatives = np.sort(scores[labels == 0])
    if len(negatives) <= false_positives or not (labels == 1).any():
        return None
    return float(np.mean(scores[labels == 1] > negatives[-1 - false_positives]))


@register_task
class LensFinding(ImageClassificationTask):
    name = "lens-finding"
    description = ("Lanusse et al. (2018) CMU DeepLens: galaxy-galaxy strong lenses among hard non-lenses in "
                   "LSST g, KiDS u,g,r,i or Euclid VIS cutouts; ranked candidate search")
    classes = ("non-lens", "lens")
    positive_class = "lens"
    default_model = "deeplens"
    default_survey = "lsst"
    default_train_size = 16000
    default_test_size = 4000
    default_epochs = 20  # about 30 minutes on 2 cores for lsst; the validation AUC still rises at 20 (README)
    default_batch_size = 64
    default_learning_rate = 1e-3
    default_schedule = "drops"  # the authors' learning-rate drops
    # the 8 rotations and flips of the square, not any angle with zoom: interpolation smooths the pixel
    # noise, which the network measures on every cutout to scale it
    default_rotations = "dihedral"
    ranked = True  # predict's table gains a rank: 1 for the most lens-like object
    predict_dihedral_average = True  # a lens is a lens in any orientation: average the 8 turns of each cutout
    baseline_name = "random forest on cutout features"
    default_data_description = "simulating lenses and non-lenses"
    paper = {
        "citation": "Lanusse et al. 2018, MNRAS 473, 3895; Metcalf et al. 2019, A&A 625, A119",
        "data": "LSST-like g-band 45x45 cutouts (PICS/LensPop); the lens-finding challenge's ground-based set",
        "focus_completeness": 0.9,
        "roc_auc": 0.98,
        "note": "CMU DeepLens: completeness above 90% at 99% rejection for theta_E > 1.4 arcsec and S/N > 20; "
                "ROC AUC about 0.98 on the challenge's ground-based set.",
    }
    headline = (
        Headline("focus_completeness", "completeness at 99% rejection, theta_E above 1.4 arcsec and S/N above 20",
                 paper=0.9),
        Headline("focus_completeness_lens_galaxies", "the same, at 99% rejection of lens galaxies alone (the "
                 "paper's non-lenses)", paper=0.9),
        Headline("completeness_at_rejection", "completeness at 99% rejection (all lenses)"),
        Headline("roc_auc", "ROC AUC", paper=0.98),
        Headline("tpr0", "TPR0 (lenses above every non-lens)"),
        Headline("tpr10", "TPR10 (lenses above all but 10 non-lenses)"),
        Headline("n_non-lens", "non-lenses in the test set", digits=0),
        Headline("n", "Test cutouts", digits=0),
    )

    def __init__(self, survey: str | None = None):
        super().__init__(survey)
        if self.survey not in SURVEYS:
            raise DeepskyError(f"lens-finding simulates {', '.join(SURVEYS)}; received survey {self.survey!r}")

    def simulate(self, n, seed, progress=None):
        from deepsky.simulate.lensing import make_lenses

        return make_lenses(n, seed=seed, survey=self.survey, progress=progress)

    def input_chunks(self, inputs, contract, catalog=None, units="auto", rows=4096):
        """A folder of FITS cutouts (one file per object, or one sub-folder per band), else as any cutout task."""
        from pathlib import Path

        if len(inputs) == 1 and Path(inputs[0]).is_dir():
            from deepsky.data.object_folders import iter_object_folder

            size = contract["cutout_pixels"][0]
            for images, ids, info in iter_object_folder(inputs[0], contract["bands"], size,
                                                        contract.get("pixel_scale_arcsec"), rows=rows):
                yield images, ids, None, {**info, "units": "the folder's own (each cutout is scaled by its noise)"}
            return
        yield from super().input_chunks(inputs, contract, catalog=catalog, units=units, rows=rows)

    def preprocessing(self, images):
        """Each cutout in units of its own sky noise, asinh-stretched, then standardised per band."""
        return noise_scaled_preprocessing(images)

    def metrics(self, test, predicted):
        """AUC, completeness at 99% rejection (overall, per theta_E x S/N bin, for Lanusse's focus), TPR0, TPR10."""
        labels = np.asarray(test.labels)
        scores = np.asarray(predicted)[:, 1]
        out = binary_metrics(labels, scores, self.classes)
        if not (0 < labels.sum() < len(labels)):
            return out
        threshold, completeness = completeness_at_rejection(labels, scores)
        out.update(rejection=REJECTION, threshold_at_rejection=threshold, completeness_at_rejection=completeness,
                   tpr0=true_positive_rate_at(labels, scores, 0), tpr10=true_positive_rate_at(labels, scores, 10))
        objects = test.objects
        if "theta_e_arcsec" not in objects or "lensed_snr" not in objects:
            return out
        theta_e, snr = np.asarray(objects["theta_e_arcsec"]), np.asarray(objects["lensed_snr"])
        lens = labels == 1
        found = scores > threshold
        focus = lens & (theta_e > FOCUS_THETA_E) & (snr > FOCUS_SNR)
        out["focus_completeness"] = float(found[focus].mean()) if focus.any() else None
        out["n_focus"] = int(focus.sum())
        grid = np.full((len(THETA_E_BINS) - 1, len(SNR_BINS) - 1), np.nan)
        counts = np.zeros(grid.shape, int)
        for a in range(grid.shape[0]):
            for b in range(grid.shape[1]):
                rows = (lens & (theta_e >= THETA_E_BINS[a]) & (theta_e < THETA_E_BINS[a + 1])
                        & (snr >= SNR_BINS[b]) & (snr < SNR_BINS[b + 1]))
                counts[a, b] = rows.sum()
                if rows.any():
                    grid[a, b] = found[rows].mean()
        out["completeness_grid"] = {
            "theta_e_bins": list(THETA_E_BINS), "snr_bins": [b if np.isfinite(b) else None for b in SNR_BINS],
            "completeness": [[None if np.isnan(v) else float(v) for v in row] for row in grid],
            "counts": counts.tolist()}
        if "kind" in objects:
            from deepsky.simulate.lensing import KINDS

            kinds = np.asarray(objects["kind"])
            # Lanusse et al.'s non-lenses were lens galaxies alone: the same figure against those only
            alone = kinds == KINDS.index("lens galaxy alone")
            if focus.any() and (alone & ~lens).sum() >= 100:
                paper_threshold = float(np.quantile(scores[alone & ~lens], REJECTION))
                out["focus_completeness_lens_galaxies"] = float(np.mean(scores[focus] > paper_threshold))
            out["false_positive_rate_by_kind"] = {
                name: float(found[(kinds == k) & ~lens].mean()) for k, name in enumerate(KINDS)
                if ((kinds == k) & ~lens).any()}
        return out

    def figures(self):
        from deepsky.report.figures import FigureSpec
        from deepsky.report.lensing import plot_completeness_grid

        return [FigureSpec(
            "completeness_grid", "Completeness at 99% rejection against Einstein radius and S/N",
            "The paper's figure (cf. Lanusse et al. 2018): the share of held-out lenses the network finds at the "
            "score that rejects 99% of non-lenses, per bin of Einstein radius and lensed-source S/N (numbers: "
            "lenses per bin). CMU DeepLens found over 90% of lenses with theta_E > 1.4 arcsec and S/N > 20 "
            "(outlined); faint and small lenses are found far less often.", plot_completeness_grid)]

    def report_sections(self, inputs):
        from deepsky.report.lensing import false_positive_section

        return [false_positive_section(inputs)]
