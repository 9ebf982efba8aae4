"""The deepsky command as users type it: listing, training, predicting, resuming."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from conftest import DEEPSKY, run_cli, shared


def test_help_lists_the_commands():
    out = run_cli("--help").stdout
    for command in ("tasks", "models", "simulate", "train", "evaluate", "report", "predict"):
        assert command in out


def test_help_does_not_import_keras_or_torch():
    code = "import sys; sys.argv=['deepsky','--help']\nimport deepsky.cli\ntry:\n deepsky.cli.main()\nexcept SystemExit: pass\nprint('keras' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().endswith("False False")


def test_tasks_and_models_one_a_line():
    tasks = [line.split("\t")[0] for line in run_cli("tasks").stdout.splitlines()]
    assert {"star-galaxy", "sdss-photometry"} <= set(tasks)
    lines = run_cli("models").stdout.splitlines()
    assert all(len(line.split("\t")) == 2 and line.split("\t")[1] for line in lines)
    assert {"kim-brunner", "mlp", "perceptron"} <= {line.split("\t")[0] for line in lines}


def test_listing_models_does_not_import_keras():
    # every model module is imported to list the registry; none may pull in a backend
    code = "import sys\nfrom deepsky import models\nmodels.describe()\nprint('keras' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_threads_and_device_options_apply_to_the_run(tmp_path):
    out = run_cli("--threads", "1", "--device", "cpu", "train", "star-galaxy", "--n", "200", "--epochs", "1",
                  "-o", tmp_path / "run")
    assert "cpu, 1 thread," in out.stderr
    for bad, words in ((("--threads", "0"), "threads must be between 1"), (("--device", "gpu"), "device must be one of")):
        result = run_cli(*bad, "tasks", check=False)
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_trained_run_holds_model_config_history(trained_run):
    for name in ("model.keras", "config.json", "history.json", "checkpoint/state.json"):
        assert (trained_run / name).exists(), name
    config = json.loads((trained_run / "config.json").read_text())
    assert config["contract"]["bands"] == list("ugriz")
    assert config["contract"]["cutout_pixels"] == [48, 48]
    assert len(json.loads((trained_run / "history.json").read_text())["loss"]) == 1


def test_predict_stack_writes_one_row_per_cutout_in_order(trained_run, small_data, tmp_path):
    out = tmp_path / "pred.csv"
    run_cli("predict", trained_run, small_data, "-o", out)
    table = Table.read(out, format="ascii.csv")
    assert list(table.colnames) == ["id", "p_galaxy", "class"]
    assert list(table["id"]) == list(range(300))
    assert set(table["class"]) <= {"star", "galaxy"}
    assert np.all((table["p_galaxy"] >= 0) & (table["p_galaxy"] <= 1))


def test_predict_by_parts_gives_the_table_of_one_read(trained_run, small_data, tmp_path):
    from deepsky.predict import predict_files

    whole = predict_files(trained_run, [small_data], tmp_path / "whole.csv")
    parts = predict_files(trained_run, [small_data], tmp_path / "parts.csv", batch_size=32, chunk_rows=64)
    assert whole["n"] == parts["n"] == 300
    a, b = Table.read(tmp_path / "whole.csv"), Table.read(tmp_path / "parts.csv")
    assert list(a["id"]) == list(b["id"]) and list(a["class"]) == list(b["class"])
    assert np.allclose(a["p_galaxy"], b["p_galaxy"], atol=1e-6)


def test_predict_real_sdss_luptitude_stack(trained_run, tmp_path):
    images = shared("sdss_stargalaxy_cutouts") / "sdss_test_images.npy"
    out = tmp_path / "sdss.parquet"
    result = run_cli("predict", trained_run, images, "-o", out)
    assert "luptitudes" in result.stdout  # channels-first luptitudes were recognised and converted
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == 20


def _write_fits_field(tmp_path, data, n_objects=3):
    """A 5-band multi-extension FITS image with simulated cutouts pasted in, and an x/y catalogue."""
    image = np.zeros((5, 160, 160), np.float32) + np.random.default_rng(0).normal(0, 0.03, (5, 160, 160))
    xs, ys = [30, 80, 120], [40, 100, 60]
    for k in range(n_objects):
        cut = data.images[k].transpose(2, 0, 1)
        image[:, ys[k] - 24 : ys[k] + 24, xs[k] - 24 : xs[k] + 24] = cut
    path = tmp_path / "field.fits"
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(band, name=name) for band, name in zip(image, "ugriz")]
    fits.HDUList(hdus).writeto(path)
    catalog = tmp_path / "cat.csv"
    Table({"id": [101, 102, 103], "x": xs, "y": ys}).write(catalog, format="ascii.csv")
    return path, catalog


def test_predict_fits_image_with_catalogue(trained_run, small_data, tmp_path):
    from deepsky.data.store import Dataset

    image, catalog = _write_fits_field(tmp_path, Dataset.load(small_data))
    out = tmp_path / "pred.fits"
    run_cli("predict", trained_run, image, "--catalog", catalog, "-o", out)
    table = Table.read(out)
    assert list(table["id"]) == [101, 102, 103]


@pytest.mark.parametrize("interrupt", [pytest.param(signal.SIGINT, id="ctrl-c", marks=pytest.mark.slow),
                                       pytest.param(signal.SIGTERM, id="sigterm")])  # one path: KeyboardInterrupt
def test_resume_after_an_interruption(small_data, tmp_path, interrupt):
    out = tmp_path / "run"
    proc = subprocess.Popen([*DEEPSKY, "train", "star-galaxy", "--data", str(small_data), "--epochs", "3",
                             "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out / "checkpoint" / "state.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(interrupt)
    _, err = proc.communicate(timeout=120)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    if proc.returncode == 0:  # finished before the signal landed: nothing to resume
        assert state["epoch"] == 3
        return
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert 1 <= state["epoch"] < 3
    assert not [p for p in out.rglob("*") if ".part" in p.name], "a temporary file was left"
    run_cli("train", "-o", out, "--resume")
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 3


@pytest.mark.slow  # default suite under 10 minutes; run with -m slow
def test_resumed_training_equals_uninterrupted_training(small_data, tmp_path, monkeypatch):
    import pytest

    # a fixed thread count: sums over another number of threads round differently, and by
    # default deepsky gives up threads while other processes (other tests) busy the cores
    monkeypatch.setenv("DEEPSKY_THREADS", "2")

    from deepsky.io import load_model
    from deepsky.train import TrainConfig, train_task

    config = TrainConfig(epochs=2, precision="fp32")
    train_task("star-galaxy", tmp_path / "a", data=small_data, config=config)

    def stop_after_first_epoch(epoch, history):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_task("star-galaxy", tmp_path / "b", data=small_data, config=config, on_epoch=stop_after_first_epoch)
    train_task(None, tmp_path / "b", resume=True)
    a = load_model(tmp_path / "a" / "model.keras").get_weights()
    b = load_model(tmp_path / "b" / "model.keras").get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_allclose(wa, wb, atol=1e-6)


def test_train_refuses_to_overwrite_a_run(trained_run, small_data):
    result = run_cli("train", "star-galaxy", "--data", small_data, "-o", trained_run, check=False)
    assert result.returncode == 2 and "already holds a run" in result.stderr


@pytest.mark.slow  # default suite under 10 minutes; run with -m slow
def test_resume_can_extend_a_finished_run(trained_run, tmp_path):
    import shutil

    run = tmp_path / "extended"
    shutil.copytree(trained_run, run)
    run_cli("train", "-o", run, "--resume", "--epochs", 2)
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 2
