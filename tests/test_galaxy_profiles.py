"""The galaxy-profiles task: targets, rotations, metrics, the CLI end to end, and that the network learns."""

import importlib.util
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import run_in_process as run_cli
from deepsky.tasks.galaxy_profiles import (
    ANGLE_MAX_AXIS_RATIO,
    BRIGHT_LIMIT,
    PARAMETERS,
    GalaxyProfiles,
    decode,
    encode,
    errors,
    profile_metrics,
)
from deepsky.data.augment import dihedral
from deepsky.data.store import Dataset


def _truth(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return {"mag": rng.uniform(19, 25, n), "half_light_radius_arcsec": 10 ** rng.uniform(-1, 0.2, n),
            "sersic_n": 10 ** rng.uniform(-0.3, 0.78, n), "axis_ratio": rng.uniform(0.2, 1.0, n),
            "position_angle_deg": rng.uniform(0, 180, n)}


def _cutouts(n, seed=0):
    """Cutouts for the direct measurements that targets are relative to: any fluxes will do."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 16, 16, 1)) * rng.uniform(0.01, 1, (n, 1, 1, 1))).astype(np.float32)


def _outputs(targets, sigma):
    """Network outputs that put the means on ``targets`` with standard deviation ``sigma`` (target units)."""
    return np.concatenate([targets, np.full_like(targets, np.log(sigma))], axis=1)


def test_decode_inverts_encode_and_its_intervals_hold_the_truth():
    truth = _truth()
    images = _cutouts(len(truth["mag"]))
    values = decode(_outputs(encode(truth, images, 0.06), 1e-3), images, 0.06)
    for name in PARAMETERS:
        delta = np.abs(errors(name, values[name], truth[name]))
        assert delta.max() < (1e-3 if name != "position_angle_deg" else 0.01), name
        assert np.all(values[f"{name}_err"] > 0), name
    for name in ("mag", "half_light_radius_arcsec", "sersic_n", "axis_ratio"):
        assert np.all((values[f"{name}_lo"] <= truth[name] + 1e-6) & (truth[name] - 1e-6 <= values[f"{name}_hi"]))


def _elongated_blob(pa_deg, q=0.3, size=48):
    """A Gaussian ellipse at angle ``pa_deg`` counter-clockwise from +x (array axis 1); +y is axis 0."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    t = np.radians(pa_deg)
    major = x * np.cos(t) + y * np.sin(t)
    minor = -x * np.sin(t) + y * np.cos(t)
    return np.exp(-0.5 * ((major / 8) ** 2 + (minor / (8 * q)) ** 2))[None, :, :, None].astype(np.float32)


def _measured_angle(image):
    """Position angle (degrees, from +x counter-clockwise) from the second moments of a (H, W) image."""
    size = image.shape[0]
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    w = image / image.sum()
    xx, yy, xy = (w * x * x).sum(), (w * y * y).sum(), (w * x * y).sum()
    return np.degrees(0.5 * np.arctan2(2 * xy, xx - yy)) % 180


@pytest.mark.parametrize("choice", range(8))
def test_augmented_angles_follow_the_turned_pixels(choice):
    """The angle the targets say after a turn is the angle measured on the turned image."""
    pa = 23.0
    image = _elongated_blob(pa)
    assert abs(errors("position_angle_deg", _measured_angle(image[0, :, :, 0]), pa)) < 0.5
    turned = dihedral(image, np.random.default_rng(0), np.array([choice]))
    targets = GalaxyProfiles.turn_targets(
        encode({**_truth(1), "position_angle_deg": np.array([pa])}, turned, 0.06), np.array([choice]))
    predicted = decode(_outputs(targets, 1e-3), turned, 0.06)["position_angle_deg"][0]
    assert abs(errors("position_angle_deg", predicted, _measured_angle(turned[0, :, :, 0]))) < 0.5


def test_metrics_measure_bias_scatter_outliers_and_coverage():
    truth = _truth(4000, seed=1)
    rng = np.random.default_rng(2)
    sigma = 0.1
    predicted = {name: np.asarray(truth[name], float).copy() for name in PARAMETERS}
    predicted["mag"] = truth["mag"] + sigma * rng.standard_normal(4000)
    predicted["mag_lo"], predicted["mag_hi"] = predicted["mag"] - sigma, predicted["mag"] + sigma
    predicted["axis_ratio"] = truth["axis_ratio"] + 0.05
    predicted["half_light_radius_arcsec"] = truth["half_light_radius_arcsec"] * 2.0  # all 100% too large
    metrics = profile_metrics(truth, predicted)
    mag = metrics["parameters"]["mag"]
    assert abs(mag["bias"]) < 0.01 and abs(mag["scatter"] - sigma) < 0.01
    assert abs(metrics["parameters"]["axis_ratio"]["bias"] - 0.05) < 1e-9
    assert abs(mag["coverage_68"] - 0.683) < 0.03
    assert mag["outlier_fraction"] < 0.01
    radius = metrics["parameters"]["half_light_radius_arcsec"]
    assert radius["outlier_fraction"] == 1.0 and abs(radius["bias"] - 1.0) < 1e-9
    assert len(mag["per_bin"]) == 6 and sum(b["n"] for b in mag["per_bin"]) == 4000
    angle = metrics["parameters"]["position_angle_deg"]
    assert angle["n"] == int((truth["axis_ratio"] < ANGLE_MAX_AXIS_RATIO).sum())


def test_an_added_bright_sample_counts_at_the_bright_end_but_not_overall():
    truth = _truth(3000, seed=4)
    extra = np.asarray(truth["mag"]) < BRIGHT_LIMIT
    extra[np.flatnonzero(extra)[::2]] = False  # half the bright galaxies play the added sample
    predicted = {name: np.asarray(truth[name], float).copy() for name in PARAMETERS}
    predicted["mag"] = predicted["mag"] + np.where(extra, 1.0, 0.0)  # only the added ones are wrong
    metrics = profile_metrics({**truth, "bright_sample": extra}, predicted)
    mag = metrics["parameters"]["mag"]
    assert metrics["n"] == mag["n"] == 3000 - extra.sum() and metrics["n_focus_sample"] == extra.sum()
    assert mag["outlier_fraction"] == 0.0  # overall: the survey's mix without the added galaxies
    assert mag["focus"]["n"] == int((np.asarray(truth["mag"]) < BRIGHT_LIMIT).sum())
    assert abs(mag["focus"]["outlier_fraction"] - extra.sum() / mag["focus"]["n"]) < 1e-12
    assert sum(b["n"] for b in mag["per_bin"]) == 3000


def test_float32_head_keeps_precision_that_bf16_would_round_away():
    import keras

    from deepsky.config import bf16_supported
    from deepsky.predict import predict_array

    if not bf16_supported():
        pytest.skip("this CPU has no bf16: predictions run in float32 anyway")
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    head = keras.layers.Dense(2, bias_initializer=keras.initializers.Constant(1000.123))
    model = keras.Model(inputs, head(hidden))
    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    exact = predict_array(model, x, precision="fp32")
    assert np.abs(predict_array(model, x, precision="bf16", float32_head=True) - exact).max() < 0.1
    assert np.abs(predict_array(model, x, precision="bf16") - exact).max() > 0.1  # bf16 steps are 4 at 1000


@pytest.fixture(scope="module")
def profiles_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "profiles.h5"
    run_cli("simulate", "galaxy-profiles", "--n", 400, "--seed", 3, "-o", path)
    return path


@pytest.fixture(scope="module")
def profiles_run(profiles_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("profiles_run") / "run"
    run_cli("train", "galaxy-profiles", "--data", profiles_data, "--epochs", 1, "-o", run)
    return run


def test_cli_trains_evaluates_reports_and_predicts(profiles_data, profiles_run, tmp_path):
    import csv
    import json

    run = profiles_run
    result = run_cli("evaluate", run, "--n", 24)
    assert "speed-up over the fit per galaxy" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    # 24 with the survey's magnitude mix, and 18 more brighter than 21 for the bright-end figures only
    assert metrics["n"] == 24 and metrics["baseline"]["n"] == 24 and metrics["n_focus_sample"] == 18
    with h5py.File(run / "evaluation.h5", "r") as f:
        extra, mag = f["objects/bright_sample"][...], f["objects/mag"][...]
    assert len(extra) == 42 and extra[24:].all() and not extra[:24].any() and (mag[extra] < BRIGHT_LIMIT).all()
    bright_n = metrics["parameters"]["mag"]["focus"]["n"]
    assert bright_n == 18 + int((mag[:24] < BRIGHT_LIMIT).sum()) == metrics["baseline"]["parameters"]["mag"]["focus"]["n"]
    assert "bright-end scatter / the fit's: Sersic n" in result.stdout
    # the headline numbers (and their timing) are those of the default orientation average
    assert metrics["views"] == GalaxyProfiles.default_views == 4 and "orientations averaged 4" in result.stdout
    assert metrics["baseline"]["parameters"]["mag"]["scatter"] < 0.3  # the fit works on these images
    run_cli("report", run)
    page = (run / "report.html").read_text()
    assert "Bias, scatter and outliers per bin" in page and (run / "figures/errors_by_bin.png").exists()
    assert "18 of the galaxies at the bright end (magnitude below 21.0)" in page and f"({bright_n} objects)" in page
    out = tmp_path / "params.csv"
    run_cli("predict", run, profiles_data, "-o", out)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 400
    for name in PARAMETERS:
        assert float(rows[0][f"{name}_err"]) > 0 and np.isfinite(float(rows[0][name]))


def test_fits_cutouts_of_the_wrong_size_are_one_clear_error(profiles_run, tmp_path):
    from astropy.io import fits

    run = profiles_run
    good, bad = tmp_path / "good.fits", tmp_path / "bad.fits"
    fits.writeto(good, np.zeros((64, 64), np.float32) + 1e-3)
    fits.writeto(bad, np.zeros((50, 50), np.float32))
    out = tmp_path / "out.csv"
    run_cli("predict", run, good, "-o", out)
    assert out.exists()
    out.unlink()
    result = run_cli("predict", run, good, bad, "-o", out, check=False)
    assert result.returncode == 2 and "bad.fits" in result.stderr and "50x50" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.slow  # default suite under 10 minutes; run with -m slow
def test_the_network_learns_magnitudes_and_radii():
    """A short training on 3,000 galaxies already beats guessing by far (held-out, another seed)."""
    from deepsky.config import set_seed
    from deepsky.train import TrainConfig, fit

    task = GalaxyProfiles()
    train = task.prepare(task.simulate(3000, 11), "train")
    test = task.prepare(task.simulate(400, 12), "test")
    set_seed(0)
    model = task.build_model("sersic-cnn", train)
    fit(model, train.images, train.labels, test.images[:200], test.labels[:200],
        TrainConfig(epochs=6, batch_size=64, learning_rate=2e-3), objective=task.objective,
        augmentation=task.augmentation(TrainConfig()))
    from deepsky.predict import predict_array

    values = task.decode(predict_array(model, test.images[200:], float32_head=True), test.images[200:])
    truth = {k: v[200:] for k, v in test.objects.items()}
    metrics = task.metrics(Dataset(inputs=test.images[200:], objects=truth), values)
    mag = metrics["parameters"]["mag"]
    guess = 1.4826 * np.median(np.abs(truth["mag"] - np.median(truth["mag"])))
    assert mag["scatter"] < 0.25 * guess
    assert metrics["parameters"]["half_light_radius_arcsec"]["scatter"] < 0.3
    assert 0.4 < metrics["parameters"]["mag"]["coverage_68"] < 0.95  # the uncertainties mean something


def test_sersic_cnn_layers_and_one_gaussian_training_step():
    import keras

    from deepsky import models
    from deepsky.losses import GaussianNLL

    model = models.create("sersic-cnn", input_shape=(64, 64, 3), num_classes=12)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv1"] == (31, 31, 16) and shapes["conv2"] == (28, 28, 32) and shapes["conv4"] == (4, 4, 128) and shapes["outputs"] == (12,)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=GaussianNLL())
    before = model.get_layer("conv1").kernel.numpy().copy()
    rng = np.random.default_rng(0)
    loss = model.train_on_batch(rng.random((4, 64, 64, 3), dtype=np.float32), rng.standard_normal((4, 6)))
    assert np.isfinite(loss) and not np.allclose(before, model.get_layer("conv1").kernel.numpy())


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from deepsky import models
from deepsky.losses import GaussianNLL
model = models.create("sersic-cnn", input_shape=(48, 48, 3), num_classes=12)
model.compile(optimizer="sgd", loss=GaussianNLL())
rng = np.random.default_rng(0)
print("jax ok", float(model.train_on_batch(rng.random((4, 48, 48, 3), dtype=np.float32), rng.standard_normal((4, 6)))))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
def test_sersic_cnn_trains_one_step_on_jax():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and "jax ok" in result.stdout, result.stderr[-2000:]


def test_the_layers_choose_the_backend_when_nothing_has_yet():
    """``deepsky train galaxy-profiles`` reaches deepsky.layers before any model code: it must not
    leave Keras to pick TensorFlow (absent) when KERAS_BACKEND is unset."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    script = "import deepsky.layers.references as r, keras; print(keras.backend.backend())"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "torch", result.stderr[-2000:]
