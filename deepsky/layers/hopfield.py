"""A Hopfield network (Hopfield 1982) as a Keras layer: Hebbian storage, recall by iteration."""

from __future__ import annotations

import keras
import numpy as np

from deepsky.errors import DeepskyError

UPDATES = ("synchronous", "asynchronous")


@keras.saving.register_keras_serializable(package="deepsky")
class Hopfield(keras.layers.Layer):
    """Binary (+1/-1) units with symmetric weights; calling it recalls the nearest stored pattern.

    ``store(patterns)`` sets ``W = sum_p p p^T / N`` with a zero diagonal
    (Hebb's rule; each pattern is then a local minimum of the energy
    ``E(s) = -s W s / 2`` if there are fewer than about 0.14 N of them).
    Calling the layer on states runs ``steps`` updates
    ``s_i <- sign(sum_j W_ij s_j)``, a unit keeping its state where the field
    is exactly zero. The weights are a non-trainable variable: they come from
    ``store``, not from gradient descent, and are saved with the model.

    Parameters
    ----------
    steps : int
        Update sweeps per call.
    update : {"synchronous", "asynchronous"}
        ``synchronous`` updates all units at once from the previous state
        (fast; may end in a 2-cycle). ``asynchronous`` updates one unit at a
        time in index order, each seeing the others' latest states; the
        energy then never rises and recall always converges to a fixed point.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Hopfield(steps=3)
    >>> pattern = np.array([[1, -1, 1, -1, 1, 1, -1, -1]], dtype="float32")
    >>> layer.store(pattern)
    >>> noisy = pattern.copy(); noisy[0, 0] = -1
    >>> keras.ops.convert_to_numpy(layer(noisy)).astype(int)
    array([[ 1, -1,  1, -1,  1,  1, -1, -1]])
    """

    def __init__(self, steps=10, update="synchronous", **kwargs):
        super().__init__(**kwargs)
        if update not in UPDATES:
            raise DeepskyError(f"update must be one of {UPDATES}. Received: update={update!r}")
        if int(steps) < 1:
            raise DeepskyError(f"steps must be at least 1. Received: steps={steps}")
        self.steps = int(steps)
        self.update = update

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], input_shape[-1]), initializer="zeros", trainable=False, name="kernel"
        )

    @property
    def units(self):
        return None if not self.built else int(self.kernel.shape[0])

    def store(self, patterns, append=False):
        """Store +1/-1 ``patterns`` (n_patterns, N) by Hebb's rule; ``append`` adds to what is stored."""
        patterns = np.asarray(patterns, dtype="float64")
        if patterns.ndim != 2 or not np.all(np.isin(patterns, (-1.0, 1.0))):
            raise DeepskyError(
                "patterns must be a 2-D array (n_patterns, units) of +1/-1 values. "
                f"Received: shape {patterns.shape}, values {np.unique(patterns)[:5]}"
            )
        if not self.built:
            self.build((None, patterns.shape[1]))
        if patterns.shape[1] != self.units:
            raise DeepskyError(f"patterns have {patterns.shape[1]} units but the network has {self.units}")
        weights = patterns.T @ patterns / patterns.shape[1]
        np.fill_diagonal(weights, 0.0)  # no self-coupling: a unit would otherwise just keep its state
        if append:
            weights += keras.ops.convert_to_numpy(self.kernel)
        self.kernel.assign(weights.astype(self.kernel.dtype))

    def energy(self, states):
        """``E(s) = -s W s / 2`` per state (dimensionless); lower is more stable."""
        ops = keras.ops
        s = ops.convert_to_tensor(states, dtype=self.kernel.dtype)
        return -0.5 * ops.sum(ops.matmul(s, self.kernel) * s, axis=-1)

    @staticmethod
    def _sign(field, previous):
        ops = keras.ops
        return ops.where(field > 0, 1.0, ops.where(field < 0, -1.0, previous))

    def call(self, inputs):
        ops = keras.ops
        kernel = ops.cast(self.kernel, inputs.dtype)
        s = ops.where(inputs >= 0, 1.0, -1.0)  # any real input is read as its sign
        s = ops.cast(s, inputs.dtype)
        if self.update == "synchronous":
            for _ in range(self.steps):
                s = ops.cast(self._sign(ops.matmul(s, kernel), s), inputs.dtype)
            return s
        n = kernel.shape[0]
        index = ops.arange(n)

        def one_unit(i, s):
            unit = i % n
            field = ops.matmul(s, ops.take(kernel, unit, axis=1))
            new = self._sign(field, ops.take(s, unit, axis=1))
            return ops.cast(ops.where(ops.expand_dims(index == unit, 0), ops.expand_dims(new, 1), s), s.dtype)

        return ops.fori_loop(0, self.steps * n, one_unit, s)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "update": self.update}
