"""The galaxy-morphology task: Dieleman et al.'s network, Galaxy Zoo folders in, tables out."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

from conftest import run_in_process as run_cli, shared


def test_dieleman_layers_and_one_training_step():
    import keras

    from deepsky import models

    model = models.create("dieleman", input_shape=(64, 64, 3), num_classes=4)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv1"] == (59, 59, 32) and shapes["conv4"] == (8, 8, 128) and shapes["pool3"] == (4, 4, 128)
    assert shapes["fc1"] == (2048,) and shapes["probabilities"] == (4,)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    before = model.get_layer("conv1").kernel.numpy().copy()
    loss = model.train_on_batch(np.random.default_rng(0).random((4, 64, 64, 3), dtype=np.float32), np.arange(4))
    assert np.isfinite(loss) and not np.allclose(before, model.get_layer("conv1").kernel.numpy())


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from deepsky import models
model = models.create("dieleman", input_shape=(48, 48, 3), num_classes=4)
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
print("jax ok", float(model.train_on_batch(np.random.default_rng(0).random((4, 48, 48, 3), dtype=np.float32), np.arange(4))))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
def test_dieleman_trains_one_step_on_jax():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and "jax ok" in result.stdout, result.stderr[-2000:]


def test_dihedral_average_is_invariant_to_rotating_the_input():
    from deepsky import models
    from deepsky.predict import predict_array

    model = models.create("dieleman", input_shape=(48, 48, 3), num_classes=4)
    images = np.random.default_rng(1).random((3, 48, 48, 3), dtype=np.float32)
    turned = np.ascontiguousarray(np.rot90(images, 1, axes=(1, 2)))
    a = predict_array(model, images, precision="fp32", dihedral_average=True)
    b = predict_array(model, turned, precision="fp32", dihedral_average=True)
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow  # default suite under 10 minutes; run with -m slow
def test_galaxy_zoo_train_evaluate_predict_through_the_cli(tmp_path):
    folder = shared("galaxyzoo1_sdss")
    out = tmp_path / "gz"
    run_cli("train", "galaxy-morphology", "--data", folder, "--n", 300, "--epochs", 1, "-o", out)
    config = json.loads((out / "config.json").read_text())
    assert config["contract"]["classes"] == ["elliptical", "spiral", "edge-on", "merger"]
    assert config["train"]["class_weight"] == "sqrt" and config["n_train"] + config["n_validation"] == 300
    # the saved model's probabilities have the sqrt weights divided out (ellipticals weigh least)
    divided = config["class_weights_divided_out"]
    assert len(divided) == 4 and divided[0] == min(w for w in divided if w > 0)
    run_cli("evaluate", out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["held_out"] and metrics["test_data"]["part"] == "held-out images"
    assert metrics["n"] == 1056  # 20% of each merged class of the 5,281 images, never trained on
    assert np.array(metrics["confusion"]).shape == (4, 4) and 0 <= metrics["elliptical_vs_spiral_accuracy"] <= 1
    images = tmp_path / "mine"
    images.mkdir()
    names = sorted(p.name for p in (folder / "images").iterdir())[:3]
    for name in names:
        shutil.copy(folder / "images" / name, images / name)
    table_path = tmp_path / "pred.csv"
    run_cli("predict", out, images, "-o", table_path)
    table = Table.read(table_path, format="ascii.csv")
    assert [str(v) for v in table["id"]] == names
    assert table.colnames == ["id", "p_elliptical", "p_spiral", "p_edge-on", "p_merger", "class"]
    probabilities = np.array([[row[c] for c in table.colnames[1:5]] for row in table])
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-4)
