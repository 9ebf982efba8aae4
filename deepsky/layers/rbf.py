"""Gaussian radial basis function units (Broomhead & Lowe 1988; Moody & Darken 1989)."""

from __future__ import annotations

import math

import keras

from deepsky.errors import DeepskyError


@keras.saving.register_keras_serializable(package="deepsky")
class RBF(keras.layers.Layer):
    """``exp(-||x - c_j||^2 / (2 s_j^2))`` for ``units`` Gaussian units with trainable centres and widths.

    Each unit answers how close an input is to its centre ``c_j``: 1 at the
    centre, ``exp(-1/2)`` one width away, about 0 far off. A linear or softmax
    layer on top turns these bumps into a decision, which is why an RBF
    network on magnitudes behaves like a smooth nearest-prototype classifier.

    Parameters
    ----------
    units : int
        Number of Gaussian units (centres).
    initial_width : float
        Starting width ``s`` of every unit, in the input's units (e.g.
        magnitudes, or standard deviations for standardised inputs).
    centers_initializer : str or keras.initializers.Initializer
        Starting centres; ``deepsky.models.rbf.init_from_data`` replaces them
        with k-means centres of a data sample.

    Notes
    -----
    The widths are stored as ``log_width`` so that gradient steps can never
    make a width zero or negative.

    Examples
    --------
    >>> import numpy as np
    >>> layer = RBF(2, initial_width=1.0)
    >>> layer.build((None, 2))
    >>> _ = layer.centers.assign(np.array([[0.0, 0.0], [3.0, 4.0]], dtype="float32"))
    >>> np.round(keras.ops.convert_to_numpy(layer(np.zeros((1, 2), "float32"))), 4)
    array([[1., 0.]], dtype=float32)
    """

    def __init__(self, units, initial_width=1.0, centers_initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1 or float(initial_width) <= 0:
            raise DeepskyError(
                f"an RBF layer needs units >= 1 and initial_width > 0. "
                f"Received: units={units}, initial_width={initial_width}"
            )
        self.units = int(units)
        self.initial_width = float(initial_width)
        self.centers_initializer = keras.initializers.get(centers_initializer)

    def build(self, input_shape):
        dim = input_shape[-1]
        self.centers = self.add_weight(
            shape=(self.units, dim), initializer=self.centers_initializer, name="centers"
        )
        self.log_width = self.add_weight(
            shape=(self.units,),
            initializer=keras.initializers.Constant(math.log(self.initial_width)),
            name="log_width",
        )

    @property
    def widths(self):
        """The widths ``s_j`` (input units), as a backend tensor."""
        return keras.ops.exp(self.log_width)

    def call(self, inputs):
        ops = keras.ops
        centers = ops.cast(self.centers, inputs.dtype)
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2: a matrix product instead of
        # a (batch, units, features) difference tensor; rounding can make it
        # slightly negative, hence the clip.
        sq = (
            ops.sum(ops.square(inputs), axis=-1, keepdims=True)
            - 2.0 * ops.matmul(inputs, ops.transpose(centers))
            + ops.sum(ops.square(centers), axis=-1)
        )
        sq = ops.maximum(sq, 0.0)
        width2 = ops.exp(2.0 * ops.cast(self.log_width, inputs.dtype))
        return ops.exp(-sq / (2.0 * width2))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "initial_width": self.initial_width,
            "centers_initializer": keras.initializers.serialize(self.centers_initializer),
        }
