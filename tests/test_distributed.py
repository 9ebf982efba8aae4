"""Data-parallel training: torch DistributedDataParallel over 2 CPU processes trains as one process does."""

import json

import numpy as np
import pytest

from conftest import run_cli, shared


@pytest.mark.slow  # 40 s; the default suite checks the weights of two ranks against one process
def test_two_processes_reach_the_metric_of_one(tmp_path):
    sdss = shared("sdss_photometry/sdss_dr17_10k.csv")
    one, two = tmp_path / "one", tmp_path / "two"
    run_cli("train", "sdss-photometry", "--data", sdss, "--epochs", 4, "-o", one)
    result = run_cli("train", "sdss-photometry", "--data", sdss, "--epochs", 4, "-o", two, "--processes", 2)
    assert "2 data-parallel processes" in result.stderr + result.stdout
    scores = {}
    for run in (one, two):
        history = json.loads((run / "history.json").read_text())
        assert len(history["val_loss"]) == 4
        run_cli("evaluate", run)
        scores[run.name] = json.loads((run / "metrics.json").read_text())["accuracy"]
    assert scores["one"] > 0.85 and abs(scores["one"] - scores["two"]) < 0.03, scores
    # the ranks started from rank 0's weights and stepped together: one model, not two halves
    assert (two / "model.keras").is_file() and not list(two.glob("*.part*"))


def test_bad_process_count_is_one_line(tmp_path):
    result = run_cli("train", "sdss-photometry", "--processes", 0, "-o", tmp_path / "r", check=False)
    assert result.returncode == 2 and "--processes" in result.stderr and "Traceback" not in result.stderr


FIT_SCRIPT = """
import os, sys
import numpy as np
os.environ["KERAS_BACKEND"] = "torch"
from deepsky.distributed import join_from_environment, world
join_from_environment()
import keras
from deepsky.train import TrainConfig, fit
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
rng = np.random.default_rng(1)
x = rng.normal(size=(512, 6)).astype(np.float32)
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
config = TrainConfig(epochs=3, batch_size=64, learning_rate=1e-2, precision="fp32", augment=False, seed=0)
fit(model, x, y, x[:64], y[:64], config)
np.savez(sys.argv[1] + f"-{world()[0]}-of-{world()[1]}.npz", *[v.numpy() for v in model.weights])
"""


def test_two_ranks_step_as_one_process_with_the_whole_batch(tmp_path):
    """Averaged gradients of two half-batches are the whole batch's: the weights match one process's."""
    import os
    import socket
    import subprocess
    import sys

    script = tmp_path / "fit.py"
    script.write_text(FIT_SCRIPT)
    out = str(tmp_path / "weights")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
           "DEEPSKY_THREADS": "1"}
    ranks = [subprocess.Popen([sys.executable, str(script), out], env={**env, "RANK": str(r)},
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    for rank in ranks:
        assert rank.wait(timeout=300) == 0, rank.stderr.read()
    single = subprocess.run([sys.executable, str(script), out], env={**os.environ, "DEEPSKY_THREADS": "1"},
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    weights = {name: np.load(f"{out}-{name}.npz") for name in ("0-of-2", "1-of-2", "0-of-1")}
    for key in weights["0-of-1"].files:
        np.testing.assert_allclose(weights["0-of-2"][key], weights["1-of-2"][key], rtol=0, atol=1e-6)
        np.testing.assert_allclose(weights["0-of-2"][key], weights["0-of-1"][key], rtol=1e-3, atol=1e-4)
