"""Autoencoders of the network zoo: plain, denoising, sparse and variational.

Each reconstructs its input: a cutout (height, width, bands) through a
convolutional encoder and decoder, or a flat vector (e.g. magnitudes)
through dense ones. The models come compiled with the loss that defines them
(mean squared reconstruction error, plus whatever penalty the variant adds
with ``add_loss``), so ``model.fit(x, x)`` trains them; recompile to change
the optimizer. Every model holds two nested sub-models, ``encoder`` and
``decoder`` (see :func:`encoder`, :func:`decoder`), and
:func:`anomaly_scores` turns any of them into an outlier detector.
``docs/zoo.md`` has runnable examples on simulated galaxy-like images.
"""

from __future__ import annotations

import math

from deepsky.errors import DeepskyError
from deepsky.models.registry import register_model


def _architecture(input_shape, architecture, filters):
    """Resolve ``auto`` and check that the decoder can give back the input's shape."""
    if architecture == "auto":
        architecture = "conv" if len(input_shape) == 3 else "dense"
    if architecture not in ("conv", "dense"):
        raise DeepskyError(
            f"architecture must be 'auto', 'conv' or 'dense'. Received: architecture={architecture!r}"
        )
    if architecture == "conv":
        if len(input_shape) != 3:
            raise DeepskyError(
                "a convolutional autoencoder needs input_shape (height, width, bands). "
                f"Received: input_shape={input_shape}"
            )
        step = 2 ** len(filters)
        if input_shape[0] % step or input_shape[1] % step:
            raise DeepskyError(
                f"height and width must be multiples of {step} (one halving per entry of filters={tuple(filters)}) "
                f"so that the decoder restores the size. Received: input_shape={input_shape}; crop or pad the cutouts"
            )
    return architecture


def _encoder_body(inputs, architecture, filters, hidden_units):
    from keras import layers

    x = inputs
    if architecture == "conv":
        # strided convolutions halve the image per block: the downsampling is learnt, not a fixed max
        for i, f in enumerate(filters, 1):
            x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"enc_conv{i}")(x)
        return layers.Flatten(name="enc_flatten")(x)
    x = layers.Flatten(name="enc_flatten")(x)
    for i, units in enumerate(hidden_units, 1):
        x = layers.Dense(units, activation="relu", name=f"enc_dense{i}")(x)
    return x


def _decoder(input_shape, latent_dim, architecture, filters, hidden_units, output_activation):
    import keras
    from keras import layers

    code = keras.Input(shape=(latent_dim,), name="code")
    if architecture == "conv":
        step = 2 ** len(filters)
        small = (input_shape[0] // step, input_shape[1] // step, filters[-1])
        x = layers.Dense(math.prod(small), activation="relu", name="dec_dense")(code)
        x = layers.Reshape(small, name="dec_reshape")(x)
        for i, f in enumerate(reversed(filters), 1):
            x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu", name=f"dec_deconv{i}")(x)
        x = layers.Conv2D(input_shape[-1], 3, padding="same", activation=output_activation, name="reconstruction")(x)
    else:
        x = code
        for i, units in enumerate(reversed(hidden_units), 1):
            x = layers.Dense(units, activation="relu", name=f"dec_dense{i}")(x)
        x = layers.Dense(math.prod(input_shape), activation=output_activation, name="dec_out")(x)
        x = layers.Reshape(tuple(input_shape), name="reconstruction")(x)
    return keras.Model(code, x, name="decoder")


def _build(
    variant, input_shape, latent_dim, architecture, filters, hidden_units, output_activation,
    learning_rate, name, noise_stddev=0.0, sparsity="kl", rho=0.05, beta=3.0, l1=1e-3, kl_weight=1.0, seed=None,
):
    import keras
    from keras import layers

    input_shape = tuple(int(n) for n in input_shape)
    filters = tuple(int(f) for f in filters)
    hidden_units = tuple(int(u) for u in hidden_units)
    architecture = _architecture(input_shape, architecture, filters)

    enc_in = keras.Input(shape=input_shape, name="cutout")
    features = _encoder_body(enc_in, architecture, filters, hidden_units)
    if variant == "variational":
        z_mean = layers.Dense(latent_dim, name="z_mean")(features)
        z_log_var = layers.Dense(latent_dim, name="z_log_var")(features)
        encoder = keras.Model(enc_in, [z_mean, z_log_var], name="encoder")
    elif variant == "sparse":
        if sparsity == "kl":
            from deepsky.layers.sparsity import KLSparsity

            # sigmoid units: the KL penalty treats each activation as a firing probability
            code = layers.Dense(latent_dim, activation="sigmoid", name="code")(features)
            # per-pixel MSE is the reconstruction loss, so the penalty is shared out per input value too
            code = KLSparsity(rho=rho, beta=beta / math.prod(input_shape), name="sparsity")(code)
        elif sparsity == "l1":
            code = layers.Dense(
                latent_dim, activation="relu", activity_regularizer=keras.regularizers.L1(l1), name="code"
            )(features)
        else:
            raise DeepskyError(f"sparsity must be 'kl' or 'l1'. Received: sparsity={sparsity!r}")
        encoder = keras.Model(enc_in, code, name="encoder")
    else:
        code = layers.Dense(latent_dim, name="code")(features)
        encoder = keras.Model(enc_in, code, name="encoder")
    decoder = _decoder(input_shape, latent_dim, architecture, filters, hidden_units, output_activation)

    inputs = keras.Input(shape=input_shape, name="cutout")
    x = inputs
    if variant == "denoising":
        # active in fit only: predict() passes the (real, noisy) input untouched, which is what it learnt to clean
        x = layers.GaussianNoise(noise_stddev, seed=seed, name="noise")(x)
    x = encoder(x)
    if variant == "variational":
        from deepsky.layers.variational import GaussianSampling

        # per-pixel MSE is the reconstruction loss, so the KL (nats per image) is shared out per pixel
        x = GaussianSampling(weight=kl_weight / math.prod(input_shape), seed=seed, name="sampling")(x)
    outputs = decoder(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


# Parameters every autoencoder shares, documented once in ``autoencoder`` below:
# input_shape, num_classes (ignored), latent_dim, architecture, filters,
# hidden_units, output_activation, learning_rate, name.


@register_model("autoencoder", "Autoencoder: conv (cutouts) or dense encoder, code, mirrored decoder; MSE")
def autoencoder(
    input_shape=(32, 32, 1), num_classes=None, latent_dim=16, architecture="auto", filters=(16, 32),
    hidden_units=(128,), output_activation="linear", learning_rate=1e-3, name="autoencoder",
):
    """Build an autoencoder that reconstructs its input through a ``latent_dim`` code.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands) of a cutout in pixels, or (features,) for a
        table row.
    num_classes : None
        Accepted for the registry's common signature and ignored: the
        output is a reconstruction of the input.
    latent_dim : int
        Size of the code (the bottleneck).
    architecture : {"auto", "conv", "dense"}
        ``auto`` takes ``conv`` for 3-D inputs and ``dense`` otherwise.
    filters : tuple of int
        Filters of the strided 3x3 convolutions (conv); each halves the
        image, so height and width must be multiples of ``2**len(filters)``.
    hidden_units : tuple of int
        Dense layers between input and code (dense).
    output_activation : str
        ``linear`` for fluxes (which noise makes negative); ``sigmoid`` for
        images scaled to [0, 1].
    learning_rate : float
        Adam's step size in the compiled model.
    name : str
        Model name.
    """
    return _build("plain", input_shape, latent_dim, architecture, filters, hidden_units, output_activation,
                  learning_rate, name)


@register_model("denoising-autoencoder", "Denoising autoencoder: Gaussian noise on the input in training only")
def denoising_autoencoder(
    input_shape=(32, 32, 1), num_classes=None, latent_dim=16, noise_stddev=0.1, seed=None, architecture="auto",
    filters=(16, 32), hidden_units=(128,), output_activation="linear", learning_rate=1e-3,
    name="denoising_autoencoder",
):
    """Build an autoencoder that learns to remove Gaussian noise (Vincent et al. 2008).

    A ``GaussianNoise`` layer named ``noise`` corrupts the input during
    ``fit`` only; ``fit(x, x)`` on clean cutouts then teaches the network to
    map noisy cutouts back to clean ones.

    Parameters
    ----------
    noise_stddev : float
        Standard deviation of the added noise, in the input's units (e.g.
        the sky noise of the survey after normalisation).
    seed : int or None
        Seed of the noise.
    **others
        As for :func:`autoencoder`.
    """
    return _build("denoising", input_shape, latent_dim, architecture, filters, hidden_units, output_activation,
                  learning_rate, name, noise_stddev=noise_stddev, seed=seed)


@register_model("sparse-autoencoder", "Sparse autoencoder: KL(rho || mean activation) or L1 penalty on the code")
def sparse_autoencoder(
    input_shape=(32, 32, 1), num_classes=None, latent_dim=64, sparsity="kl", rho=0.05, beta=3.0, l1=1e-3,
    architecture="auto", filters=(16, 32), hidden_units=(128,), output_activation="linear", learning_rate=1e-3,
    name="sparse_autoencoder",
):
    """Build an autoencoder whose (often over-complete) code is kept sparse by a penalty.

    Parameters
    ----------
    sparsity : {"kl", "l1"}
        ``kl``: sigmoid code units and a ``KLSparsity`` layer named
        ``sparsity`` that pulls each unit's mean activation to ``rho``.
        ``l1``: ReLU code units with an L1 activity penalty ``l1``.
    rho : float
        Target mean activation of a code unit (kl).
    beta : float
        Weight of the KL penalty (nats, summed over code units) per input
        value: the layer adds ``beta / n_inputs * sum KL``, on the scale of
        the per-pixel MSE; 3 as in Ng's sparse-autoencoder notes.
    l1 : float
        Weight of the L1 penalty (l1), per sample.
    **others
        As for :func:`autoencoder`; ``latent_dim`` defaults to 64.
    """
    return _build("sparse", input_shape, latent_dim, architecture, filters, hidden_units, output_activation,
                  learning_rate, name, sparsity=sparsity, rho=rho, beta=beta, l1=l1)


@register_model(
    "variational-autoencoder", "Variational autoencoder: Gaussian code, reparameterisation, KL via add_loss"
)
def variational_autoencoder(
    input_shape=(32, 32, 1), num_classes=None, latent_dim=8, kl_weight=1.0, seed=None, architecture="auto",
    filters=(16, 32), hidden_units=(128,), output_activation="linear", learning_rate=1e-3,
    name="variational_autoencoder",
):
    """Build a variational autoencoder (Kingma & Welling 2014).

    The encoder gives ``z_mean`` and ``z_log_var``; a ``GaussianSampling``
    layer named ``sampling`` draws the code in training (and returns
    ``z_mean`` otherwise, so predictions and anomaly scores are
    deterministic) and adds ``kl_weight * KL / n_inputs`` to the loss. With
    the compiled per-pixel MSE that is a scaled negative evidence lower
    bound, and ``model.fit(x, x)`` trains it. New images: ``decoder(model)``
    on codes drawn from N(0, 1).

    Parameters
    ----------
    kl_weight : float
        The beta of a beta-VAE: larger values give a smoother, less detailed
        code space.
    seed : int or None
        Seed of the sampling noise.
    **others
        As for :func:`autoencoder`; ``latent_dim`` defaults to 8.
    """
    return _build("variational", input_shape, latent_dim, architecture, filters, hidden_units, output_activation,
                  learning_rate, name, kl_weight=kl_weight, seed=seed)


def encoder(model):
    """The encoder sub-model: input to code (``[z_mean, z_log_var]`` for the VAE)."""
    return model.get_layer("encoder")


def decoder(model):
    """The decoder sub-model: code to reconstruction (a generator for the VAE)."""
    return model.get_layer("decoder")


def anomaly_scores(model, x, batch_size=256):
    """Mean squared reconstruction error per input: high for what the training set lacked.

    Parameters
    ----------
    model : keras.Model
        A trained autoencoder from this module (or any model that returns
        its input's shape).
    x : numpy.ndarray
        Inputs, (n, height, width, bands) or (n, features), scaled as in training.
    batch_size : int

    Returns
    -------
    numpy.ndarray
        (n,) scores in the input's units squared. The VAE's is deterministic
        because its sampling layer returns the mean code at inference.
    """
    import numpy as np

    x = np.asarray(x, dtype="float32")
    reconstruction = model.predict(x, batch_size=batch_size, verbose=0)
    return np.mean(np.square(reconstruction - x).reshape(len(x), -1), axis=1)
