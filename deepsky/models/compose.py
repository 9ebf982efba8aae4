"""Put preprocessing layers in front of a model, so the saved model carries its data contract."""

from __future__ import annotations


def with_preprocessing(model, preprocessing, input_shape, name=None):
    """A new Keras model: ``preprocessing`` layers, then ``model``'s layers.

    A chain model is unrolled into one flat chain of fresh layers holding
    copies of its weights, which keeps layer names addressable (``conv1``...)
    and lets the torch fast path run it; other graphs are nested as they are.

    Parameters
    ----------
    model : keras.Model
    preprocessing : list of keras.layers.Layer
    input_shape : tuple
        Shape of one raw input, e.g. (48, 48, 5) pixels and bands.
    """
    import keras

    from deepsky.fastpath import _is_chain

    inputs = keras.Input(shape=tuple(input_shape), name=model.layers[0].name)
    x = inputs
    for layer in preprocessing:
        x = layer(x)
    if _is_chain(model):
        for layer in model.layers[1:]:
            fresh = layer.__class__.from_config(layer.get_config())
            x = fresh(x)
            fresh.set_weights(layer.get_weights())
    else:
        x = model(x)
    return keras.Model(inputs, x, name=name or model.name)


def linear_head(model):
    """``model`` without its final softmax: its logits as linear outputs, for regression with a classifier network.

    A model whose last layer is not a softmax activation is returned as it is.
    """
    import keras

    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation) and getattr(last.activation, "__name__", "") == "softmax":
        return keras.Model(model.inputs, last.input, name=model.name)
    return model
