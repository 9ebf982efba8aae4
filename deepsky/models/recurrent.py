"""Recurrent sequence classifiers for light curves: simple RNN, LSTM and GRU.

The input is a light curve sampled at ``time steps`` epochs with
``features`` values per epoch, e.g. (200, 1) for flux alone or (200, 2) for
(time, flux) when the cadence is irregular. Stacked recurrent layers read it
in time order; the last one's final state feeds a softmax over the classes
(transit / variable / constant, supernova types, ...). ``docs/zoo.md`` trains
the LSTM to tell box-shaped transits from sinusoidal variables.
"""

from __future__ import annotations

from deepsky.errors import DeepskyError
from deepsky.models.registry import register_model

_CELLS = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def _recurrent(kind, input_shape, num_classes, units, dropout, name):
    import keras
    from keras import layers

    input_shape = tuple(int(n) for n in input_shape)
    if len(input_shape) != 2:
        raise DeepskyError(
            f"a recurrent model reads (time steps, features) per light curve, e.g. (200, 1). "
            f"Received: input_shape={input_shape}"
        )
    units = tuple(int(u) for u in units)
    if not units:
        raise DeepskyError("units needs at least one recurrent layer size. Received: units=()")
    cell = getattr(layers, _CELLS[kind])
    inputs = keras.Input(shape=input_shape, name="light_curve")
    x = inputs
    for i, size in enumerate(units, 1):
        # every layer but the last hands its whole sequence on; the last keeps only its final state
        x = cell(size, return_sequences=i < len(units), dropout=dropout, name=f"{kind}{i}")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model("rnn", "Simple (Elman) RNN light-curve classifier: stacked SimpleRNN, softmax")
def rnn(input_shape=(200, 1), num_classes=2, units=(32, 32), dropout=0.0, name="rnn"):
    """Build a stacked simple-RNN classifier: ``rnn1``, ``rnn2``, ..., ``logits``, ``probabilities``.

    ``tanh`` units whose gradients fade over long light curves; the baseline
    that the gated cells improve on.

    Parameters
    ----------
    input_shape : tuple
        (time steps, features) of one light curve.
    num_classes : int
        Output classes (softmax).
    units : tuple of int
        Sizes of the stacked recurrent layers, first to last.
    dropout : float
        Dropout on each recurrent layer's inputs.
    name : str
        Model name.
    """
    return _recurrent("rnn", input_shape, num_classes, units, dropout, name)


@register_model("lstm", "LSTM light-curve classifier (Hochreiter & Schmidhuber 1997): stacked LSTM, softmax")
def lstm(input_shape=(200, 1), num_classes=2, units=(32, 32), dropout=0.0, name="lstm"):
    """Build a stacked LSTM classifier: ``lstm1``, ``lstm2``, ..., ``logits``, ``probabilities``.

    Input, forget and output gates let a transit seen at epoch 20 still count
    at epoch 200. Parameters as for :func:`rnn`.
    """
    return _recurrent("lstm", input_shape, num_classes, units, dropout, name)


@register_model("gru", "GRU light-curve classifier (Cho et al. 2014): stacked GRU, softmax")
def gru(input_shape=(200, 1), num_classes=2, units=(32, 32), dropout=0.0, name="gru"):
    """Build a stacked GRU classifier: ``gru1``, ``gru2``, ..., ``logits``, ``probabilities``.

    Two gates instead of the LSTM's three and no separate cell state: fewer
    weights, often the same accuracy. Parameters as for :func:`rnn`.
    """
    return _recurrent("gru", input_shape, num_classes, units, dropout, name)
