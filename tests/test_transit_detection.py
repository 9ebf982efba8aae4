"""Transit detection: the batman simulator on Pearson's grid, the classical detectors and the networks."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from deepsky.fitting.transits import best_threshold, box_least_squares, least_squares_transit
from deepsky.simulate.transits import (
    NO_REALISM,
    PEARSON_TEST,
    PEARSON_TRAIN,
    Realism,
    TransitGrid,
    fill_gaps,
    make_transits,
    window_times,
)


def test_same_seed_same_curves_and_the_grids_are_pearsons():
    a, b = make_transits(300, seed=3), make_transits(300, seed=3)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert a.inputs.shape == (300, 180, 1) and a.inputs.dtype == np.float32
    assert not np.array_equal(a.inputs, make_transits(300, seed=4).inputs)
    times = window_times()
    assert len(times) == 180 and np.allclose(np.diff(times) * 1440, 2.0, atol=0.02)
    assert set(np.unique(a.objects["depth_ppm"])) <= {200, 500, 1000, 2500, 5000, 10000}
    assert set(np.round(np.unique(a.objects["depth_over_noise"]), 3)) <= {1.5, 2.5, 3.5, 4.5}
    test = make_transits(300, seed=3, grid=PEARSON_TEST)
    assert np.unique(np.round(test.objects["depth_over_noise"], 3)).min() == 0.25
    assert len(PEARSON_TEST.depth_over_noise) == 12 and PEARSON_TRAIN.inclination_deg == (86.0, 87.0, 90.0)


def test_every_transit_has_a_twin_of_the_same_star_without_it():
    data = make_transits(400, seed=1, realism=Realism(eclipsing_binary=0.25))
    kinds = data.objects["kind"]
    assert (kinds == "planet").sum() == (kinds == "twin").sum() and (kinds == "eb").sum() == 100
    assert np.array_equal(data.labels, (kinds == "planet").astype(int))
    # twins share the planet's star (variability and noise level), not its dip
    planets, twins = np.flatnonzero(kinds == "planet"), np.flatnonzero(kinds == "twin")
    key = lambda rows: sorted(zip(data.objects["variability_phase"][rows], data.objects["noise_ppm"][rows],
                                  data.objects["variability_amplitude_ppm"][rows]))
    assert key(planets) == key(twins)


def test_a_clean_transit_has_its_depth_and_an_eclipsing_binary_is_v_shaped():
    clean = TransitGrid("clean", depth_ppm=(10000,), inclination_deg=(90.0,), depth_over_noise=(1e6,),
                        variability_amplitude_ppm=(0,))
    data = make_transits(40, seed=2, grid=clean, realism=Realism(0, 0, 0, 0.5, 0))
    flux = data.inputs[..., 0]
    planet = flux[data.objects["kind"] == "planet"][0]
    # limb darkening makes the centre a little deeper than (Rp/R*)^2
    assert 0.009 < 1 - planet.min() < 0.0125 and planet[0] == pytest.approx(1.0, abs=1e-4)
    eb = flux[data.objects["kind"] == "eb"][0]
    assert 1 - eb.min() == pytest.approx(0.01, rel=0.02)  # scaled to the grid's depth: only the shape differs
    # a V: the flux at half the eclipse's width is well above the bottom; a transit's flat floor is not
    for curve, flat in ((planet, True), (eb, False)):
        inside = np.flatnonzero(curve < 1 - 1e-4)
        quarter = inside[len(inside) // 4]
        ratio = (1 - curve[quarter]) / (1 - curve.min())
        assert (ratio > 0.8) == flat, ratio


def test_realism_adds_its_features_and_gaps_are_filled():
    data = make_transits(500, seed=5, realism=Realism(red_noise=1.0, gap=1.0, momentum_dump=1.0))
    assert data.objects["red_noise"].all() and data.objects["gap"].all() and data.objects["momentum_dump"].all()
    assert np.isfinite(data.inputs).all()
    plain = make_transits(500, seed=5, realism=NO_REALISM)
    assert not plain.objects["gap"].any() and (plain.objects["kind"] != "eb").all()
    np.testing.assert_allclose(plain.objects["mid_transit_days"], 1.0)
    np.testing.assert_allclose(fill_gaps(np.array([np.nan, 1.0, np.nan, 3.0, np.nan])), [1, 1, 2, 3, 3])


def test_least_squares_and_bls_find_clear_transits_and_not_flat_curves():
    grid = TransitGrid("easy", depth_over_noise=(4.0,), variability_amplitude_ppm=(0,))
    data = make_transits(400, seed=6, grid=grid, realism=NO_REALISM)
    times = window_times()
    for method in (least_squares_transit, box_least_squares):
        snr = method(data.inputs[..., 0], times)["snr"]
        threshold = best_threshold(snr, data.labels)
        assert ((snr >= threshold) == data.labels).mean() > 0.97, method.__name__


def test_best_threshold_maximises_accuracy():
    statistic = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 0.35])
    labels = np.array([0, 0, 0, 1, 1, 1])
    threshold = best_threshold(statistic, labels)
    assert 0.3 < threshold <= 0.35 and ((statistic >= threshold) == labels).all()


def test_the_wavelet_layer_gives_pywavelets_db2_coefficients():
    pywt = pytest.importorskip("pywt")
    import keras

    from deepsky import models

    model = models.create("pearson-wavelet-mlp", input_shape=(180, 1), num_classes=2)
    wavelet = keras.Model(model.inputs[0], model.get_layer("db2_level1").output)
    x = np.random.default_rng(0).normal(size=(1, 180, 1)).astype(np.float32)
    out = np.asarray(wavelet(x))[0]
    approximation, detail = pywt.dwt((x[0, :, 0] - x.mean()) / x.std(), "db2", mode="zero")
    # the layer keeps the interior coefficients (pywt adds one at each edge from zero padding)
    np.testing.assert_allclose(out[:, 0], approximation[1:-1], atol=1e-4)
    np.testing.assert_allclose(out[:, 1], detail[1:-1], atol=1e-4)


def test_a_short_training_beats_the_least_squares_fit_on_the_test_grid():
    """Pearson's claim on held-out curves of his test grid (another seed): the CNN ahead of least squares."""
    from deepsky import tasks
    from deepsky.config import set_seed
    from deepsky.predict import predict_array
    from deepsky.train import TrainConfig, fit

    task = tasks.get("transit-detection")
    train, test = task.simulate(10000, 11), task.simulate_test(3000, 12)
    set_seed(0)
    model = task.build_model("pearson-cnn", train)
    fit(model, train.inputs, train.labels, test.inputs[:300], test.labels[:300],
        TrainConfig(epochs=6, batch_size=64, learning_rate=1e-3), augmentation=task.augmentation(TrainConfig()))
    network = task.metrics(test, predict_array(model, test.inputs))
    times = window_times()
    threshold = best_threshold(least_squares_transit(train.inputs[:2000, :, 0], times)["snr"], train.labels[:2000])
    fitted = least_squares_transit(test.inputs[..., 0], times)["snr"] >= threshold
    least_squares_accuracy = (fitted == test.labels).mean()
    assert network["accuracy"] > least_squares_accuracy + 0.03, (network["accuracy"], least_squares_accuracy)
    rates = [row["detection_rate"] for row in network["by_depth_over_noise"]]
    assert rates[-1] > rates[0] + 0.4  # deeper transits (relative to the noise) are found far more often


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from deepsky import models
rng = np.random.default_rng(0)
curves = (1 + 1e-3 * rng.normal(size=(4, 180, 1))).astype(np.float32)
views = {"global_view": rng.normal(size=(4, 201, 1)).astype(np.float32),
         "local_view": rng.normal(size=(4, 61, 1)).astype(np.float32)}
for name in ("pearson-mlp", "pearson-wavelet-mlp", "pearson-cnn", "astronet"):
    shape = {k: v.shape[1:] for k, v in views.items()} if name == "astronet" else (180, 1)
    model = models.create(name, input_shape=shape, num_classes=2)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = [views["global_view"], views["local_view"]] if name == "astronet" else curves
    loss = float(model.train_on_batch(x, np.array([0, 1, 0, 1])))
    assert np.isfinite(loss), (name, loss)
    print("jax ok", name, loss, flush=True)
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
@pytest.mark.slow  # compiling every graph with XLA: ./test.sh -m slow (test_backends keeps JAX in the default run)
def test_the_light_curve_networks_train_one_step_on_jax():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and result.stdout.count("jax ok") == 4, result.stderr[-2000:]


def test_the_experiment_draws_pearsons_figure_for_three_networks_and_two_detectors(tmp_path):
    import json

    from conftest import run_in_process

    out = tmp_path / "exp"
    run_in_process("experiment", "transits", "-o", out, "--n", 1200, "--epochs", 1)
    record = json.loads((out / "experiment.json").read_text())
    assert [v["label"] for v in record["variants"]] == ["pearson-mlp", "pearson-wavelet-mlp", "pearson-cnn"]
    assert set(record["classical"]) == {"least_squares", "bls"} and record["n_test"] == 600
    for metrics in [v["metrics"] for v in record["variants"]] + list(record["classical"].values()):
        assert len(metrics["by_depth_over_noise"]) == 12 and 0 <= metrics["accuracy"] <= 1
    assert (out / "figures" / "detection_rate.png").exists()
    page = (out / "report.html").read_text()
    assert "box least squares" in page and "pearson-wavelet-mlp" in page
    again = run_in_process("experiment", "transits", "-o", out, check=False)
    assert again.returncode == 2 and "already holds an experiment" in again.stderr
