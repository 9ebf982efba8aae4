"""The same model code runs on the JAX backend (Keras is multi-backend; torch is only the default)."""

import importlib.util
import os
import subprocess
import sys

import pytest

JAX_SCRIPT = """
import numpy as np
import keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from deepsky import tasks
from deepsky.simulate.stargalaxy import make_star_galaxy
from deepsky.train import TrainConfig, fit
from deepsky.predict import predict_array
data = make_star_galaxy(n=40, seed=3, workers=1)
model = tasks.get("star-galaxy").build_model("kim-brunner", data)
before = model.get_layer("conv1").kernel.numpy().copy()
history = fit(model, data.images[:32], data.labels[:32], data.images[32:], data.labels[32:],
              TrainConfig(epochs=1, batch_size=32))
assert not np.allclose(before, model.get_layer("conv1").kernel.numpy())
p = predict_array(model, data.images[32:])
assert p.shape == (8, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
# the tabular path: magnitudes -> colours -> standardise -> MLP, trained through Keras
from deepsky.data.store import Dataset
rng = np.random.default_rng(0)
table = Dataset(inputs=rng.normal(18, 1, (64, 5)).astype("float32"), labels=rng.integers(0, 3, 64))
mlp = tasks.get("sdss-photometry").build_model("mlp", table, batch_norm=True, dropout=0.2)
fit(mlp, table.images[:48], table.labels[:48], table.images[48:], table.labels[48:],
    TrainConfig(epochs=1, batch_size=16, augment=False, optimizer="nesterov", schedule="constant", learning_rate=0.01))
assert predict_array(mlp, table.images).shape == (64, 3)
print("jax ok", history["loss"][0])
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
def test_kim_brunner_trains_one_step_on_jax():
    # XLA's full optimisation of these graphs costs more compile time than the one step it speeds up
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax ok" in result.stdout
