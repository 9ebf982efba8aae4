"""A restricted Boltzmann machine as a Keras layer, trained by contrastive divergence (Hinton 2002)."""

from __future__ import annotations

import keras

from deepsky.errors import DeepskyError


@keras.saving.register_keras_serializable(package="deepsky")
class RBM(keras.layers.Layer):
    """Bernoulli-Bernoulli RBM whose ``add_loss`` makes any Keras optimizer do CD-k.

    Visible units ``v`` (the input, values in [0, 1]) and hidden units ``h``
    are binary; the energy is ``E(v, h) = -v.b - h.c - v W h`` and the free
    energy ``F(v) = -v.b - sum_j softplus(v W + c)_j`` sums ``h`` out.

    The log-likelihood gradient is ``-dF/dtheta`` at the data plus
    ``E_model[dF/dtheta]``; contrastive divergence replaces the model
    expectation by ``v_k``, the end of a ``k``-step Gibbs chain started at the
    data. That update is exactly the gradient of::

        mean F(v_data) - mean F(stop_gradient(v_k))

    which the layer adds with ``add_loss``. ``model.fit`` with SGD (or any
    optimizer) on any backend therefore trains the RBM by CD-k, with no
    custom training step. The number it reports as the loss is this
    free-energy gap, not a likelihood: it hovers near zero and is not
    expected to fall; watch the reconstruction error instead.

    The layer returns the mean-field reconstruction
    ``sigmoid(sigmoid(v W + c) W^T + b)``, deterministic, so compiling with
    ``metrics=["mse"]`` and calling ``fit(x, x)`` tracks reconstruction error.

    Parameters
    ----------
    units : int
        Number of hidden units.
    k : int
        Gibbs steps per contrastive-divergence update (CD-1 is usual).
    seed : int or None
        Seed of the layer's random stream (Gibbs sampling).
    kernel_initializer : str or keras.initializers.Initializer
        Starting weights; small Gaussian weights (std 0.01) as in Hinton's
        practical guide (UTML TR 2010-003) keep every unit near p = 0.5.
    """

    def __init__(self, units, k=1, seed=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1 or int(k) < 1:
            raise DeepskyError(f"an RBM needs units >= 1 and k >= 1. Received: units={units}, k={k}")
        self.units = int(units)
        self.k = int(k)
        self.seed = seed
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(stddev=0.01, seed=seed)
        )
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        visible = input_shape[-1]
        self.kernel = self.add_weight(shape=(visible, self.units), initializer=self.kernel_initializer, name="kernel")
        self.visible_bias = self.add_weight(shape=(visible,), initializer="zeros", name="visible_bias")
        self.hidden_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="hidden_bias")

    def hidden_probabilities(self, v):
        """``p(h_j = 1 | v) = sigmoid(v W + c)``."""
        ops = keras.ops
        return ops.sigmoid(ops.matmul(v, ops.cast(self.kernel, v.dtype)) + ops.cast(self.hidden_bias, v.dtype))

    def visible_probabilities(self, h):
        """``p(v_i = 1 | h) = sigmoid(h W^T + b)``."""
        ops = keras.ops
        kernel = ops.cast(self.kernel, h.dtype)
        return ops.sigmoid(ops.matmul(h, ops.transpose(kernel)) + ops.cast(self.visible_bias, h.dtype))

    def _bernoulli(self, p, seed_generator=None):
        seed = self.seed_generator if seed_generator is None else seed_generator
        u = keras.random.uniform(keras.ops.shape(p), dtype=p.dtype, seed=seed)
        return keras.ops.cast(u < p, p.dtype)

    def gibbs(self, v, steps=1, probabilities=True, seed_generator=None):
        """Run ``steps`` alternating Gibbs steps v -> h -> v from ``v``.

        Hidden states are always sampled (sampling them is what keeps the
        chain from copying the data); the last visible layer is returned as
        probabilities when ``probabilities`` is true, which lowers the noise
        of the CD estimate (Hinton's guide, section 3.2), else as a binary
        sample. ``seed_generator`` (a ``keras.random.SeedGenerator``) replaces
        the layer's own random stream, for reproducible sampling.
        """
        v = keras.ops.convert_to_tensor(v, dtype=self.compute_dtype)
        p_v = v
        for step in range(int(steps)):
            h = self._bernoulli(self.hidden_probabilities(v), seed_generator)
            p_v = self.visible_probabilities(h)
            v = p_v if (probabilities and step == steps - 1) else self._bernoulli(p_v, seed_generator)
        return p_v if probabilities else v

    def free_energy(self, v):
        """``F(v) = -v.b - sum_j softplus(v W + c)_j`` per sample (nats)."""
        ops = keras.ops
        pre = ops.matmul(v, ops.cast(self.kernel, v.dtype)) + ops.cast(self.hidden_bias, v.dtype)
        return -ops.sum(v * ops.cast(self.visible_bias, v.dtype), axis=-1) - ops.sum(ops.softplus(pre), axis=-1)

    def call(self, inputs):
        ops = keras.ops
        negative = ops.stop_gradient(self.gibbs(inputs, self.k))
        self.add_loss(ops.mean(self.free_energy(inputs)) - ops.mean(self.free_energy(negative)))
        return self.visible_probabilities(self.hidden_probabilities(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "k": self.k,
            "seed": self.seed,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
