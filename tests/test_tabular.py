"""The sdss-photometry task: catalogue reading, training, held-out evaluation, prediction, experiments, fine-tuning."""

import json

import numpy as np
import pytest
from astropy.table import Table

from conftest import run_cli, shared
from deepsky.data.photometry import load_photometry
from deepsky.errors import DeepskyError

CLASSES = ("GALAXY", "STAR", "QSO")


def write_catalogue(path, n=900, seed=0, sentinel_rows=(5,)):
    """Three classes that differ in colour (as galaxies, stars and quasars do), SDSS column names."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    r = rng.uniform(16, 20, n)
    colour = np.array([[1.8, 0.9, 0.4, 0.3], [1.2, 0.4, 0.15, 0.05], [0.2, 0.2, 0.1, 0.1]])[labels]
    colour += rng.normal(0, 0.12, colour.shape)
    g = r + colour[:, 1]
    u = g + colour[:, 0]
    i = r - colour[:, 2]
    z = i - colour[:, 3]
    table = Table({"obj_ID": np.arange(1000, 1000 + n) * 1.0e12, "u": u, "g": g, "r": r, "i": i, "z": z,
                   "class": np.array(CLASSES)[labels], "redshift": labels * 1.0})
    for row in sentinel_rows:
        table["u"][row] = table["g"][row] = -9999.0
    table.write(path, format="ascii.csv", overwrite=True)
    return path


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return write_catalogue(tmp_path_factory.mktemp("cat") / "photometry.csv")


@pytest.fixture(scope="module")
def photometry_run(tmp_path_factory, catalogue):
    out = tmp_path_factory.mktemp("runs") / "phot"
    result = run_cli("train", "sdss-photometry", "--data", catalogue, "--epochs", 4, "-o", out)
    assert "dropped 1 rows with missing or placeholder magnitudes" in " ".join(result.stderr.split())  # rich wraps lines
    run_cli("evaluate", out)
    return out


def test_sentinel_missing_and_text_magnitudes_are_flagged_not_guessed(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("objid,u,g,r,i,z\n7,19,18,17,16.5,16.2\n8,-9999,18,17,16,15\n9,,18,17,16,15\n"
                    "10,99,18,17,16,15\n11,nan,18,17,16,15\n")
    photometry = load_photometry(path, "ugriz")
    assert photometry.valid.tolist() == [True, False, False, False, False]
    assert photometry.ids.tolist() == ["7", "8", "9", "10", "11"]
    assert "u placeholder -9999" in photometry.flags[1] and "u missing" in photometry.flags[2]
    assert "placeholder 99" in photometry.flags[3] and "not a number" in photometry.flags[4]
    assert np.isnan(photometry.magnitudes[1:, 0]).all() and photometry.magnitudes[0, 0] == 19


def test_catalogue_without_the_bands_names_the_missing_columns(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,u,g\n1,2,3\n")
    with pytest.raises(DeepskyError, match=r"c.csv: the catalogue has no column\(s\) r, i, z"):
        load_photometry(path, "ugriz")


def test_training_never_sees_the_held_out_rows(photometry_run, catalogue):
    from deepsky import tasks
    from deepsky.runs import Run

    config = Run(photometry_run).config
    task = tasks.get("sdss-photometry")
    train, _ = task.training_data(catalogue, seed=config["train"]["seed"])
    test, source, held_out = task.test_data(config)
    assert held_out and source["part"] == "held-out test rows"
    assert not set(train.objects["row"]) & set(test.objects["row"])
    assert len(train) + len(test) == 899  # one row has placeholder magnitudes
    assert config["n_train"] + config["n_validation"] == len(train)


def test_held_out_metrics_beside_the_baseline_and_report(photometry_run):
    metrics = json.loads((photometry_run / "metrics.json").read_text())
    assert metrics["held_out"] is True
    assert metrics["accuracy"] > 0.9, metrics["accuracy"]  # the colours separate these classes well
    assert set(metrics["per_class"]) == set(CLASSES)
    assert np.array(metrics["confusion"]).sum() == metrics["n"]
    assert "random forest" in metrics["baseline"]["name"] and metrics["baseline"]["accuracy"] > 0.8
    run_cli("report", photometry_run)
    html = (photometry_run / "report.html").read_text()
    assert "Confusion matrix" in html and "Per class" in html and "Macro-averaged F1" in html
    assert (photometry_run / "figures" / "confusion.png").exists()


def test_predict_keeps_every_row_in_order_and_flags_unusable_ones(photometry_run, tmp_path):
    catalogue = tmp_path / "new.csv"
    catalogue.write_text("u,g,r,i,z\n19.0,17.8,17.4,17.25,17.2\n-9999,-9999,18,17.9,17.8\n"
                         "18.9,18.7,18.5,18.4,18.3\n,18.2,18.0,17.9,17.8\n")
    out = tmp_path / "pred.csv"
    run_cli("predict", photometry_run, catalogue, "-o", out)
    table = Table.read(out, format="ascii.csv")
    assert table.colnames == ["id", "p_GALAXY", "p_STAR", "p_QSO", "class", "flag"]
    assert table["id"].tolist() == [0, 1, 2, 3]  # no id column: the row number
    classes = [str(c) if c is not np.ma.masked else "" for c in table["class"].filled("")]
    assert classes[0] in CLASSES and classes[2] in CLASSES and classes[1] == classes[3] == ""
    probabilities = np.array([[table[f"p_{c}"][k] for c in CLASSES] for k in (0, 2)], dtype=float)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    flags = table["flag"].filled("")
    assert "placeholder" in flags[1] and "missing" in flags[3] and flags[0] == ""


def test_predict_refuses_a_catalogue_without_magnitudes(photometry_run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("objid,u,g\n1,19,18\n")
    out = tmp_path / "never.csv"
    result = run_cli("predict", photometry_run, bad, "-o", out, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.csv: the catalogue has no column(s) r, i, z" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".*part*"))


@pytest.mark.slow  # default suite under 10 minutes; run with -m slow
def test_experiment_batchnorm_writes_curves_and_held_out_accuracy(catalogue, tmp_path):
    out = tmp_path / "bn"
    run_cli("experiment", "batchnorm", "--data", catalogue, "--epochs", 2, "--n", 300, "-o", out)
    record = json.loads((out / "experiment.json").read_text())
    assert [v["label"] for v in record["variants"]] == ["without BN", "with BN"]
    for variant in record["variants"]:
        assert len(variant["history"]["val_loss"]) == 2 and 0 <= variant["test"]["accuracy"] <= 1
    assert record["variants"][1]["model_options"]["batch_norm"] is True
    assert (out / "figures" / "curves.png").stat().st_size > 10_000
    assert "with BN" in (out / "report.html").read_text()


def test_experiment_optimizers_trains_each_of_the_lecture_optimizers(catalogue, tmp_path):
    from deepsky.experiments import run_experiment

    record_path = run_experiment("optimizers", tmp_path / "opt", data=catalogue, epochs=1, n=200).with_name(
        "experiment.json")
    record = json.loads(record_path.read_text())
    assert [v["optimizer"] for v in record["variants"]] == ["sgd", "nesterov", "adagrad", "adadelta", "rmsprop", "adam"]
    assert record["variants"][3]["learning_rate"] == 1.0  # Zeiler's Adadelta needs no learning rate


def test_unknown_experiment_is_one_line(tmp_path):
    result = run_cli("experiment", "nope", "-o", tmp_path / "x", check=False)
    assert result.returncode == 2 and "unknown experiment 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_finetune_freezes_the_first_layers_and_trains_the_rest(photometry_run, catalogue, tmp_path):
    from deepsky.io import load_model

    out = tmp_path / "ft"
    run_cli("finetune", photometry_run, "--data", catalogue, "--freeze", 2, "--epochs", 1, "-o", out)
    transfer = json.loads((out / "config.json").read_text())["transfer"]
    assert transfer["frozen_layers"] == ["dense1", "dense2"] and "logits" in transfer["copied_layers"]
    before, after = load_model(photometry_run / "model.keras"), load_model(out / "model.keras")
    for name in ("dense1", "dense2"):
        np.testing.assert_array_equal(before.get_layer(name).kernel.numpy(), after.get_layer(name).kernel.numpy())
    assert not np.allclose(before.get_layer("dense3").kernel.numpy(), after.get_layer("dense3").kernel.numpy())
    result = run_cli("finetune", photometry_run, "--data", catalogue, "--freeze", 9, "-o", tmp_path / "ft9", check=False)
    assert result.returncode == 2 and "--freeze must lie between 0 and 3" in result.stderr


def test_sdss_dr17_photometry_is_read_with_its_placeholder_row_dropped():
    folder = shared("sdss_photometry")
    from deepsky import tasks

    task = tasks.get("sdss-photometry")
    data, source = task.read_labelled(folder / "sdss_dr17_10k.csv")
    assert source["n_rows"] == 10000 and source["dropped"]["unusable_magnitudes"] == 1
    assert len(data) == 9999 and np.bincount(data.labels).tolist() == [5975, 2138, 1886]
