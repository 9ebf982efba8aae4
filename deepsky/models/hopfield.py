"""Hopfield network: content-addressable memory for binary images (Hopfield 1982).

Store +1/-1 patterns (binary galaxy silhouettes, say) with :func:`store`;
:func:`recall` then cleans a corrupted copy back to the nearest stored one.
The network holds up to about 0.14 N random patterns for N units (Amit,
Gutfreund & Sompolinsky 1985); beyond that the stored patterns stop being
stable and recall returns mixtures.

There is no gradient training: Hebb's rule sets the weights in one step. It
is, though, one gradient step on the mean energy of the patterns, since
``-dE/dW = s s^T / 2``; learning by ``fit`` would only rescale it.
"""

from __future__ import annotations

from deepsky.errors import DeepskyError
from deepsky.models.registry import register_model


@register_model("hopfield", "Hopfield network: +1/-1 units, Hebbian storage, recall by sign updates")
def hopfield(input_shape=(64,), num_classes=None, steps=10, update="synchronous", name="hopfield"):
    """Build a Hopfield network as a Keras model: states in, recalled states out.

    Parameters
    ----------
    input_shape : tuple
        Shape of one state; an image such as (16, 16) is flattened to
        N = 256 units and reshaped back. Values are read by sign (>= 0 is +1).
    num_classes : None
        Accepted for the registry's common signature and ignored.
    steps : int
        Update sweeps per call.
    update : {"synchronous", "asynchronous"}
        See ``deepsky.layers.hopfield.Hopfield``.
    """
    import keras
    from keras import layers

    from deepsky.layers.hopfield import Hopfield

    input_shape = tuple(int(n) for n in input_shape)
    inputs = keras.Input(shape=input_shape, name="state")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    x = Hopfield(steps=steps, update=update, name="hopfield")(x)
    if len(input_shape) > 1:
        x = layers.Reshape(input_shape, name="recalled")(x)
    return keras.Model(inputs, x, name=name)


def _layer(model):
    from deepsky.layers.hopfield import Hopfield

    for layer in model.layers:
        if isinstance(layer, Hopfield):
            return layer
    raise DeepskyError(f"model {model.name!r} has no Hopfield layer; build it with create('hopfield', ...)")


def _flat(model, states):
    import numpy as np

    states = np.asarray(states, dtype="float32")
    shape = tuple(model.input_shape[1:])
    if states.shape[-len(shape):] != shape:
        raise DeepskyError(f"states must end in the model's input shape {shape}. Received: shape {states.shape}")
    return states.reshape(-1, int(np.prod(shape)))


def store(model, patterns, append=False):
    """Store +1/-1 ``patterns`` (n, *input_shape) by Hebb's rule, replacing (or with ``append`` adding to) the old."""
    _layer(model).store(_flat(model, patterns), append=append)


def recall(model, states, steps=None, update=None):
    """Iterate ``states`` (n, *input_shape) to the network's attractors; returns +1/-1 numpy arrays.

    ``steps`` and ``update`` override the model's settings for this call.
    """
    import keras

    from deepsky.layers.hopfield import Hopfield

    layer = _layer(model)
    flat = _flat(model, states)
    if steps is not None or update is not None:
        # a throwaway layer with the same weights, so the saved model's settings stay as built
        runner = Hopfield(steps=steps or layer.steps, update=update or layer.update)
        runner.build((None, layer.units))
        runner.kernel.assign(layer.kernel.value)
        layer = runner
    out = keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(flat)))
    return out.reshape((-1, *model.input_shape[1:]))


def energy(model, states):
    """Hopfield energy ``-s W s / 2`` of each state (numpy, (n,)); stored patterns sit in minima."""
    import keras

    return keras.ops.convert_to_numpy(_layer(model).energy(_flat(model, states)))
