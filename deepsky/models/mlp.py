"""The multilayer perceptron / deep feed-forward network (DFF) of the lecture.

The lecture's two Keras examples build such networks and run here as they
are written, with two changes: ``input_shape(10,)`` in the slide is a typo
for ``input_shape=(10,)``, and ``verbose=0`` keeps Keras' progress bars out
of the doctest's expected output:

>>> import numpy as np
>>> import keras
>>> keras.utils.set_random_seed(0)
>>> x_train = np.random.normal(size=(64, 10)).astype("float32")
>>> y_train = keras.utils.to_categorical(np.random.randint(0, 10, 64), 10)

Sequential API:

>>> from keras import layers
>>> from keras.models import Sequential
>>> model = Sequential()
>>> model.add(layers.Dense(24, activation='relu', input_shape=(10,)))
>>> model.add(layers.Dense(20, activation='relu'))
>>> model.add(layers.Dense(10, activation='softmax'))
>>> model.compile(loss='categorical_crossentropy', optimizer='sgd', metrics=['accuracy'])
>>> model.fit(x_train, y_train, epochs=5, batch_size=32, verbose=0)  # doctest: +ELLIPSIS
<keras.src.callbacks.history.History object at ...>

Functional API:

>>> inputs = keras.Input(shape=(10,))
>>> x = layers.Dense(20, activation='relu')(inputs)
>>> x = layers.Dense(20, activation='relu')(x)
>>> outputs = layers.Dense(10, activation='softmax')(x)
>>> model = keras.Model(inputs, outputs)
>>> model.compile(optimizer='SGD', loss='categorical_crossentropy', metrics=['accuracy'])
>>> model.fit(x_train, y_train, epochs=5, batch_size=32, verbose=0)  # doctest: +ELLIPSIS
<keras.src.callbacks.history.History object at ...>
>>> loss_and_metrics = model.evaluate(x_train, y_train, batch_size=128, verbose=0)
>>> classes = model.predict(x_train, verbose=0)
>>> classes.shape
(64, 10)

The same network by name, with the knobs the lecture's experiments turn:

>>> from deepsky import models
>>> net = models.create("mlp", input_shape=(9,), num_classes=3, hidden=(64, 64), dropout=0.2, batch_norm=True)
>>> [layer.name for layer in net.layers][1:5]
['dense1', 'bn1', 'act1', 'drop1']
"""

from __future__ import annotations

from deepsky.models.registry import register_model


@register_model("mlp", "Multilayer perceptron / deep feed-forward network: Dense layers, optional dropout and batch norm")
def mlp(
    input_shape=(10,),
    num_classes=10,
    hidden=(128, 128, 64),
    activation="relu",
    dropout=0.0,
    batch_norm=False,
    name="mlp",
):
    """Build a fully-connected network: ``hidden`` Dense layers, then softmax.

    Parameters
    ----------
    input_shape : tuple
        Shape of one input, e.g. ``(9,)`` for five magnitudes and four colours;
        anything with more axes is flattened first.
    num_classes : int
        Output classes (softmax).
    hidden : sequence of int
        Units per hidden layer; its length is the depth.
    activation : str or callable
        Hidden-layer activation (any Keras or ``deepsky.activations`` name).
    dropout : float
        Dropout rate after each hidden layer (Srivastava et al. 2014); 0 for none.
    batch_norm : bool
        Batch normalisation between each Dense layer and its activation
        (Ioffe & Szegedy 2015, as in the lecture's figure).
    """
    import keras
    from keras import layers

    from deepsky import activations

    if isinstance(activation, str) and activation in activations.LECTURE_ACTIVATIONS:
        activation = activations.get(activation)  # gaussian and step are not Keras names
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for k, units in enumerate(hidden, start=1):
        # with batch norm the Dense bias is redundant: BN's beta shifts the same way
        x = layers.Dense(units, use_bias=not batch_norm, name=f"dense{k}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"bn{k}")(x)
        x = layers.Activation(activation, name=f"act{k}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"drop{k}")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
