"""Quasar microlensing: ray-shot maps against the physics, disc profiles, light curves, the map cache, the network."""

import os
import subprocess
import sys

import numpy as np
import pytest

from deepsky import models
from deepsky.simulate import microlensing as ml


def test_the_taylor_far_field_lands_every_ray_where_the_direct_sum_does():
    args = dict(kappa=0.4, gamma=0.4, smooth_fraction=0.0, pixels=60, width_re=6.0, rays_per_pixel=3, seed=4)
    fast, direct = ml.magnification_map(**args), ml.magnification_map(**args, method="direct")
    assert fast.stars > 100
    # a ray moved by rounding alone may cross a pixel edge: nearly every pixel must agree exactly
    assert (fast.values == direct.values).mean() > 0.999
    assert abs(fast.values.sum() - direct.values.sum()) / direct.values.sum() < 1e-4


@pytest.mark.parametrize("preset,smooth", [("minimum", 0.0), ("saddle", 0.5), ("low", 0.9)])
def test_maps_have_the_analytic_mean_magnification(preset, smooth):
    kappa, gamma = ml.PRESETS[preset]
    # 100 R_E maps (the mean of a smaller one strays by a few per cent from map to map)
    means = [ml.magnification_map(kappa, gamma, smooth, pixels=200, width_re=100, rays_per_pixel=3, seed=s).values.mean()
             for s in range(3)]
    expected = abs(ml.mean_magnification(kappa, gamma))
    assert abs(np.mean(means) / expected - 1) < 0.02, (means, expected)


def test_a_critical_line_and_bad_settings_are_refused():
    from deepsky.errors import DeepskyError

    with pytest.raises(DeepskyError, match="critical"):
        ml.magnification_map(0.5, 0.5)
    with pytest.raises(DeepskyError, match="smooth fraction"):
        ml.magnification_map(0.4, 0.4, smooth_fraction=1.0)
    with pytest.raises(DeepskyError, match="profile"):
        ml.disc_profile("donut", 0.1, 0.02)


@pytest.mark.parametrize("profile", ml.PROFILES)
@pytest.mark.parametrize("half_light", [0.03, 0.2])
def test_disc_profiles_hold_half_their_light_within_the_half_light_radius(profile, half_light):
    pixel = 0.01
    kernel = ml.disc_profile(profile, half_light, pixel)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert abs(kernel.sum() - 1) < 1e-9
    centre = kernel.shape[0] // 2
    y, x = np.indices(kernel.shape) - centre
    inside = kernel[np.hypot(x, y) * pixel <= half_light].sum()
    assert abs(inside - 0.5) < 0.05


def test_a_bigger_disc_smooths_the_light_curve():
    magnification = ml.magnification_map(0.4, 0.4, 0.5, pixels=300, width_re=6, rays_per_pixel=10, seed=1)
    spread = []
    for radius in (0.02, 0.5):
        convolved = ml.convolve(magnification.values, ml.disc_profile("gaussian", radius, magnification.pixel_re))
        assert abs(convolved.mean() / magnification.values.mean() - 1) < 0.02  # flux is conserved
        spread.append(convolved.std())
    assert spread[1] < 0.6 * spread[0]


def test_light_curves_follow_lsst_seasons_and_are_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSKY_CACHE", str(tmp_path))
    settings = dict(pixels=150, width_re=12.0, rays_per_pixel=4)  # tracks of up to 5.4 R_E fit
    data = ml.make_microlensing(60, seed=3, map_seeds=(0, 1), **settings, workers=2)
    grid = len(np.arange(0, 365.25 * ml.YEARS, ml.GRID_DAYS))
    assert data.inputs.shape == (60, grid, 2) and np.isfinite(data.inputs).all()
    assert np.bincount(data.labels, minlength=10).min() >= 1  # every size drawn
    flags = data.inputs[..., 1]
    assert set(np.unique(flags)) == {0.0, 1.0}
    # seasons: each year has a stretch of at least 100 days without a visit
    per_year = int(365.25 / ml.GRID_DAYS)
    for year in range(int(ml.YEARS)):
        seen = np.flatnonzero(flags[0, year * per_year : (year + 1) * per_year] > 0)
        assert np.diff(np.r_[-1, seen, per_year]).max() * ml.GRID_DAYS >= 100
    maps = sorted(tmp_path.glob("microlensing/*.h5"))
    assert len(maps) == 2
    stamps = [p.stat().st_mtime_ns for p in maps]
    again = ml.make_microlensing(60, seed=3, map_seeds=(0, 1), **settings, workers=1)
    assert np.array_equal(again.inputs, data.inputs)  # the same bytes for any number of workers
    assert [p.stat().st_mtime_ns for p in maps] == stamps  # the maps were read back, not shot again


def test_structure_function_features_grow_with_variability():
    from deepsky.tasks.microlensing import SF_LAGS, structure_function_features

    rng = np.random.default_rng(0)
    days = np.arange(366) * 10.0
    quiet = np.stack([0.01 * rng.standard_normal(366), (rng.uniform(size=366) < 0.5)], -1)
    loud = np.stack([0.5 * np.sin(days / 150.0) + 0.01 * rng.standard_normal(366), quiet[:, 1]], -1)
    features = structure_function_features(np.stack([quiet, loud]).astype(np.float32))
    assert features.shape == (2, len(SF_LAGS) + 3) and np.isfinite(features).all()
    long_lag = SF_LAGS.index(21)
    assert features[1, long_lag] > features[0, long_lag] + 2  # log structure function


def test_the_network_is_the_authors():
    model = models.create("vernardos-tsagkatakis", input_shape=(366, 2), num_classes=10)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv1D"]
    assert [c.kernel_size[0] for c in convs] == [1] + [10, 20, 50] * 5
    assert all(c.filters == 32 for c in convs)
    assert sum(layer.__class__.__name__ == "Add" for layer in model.layers) == 5
    assert model.get_layer("group5_pool").output.shape[1] == 12  # 366 halved five times ('same' pooling)
    assert [model.get_layer(f"dropout{w}").rate for w in (128, 32)] == [0.75, 0.75]
    x = np.random.default_rng(0).normal(size=(4, 366, 2)).astype(np.float32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert np.isfinite(float(model.train_on_batch(x, np.array([0, 3, 6, 9]))))


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from deepsky import models
model = models.create("vernardos-tsagkatakis", input_shape=(200, 2), num_classes=10)
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
x = np.random.default_rng(0).normal(size=(2, 200, 2)).astype(np.float32)
assert np.isfinite(float(model.train_on_batch(x, np.array([1, 2]))))
print("jax ok")
"""


@pytest.mark.slow  # compiling with XLA: ./test.sh -m slow
def test_the_network_trains_one_step_on_jax():
    pytest.importorskip("jax", reason="JAX is not installed (./test.sh installs it)")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and "jax ok" in result.stdout, result.stderr[-2000:]
