"""The run report: figures and HTML from a fake evaluated run, without training.

A run directory is assembled from a real (untrained) Kim & Brunner model, a
40-cutout simulation and random probabilities, in the formats that
``deepsky train`` and ``deepsky evaluate`` write.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from deepsky.errors import DeepskyError
from deepsky.runs import write_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_FIGURES = {"learning_curves", "roc", "purity_completeness", "calibration", "gallery_worst",
               "gallery_examples", "feature_maps"}


@pytest.fixture(scope="module")
def fast_orthogonal():
    """Orthogonal initial weights cost ~10 s of QR for the 2048-unit layers; any weights do here."""
    from deepsky.config import ensure_backend

    ensure_backend()
    import keras

    def normal(self, shape, dtype=None):
        return keras.random.normal(shape, stddev=0.05, dtype=dtype)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.initializers.Orthogonal, "__call__", normal)
        yield


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory, fast_orthogonal):
    """A saved, untrained Kim & Brunner model and the 40 cutouts it is 'evaluated' on."""
    from deepsky import tasks
    from deepsky.simulate.stargalaxy import make_star_galaxy

    data = make_star_galaxy(n=40, seed=1, workers=1)
    model = tasks.get("star-galaxy").build_model("kim-brunner", data)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path, data


def make_run(run_dir, model_path, data, baseline=True, real_data=True, history=True, model=True):
    """Write config.json, history.json, metrics.json, evaluation.h5 (and model.keras) into ``run_dir``."""
    import h5py

    from deepsky import tasks
    from deepsky.evaluate import _write_evaluation
    from deepsky.objectives import Evaluation, _classification_gallery

    task = tasks.get("star-galaxy")
    run_dir.mkdir(parents=True)
    rng = np.random.default_rng(3)
    labels = data.labels.astype(np.int64)
    # informative but imperfect scores, so every curve has something to show
    p_galaxy = np.clip(0.25 + 0.5 * labels + rng.normal(0, 0.25, len(labels)), 0, 1)
    probabilities = np.stack([1 - p_galaxy, p_galaxy], axis=1).astype(np.float32)
    write_json(run_dir / "config.json", {
        "task": task.name, "model": "kim-brunner", "contract": task.contract(data),
        "data": {"simulated": True, "n": 400, "seed": 0},
        "train": {"epochs": 3, "batch_size": 64, "learning_rate": 5e-4, "warmup_epochs": 0.5,
                  "weight_decay": 1e-4, "precision": "auto", "augment": True, "seed": 0},
        "n_train": 360, "n_validation": 40, "backend": "torch", "precision": "fp32", "deepsky_version": "0.1.0",
    })
    if history:
        write_json(run_dir / "history.json", {
            "loss": [0.6, 0.4, 0.3], "accuracy": [0.7, 0.82, 0.88], "val_loss": [0.5, 0.38, 0.35],
            "val_accuracy": [0.75, 0.84, 0.86], "val_auc": [0.8, 0.9, 0.93], "seconds": [12.0, 11.5, 11.8],
        })
    metrics = task.metrics(data, probabilities)
    metrics.update({"test_data": {"simulated": True, "n": len(labels), "seed": 1000003}, "held_out": True,
                    "task": task.name, "model": "kim-brunner", "paper": task.paper})
    _write_evaluation(run_dir / "evaluation.h5", data, Evaluation(
        metrics, {"labels": labels, "probabilities": probabilities}, _classification_gallery(data, probabilities)))
    if baseline:
        scores = np.clip(0.3 + 0.4 * labels + rng.normal(0, 0.3, len(labels)), 0, 1)
        metrics["baseline"] = {"name": "random forest", **task.metrics(data, np.stack([1 - scores, scores], 1))}
        with h5py.File(run_dir / "evaluation.h5", "a") as f:
            f["baseline_probabilities"] = np.stack([1 - scores, scores], 1)
    if real_data:
        real = task.metrics(data.subset(np.arange(20)), probabilities[:20])
        metrics["real_data"] = {**real, "source": "SDSS DR13 cutouts <spectroscopic>"}
    write_json(run_dir / "metrics.json", metrics)
    if model:
        shutil.copy(model_path, run_dir / "model.keras")
    return metrics


def referenced_figures(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def test_report_of_a_full_run_has_every_figure(tmp_path, model_and_data):
    from deepsky.report import write_report
    from deepsky.report.tables import fmt

    run_dir = tmp_path / "run"
    metrics = make_run(run_dir, *model_and_data)
    stages = []
    path = write_report(run_dir, on_stage=stages.append)

    assert path == run_dir / "report.html" and path.exists()
    html = path.read_text()
    assert "<title>deepsky run report: star-galaxy</title>" in html
    assert "ROC AUC" in html and fmt(metrics["roc_auc"]) in html
    assert "random forest" in html and fmt(metrics["baseline"]["roc_auc"]) in html
    assert "Real survey data" in html and "&lt;spectroscopic&gt;" in html  # escaped, not raw
    assert "Kim, E. J. &amp; Brunner" in html
    assert f"deepsky train star-galaxy -o {run_dir}" in html and f"deepsky report {run_dir}" in html
    figures = referenced_figures(html)
    assert {f.removeprefix("figures/").removesuffix(".png") for f in figures} == ALL_FIGURES
    for figure in figures:
        png = run_dir / figure
        assert png.stat().st_size > 1000 and png.read_bytes()[:8] == PNG_MAGIC, figure
    assert stages and not list(run_dir.glob("**/.*part*"))  # temporary files renamed away


def test_report_without_optional_pieces_skips_their_figures(tmp_path, model_and_data):
    """No baseline, real data, history or model: the report still comes out, without those figures."""
    from deepsky.report import write_report

    run_dir = tmp_path / "bare"
    make_run(run_dir, *model_and_data, baseline=False, real_data=False, history=False, model=False)
    html = write_report(run_dir).read_text()
    figures = {f.removeprefix("figures/").removesuffix(".png") for f in referenced_figures(html)}
    assert figures == ALL_FIGURES - {"learning_curves", "feature_maps"}
    assert "random forest" not in html and "Real survey data" not in html
    for name in figures:
        assert (run_dir / "figures" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC


def test_report_of_an_unevaluated_run_names_metrics_json(tmp_path):
    run_dir = tmp_path / "x"
    run_dir.mkdir()
    write_json(run_dir / "config.json", {"task": "star-galaxy", "model": "kim-brunner"})
    from deepsky.report import write_report

    with pytest.raises(DeepskyError, match=r"no metrics\.json.*deepsky evaluate") as error:
        write_report(run_dir)
    assert str(run_dir) in str(error.value) and "\n" not in str(error.value)
    assert not (run_dir / "report.html").exists()


def test_report_of_a_non_run_names_config_json(tmp_path):
    from deepsky.report import write_report

    with pytest.raises(DeepskyError, match=r"config\.json"):
        write_report(tmp_path / "nowhere")


def test_colour_composite_is_gri_or_grey():
    from deepsky.report.gallery import colour_composite

    image = np.random.default_rng(0).normal(0, 0.02, (24, 24, 5))
    image[10:14, 10:14, 3] += 5.0  # bright only in i: red in the composite
    rgb = colour_composite(image, ["u", "g", "r", "i", "z"])
    centre = rgb[11, 11]
    assert rgb.shape == (24, 24, 3) and centre[0] > 0.9 and centre[2] < 0.5
    grey = colour_composite(image, ["a", "b", "c", "d", "e"])
    assert np.array_equal(grey[..., 0], grey[..., 1])


def test_the_browser_check_sees_a_broken_image_a_missing_figure_and_a_console_error(tmp_path, browser):
    from conftest import report_problems

    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "unshown.png").write_bytes(b"")
    page = tmp_path / "report.html"
    page.write_text('<html><body><img src="figures/absent.png"><script>console.error("boom")</script></body></html>')
    problems = report_problems(browser, page)
    assert "broken image figures/absent.png" in problems and "figure not shown: unshown.png" in problems
    assert any("boom" in problem for problem in problems)


def test_the_regression_summary_gives_the_focus_scatter_ratio_when_the_task_did_not():
    from types import SimpleNamespace

    from deepsky.metrics import Parameter
    from deepsky.report.regression import regression_summary_table

    def entry(scatter, focus):
        return {"bias": 0.0, "scatter": scatter, "outlier_fraction": 0.0, "coverage_68": 0.68,
                "focus": {"scatter": focus, "n": 60}}

    parameters = [Parameter("theta_e_arcsec", "Einstein radius", "arcsec"), Parameter("e1", "ellipticity e1", "")]
    metrics = {"parameters": {"theta_e_arcsec": entry(0.02, 0.018), "e1": entry(0.06, 0.05)},
               "comparison": {"focus_scatter_ratio": {"e1": 9.99}}}  # a task's own ratio wins
    baseline = {"parameters": {"theta_e_arcsec": entry(0.03, 0.012), "e1": entry(0.07, 0.05)}}
    page = regression_summary_table(SimpleNamespace(metrics=metrics, baseline=baseline, parameters=parameters))
    assert ">1.50<" in page  # 0.018 / 0.012, the two scatters beside it
    assert ">9.99<" in page
