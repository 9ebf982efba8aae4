"""Real/bogus: the quarter-turn layer, the Deep-HiTS network, the stamp features, the task's rates and the CLI."""

import csv
import importlib.util
import json

import numpy as np
import pytest

from conftest import run_in_process as run_cli, run_on_jax
from deepsky import models, tasks
from deepsky.baselines import difference_stamp_features, fit_random_forest
from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.simulate.difference import make_real_bogus


@pytest.fixture(scope="module")
def stamps():
    return make_real_bogus(1600, seed=5, workers=1)


def test_quarter_turns_match_numpy_and_survive_saving(tmp_path):
    import keras

    from deepsky.layers.turns import QuarterTurn

    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    for turns in range(4):
        turned = keras.ops.convert_to_numpy(QuarterTurn(turns)(x))
        np.testing.assert_array_equal(turned, np.rot90(x, turns, axes=(1, 2)))
    inputs = keras.Input((5, 5, 3))
    model = keras.Model(inputs, QuarterTurn(3)(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), np.rot90(x, 3, axes=(1, 2)))
    with pytest.raises(DeepskyError, match="0-3 turns"):
        QuarterTurn(4)


def test_deep_hits_reads_four_rotations_with_one_set_of_weights():
    import keras

    model = models.create("deep-hits", input_shape=(21, 21, 4), num_classes=2)
    assert model.count_params() == 697_858  # the paper's layout at 21x21x4
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]) == 5  # shared, not 20
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["rotations"] == (4 * 6 * 6 * 64,) and shapes["probabilities"] == (2,)
    # turning a stamp by a quarter turn permutes the four branches: the concatenated maps roll by one block
    features = keras.Model(model.inputs[0], model.get_layer("rotations").output)
    x = np.random.default_rng(1).normal(size=(3, 21, 21, 4)).astype(np.float32)
    plain = keras.ops.convert_to_numpy(features(x))
    turned = keras.ops.convert_to_numpy(features(np.rot90(x, 1, axes=(1, 2)).copy()))
    np.testing.assert_allclose(turned, np.roll(plain, -plain.shape[1] // 4, axis=1), rtol=1e-4, atol=1e-4)
    with pytest.raises(DeepskyError, match="square"):
        models.create("deep-hits", input_shape=(21, 25, 4), num_classes=2)


def test_stamp_features_separate_real_from_bogus_in_held_out_stamps(stamps):
    features = difference_stamp_features(stamps.inputs)
    assert features.shape == (len(stamps.labels), 14) and np.isfinite(features).all()
    forest = fit_random_forest(features[:1200], stamps.labels[:1200])
    accuracy = (forest.predict(features[1200:]) == stamps.labels[1200:]).mean()
    assert accuracy > 0.85, accuracy


def test_rates_count_bogus_let_through_and_real_lost():
    task = tasks.get("real-bogus")
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.7, 0.3, 0.9, 0.4])  # one bogus called real, one real missed
    test = Dataset(inputs=np.zeros((6, 21, 21, 4), np.float32), labels=labels,
                   objects={"snr": np.array([6.0, 8, 12, 40, 8, 40]),
                            "kind": np.array(["cosmic-ray", "noise", "cosmic-ray", "noise", "transient", "supernova"])})
    metrics = task.metrics(test, np.stack([1 - scores, scores], 1))
    assert metrics["error_rate"] == pytest.approx(2 / 6)
    assert metrics["false_positive_rate"] == pytest.approx(1 / 4)
    assert metrics["false_negative_rate"] == pytest.approx(1 / 2)
    assert metrics["by_kind"]["cosmic-ray"] == {"n": 2, "label": "bogus", "called_real": 0.5}
    assert metrics["by_kind"]["supernova"]["called_real"] == 0.0
    assert sum(row["n"] for row in metrics["by_bin"]["bins"]) == 6


def test_stamps_without_four_channels_are_refused(tmp_path):
    task = tasks.get("real-bogus")
    with pytest.raises(DeepskyError, match="bad.h5: real/bogus candidates are .*4.*received shape"):
        task.check_dataset(Dataset(inputs=np.zeros((4, 21, 21, 3), np.float32), labels=np.zeros(4, int)), "bad.h5")


def test_predict_reads_a_stack_of_stamps_and_refuses_three_channels(tmp_path, stamps):
    run = tmp_path / "run"
    data = tmp_path / "stamps.h5"
    stamps.subset(np.arange(400)).save(data)
    run_cli("train", "real-bogus", "--data", data, "--epochs", 1, "--batch-size", 64, "-o", run)
    table = tmp_path / "candidates.csv"
    run_cli("predict", run, data, "-o", table)
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 400 and {"p_real", "class"} <= set(rows[0])
    bad = tmp_path / "three.npy"
    np.save(bad, stamps.inputs[:5, ..., :3])
    result = run_cli("predict", run, bad, "-o", tmp_path / "no.csv", check=False)
    assert result.returncode != 0 and "three.npy" in result.stderr and "3 bands" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "no.csv").exists()
    assert json.loads((run / "config.json").read_text())["task"] == "real-bogus"


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from deepsky import models
rng = np.random.default_rng(0)
model = models.create("deep-hits", input_shape=(21, 21, 4), num_classes=2)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
loss = float(model.train_on_batch(rng.normal(size=(4, 21, 21, 4)).astype("float32"), np.array([0, 1, 0, 1])))
assert np.isfinite(loss), loss
print("jax ok", loss, flush=True)
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
@pytest.mark.slow  # compiling every graph with XLA: ./test.sh -m slow (test_backends keeps JAX in the default run)
def test_deep_hits_trains_one_step_on_jax():
    result = run_on_jax(JAX_SCRIPT)
    assert result.returncode == 0 and "jax ok" in result.stdout, result.stderr[-2000:]
