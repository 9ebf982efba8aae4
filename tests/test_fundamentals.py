"""The lecture's fundamentals: activations, losses, optimizers, the perceptron and the MLP on XOR."""

import importlib.util
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch

from deepsky import activations, losses, models, optimizers
from deepsky.errors import DeepskyError
from deepsky.models.perceptron import train_perceptron

BOOLEAN_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)


# --- (a) gradients: the backend's autodiff against central finite differences in float64 ---


def autodiff_gradient(fn, x):
    """d sum(fn(x)) / dx by torch autograd, in float64."""
    tensor = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch.sum(fn(tensor)).backward()
    return tensor.grad.numpy()


def numeric_gradient(fn, x, h=1e-6):
    """d sum(fn(x)) / dx by central differences, one entry at a time, in float64."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += h
        minus[index] -= h
        value = lambda z: float(torch.sum(fn(torch.tensor(z, dtype=torch.float64))))  # noqa: E731
        grad[index] = (value(plus) - value(minus)) / (2 * h)
    return grad


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.7])
def test_gaussian_gradient_matches_finite_differences(sigma):
    x = np.linspace(-3.0, 3.0, 13) + 0.01  # off the symmetric point, where the derivative is 0
    fn = lambda t: activations.gaussian(t, sigma)  # noqa: E731
    # elementwise central differences: summing the whole vector would add rounding of the other entries
    h = 1e-6
    numeric = (np.asarray(fn(torch.tensor(x + h))) - np.asarray(fn(torch.tensor(x - h)))) / (2 * h)
    np.testing.assert_allclose(autodiff_gradient(fn, x), numeric, rtol=1e-6, atol=1e-14)
    # and the analytic derivative -2x/sigma^2 exp(-x^2/sigma^2), the lecture's form (no factor 2 in the width)
    expected = -2 * x / sigma**2 * np.exp(-(x**2) / sigma**2)
    np.testing.assert_allclose(autodiff_gradient(fn, x), expected, rtol=1e-12)


def test_gaussian_layer_is_the_function_with_its_sigma():
    x = np.linspace(-2, 2, 5).astype("float32")[None]
    layer = activations.Gaussian(sigma=2.0)
    np.testing.assert_allclose(np.asarray(layer(x)), np.exp(-(x**2) / 4.0), rtol=1e-6)
    with pytest.raises(DeepskyError, match="sigma=0.0"):
        activations.Gaussian(sigma=0)


def test_step_is_zero_or_one_and_its_gradient_is_zero_away_from_zero():
    x = np.array([-5.0, -1e-3, 0.0, 1e-3, 2.0])
    np.testing.assert_array_equal(np.asarray(activations.step(torch.tensor(x))), [0, 0, 0, 1, 1])
    away = np.array([-5.0, -0.3, 1e-3, 2.0])
    # an exact zero, not a missing gradient: backprop passes nothing through the step
    np.testing.assert_array_equal(autodiff_gradient(activations.step, away), np.zeros(4))


MARGIN_LABELS = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
SCORES = np.array([[0.3, -1.2], [0.7, 2.1], [-0.4, 1.5]])


@pytest.mark.parametrize("loss_class", [losses.HalfSumSquaredError, losses.ExponentialLoss, losses.LogisticLoss])
def test_custom_loss_gradient_matches_finite_differences(loss_class):
    # reduction "sum": Keras-on-torch's batch mean (divide_no_nan) returns float32 even for float64 inputs
    loss = loss_class(dtype="float64", reduction="sum")
    labels = torch.tensor(MARGIN_LABELS, dtype=torch.float64)
    fn = lambda scores: loss(labels, scores)  # noqa: E731
    np.testing.assert_allclose(autodiff_gradient(fn, SCORES), numeric_gradient(fn, SCORES), rtol=1e-6, atol=1e-10)


def test_half_sse_gradient_is_the_error_over_the_batch():
    # d/dyhat of 1/2 sum (y - yhat)^2 is the plain error yhat - y: why the lecture keeps the 1/2
    labels = torch.tensor(MARGIN_LABELS, dtype=torch.float64)
    total = losses.HalfSumSquaredError(dtype="float64", reduction="sum")
    grad = autodiff_gradient(lambda s: total(labels, s), SCORES)
    np.testing.assert_allclose(grad, SCORES - MARGIN_LABELS, rtol=1e-12)
    # and the default reduction averages over the batch, so the gradient is divided by its size
    mean = losses.HalfSumSquaredError()
    grad = autodiff_gradient(lambda s: mean(labels.float(), s.float()), SCORES)
    np.testing.assert_allclose(grad, (SCORES - MARGIN_LABELS) / len(SCORES), rtol=1e-6)


# --- (b) loss values against hand-computed numbers ---


def test_half_sum_squared_error_sums_outputs_and_averages_the_batch():
    y = np.array([[1.0, 2.0], [0.0, 0.0]])
    yhat = np.array([[0.0, 0.0], [1.0, 1.0]])
    # sample 1: (1 + 4) / 2 = 2.5, sample 2: (1 + 1) / 2 = 1.0, batch mean 1.75
    assert float(losses.HalfSumSquaredError()(y, yhat)) == pytest.approx(1.75)
    # one output: half of Keras's mean squared error
    mse = float(keras.losses.MeanSquaredError()(y[:, :1], yhat[:, :1]))
    assert float(losses.HalfSumSquaredError()(y[:, :1], yhat[:, :1])) == pytest.approx(mse / 2)


def test_exponential_loss_values():
    y, score = np.array([[1.0], [-1.0]]), np.array([[2.0], [0.5]])
    # (exp(-2) + exp(0.5)) / 2 = (0.135335 + 1.648721) / 2
    assert float(losses.ExponentialLoss()(y, score)) == pytest.approx(0.892028, abs=1e-6)
    assert float(losses.ExponentialLoss()(np.zeros((3, 1)) + 1, np.zeros((3, 1)))) == pytest.approx(1.0)


def test_logistic_loss_is_base_two():
    y, score = np.array([[1.0], [-1.0]]), np.array([[2.0], [0.5]])
    # (log2(1 + e^-2) + log2(1 + e^0.5)) / 2 = (0.183120 + 1.405294) / 2; in natural log it would be 0.5505
    assert float(losses.LogisticLoss()(y, score)) == pytest.approx(0.794207, abs=1e-6)
    # exactly one bit at zero margin
    assert float(losses.LogisticLoss()(np.ones((2, 1)), np.zeros((2, 1)))) == pytest.approx(1.0)


def test_logistic_loss_is_stable_for_huge_margins():
    value = float(losses.LogisticLoss()(np.array([[-1.0], [1.0]]), np.array([[1000.0], [1000.0]])))
    # log2(1 + e^1000) = 1000 / ln 2 for the wrong sample, 0 for the right one
    assert value == pytest.approx(1000 / math.log(2) / 2, rel=1e-6)


@pytest.mark.parametrize("name", ["hinge", "exponential", "logistic"])
def test_margin_losses_read_zero_one_labels_as_minus_one_plus_one(name):
    score = np.array([[0.5], [0.5], [-2.0]])
    plus_minus = float(losses.get(name)(np.array([[1.0], [-1.0], [-1.0]]), score))
    zero_one = float(losses.get(name)(np.array([[1.0], [0.0], [0.0]]), score))
    assert zero_one == pytest.approx(plus_minus)


def test_keras_hinge_is_the_lectures_hinge():
    y, score = np.array([[1.0], [-1.0], [1.0]]), np.array([[0.5], [0.5], [3.0]])
    # max(0, 1 - 0.5) = 0.5, max(0, 1 + 0.5) = 1.5, max(0, 1 - 3) = 0: mean 2/3
    assert float(losses.get("hinge")(y, score)) == pytest.approx(2 / 3)
    assert isinstance(losses.get("hinge"), keras.losses.Hinge)


def test_cross_entropy_is_keras_binary_cross_entropy():
    # -(ln 0.8 + ln(1 - 0.3)) / 2
    value = float(losses.get("cross_entropy")(np.array([[1.0], [0.0]]), np.array([[0.8], [0.3]])))
    assert value == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2, rel=1e-5)


# --- (c) serialisation: .keras in a fresh process (safe mode), and the losses' configs ---

LOAD_SCRIPT = """
import sys
import numpy as np
import keras
import deepsky.activations, deepsky.losses  # registers the custom objects
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
x = np.load(sys.argv[2])
expected = np.load(sys.argv[3])
got = model.predict(x, verbose=0)
for key in ("sse", "exp", "logit", "step"):
    np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-7)
assert model.get_layer("g1").activation is deepsky.activations.gaussian
assert model.get_layer("g2").sigma == 2.0
assert model.get_layer("step").activation is deepsky.activations.step
names = {key: type(loss).__name__ for key, loss in model.loss.items()}
assert names == {"sse": "HalfSumSquaredError", "exp": "ExponentialLoss", "logit": "LogisticLoss", "step": "Hinge"}, names
assert type(model.optimizer).__name__ == "Adadelta" and float(model.optimizer.learning_rate) == 1.0
model.train_on_batch(x, {"sse": np.zeros((len(x), 2)), "exp": np.ones((len(x), 1)),
                         "logit": np.zeros((len(x), 1)), "step": np.ones((len(x), 1))})
print("loaded ok")
"""


def test_model_with_custom_activations_and_losses_round_trips_through_keras_file(tmp_path):
    inputs = keras.Input((3,), name="x")
    hidden = keras.layers.Dense(4, activation=activations.gaussian, name="g1")(inputs)
    hidden = activations.Gaussian(sigma=2.0, name="g2")(hidden)
    outputs = {
        "sse": keras.layers.Dense(2, name="sse")(hidden),
        "exp": keras.layers.Dense(1, name="exp")(hidden),
        "logit": keras.layers.Dense(1, name="logit")(hidden),
        "step": keras.layers.Dense(1, activation=activations.get("step"), name="step")(hidden),
    }
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=optimizers.create("adadelta"),
        loss={"sse": losses.HalfSumSquaredError(), "exp": losses.ExponentialLoss(),
              "logit": losses.LogisticLoss(), "step": losses.get("hinge")},
    )
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    path, x_path, y_path = tmp_path / "m.keras", tmp_path / "x.npy", tmp_path / "y.npz"
    model.save(path)
    np.save(x_path, x)
    np.savez(y_path, **{k: np.asarray(v) for k, v in model.predict(x, verbose=0).items()})
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, path, x_path, y_path],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded ok" in result.stdout


@pytest.mark.parametrize("name", ["half_sum_squared_error", "exponential", "logistic", "hinge", "cross_entropy"])
def test_losses_survive_serialize_deserialize(name):
    loss = losses.get(name, reduction="sum")
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(again) is type(loss)
    assert again.get_config() == loss.get_config()
    y, score = np.array([[1.0], [-1.0]]), np.array([[0.4], [0.2]])
    if name == "cross_entropy":
        y, score = (y + 1) / 2, np.array([[0.6], [0.3]])
    assert float(again(y, score)) == pytest.approx(float(loss(y, score)))


def test_float64_loss_keeps_its_dtype_through_config():
    loss = losses.LogisticLoss(dtype="float64")
    assert keras.losses.deserialize(keras.losses.serialize(loss)).dtype == "float64"


def test_activations_serialise_by_registered_name():
    assert keras.activations.serialize(activations.gaussian)["config"] == "deepsky>gaussian"
    assert keras.activations.deserialize(keras.activations.serialize(activations.step)) is activations.step
    for name in activations.LECTURE_ACTIVATIONS:
        layer = keras.layers.Dense(2, activation=activations.get(name))
        again = keras.layers.Dense.from_config(layer.get_config())
        assert again.activation is layer.activation


# --- (d) optimizers: one step against the lecture's update rules, then convergence ---

CURVATURE = np.array([1.0, 3.0, 0.5])  # J(theta) = 1/2 sum a theta^2, gradient a theta
THETA0 = np.array([1.0, -2.0, 0.5])


def reference_steps(name, lr, steps):
    """The update rules written out in numpy (float64), with Keras's epsilons and initial states."""
    theta = THETA0.copy()
    state = {"m": np.zeros(3), "v": np.zeros(3), "acc": np.full(3, 0.1), "eg": np.zeros(3), "edx": np.zeros(3)}
    for t in range(1, steps + 1):
        g = CURVATURE * theta
        if name == "sgd":  # theta <- theta - eta g
            theta = theta - lr * g
        elif name == "nesterov":  # Keras: v <- mu v - eta g; theta <- theta + mu v - eta g
            state["m"] = 0.9 * state["m"] - lr * g
            theta = theta + 0.9 * state["m"] - lr * g
        elif name == "adagrad":  # G <- G + g^2 (from 0.1); theta <- theta - eta g / sqrt(G + eps)
            state["acc"] = state["acc"] + g**2
            theta = theta - lr * g / np.sqrt(state["acc"] + 1e-7)
        elif name == "adadelta":  # Zeiler 2012, Algorithm 1, with rho 0.95 and epsilon 1e-6
            state["eg"] = 0.95 * state["eg"] + 0.05 * g**2
            delta = -np.sqrt(state["edx"] + 1e-6) / np.sqrt(state["eg"] + 1e-6) * g
            state["edx"] = 0.95 * state["edx"] + 0.05 * delta**2
            theta = theta + lr * delta
        elif name == "rmsprop":  # E[g^2] <- rho E[g^2] + (1 - rho) g^2; theta <- theta - eta g / sqrt(E[g^2] + eps)
            state["v"] = 0.9 * state["v"] + 0.1 * g**2
            theta = theta - lr * g / np.sqrt(state["v"] + 1e-7)
        elif name == "adam":  # Kingma & Ba with bias correction (Keras puts epsilon after it: a 1e-9 difference)
            state["m"] = 0.9 * state["m"] + 0.1 * g
            state["v"] = 0.999 * state["v"] + 0.001 * g**2
            m_hat, v_hat = state["m"] / (1 - 0.9**t), state["v"] / (1 - 0.999**t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + 1e-7)
    return theta


def keras_steps(optimizer, steps):
    variable = keras.Variable(THETA0.astype("float32"))
    for _ in range(steps):
        g = CURVATURE.astype("float32") * np.asarray(keras.ops.convert_to_numpy(variable))
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


@pytest.mark.parametrize("name", optimizers.LECTURE_OPTIMIZERS)
def test_optimizer_steps_follow_the_lectures_update_rule(name):
    lr = 0.1
    for steps in (1, 3):  # one step, then three to exercise the accumulated state
        got = keras_steps(optimizers.create(name, learning_rate=lr), steps)
        np.testing.assert_allclose(got, reference_steps(name, lr, steps), rtol=2e-5, atol=1e-6)
    assert got.tolist() != THETA0.tolist()


def test_adadelta_defaults_to_zeilers_settings_not_keras():
    opt = optimizers.create("adadelta")
    assert float(opt.learning_rate) == 1.0 and opt.rho == 0.95 and opt.epsilon == 1e-6
    assert float(keras.optimizers.Adadelta().learning_rate) == pytest.approx(0.001)  # why we override it
    assert float(optimizers.create("adadelta", learning_rate=0.5).learning_rate) == 0.5


CONVERGENCE_RATE = {"sgd": 0.1, "nesterov": 0.05, "adagrad": 0.5, "adadelta": None, "rmsprop": 0.01, "adam": 0.05}


@pytest.mark.parametrize("name", optimizers.LECTURE_OPTIMIZERS)
def test_optimizer_reduces_a_convex_quadratic_in_200_steps(name):
    theta = keras_steps(optimizers.create(name, learning_rate=CONVERGENCE_RATE[name]), 200)
    start, end = 0.5 * np.sum(CURVATURE * THETA0**2), 0.5 * np.sum(CURVATURE * theta**2)
    assert end < 0.5 * start, (name, start, end)


def test_every_optimizer_has_the_tables_core_idea():
    assert len(optimizers.LECTURE_OPTIMIZERS) == 6
    assert optimizers.describe("Nesterov's momentum").startswith("Introduces momentum")
    assert "decaying average" in optimizers.describe("adam")


# --- (e) the perceptron: separable problems to zero errors, XOR never ---


@pytest.mark.parametrize("labels", [[0, 0, 0, 1], [0, 1, 1, 1]], ids=["AND", "OR"])
def test_perceptron_learns_and_or_to_zero_errors(labels):
    model = models.create("perceptron", input_shape=(2,))
    errors = train_perceptron(model, BOOLEAN_X, labels, epochs=20, learning_rate=0.5)
    assert errors[-1] == 0 and len(errors) == 20
    # the learned weights live in the Keras model, which now predicts the truth table
    np.testing.assert_array_equal(model.predict(BOOLEAN_X, verbose=0).ravel(), labels)


def test_perceptron_separates_a_toy_star_galaxy_split():
    # two features: concentration and colour; galaxies (1) lie above a line, with a margin
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(400, 2))
    side = x @ np.array([0.8, -0.6]) + 0.1
    x, y = x[np.abs(side) > 0.05], (side[np.abs(side) > 0.05] > 0).astype(int)
    model = models.create("perceptron", input_shape=(2,))
    errors = train_perceptron(model, x, y, epochs=200)
    assert errors[0] > 0 and errors[-1] == 0
    np.testing.assert_array_equal(model.predict(x, verbose=0).ravel(), y)


def test_perceptron_never_learns_xor():
    # Minsky & Papert (1969): no line separates XOR, so every epoch has a mistake
    model = models.create("perceptron", input_shape=(2,))
    errors = train_perceptron(model, BOOLEAN_X, [0, 1, 1, 0], epochs=100)
    assert min(errors) > 0
    assert (model.predict(BOOLEAN_X, verbose=0).ravel() != [0, 1, 1, 0]).any()


def test_perceptron_is_not_trained_by_backprop():
    # the step passes back zero gradients, so fit leaves the weights where they were
    model = models.create("perceptron", input_shape=(2,))
    model.compile(optimizer=optimizers.create("sgd", learning_rate=1.0), loss=losses.HalfSumSquaredError())
    before = [w.copy() for w in model.get_weights()]
    model.fit(BOOLEAN_X, np.array([0, 0, 0, 1.0]), epochs=2, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_perceptron_model_shape_and_bad_inputs():
    model = models.create("perceptron", input_shape=(5,))
    assert model.output_shape == (None, 1) and model.count_params() == 6
    assert model.get_layer("unit").activation is activations.step
    image = models.create("perceptron", input_shape=(4, 4, 1))  # Mark I style: pixels in, flattened
    assert image.get_layer("unit").kernel.shape == (16, 1)
    with pytest.raises(DeepskyError, match="num_classes=3"):
        models.create("perceptron", num_classes=3)
    with pytest.raises(DeepskyError, match="must be 0 or 1"):
        train_perceptron(model, np.zeros((2, 5)), [1, 2])
    with pytest.raises(DeepskyError, match="5 input features"):
        train_perceptron(model, np.zeros((2, 3)), [1, 0])
    with pytest.raises(DeepskyError, match="exactly one Dense layer"):
        train_perceptron(keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)]), BOOLEAN_X, [0, 0, 0, 1])


# --- (f) one hidden layer and backprop solve XOR ---


def test_mlp_with_one_hidden_layer_solves_xor_by_backprop():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(8, activation=activations.get("tanh"), name="hidden"),
        keras.layers.Dense(1, activation=activations.get("sigmoid"), name="output"),
    ])
    model.compile(optimizer=optimizers.create("adam", learning_rate=0.05), loss=losses.get("cross_entropy"))
    model.fit(BOOLEAN_X, np.array([0, 1, 1, 0.0]), epochs=300, batch_size=4, verbose=0)
    np.testing.assert_array_equal(np.round(model.predict(BOOLEAN_X, verbose=0).ravel()), [0, 1, 1, 0])


# --- (g) names ---


def test_lecture_names_all_resolve():
    for name in activations.LECTURE_ACTIVATIONS:
        assert callable(activations.get(name)) and activations.describe(name).startswith("f(x)")
    for name in losses.LECTURE_LOSSES:
        assert isinstance(losses.get(name), keras.losses.Loss) and losses.describe(name).startswith("J =")
    for name in optimizers.LECTURE_OPTIMIZERS:
        assert isinstance(optimizers.create(name), keras.optimizers.Optimizer)
    assert activations.get("logistic") is keras.activations.sigmoid
    assert isinstance(losses.get("half_sse"), losses.HalfSumSquaredError)


@pytest.mark.parametrize(
    "lookup, known",
    [
        (activations.get, activations.LECTURE_ACTIVATIONS),
        (activations.describe, activations.LECTURE_ACTIVATIONS),
        (losses.get, losses.LECTURE_LOSSES),
        (losses.describe, losses.LECTURE_LOSSES),
        (optimizers.create, optimizers.LECTURE_OPTIMIZERS),
        (optimizers.describe, optimizers.LECTURE_OPTIMIZERS),
    ],
)
def test_unknown_names_list_the_known_ones(lookup, known):
    with pytest.raises(DeepskyError, match="unknown .* 'nope'") as info:
        lookup("nope")
    for name in known:
        assert name in str(info.value)


# --- JAX: the same objects train there ---

JAX_SCRIPT = """
import numpy as np
import keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from deepsky import activations, losses, models, optimizers
from deepsky.models.perceptron import train_perceptron

x4 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
perceptron = models.create("perceptron", input_shape=(2,))
assert train_perceptron(perceptron, x4, [0, 0, 0, 1], epochs=10)[-1] == 0
assert (perceptron.predict(x4, verbose=0).ravel() == [0, 0, 0, 1]).all()

rng = np.random.default_rng(0)
x = rng.normal(size=(16, 3)).astype("float32")
inputs = keras.Input((3,))
# every lecture activation in one model, plus the Gaussian layer with its own width
branches = [keras.layers.Dense(2, activation=activations.get(n), name="act_" + n)(inputs)
            for n in activations.LECTURE_ACTIVATIONS]
hidden = activations.Gaussian(sigma=2.0)(keras.layers.Concatenate()(branches))
heads = {"out_" + n: keras.layers.Dense(1, activation="sigmoid" if n == "cross_entropy" else None, name="out_" + n)(hidden)
         for n in losses.LECTURE_LOSSES}
model = keras.Model(inputs, heads)
labels = (rng.random((16, 1)) > 0.5).astype("float32")
for name in optimizers.LECTURE_OPTIMIZERS:
    model.compile(optimizer=optimizers.create(name), loss={"out_" + n: losses.get(n) for n in losses.LECTURE_LOSSES})
    before = model.get_layer("act_tanh").kernel.numpy().copy()
    logs = model.train_on_batch(x, {"out_" + n: labels for n in losses.LECTURE_LOSSES}, return_dict=True)
    assert np.isfinite(logs["loss"]), (name, logs)
    assert not np.allclose(before, model.get_layer("act_tanh").kernel.numpy()), name
print("jax ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
@pytest.mark.slow  # compiling every graph with XLA: ./test.sh -m slow (test_backends keeps JAX in the default run)
def test_fundamentals_train_one_step_on_jax():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax ok" in result.stdout
