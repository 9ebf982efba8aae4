"""Objectives as objects: the image-to-image kind trains through the one epoch loop, and the engine stays generic."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepsky.objectives import ImageToImage, image_metrics, psnr

PACKAGE = Path(__file__).resolve().parents[1] / "deepsky"
GENERIC = ["train.py", "evaluate.py", "predict.py", "cli.py", "objectives.py", "metrics.py", "checkpoint.py",
           "fastpath.py", *[f"report/{p.name}" for p in (PACKAGE / "report").glob("*.py")]]


def _blurred_pairs(n, seed):
    """Point sources on a dark sky (targets) and the same blurred by a 3x3 box (inputs), 16x16 pixels."""
    rng = np.random.default_rng(seed)
    sharp = np.zeros((n, 16, 16, 1), np.float32)
    rows, cols = rng.integers(3, 13, (2, n, 3))
    for i in range(n):
        sharp[i, rows[i], cols[i], 0] = rng.uniform(1, 3, 3)
    padded = np.pad(sharp, ((0, 0), (1, 1), (1, 1), (0, 0)))
    blurred = sum(padded[:, dy : dy + 16, dx : dx + 16] for dy in range(3) for dx in range(3)) / 9
    return blurred.astype(np.float32), sharp


def test_psnr_of_known_errors():
    target = np.zeros((2, 4, 4, 1))
    target[:, 0, 0] = 2.0
    output = target + 0.2  # mse 0.04, peak 2: 10 log10(4 / 0.04) = 20 dB
    np.testing.assert_allclose(psnr(output, target), [20.0, 20.0])
    assert image_metrics(output, target)["mse"] == pytest.approx(0.04)


def test_image_to_image_training_restores_sharper_images():
    import keras

    from deepsky.train import TrainConfig, fit

    x, y = _blurred_pairs(600, 0)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Add()([inputs, keras.layers.Conv2D(1, 3, padding="same")(h)]))
    history = fit(model, x[:500], y[:500], x[500:], y[500:],
                  TrainConfig(epochs=10, batch_size=32, learning_rate=3e-3, augment=False),
                  objective=ImageToImage(loss="mse"))
    assert {"loss", "mae", "val_loss", "val_mae", "val_psnr"} <= set(history)
    assert history["val_loss"][-1] < 0.8 * history["val_loss"][0]
    from deepsky.predict import predict_array

    restored = predict_array(model, x[500:], precision="fp32")
    # held-out images: the network is closer to the truth than the blurred input it was given
    assert image_metrics(restored, y[500:])["mse"] < 0.8 * image_metrics(x[500:], y[500:])["mse"]


def test_image_to_image_rejects_an_unknown_loss():
    from deepsky.errors import DeepskyError

    with pytest.raises(DeepskyError, match="Received|received"):
        ImageToImage(loss="huber")


@pytest.mark.parametrize("module", GENERIC)
def test_generic_modules_import_no_task_module(module):
    tree = ast.parse((PACKAGE / module).read_text())
    for node in ast.walk(tree):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                 [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            assert not (parts[:2] == ["deepsky", "tasks"] and len(parts) > 2 and parts[2] not in ("registry", "base")), \
                f"{module} imports {name}"


def test_import_deepsky_loads_no_registry_and_no_backend():
    code = ("import sys, deepsky; loaded = [m for m in ('deepsky.tasks', 'deepsky.models', 'keras', 'torch') "
            "if m in sys.modules]; print(loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _restorer():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Add()([inputs, keras.layers.Conv2D(1, 3, padding="same")(h)]))


def test_adversarial_term_trains_a_critic_that_resumes_from_the_checkpoint(tmp_path):
    import torch

    from deepsky.checkpoint import Checkpoint
    from deepsky.train import TrainConfig, fit

    x, y = _blurred_pairs(160, 1)
    objective = ImageToImage(loss="l1", adversarial=0.05, critic_width=8)
    config = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-3, augment=False)
    history = fit(_restorer(), x[:128], y[:128], x[128:], y[128:], config, checkpoint_dir=tmp_path / "ck",
                  objective=objective)
    assert np.isfinite(history["loss"]).all()
    trained = {k: v.clone() for k, v in objective.torch_state()["weights"].items()}
    saved = Checkpoint(tmp_path / "ck").load_objective_state()
    assert set(saved["weights"]) == set(trained)
    assert all(torch.equal(saved["weights"][k], trained[k].cpu()) for k in trained)
    # a fresh objective resumed from the checkpoint carries on with the saved critic, not a new one
    resumed = ImageToImage(loss="l1", adversarial=0.05, critic_width=8)
    config.epochs = 2
    fit(_restorer(), x[:128], y[:128], x[128:], y[128:], config, checkpoint_dir=tmp_path / "ck", resume=True,
        objective=resumed)
    assert resumed._critic_optimizer.state_dict()["state"][0]["step"] == 2 * 4  # 4 steps an epoch, two epochs


def test_adversarial_term_is_refused_off_the_fast_path():
    from deepsky.errors import DeepskyError

    with pytest.raises(DeepskyError, match="torch fast path"):
        ImageToImage(adversarial=0.1).keras_compile(None, None)
    with pytest.raises(DeepskyError, match="0 or more"):
        ImageToImage(adversarial=-1)
