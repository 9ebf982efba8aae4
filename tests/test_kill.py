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
