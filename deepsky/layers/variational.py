"""The reparameterisation trick of a variational autoencoder (Kingma & Welling 2014)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="deepsky")
class GaussianSampling(keras.layers.Layer):
    """Draw ``z = mean + exp(log_var / 2) * eps`` and add the KL term to the model's loss.

    Called on ``[z_mean, z_log_var]`` (each ``(batch, latent_dim)``). While
    training it returns a sample, so gradients reach ``mean`` and ``log_var``
    through a deterministic function of them (the noise ``eps`` carries no
    parameters); at inference it returns ``z_mean``, so reconstructions and
    anomaly scores are deterministic and a reloaded model gives identical
    outputs.

    It adds ``weight * KL(q(z|x) || N(0, 1))``, averaged over the batch, with
    ``add_loss`` on every call, so a plain ``model.fit(x, x)`` with a
    reconstruction loss optimises the (scaled) evidence lower bound.

    Parameters
    ----------
    weight : float
        Factor on the KL divergence (nats per image). With a per-pixel mean
        squared error as the reconstruction loss, ``1 / n_pixels`` keeps the
        two on the same scale (beta-VAE with beta ~ 2 sigma^2 for pixel noise
        sigma); larger values give a smoother, less detailed latent space.
    seed : int or None
        Seed of the layer's own random stream.
    """

    def __init__(self, weight=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @staticmethod
    def kl_divergence(z_mean, z_log_var):
        """KL(N(mean, exp(log_var)) || N(0, 1)) per sample, summed over latent dimensions (nats)."""
        ops = keras.ops
        z_mean, z_log_var = ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)
        return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)

    def call(self, inputs, training=False):
        ops = keras.ops
        z_mean, z_log_var = inputs
        self.add_loss(self.weight * ops.mean(self.kl_divergence(z_mean, z_log_var)))
        if not training:
            return z_mean
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "seed": self.seed}
