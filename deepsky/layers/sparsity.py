"""KL sparsity penalty on a code layer (the sparse autoencoder of Ng's CS294A notes)."""

from __future__ import annotations

import keras

from deepsky.errors import DeepskyError


@keras.saving.register_keras_serializable(package="deepsky")
class KLSparsity(keras.layers.Layer):
    """Pass activations through unchanged and add a penalty that keeps each unit mostly off.

    For each unit ``j`` the mean activation over the batch, ``rho_hat_j``,
    is pulled towards a small target ``rho`` with
    ``beta * sum_j KL(rho || rho_hat_j)``, the divergence between two
    Bernoulli distributions. Unlike an L1 penalty on every activation, this
    constrains how *often* a unit fires, not how strongly, so each code unit
    comes to respond to a rare feature (a bar, a companion, an arc).

    It is a layer rather than an ``activity_regularizer`` because Keras
    divides activity penalties by the batch size, which suits per-sample
    penalties but would shrink a penalty on batch statistics.

    Parameters
    ----------
    rho : float
        Target mean activation, between 0 and 1 (exclusive); 0.05 is usual.
    beta : float
        Weight of the penalty relative to the reconstruction loss.

    Notes
    -----
    The activations must lie in (0, 1): put it after a sigmoid.
    """

    def __init__(self, rho=0.05, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < float(rho) < 1.0:
            raise DeepskyError(f"rho must be between 0 and 1 (exclusive). Received: rho={rho}")
        self.rho = float(rho)
        self.beta = float(beta)

    def penalty(self, activations):
        """``sum_j KL(rho || rho_hat_j)`` in nats, with ``rho_hat`` the batch mean of each unit."""
        ops = keras.ops
        eps = 1e-7  # a unit that never fires would give log(0)
        flat = ops.reshape(activations, (-1, ops.shape(activations)[-1]))
        rho_hat = ops.clip(ops.mean(flat, axis=0), eps, 1.0 - eps)
        rho = self.rho
        kl = rho * ops.log(rho / rho_hat) + (1.0 - rho) * ops.log((1.0 - rho) / (1.0 - rho_hat))
        return ops.sum(kl)

    def call(self, inputs):
        self.add_loss(self.beta * self.penalty(inputs))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "beta": self.beta}
