"""The rest of the network zoo: autoencoders, recurrent nets, RBF, RBM/DBN and Hopfield.

Every zoo model builds, trains a step on torch (and, in a subprocess, on
JAX), and the ones with custom layers survive a ``.keras`` round trip in a
fresh process. The behaviour tests check what each model is for and fail
if it stops doing it.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from deepsky import models
from deepsky.errors import DeepskyError
from deepsky.models import autoencoders, hopfield, rbf, rbm

AUTOENCODERS = ["autoencoder", "denoising-autoencoder", "sparse-autoencoder", "variational-autoencoder"]
RECURRENT = ["rnn", "lstm", "gru"]
ZOO = [*AUTOENCODERS, *RECURRENT, "rbf-network", "rbm", "dbn", "hopfield"]
CUSTOM_LAYER_MODELS = ["sparse-autoencoder", "variational-autoencoder", "rbf-network", "rbm", "hopfield"]
# subprocesses: one OpenMP thread, as in the fixture below
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run these tiny models on one torch thread.

    With two threads on a shared two-core machine every op waits at an
    OpenMP barrier for a thread another process has descheduled: a 16-step
    epoch of a 1,000-weight model took 2 s instead of 0.02 s.
    """
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- small simulated data sets -------------------------------------------------------------


def galaxy_blobs(n, size=16, seed=0):
    """(n, size, size, 1) elliptical Sersic-like profiles, peak 1, random index, radius and angle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = np.empty((n, size, size, 1), "float32")
    for i in range(n):
        index, radius = rng.uniform(0.5, 2.5), rng.uniform(1.5, 4)  # Sersic n, pixels
        axis_ratio, angle = rng.uniform(0.4, 1), rng.uniform(0, np.pi)
        dx, dy = rng.normal(0, 0.7, 2)
        u = (xx - dx) * np.cos(angle) + (yy - dy) * np.sin(angle)
        v = -(xx - dx) * np.sin(angle) + (yy - dy) * np.cos(angle)
        r = np.hypot(u, v / axis_ratio)
        image = np.exp(-2 * index * ((r / radius) ** (1 / index) - 1))
        out[i, ..., 0] = image / image.max()
    return out


def bars(n, seed=0, flip=0.1):
    """8x8 binary images with three horizontal (label 1) or vertical (label 0) bars, ``flip`` of bits flipped.

    Both classes have the same mean image, so no linear classifier on pixels separates them.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = np.zeros((n, 8, 8), "float32")
    for i in range(n):
        lines = rng.choice(8, 3, replace=False)
        if labels[i]:
            x[i, lines, :] = 1
        else:
            x[i, :, lines] = 1
    x = np.abs(x - (rng.random(x.shape) < flip)).astype("float32")
    return x, labels


def spins(n, units, seed=0):
    return np.where(np.random.default_rng(seed).random((n, units)) < 0.5, 1.0, -1.0).astype("float32")


def flip_bits(patterns, fraction, seed=0):
    rng = np.random.default_rng(seed)
    out = patterns.copy()
    count = int(round(fraction * patterns.shape[1]))
    for row in out:
        row[rng.choice(len(row), count, replace=False)] *= -1
    return out


def zoo_case(name, seed=0):
    """(model, x, y) for one training step of ``name``; classifiers come compiled here."""
    rng = np.random.default_rng(seed)
    if name in AUTOENCODERS:
        model = models.create(name, input_shape=(16, 16, 1), num_classes=2, latent_dim=4, filters=(8, 8))
        x = galaxy_blobs(16, seed=seed)
        return model, x, x
    if name in RECURRENT:
        model = models.create(name, input_shape=(30, 2), num_classes=3, units=(8, 8))
        y = rng.integers(0, 3, 16)
    elif name == "rbf-network":
        model = models.create(name, input_shape=(5,), num_classes=2, centers=6)
        y = rng.integers(0, 2, 16)
    elif name == "dbn":
        model = models.create(name, input_shape=(8, 8), num_classes=2, hidden_units=(16, 8))
        x, y = bars(16, seed=seed)
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
        return model, x, y
    elif name == "rbm":
        model = models.create(name, input_shape=(8, 8), hidden_units=16, seed=seed)
        x, _ = bars(16, seed=seed)
        return model, x, x
    elif name == "hopfield":
        model = models.create(name, input_shape=(8, 8), steps=3)
        return model, spins(3, 64, seed).reshape(3, 8, 8), None
    else:
        raise AssertionError(name)
    x = rng.normal(size=(16, *model.input_shape[1:])).astype("float32")
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return model, x, y


# --- harness over the zoo ------------------------------------------------------------------


def test_every_zoo_model_is_registered_with_a_description():
    described = models.describe()
    for name in ZOO:
        assert name in described and len(described[name]) > 20, name


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_trains_one_step_with_finite_loss_and_changing_weights(name):
    keras.utils.set_random_seed(0)
    model, x, y = zoo_case(name)
    if name == "hopfield":
        # Hebbian storage is the Hopfield network's training: one step, no gradients
        before = model.get_layer("hopfield").kernel.numpy().copy()
        hopfield.store(model, x)
        after = model.get_layer("hopfield").kernel.numpy()
        assert not np.allclose(before, after)
        assert np.all(np.isfinite(hopfield.energy(model, x)))
        np.testing.assert_array_equal(np.diag(after), 0.0)
        assert model.predict(x, verbose=0).shape == x.shape
        return
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y, return_dict=True)["loss"]
    assert np.isfinite(loss)
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert any(changed), f"{name}: no trainable weight moved"
    out = model.predict(x[:4], verbose=0)
    expected = x.shape[1:] if name in (*AUTOENCODERS, "rbm") else (model.output_shape[-1],)
    assert out.shape == (4, *expected)
    assert np.all(np.isfinite(out))


def test_autoencoders_accept_and_ignore_num_classes_and_reconstruct_tables_with_dense_layers():
    model = models.create("autoencoder", input_shape=(5,), num_classes=7, latent_dim=2)
    assert model.output_shape == (None, 5)
    assert not any(isinstance(layer, keras.layers.Conv2D) for layer in autoencoders.encoder(model).layers)
    assert autoencoders.decoder(model).input_shape == (None, 2)


def test_zoo_models_refuse_shapes_they_cannot_handle():
    with pytest.raises(DeepskyError, match="multiples of 4.*Received: input_shape=\\(30, 30, 1\\)"):
        models.create("autoencoder", input_shape=(30, 30, 1))
    with pytest.raises(DeepskyError, match="\\(time steps, features\\)"):
        models.create("lstm", input_shape=(32, 32, 1))
    with pytest.raises(DeepskyError, match="flat feature vector"):
        models.create("rbf-network", input_shape=(8, 8))
    with pytest.raises(DeepskyError, match="sparsity must be"):
        models.create("sparse-autoencoder", input_shape=(16, 16, 1), sparsity="l2")
    model = models.create("hopfield", input_shape=(4,))
    with pytest.raises(DeepskyError, match="\\+1/-1"):
        hopfield.store(model, np.array([[0.0, 1.0, 1.0, 0.0]]))
    with pytest.raises(DeepskyError, match="scale x into \\[0, 1\\]"):
        rbm.pretrain_dbn(np.full((4, 3), 2.0), [2])


SAVE_SCRIPT = """
import sys
import numpy as np
import keras
from deepsky.io import load_model
folder = sys.argv[1]
names = sys.argv[2:]
for name in names:
    data = np.load(f"{folder}/{name}.npz")
    model = load_model(f"{folder}/{name}.keras")
    out = model.predict(data["x"], verbose=0)
    np.testing.assert_array_equal(out, data["out"], err_msg=name)
    assert len(model.weights) == int(data["n_weights"]), name
    for i, weight in enumerate(model.weights):
        np.testing.assert_array_equal(weight.numpy(), data[f"w{i}"], err_msg=f"{name} {weight.path}")
# the VAE reloads compiled (safe mode) and keeps training with a plain fit(x, x)
vae = keras.saving.load_model(f"{folder}/variational-autoencoder.keras", safe_mode=True)
x = np.load(f"{folder}/variational-autoencoder.npz")["x"]
loss = vae.fit(x, x, epochs=1, verbose=0).history["loss"][0]
assert np.isfinite(loss), loss
print("loaded", len(names))
"""


def test_custom_layer_models_round_trip_through_keras_files_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(1)
    for name in CUSTOM_LAYER_MODELS:
        model, x, y = zoo_case(name, seed=1)
        if name == "hopfield":
            hopfield.store(model, x[:2])
            x = flip_bits(x.reshape(3, -1), 0.1).reshape(x.shape)
        else:
            model.train_on_batch(x, y)  # weights away from their initial values
        model.save(tmp_path / f"{name}.keras")
        weights = {f"w{i}": w.numpy() for i, w in enumerate(model.weights)}
        np.savez(tmp_path / f"{name}.npz", x=x, out=model.predict(x, verbose=0), n_weights=len(weights), **weights)
    result = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(tmp_path), *CUSTOM_LAYER_MODELS],
                            capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loaded {len(CUSTOM_LAYER_MODELS)}" in result.stdout


def test_custom_layer_configs_keep_every_constructor_argument():
    from deepsky.layers.hopfield import Hopfield
    from deepsky.layers.rbf import RBF
    from deepsky.layers.rbm import RBM
    from deepsky.layers.sparsity import KLSparsity
    from deepsky.layers.variational import GaussianSampling

    layers = [RBF(3, initial_width=0.7, centers_initializer="zeros"), RBM(5, k=3, seed=2),
              Hopfield(steps=4, update="asynchronous"), KLSparsity(rho=0.1, beta=2.0),
              GaussianSampling(weight=0.5, seed=3)]
    for layer in layers:
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config(), type(layer).__name__


# --- behaviour -------------------------------------------------------------------------------


def test_denoising_autoencoder_brings_noisy_galaxies_closer_to_the_clean_ones():
    keras.utils.set_random_seed(0)
    clean = galaxy_blobs(384, seed=1)
    test = galaxy_blobs(64, seed=2)
    noisy = test + np.random.default_rng(3).normal(0, 0.2, test.shape).astype("float32")
    model = models.create("denoising-autoencoder", input_shape=(16, 16, 1), latent_dim=12, noise_stddev=0.2, seed=0)
    model.fit(clean, clean, epochs=6, batch_size=32, verbose=0)
    denoised = model.predict(noisy, verbose=0)
    noisy_mse = np.mean((noisy - test) ** 2)  # about 0.2^2 = 0.04
    denoised_mse = np.mean((denoised - test) ** 2)
    assert denoised_mse < 0.25 * noisy_mse, (denoised_mse, noisy_mse)


def test_variational_autoencoder_kl_is_positive_and_its_loss_falls():
    from deepsky.layers.variational import GaussianSampling

    keras.utils.set_random_seed(0)
    x = galaxy_blobs(256, seed=4)
    model = models.create("variational-autoencoder", input_shape=(16, 16, 1), latent_dim=4, seed=0)
    history = model.fit(x, x, epochs=5, batch_size=32, verbose=0).history["loss"]
    assert history[-1] < 0.7 * history[0], history
    z_mean, z_log_var = autoencoders.encoder(model).predict(x[:64], verbose=0)
    kl = keras.ops.convert_to_numpy(GaussianSampling.kl_divergence(z_mean, z_log_var))
    assert np.all(kl > 0)
    # the KL term is part of what fit minimises: evaluate's loss = per-pixel MSE + KL / n_pixels
    sampling = model.get_layer("sampling")
    assert sampling.weight == pytest.approx(1.0 / (16 * 16))
    mse = np.mean((model.predict(x[:64], verbose=0) - x[:64]) ** 2)
    loss = model.evaluate(x[:64], x[:64], batch_size=64, verbose=0)
    assert loss == pytest.approx(mse + sampling.weight * kl.mean(), rel=1e-3)
    # anomaly score: a galaxy with a satellite trail reconstructs worse than normal ones
    odd = x[:8].copy()
    odd[:, 2:4, 3:13] = 1.0
    scores = autoencoders.anomaly_scores(model, np.concatenate([x[8:40], odd]))
    assert scores[-8:].min() > np.median(scores[:32])


def test_sparse_autoencoder_kl_penalty_keeps_code_units_mostly_off():
    keras.utils.set_random_seed(0)
    x = galaxy_blobs(256, seed=5)
    model = models.create("sparse-autoencoder", input_shape=(16, 16, 1), latent_dim=32, rho=0.05, beta=30.0,
                          filters=(8, 8), learning_rate=3e-3)
    code = keras.Model(autoencoders.encoder(model).input, autoencoders.encoder(model).get_layer("code").output)
    start = code.predict(x, verbose=0).mean()
    model.fit(x, x, epochs=4, batch_size=32, verbose=0)
    end = code.predict(x, verbose=0).mean()
    assert start > 0.3 and end < 0.15, (start, end)


def test_sparse_autoencoder_l1_penalty_is_added_per_sample_to_the_loss():
    keras.utils.set_random_seed(0)
    x = galaxy_blobs(8, seed=6)
    model = models.create("sparse-autoencoder", input_shape=(16, 16, 1), sparsity="l1", l1=0.5, latent_dim=8,
                          filters=(8, 8))
    code = autoencoders.encoder(model).predict(x, verbose=0)
    mse = np.mean((model.predict(x, verbose=0) - x) ** 2)
    loss = model.evaluate(x, x, batch_size=8, verbose=0)
    assert np.abs(code).sum() > 0
    assert loss == pytest.approx(mse + 0.5 * np.abs(code).sum(axis=1).mean(), rel=1e-4)


def test_rbm_reconstruction_error_falls_with_contrastive_divergence():
    keras.utils.set_random_seed(0)
    x, _ = bars(480, seed=1)
    model = models.create("rbm", input_shape=(8, 8), hidden_units=32, seed=0)
    before = model.evaluate(x, x, verbose=0, return_dict=True)["reconstruction_error"]
    history = model.fit(x, x, epochs=8, batch_size=32, verbose=0).history["reconstruction_error"]
    assert before > 0.2  # small random weights: every reconstruction is about 0.5
    assert history[-1] < 0.6 * before, (before, history)
    assert rbm.transform(model, x[:5]).shape == (5, 32)
    samples = rbm.sample(model, n=4, steps=50)
    assert samples.shape == (4, 8, 8) and samples.min() >= 0 and samples.max() <= 1


def test_rbm_loss_gradient_is_the_contrastive_divergence_statistic():
    import torch

    from deepsky.layers.rbm import RBM

    rng = np.random.default_rng(0)
    layer = RBM(4, seed=0)
    layer.build((None, 6))
    layer.kernel.assign(rng.normal(0, 0.5, (6, 4)).astype("float32"))
    layer.hidden_bias.assign(rng.normal(0, 0.5, 4).astype("float32"))
    v_data = (rng.random((5, 6)) < 0.5).astype("float32")
    v_model = rng.random((5, 6)).astype("float32")
    loss = torch.mean(layer.free_energy(torch.tensor(v_data))) - torch.mean(layer.free_energy(torch.tensor(v_model)))
    (grad,) = torch.autograd.grad(loss, [layer.kernel.value])

    def statistic(v):
        return v.T @ keras.ops.convert_to_numpy(layer.hidden_probabilities(torch.tensor(v))) / len(v)

    # descending the loss adds <v h>_data - <v h>_model to W: the CD update
    np.testing.assert_allclose(-grad.numpy(), statistic(v_data) - statistic(v_model), rtol=1e-5, atol=1e-6)


def test_dbn_pretraining_and_fine_tuning_tell_horizontal_from_vertical_bars():
    x, y = bars(600, seed=0)
    x_test, y_test = bars(300, seed=1)
    accuracy = {}
    for pretrained in (True, False):
        keras.utils.set_random_seed(0)
        model = models.create("dbn", input_shape=(8, 8), num_classes=2, hidden_units=(32, 16))
        if pretrained:
            machines = rbm.pretrain(model, x, epochs=10, seed=0)
            np.testing.assert_array_equal(model.get_layer("hidden2").kernel.numpy(),
                                          machines[1].get_layer("rbm").kernel.numpy())
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, epochs=5, batch_size=32, verbose=0)
        accuracy[pretrained] = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    # same fine-tuning from random weights stays near 0.8: the RBM features do the work
    assert accuracy[True] > 0.9 and accuracy[True] > accuracy[False] + 0.05, accuracy


@pytest.mark.parametrize("update", ["synchronous", "asynchronous"])
@pytest.mark.parametrize("fraction", [0.1, 0.2])
def test_hopfield_recalls_stored_patterns_from_flipped_bits(update, fraction):
    units, stored = 200, 10  # 0.05 N patterns, well inside the 0.14 N capacity
    model = models.create("hopfield", input_shape=(units,), steps=5, update=update)
    patterns = spins(stored, units, seed=1)
    hopfield.store(model, patterns)
    noisy = flip_bits(patterns, fraction, seed=2)
    np.testing.assert_array_equal(hopfield.recall(model, noisy), patterns)
    assert np.all(hopfield.energy(model, patterns) < hopfield.energy(model, noisy))


def test_hopfield_forgets_beyond_its_capacity_of_about_0_14_n():
    units = 200
    model = models.create("hopfield", input_shape=(units,), steps=5)
    exact = {}
    for stored in (10, 60):  # 0.05 N and 0.3 N
        patterns = spins(stored, units, seed=3)
        hopfield.store(model, patterns)
        recalled = hopfield.recall(model, flip_bits(patterns, 0.1, seed=4))
        exact[stored] = np.mean(np.all(recalled == patterns, axis=1))
    assert exact[10] == 1.0 and exact[60] < 0.1, exact


def test_asynchronous_hopfield_updates_never_raise_the_energy():
    model = models.create("hopfield", input_shape=(64,), steps=1, update="asynchronous")
    hopfield.store(model, spins(12, 64, seed=5))
    states = spins(8, 64, seed=6)
    energies = [hopfield.energy(model, states)]
    for _ in range(4):
        states = hopfield.recall(model, states)
        energies.append(hopfield.energy(model, states))
    assert np.all(np.diff(np.array(energies), axis=0) <= 1e-5)


def test_rbf_gradient_with_respect_to_centres_and_widths_matches_finite_differences():
    import torch

    from deepsky.layers.rbf import RBF

    # float32 as in training (Keras ops compute 64-bit inputs in 32 bits too), so central
    # differences with a 1e-3 step: truncation ~1e-6, rounding ~1e-4 of the gradient
    rng = np.random.default_rng(0)
    layer = RBF(3, initial_width=0.8)
    layer.build((None, 2))
    layer.centers.assign(rng.normal(size=(3, 2)).astype("float32"))
    x = torch.tensor(rng.normal(size=(7, 2)), dtype=torch.float32)
    weights = torch.tensor(rng.normal(size=(7, 3)), dtype=torch.float32)

    def objective():
        return torch.sum(layer(x) * weights)

    # the forward pass is the Gaussian of the docstring
    distance2 = ((x.numpy()[:, None, :] - layer.centers.numpy()[None]) ** 2).sum(-1)
    expected = np.exp(-distance2 / (2 * 0.8**2))
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    step = 1e-3
    for variable in (layer.centers, layer.log_width):
        (grad,) = torch.autograd.grad(objective(), [variable.value])
        start = variable.numpy().copy()
        numeric = np.zeros(start.shape)
        for index in np.ndindex(start.shape):
            for sign in (1, -1):
                shifted = start.copy()
                shifted[index] += sign * step
                variable.assign(shifted)
                numeric[index] += sign * objective().detach().double().item() / (2 * step)
        variable.assign(start)
        assert np.abs(numeric).max() > 0.1  # a gradient worth comparing
        np.testing.assert_allclose(grad.numpy(), numeric, rtol=2e-3, atol=2e-4)


def test_rbf_centres_from_k_means_sit_on_the_clusters():
    rng = np.random.default_rng(0)
    blobs = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = (blobs[rng.integers(0, 3, 300)] + rng.normal(0, 0.3, (300, 2))).astype("float32")
    model = models.create("rbf-network", input_shape=(2,), num_classes=2, centers=3)
    centres, widths = rbf.init_from_data(model, x, seed=0)
    found = np.sort(np.round(centres).astype(int), axis=0)
    np.testing.assert_array_equal(found, np.sort(blobs.astype(int), axis=0))
    np.testing.assert_allclose(np.exp(model.get_layer("rbf").log_width.numpy()), widths, rtol=1e-6)
    assert np.all((widths > 4) & (widths < 8))  # the centres are 5 and 7.1 apart


JAX_SCRIPT = """
import sys
import numpy as np
import keras
assert keras.backend.backend() == "jax", keras.backend.backend()
sys.path.insert(0, {test_dir!r})
import test_zoo as t  # the same cases as the torch harness above
from deepsky.models import hopfield, rbm
for name in t.ZOO:
    keras.utils.set_random_seed(0)
    model, x, y = t.zoo_case(name)
    if name == "hopfield":
        hopfield.store(model, x)
        assert hopfield.recall(model, x).shape == x.shape, name
        continue
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y, return_dict=True)["loss"]
    assert np.isfinite(loss), (name, loss)
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)), name
    assert np.all(np.isfinite(model.predict(x[:2], verbose=0))), name
# the asynchronous update is a traced fori_loop on JAX
model = t.models.create("hopfield", input_shape=(32,), update="asynchronous", steps=2)
patterns = t.spins(2, 32)
hopfield.store(model, patterns)
assert (hopfield.recall(model, t.flip_bits(patterns, 0.1)) == patterns).all()
print("jax zoo ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
@pytest.mark.slow  # compiling every graph with XLA: ./test.sh -m slow (test_backends keeps JAX in the default run)
def test_every_zoo_model_trains_one_step_on_jax():
    env = {**SUBPROCESS_ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    script = JAX_SCRIPT.format(test_dir=os.path.dirname(__file__))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax zoo ok" in result.stdout
