"""The lecture's loss functions as Keras losses, by name.

Keras has the hinge and cross-entropy losses; this module adds the three it
lacks, registered for ``.keras`` loading in safe mode:

- :class:`HalfSumSquaredError`, ``J = 1/2 sum (y - f(x))^2``, the cost the
  lecture derives backpropagation from;
- :class:`ExponentialLoss`, ``exp(-yhat y)`` (AdaBoost's loss);
- :class:`LogisticLoss`, ``log2(1 + exp(-yhat y))``, in base 2 as in the
  lecture (the natural-log version divided by ln 2).

The three margin losses (hinge, exponential, logistic) compare a real-valued
score ``yhat`` (a linear output, no sigmoid) with a label ``y`` in {-1, +1}.
Labels in {0, 1} are accepted: 0 becomes -1 and 1 stays 1. Keras's
``Hinge`` does the same (it converts ``2 y - 1`` when every label of the
batch is 0 or 1), so for valid labels the two rules agree; ours works label
by label, which also suits a jitted JAX step.

>>> import numpy as np
>>> from deepsky import losses
>>> y, score = np.array([[1.0], [-1.0]]), np.array([[2.0], [0.5]])
>>> round(float(losses.LogisticLoss()(y, score)), 4)   # (log2(1+e^-2) + log2(1+e^0.5)) / 2
0.7942
"""

from __future__ import annotations

import math

from deepsky.config import ensure_backend
from deepsky.errors import DeepskyError

# Keras picks its backend when first imported; choose ours before that.
ensure_backend()

import keras  # noqa: E402
from keras import ops  # noqa: E402

LECTURE_LOSSES = ("half_sum_squared_error", "hinge", "exponential", "logistic", "cross_entropy")
"""The lecture's losses, in the order it lists them."""

_FORMULAS = {
    "half_sum_squared_error": "J = 1/2 sum_outputs (y - yhat)^2, averaged over the batch",
    "hinge": "J = max(0, 1 - yhat y), y in {-1, +1}",
    "exponential": "J = exp(-yhat y), y in {-1, +1}",
    "logistic": "J = log2(1 + exp(-yhat y)), y in {-1, +1}",
    "cross_entropy": "J = -[y ln p + (1 - y) ln(1 - p)], y in {0, 1}, p a probability",
    "categorical_cross_entropy": "J = -sum_k y_k ln p_k, y one-hot, p a softmax output",
}

_ALIASES = {
    "half_sse": "half_sum_squared_error",
    "binary_cross_entropy": "cross_entropy",
    "binary_crossentropy": "cross_entropy",
    "crossentropy": "cross_entropy",
    "categorical_crossentropy": "categorical_cross_entropy",
}

_LN2 = math.log(2.0)


def _mean_last_axis(values):
    """Mean over the outputs; ``ops.mean`` on torch computes float64 input in float32."""
    return ops.sum(values, axis=-1) / values.shape[-1]


def _plus_minus_labels(y_true):
    """{0, 1} labels to {-1, +1}; {-1, +1} labels unchanged."""
    return ops.where(ops.equal(y_true, 0), -ops.ones_like(y_true), y_true)


class _DeepskyLoss(keras.losses.Loss):
    """A Keras loss whose config also keeps its dtype, so a float64 loss reloads as one."""

    def get_config(self):
        return {**super().get_config(), "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="deepsky")
class HalfSumSquaredError(_DeepskyLoss):
    """Half the sum of squared errors, ``1/2 sum (y - yhat)^2``.

    The sum runs over the outputs (last axis) of each sample; the batch is
    then averaged (Keras's ``sum_over_batch_size`` reduction), so the value
    does not grow with the batch size. The factor 1/2 makes the gradient
    the plain error ``yhat - y``. For one output this is half of Keras's
    ``MeanSquaredError``; for ``k`` outputs it is ``k/2`` times it.

    Parameters
    ----------
    name : str
        Loss name shown in training logs.
    reduction : str
        Keras reduction over the batch; ``"sum_over_batch_size"`` is the mean.
    dtype : str or None
        Computation dtype; None uses Keras's ``floatx`` (float32).
    """

    def __init__(self, name="half_sum_squared_error", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        return 0.5 * ops.sum(ops.square(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="deepsky")
class ExponentialLoss(_DeepskyLoss):
    """Exponential margin loss ``exp(-yhat y)``, AdaBoost's loss.

    Averaged over the outputs (last axis), then over the batch, like
    Keras's ``Hinge``. It punishes confident mistakes exponentially, so one
    mislabelled sample can dominate; it overflows in float32 once
    ``-yhat y`` exceeds about 88.

    Parameters
    ----------
    name, reduction, dtype
        As for :class:`HalfSumSquaredError`.

    Notes
    -----
    ``y_true`` in {-1, +1}, or {0, 1} (0 is read as -1); ``y_pred`` is an
    unbounded score, not a probability.
    """

    def __init__(self, name="exponential_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = _plus_minus_labels(ops.cast(y_true, y_pred.dtype))
        return _mean_last_axis(ops.exp(-y_true * y_pred))


@keras.saving.register_keras_serializable(package="deepsky")
class LogisticLoss(_DeepskyLoss):
    """Logistic margin loss ``log2(1 + exp(-yhat y))``, in bits.

    Computed as ``softplus(-yhat y) / ln 2``, which neither overflows for
    large negative margins nor loses precision for large positive ones.
    Base 2 (as in the lecture) makes the loss exactly 1 at zero margin; it
    is the binary cross-entropy of ``sigmoid(yhat)`` divided by ln 2.
    Averaged over the outputs (last axis), then over the batch.

    Parameters
    ----------
    name, reduction, dtype
        As for :class:`HalfSumSquaredError`.

    Notes
    -----
    ``y_true`` in {-1, +1}, or {0, 1} (0 is read as -1); ``y_pred`` is an
    unbounded score, not a probability.
    """

    def __init__(self, name="logistic_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = _plus_minus_labels(ops.cast(y_true, y_pred.dtype))
        return _mean_last_axis(ops.softplus(-y_true * y_pred)) / _LN2


@keras.saving.register_keras_serializable(package="deepsky")
class GaussianNLL(_DeepskyLoss):
    """Gaussian negative log-likelihood of regression targets, with predicted uncertainties.

    ``y_pred`` holds K means then K log standard deviations for the K
    targets in ``y_true``; the loss is ``(y - mu)^2 / (2 sigma^2) + log sigma``
    (the constant ``log sqrt(2 pi)`` left out), averaged over the targets and
    the batch. A network trained on it says how sure it is of every value.

    Parameters
    ----------
    log_sigma_range : (float, float)
        ``log sigma`` is clipped to this range, so a badly wrong start cannot
        overflow the loss.
    name, reduction, dtype
        As for :class:`HalfSumSquaredError`.

    >>> import numpy as np
    >>> round(float(GaussianNLL()(np.array([[1.0]]), np.array([[0.0, 0.0]]))), 4)   # 1/2 + log 1
    0.5
    """

    def __init__(self, log_sigma_range=(-9.0, 5.0), name="gaussian_nll", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.log_sigma_range = tuple(float(v) for v in log_sigma_range)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        k = y_true.shape[-1]
        mean = y_pred[..., :k]
        log_sigma = ops.clip(y_pred[..., k:], *self.log_sigma_range)
        return _mean_last_axis(0.5 * ops.square((y_true - mean) * ops.exp(-log_sigma)) + log_sigma)

    def get_config(self):
        return {**super().get_config(), "log_sigma_range": list(self.log_sigma_range)}


def gaussian_mean_squared_error(y_true, y_pred):
    """Mean squared error of the means of a :class:`GaussianNLL` output (a Keras metric)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    return _mean_last_axis(ops.square(y_true - y_pred[..., : y_true.shape[-1]]))


def _canonical(name: str) -> str:
    key = str(name).lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _FORMULAS:
        known = (*LECTURE_LOSSES, "categorical_cross_entropy")
        raise DeepskyError(
            f"unknown loss {name!r}; known losses: {', '.join(known)}"
            f" (aliases: {', '.join(sorted(_ALIASES))})"
        )
    return key


def get(name: str, **kwargs):
    """A new Keras loss object for one of the lecture's names.

    Parameters
    ----------
    name : str
        One of :data:`LECTURE_LOSSES`, ``categorical_cross_entropy``, or an
        alias (``half_sse``, ``binary_cross_entropy``); case and ``-``/``_``
        do not matter.
    **kwargs
        Passed to the loss's constructor (``reduction``, ``dtype``, and for
        the cross-entropies ``from_logits``).

    Returns
    -------
    keras.losses.Loss
        ``hinge`` is Keras's ``Hinge``; ``cross_entropy`` is Keras's
        ``BinaryCrossentropy`` (probabilities, labels in {0, 1});
        ``categorical_cross_entropy`` is ``CategoricalCrossentropy``.

    Raises
    ------
    DeepskyError
        For an unknown name; the message lists the known ones.
    """
    key = _canonical(name)
    classes = {
        "half_sum_squared_error": HalfSumSquaredError,
        "hinge": keras.losses.Hinge,
        "exponential": ExponentialLoss,
        "logistic": LogisticLoss,
        "cross_entropy": keras.losses.BinaryCrossentropy,
        "categorical_cross_entropy": keras.losses.CategoricalCrossentropy,
    }
    return classes[key](**kwargs)


def describe(name: str) -> str:
    """The formula of loss ``name`` as one line of text.

    >>> describe("logistic")
    'J = log2(1 + exp(-yhat y)), y in {-1, +1}'
    """
    return _FORMULAS[_canonical(name)]
