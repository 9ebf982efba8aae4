"""Rosenblatt's perceptron (1958) and its learning rule.

One unit computes ``step(w . x + b)``: 1 on one side of a hyperplane, 0 on
the other. The step has zero gradient, so the unit is not trained by
backpropagation but by Rosenblatt's rule, which nudges the hyperplane
towards each misclassified sample. The rule reaches zero errors whenever
the two classes are linearly separable (Novikoff 1962) and never when they
are not, e.g. XOR, the limitation Minsky & Papert (1969) made famous.

>>> import numpy as np
>>> from deepsky import models
>>> from deepsky.models.perceptron import train_perceptron
>>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
>>> model = models.create("perceptron", input_shape=(2,))
>>> train_perceptron(model, x, [0, 0, 0, 1], epochs=6)   # AND: errors per epoch
[1, 3, 3, 2, 1, 0]
"""

from __future__ import annotations

import numpy as np

from deepsky.errors import DeepskyError
from deepsky.models.registry import register_model


@register_model("perceptron", "Rosenblatt (1958) perceptron: one unit, step activation, 0/1 output")
def perceptron(input_shape=(2,), num_classes=2, name="perceptron"):
    """Build a perceptron: a single Dense unit with the step activation.

    Parameters
    ----------
    input_shape : tuple
        ``(features,)``, e.g. two colours for a toy star/galaxy split. A
        longer shape (an image, as on the Mark I's 20x20 photocells) is
        flattened first by a layer named ``flatten``.
    num_classes : int
        Must be 2: a perceptron separates two classes, and its one output
        unit gives 1 for the positive class and 0 for the other (not a
        probability, and not two softmax columns).
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Layers ``features`` (input) and ``unit`` (``Dense(1)``, step
        activation, zero initial weights as in Rosenblatt's rule). Train it
        with :func:`train_perceptron`; ``fit`` would leave it unchanged,
        since the step passes back zero gradients.
    """
    import keras

    from deepsky.activations import step

    if num_classes != 2:
        raise DeepskyError(
            f"a perceptron separates two classes (one 0/1 output). Received: num_classes={num_classes}; "
            "use an MLP with a softmax output for more"
        )
    input_shape = tuple(int(n) for n in input_shape)
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(
        1, activation=step, kernel_initializer="zeros", bias_initializer="zeros", name="unit",
    )(x)
    return keras.Model(inputs, outputs, name=name)


def _single_unit(model):
    import keras

    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if len(dense) != 1 or dense[0].units != 1 or not dense[0].use_bias:
        found = [(layer.name, layer.units) for layer in dense]
        raise DeepskyError(
            "the perceptron rule trains a model with exactly one Dense layer of one unit with a bias "
            f"(deepsky.models.create('perceptron')). Received Dense layers (name, units): {found}"
        )
    return dense[0]


def train_perceptron(model, x, y, epochs=100, learning_rate=1.0):
    """Train a perceptron in place with Rosenblatt's rule; return errors per epoch.

    Samples are visited in the given order; for each one the unit predicts
    ``yhat = step(w . x + b)`` (1 if positive, else 0) and updates

        w <- w + eta (y - yhat) x,    b <- b + eta (y - yhat),

    which changes nothing when the prediction is right. The weights are read
    from and written back into the model's Keras variables, so the model
    predicts with what was learned.

    Parameters
    ----------
    model : keras.Model
        A model with one single-unit Dense layer, as built by
        ``deepsky.models.create("perceptron")``.
    x : array_like, shape (n, features) or (n, *input_shape)
        Inputs; flattened per sample.
    y : array_like, shape (n,) or (n, 1)
        Labels, 0 or 1 (booleans accepted).
    epochs : int
        Passes over the data. All are run: after an error-free pass the
        weights no longer change.
    learning_rate : float
        ``eta`` > 0. With zero initial weights its value only rescales
        ``w`` and ``b``, so it does not change which samples are misclassified.

    Returns
    -------
    list of int
        Misclassified samples in each epoch (counted before each update), of
        length ``epochs``; it reaches 0 only for linearly separable data.

    Raises
    ------
    DeepskyError
        For a model that is not a single unit, labels other than 0/1,
        mismatched shapes, or non-positive ``epochs`` / ``learning_rate``.
    """
    unit = _single_unit(model)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    n = x.shape[0] if x.ndim else 0
    x = x.reshape(n, -1)
    y = y.reshape(-1).astype(np.float64)
    if y.shape[0] != n:
        raise DeepskyError(f"x and y disagree on the number of samples. Received: {n} inputs, {y.shape[0]} labels")
    if not np.isin(y, (0.0, 1.0)).all():
        raise DeepskyError(f"perceptron labels must be 0 or 1. Received values: {sorted(set(y.tolist()))[:10]}")
    if int(epochs) < 1 or not learning_rate > 0:
        raise DeepskyError(
            f"need epochs >= 1 and learning_rate > 0. Received: epochs={epochs}, learning_rate={learning_rate}"
        )
    kernel, bias = unit.get_weights()
    if x.shape[1] != kernel.shape[0]:
        raise DeepskyError(
            f"the perceptron has {kernel.shape[0]} input features. Received inputs with {x.shape[1]}"
        )
    w = kernel[:, 0].astype(np.float64)
    b = float(bias[0])
    errors = []
    for _ in range(int(epochs)):
        wrong = 0
        for xi, yi in zip(x, y):
            yhat = 1.0 if xi @ w + b > 0 else 0.0
            if yhat != yi:
                wrong += 1
                w += learning_rate * (yi - yhat) * xi
                b += learning_rate * (yi - yhat)
        errors.append(wrong)
    unit.set_weights([w[:, None].astype(kernel.dtype), np.array([b], dtype=bias.dtype)])
    return errors
