"""The lecture's activation functions as Keras activations, by name.

Keras ships linear, sigmoid, tanh, ReLU and leaky ReLU; this module adds the
two it lacks, the Gaussian ``exp(-x**2 / sigma**2)`` and the perceptron's
step, registered for ``.keras`` loading in safe mode.

Keras 3 looks activation *strings* up among its built-ins only, so
``Dense(4, activation="deepsky>gaussian")`` is refused; pass the function
(``activation=deepsky.activations.gaussian``) or ``get("gaussian")``. A
model saved with it stores ``"deepsky>gaussian"`` and loads again in safe
mode once this module has been imported.

>>> from deepsky import activations
>>> [round(float(v), 4) for v in activations.gaussian([0.0, 1.0, 2.0])]
[1.0, 0.3679, 0.0183]
>>> [float(v) for v in activations.step([-2.0, 0.0, 3.0])]
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

from deepsky.config import ensure_backend
from deepsky.errors import DeepskyError

# Keras picks its backend when first imported; choose ours before that.
ensure_backend()

import keras  # noqa: E402

LECTURE_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "gaussian", "step")
"""The lecture's activations, in the order it shows them."""

_FORMULAS = {
    "linear": "f(x) = x",
    "sigmoid": "f(x) = 1 / (1 + exp(-x))",
    "tanh": "f(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))",
    "relu": "f(x) = max(0, x)",
    "leaky_relu": "f(x) = x if x > 0 else a x (a = 0.2)",
    "gaussian": "f(x) = exp(-x^2 / sigma^2)",
    "step": "f(x) = 1 if x > 0 else 0",
}

# Other names the lecture and textbooks use for the same functions.
_ALIASES = {"identity": "linear", "logistic": "sigmoid", "heaviside": "step"}


@keras.saving.register_keras_serializable(package="deepsky")
def gaussian(x, sigma=1.0):
    """Gaussian activation ``exp(-x**2 / sigma**2)``, peaking at 1 for x = 0.

    The lecture's form divides by ``sigma**2``, not the ``2 sigma**2`` of a
    normal density, so ``sigma`` is the input at which the output is 1/e.
    Used as ``Dense(..., activation=gaussian)`` it has ``sigma = 1``; use
    the :class:`Gaussian` layer for another width that must survive saving.

    Parameters
    ----------
    x : tensor or array_like
        Pre-activations (dimensionless).
    sigma : float
        Width, in the units of ``x``; must be positive.

    Returns
    -------
    tensor
        Same shape as ``x``, values in (0, 1].
    """
    x = keras.ops.convert_to_tensor(x)
    return keras.ops.exp(-keras.ops.square(x / sigma))


@keras.saving.register_keras_serializable(package="deepsky")
def step(x):
    """The perceptron's step (Heaviside) activation: 1 where ``x > 0``, else 0.

    Its derivative is zero everywhere except at 0, where it does not exist,
    so backpropagation passes no signal through it: a network ending in a
    step cannot be trained by gradient descent. That is why Rosenblatt's
    perceptron has its own learning rule
    (:func:`deepsky.models.perceptron.train_perceptron`) and why multilayer
    networks replaced the step by smooth sigmoids.

    Built as ``relu(sign(x))`` so that every backend returns an exact zero
    gradient (not a missing one: a model ending in ``step`` still runs
    ``fit``, its weights just do not move).

    Parameters
    ----------
    x : tensor or array_like
        Pre-activations ``w . x + b``.

    Returns
    -------
    tensor
        0.0 or 1.0, same shape and dtype as ``x``; ``step(0) = 0`` as in the
        lecture's definition.
    """
    x = keras.ops.convert_to_tensor(x)
    return keras.ops.relu(keras.ops.sign(x))


@keras.saving.register_keras_serializable(package="deepsky")
class Gaussian(keras.layers.Layer):
    """Gaussian activation layer ``exp(-x**2 / sigma**2)`` with a saved width.

    Parameters
    ----------
    sigma : float
        Width in the units of the inputs (the input at which the output is
        1/e); must be positive.
    """

    def __init__(self, sigma=1.0, **kwargs):
        super().__init__(**kwargs)
        sigma = float(sigma)
        if not sigma > 0:
            raise DeepskyError(f"Gaussian width must be positive. Received: sigma={sigma}")
        self.sigma = sigma

    def call(self, inputs):
        return gaussian(inputs, self.sigma)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


def _canonical(name: str) -> str:
    key = str(name).lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _FORMULAS:
        raise DeepskyError(
            f"unknown activation {name!r}; known activations: {', '.join(LECTURE_ACTIVATIONS)}"
            f" (aliases: {', '.join(sorted(_ALIASES))})"
        )
    return key


def get(name: str):
    """The Keras activation callable for one of the lecture's names.

    Parameters
    ----------
    name : str
        One of :data:`LECTURE_ACTIVATIONS`, or an alias (``identity``,
        ``logistic``, ``heaviside``); case and ``-``/``_`` do not matter.

    Returns
    -------
    callable
        A function usable as ``keras.layers.Dense(..., activation=get(name))``
        that saves and loads by name.

    Raises
    ------
    DeepskyError
        For an unknown name; the message lists the known ones.
    """
    key = _canonical(name)
    if key == "gaussian":
        return gaussian
    if key == "step":
        return step
    return getattr(keras.activations, key)


def describe(name: str) -> str:
    """The formula of activation ``name`` as one line of text.

    >>> describe("gaussian")
    'f(x) = exp(-x^2 / sigma^2)'
    """
    return _FORMULAS[_canonical(name)]
