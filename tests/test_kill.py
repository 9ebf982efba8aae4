"""kill -9 at random moments of training: every run resumes to the same result and loses at most the epoch in progress."""

import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import DEEPSKY

EPOCHS = 4


def _train(small_data, out, resume, env):
    command = [*DEEPSKY, "train", "-o", str(out)]
    command += ["--resume"] if resume else ["star-galaxy", "--data", str(small_data), "--epochs", str(EPOCHS),
                                             "--precision", "fp32"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _saved_epoch(out) -> int:
    state = out / "checkpoint" / "state.json"
    return json.loads(state.read_text())["epoch"] if state.exists() else 0


@pytest.mark.slow
def test_training_killed_at_ten_random_moments_resumes_to_the_uninterrupted_result(small_data, tmp_path):
    # fixed threads: sums over another number of threads round differently
    env = {**os.environ, "DEEPSKY_THREADS": "2"}
    reference = tmp_path / "reference"
    done = _train(small_data, reference, False, env)
    _, err = done.communicate(timeout=900)
    assert done.returncode == 0, err
    expected = json.loads((reference / "history.json").read_text())

    out = tmp_path / "killed"
    rng = np.random.default_rng(20261206)
    kills = 0
    while kills < 10:
        proc = _train(small_data, out, (out / "config.json").exists(), env)
        time.sleep(rng.uniform(2.0, 16.0))
        if proc.poll() is not None:  # finished before the kill: start again from scratch
            assert proc.returncode == 0, proc.communicate()[1]
            import shutil

            shutil.rmtree(out)
            continue
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        kills += 1
        reported = len(re.findall(r"^epoch \d+: ", err, re.MULTILINE))  # one line per finished epoch
        assert _saved_epoch(out) >= min(reported, EPOCHS), f"an epoch reported done was lost:\n{err}"
    while not (out / "model.keras").exists():
        proc = _train(small_data, out, (out / "config.json").exists(), env)
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == EPOCHS
    np.testing.assert_allclose(history["val_loss"], expected["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(history["val_accuracy"], expected["val_accuracy"], rtol=1e-4)


@pytest.mark.slow
def test_simulate_and_predict_killed_anywhere_leave_a_whole_file_or_none(trained_run, tmp_path):
    """What a later command would read is either complete or absent: files are renamed into place when whole."""
    from deepsky.data.store import Dataset

    rng = np.random.default_rng(7)
    for attempt in range(4):
        out = tmp_path / f"sim{attempt}.h5"
        proc = subprocess.Popen([*DEEPSKY, "simulate", "star-galaxy", "--n", "600", "--seed", str(attempt), "-o",
                                 str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(3.0, 12.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert not out.exists() or len(Dataset.load(out)) == 600
    stack = tmp_path / "stack.npy"
    np.save(stack, np.random.default_rng(1).normal(0, 0.03, (6000, 48, 48, 5)).astype(np.float32))
    for attempt in range(4):
        table = tmp_path / f"table{attempt}.csv"
        proc = subprocess.Popen([*DEEPSKY, "predict", str(trained_run), str(stack), "-o", str(table)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(3.0, 12.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert not table.exists() or len(table.read_text().splitlines()) == 6001
    visible = sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith("."))
    assert all(name.startswith(("sim", "table", "stack")) for name in visible)
