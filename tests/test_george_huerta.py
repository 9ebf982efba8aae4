"""George & Huerta's Deep Filtering networks, layer by layer as the paper gives them."""

import os
import subprocess
import sys

import numpy as np
import pytest

from deepsky import models


def test_the_shallow_network_is_the_papers():
    model = models.create("george-huerta-shallow", input_shape=(4096, 2), num_classes=2)
    layers = {layer.name: layer for layer in model.layers}
    assert [(layers[f"conv{i}"].filters, layers[f"conv{i}"].kernel_size[0], layers[f"conv{i}"].dilation_rate[0])
            for i in (1, 2, 3)] == [(16, 16, 1), (32, 8, 4), (64, 8, 4)]
    shapes = {name: tuple(layer.output.shape[1:]) for name, layer in layers.items()}
    # valid convolutions, pooling 4: 4096 -> 4081 -> 1020 -> 992 -> 248 -> 220 -> 55
    assert shapes["pool1"] == (1020, 16) and shapes["pool3"] == (55, 64) and shapes["fc1"] == (64,)
    assert shapes["probabilities"] == (2,)


def test_the_deep_network_is_the_papers_and_fits_a_4096_sample_window():
    model = models.create("george-huerta-deep", input_shape=(4096, 2), num_outputs=2)
    layers = {layer.name: layer for layer in model.layers}
    assert [(layers[f"conv{i}"].filters, layers[f"conv{i}"].kernel_size[0], layers[f"conv{i}"].dilation_rate[0])
            for i in (1, 2, 3, 4)] == [(64, 16, 1), (128, 16, 2), (256, 16, 2), (512, 32, 2)]
    assert tuple(layers["pool4"].output.shape[1:]) == (16, 512) and tuple(model.output.shape[1:]) == (2,)


def test_both_train_one_step_on_torch():
    rng = np.random.default_rng(0)
    strain = rng.normal(size=(4, 4096, 2)).astype(np.float32)
    for name in ("george-huerta-shallow", "george-huerta-deep"):
        model = models.create(name, input_shape=(4096, 2), num_classes=2)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        assert np.isfinite(float(model.train_on_batch(strain, np.array([0, 1, 0, 1]))))


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from deepsky import models
strain = np.random.default_rng(0).normal(size=(2, 4096, 2)).astype(np.float32)
for name in ("george-huerta-shallow", "george-huerta-deep"):
    model = models.create(name, input_shape=(4096, 2), num_classes=2)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = float(model.train_on_batch(strain, np.array([0, 1])))
    assert np.isfinite(loss)
    print("jax ok", name, flush=True)
"""


@pytest.mark.slow  # compiling with XLA: ./test.sh -m slow (test_backends keeps JAX in the default run)
def test_both_train_one_step_on_jax():
    pytest.importorskip("jax", reason="JAX is not installed (./test.sh installs it)")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and result.stdout.count("jax ok") == 2, result.stderr[-2000:]
