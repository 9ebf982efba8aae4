"""Restricted Boltzmann machine and deep belief network (Hinton, Osindero & Teh 2006).

``rbm`` is a Bernoulli RBM trained by contrastive divergence with plain
``model.fit(x, x)`` (see ``deepsky.layers.rbm.RBM`` for how CD-k becomes a
loss that any backend can differentiate). :func:`transform` gives the hidden
features, :func:`sample` draws new visible vectors by Gibbs sampling.

``dbn`` is the supervised half of a deep belief network: sigmoid dense layers
and a softmax. :func:`pretrain` fills those layers greedily, one RBM per
layer trained on the previous layer's hidden probabilities
(:func:`pretrain_dbn`), after which ``fit`` on labels fine-tunes the whole
stack. Visible data must lie in [0, 1]: binary pixels, or intensities
scaled to it (read as probabilities).
"""

from __future__ import annotations

from deepsky.errors import DeepskyError
from deepsky.models.registry import register_model


@register_model("rbm", "Restricted Boltzmann machine (Bernoulli units), trained by CD-k through add_loss")
def rbm(
    input_shape=(64,), num_classes=None, hidden_units=64, k=1, learning_rate=0.5, momentum=0.5, seed=None,
    name="rbm",
):
    """Build a compiled Bernoulli RBM whose output is its mean-field reconstruction.

    Parameters
    ----------
    input_shape : tuple
        Shape of one visible vector, values in [0, 1]; an image shape such as
        (16, 16) is flattened in and reshaped out.
    num_classes : None
        Accepted for the registry's common signature and ignored.
    hidden_units : int
        Number of hidden (feature) units.
    k : int
        Gibbs steps per CD update.
    learning_rate, momentum : float
        SGD settings of the compiled model (0.1 and 0.5 follow Hinton's
        practical guide).
    seed : int or None
        Seed of the initial weights and of the Gibbs sampling.

    Notes
    -----
    Compiled with ``loss=None`` (the CD-k loss comes from the layer) and a
    ``reconstruction_error`` metric (mean squared error between the data
    and the reconstruction), so train with ``model.fit(x, x)``.
    """
    import keras
    from keras import layers

    from deepsky.layers.rbm import RBM

    input_shape = tuple(int(n) for n in input_shape)
    inputs = keras.Input(shape=input_shape, name="visible")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    x = RBM(hidden_units, k=k, seed=seed, name="rbm")(x)
    if len(input_shape) > 1:
        x = layers.Reshape(input_shape, name="reconstruction")(x)
    model = keras.Model(inputs, x, name=name)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
        loss=None,
        metrics=[keras.metrics.MeanSquaredError(name="reconstruction_error")],
    )
    return model


def _rbm_layer(model):
    from deepsky.layers.rbm import RBM

    for layer in model.layers:
        if isinstance(layer, RBM):
            return layer
    raise DeepskyError(f"model {model.name!r} has no RBM layer; build it with deepsky.models.create('rbm', ...)")


def transform(model, x, batch_size=1024):
    """Hidden-unit probabilities ``p(h = 1 | v)`` for each row of ``x``: the RBM's learnt features.

    Returns a (n, hidden_units) numpy array.
    """
    import keras
    import numpy as np

    layer = _rbm_layer(model)
    x = np.asarray(x, dtype="float32").reshape(len(x), -1)
    out = [keras.ops.convert_to_numpy(layer.hidden_probabilities(keras.ops.convert_to_tensor(x[i:i + batch_size])))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, layer.units), "float32")


def sample(model, n=16, steps=500, seed=0):
    """Draw ``n`` visible vectors by ``steps`` Gibbs steps from uniform random noise.

    Returns visible probabilities of the last step, shaped like the model's
    input, as a numpy array; threshold at 0.5 for binary samples. More steps
    bring the chain closer to the model's distribution.
    """
    import keras
    import numpy as np

    layer = _rbm_layer(model)
    rng = np.random.default_rng(seed)
    start = (rng.random((n, int(layer.kernel.shape[0]))) < 0.5).astype("float32")
    chain = layer.gibbs(start, steps=steps, probabilities=True, seed_generator=keras.random.SeedGenerator(seed))
    return keras.ops.convert_to_numpy(chain).reshape((n, *model.input_shape[1:]))


def pretrain_dbn(x, layer_sizes, epochs=10, batch_size=32, learning_rate=0.5, k=1, seed=0, verbose=0):
    """Greedy layer-wise pre-training: one RBM per layer, each on the last one's hidden probabilities.

    Parameters
    ----------
    x : numpy.ndarray
        (n, ...) training inputs in [0, 1]; flattened per row.
    layer_sizes : sequence of int
        Hidden units of each RBM, bottom to top.
    epochs, batch_size, learning_rate, k : int, int, float, int
        CD-k training of every RBM.
    seed : int
        Seed of RBM ``i`` is ``seed + i``.

    Returns
    -------
    list of keras.Model
        The trained ``rbm`` models, bottom first.
    """
    import numpy as np

    data = np.asarray(x, dtype="float32").reshape(len(x), -1)
    if data.min() < 0 or data.max() > 1:
        raise DeepskyError(
            f"RBM visible units are probabilities: scale x into [0, 1]. Received: range [{data.min()}, {data.max()}]"
        )
    rbms = []
    for i, size in enumerate(layer_sizes):
        machine = rbm(input_shape=(data.shape[1],), hidden_units=int(size), k=k, learning_rate=learning_rate,
                      seed=seed + i, name=f"dbn_rbm{i + 1}")
        machine.fit(data, data, epochs=epochs, batch_size=batch_size, verbose=verbose)
        rbms.append(machine)
        # probabilities, not samples, feed the next RBM: less noise, same expectation
        data = transform(machine, data)
    return rbms


@register_model("dbn", "Deep belief network: sigmoid layers pre-trained as stacked RBMs, softmax fine-tuning")
def dbn(input_shape=(64,), num_classes=2, hidden_units=(64, 32), name="dbn"):
    """Build the fine-tuning classifier of a deep belief network (uncompiled).

    Dense sigmoid layers ``hidden1``, ``hidden2``, ... match the stacked
    RBMs, then ``logits`` and ``probabilities``. Call :func:`pretrain` with
    unlabelled data before ``fit`` to start from the RBM weights; without it
    this is an ordinary sigmoid MLP.

    Parameters
    ----------
    input_shape : tuple
        Shape of one input in [0, 1]; images are flattened.
    num_classes : int
        Output classes (softmax).
    hidden_units : tuple of int
        Units per hidden layer (= per RBM), bottom to top.
    """
    import keras
    from keras import layers

    input_shape = tuple(int(n) for n in input_shape)
    inputs = keras.Input(shape=input_shape, name="visible")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for i, units in enumerate(hidden_units, 1):
        x = layers.Dense(int(units), activation="sigmoid", name=f"hidden{i}")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def pretrain(model, x, epochs=10, batch_size=32, learning_rate=0.5, k=1, seed=0, verbose=0):
    """Initialise a ``dbn`` model's hidden layers from RBMs pre-trained on ``x`` (no labels needed).

    Each ``hidden{i}`` layer takes RBM ``i``'s weights and hidden biases:
    ``sigmoid(v W + c)`` is exactly that RBM's ``p(h = 1 | v)``. Arguments as
    in :func:`pretrain_dbn`; returns its RBMs.
    """
    hidden = []
    while True:
        try:
            hidden.append(model.get_layer(f"hidden{len(hidden) + 1}"))
        except ValueError:
            break
    if not hidden:
        raise DeepskyError(f"model {model.name!r} has no hidden1, hidden2, ... layers; build it with create('dbn')")
    rbms = pretrain_dbn(x, [layer.units for layer in hidden], epochs=epochs, batch_size=batch_size,
                        learning_rate=learning_rate, k=k, seed=seed, verbose=verbose)
    for layer, machine in zip(hidden, rbms):
        source = _rbm_layer(machine)
        layer.kernel.assign(source.kernel.value)
        layer.bias.assign(source.hidden_bias.value)
    return rbms
