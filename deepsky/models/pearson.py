"""Pearson, Palafox & Griffith (2018): three small networks that find a transit in a 180-point light curve.

Each curve is first standardised on its own (zero mean, unit variance: the
paper's whitening). The MLP reads the curve; the wavelet MLP reads its
level-1 Daubechies-2 coefficients (approximation and detail, a fixed
convolution of stride 2); the 1-D CNN has two convolutions (16 then 8
filters of width 5) each followed by average pooling (5, stride 2). All
three end in dense layers of 64, 32 and 8 ReLU units.
"""

from __future__ import annotations

import numpy as np

from deepsky.models.registry import register_model

HIDDEN = (64, 32, 8)
# Daubechies-2 decomposition filters (low pass, high pass): the scaling function's four taps
_S3 = np.sqrt(3.0)
DB2_LOW = np.array([1 - _S3, 3 - _S3, 3 + _S3, 1 + _S3]) / (4 * np.sqrt(2.0))
DB2_HIGH = np.array([-(1 + _S3), 3 + _S3, -(3 - _S3), 1 - _S3]) / (4 * np.sqrt(2.0))


def _head(x, num_classes):
    """Dense layers of 64, 32 and 8 ReLU units, then the class probabilities."""
    from keras import layers

    for i, width in enumerate(HIDDEN, 1):
        x = layers.Dense(width, activation="relu", name=f"fc{i}")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def _start(input_shape):
    import keras

    from deepsky.layers.series import StandardiseEachSeries

    inputs = keras.Input(tuple(input_shape), name="light_curve")
    return inputs, StandardiseEachSeries(name="whiten")(inputs)


@register_model("pearson-mlp", "Pearson et al. (2018): a multi-layer perceptron (64, 32, 8) on a whitened light curve")
def pearson_mlp(input_shape=(180, 1), num_classes=2):
    import keras
    from keras import layers

    inputs, x = _start(input_shape)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, num_classes), name="pearson_mlp")


@register_model("pearson-wavelet-mlp",
                "Pearson et al. (2018): the MLP on level-1 Daubechies-2 wavelet coefficients of the light curve")
def pearson_wavelet_mlp(input_shape=(180, 1), num_classes=2):
    import keras
    from keras import layers

    inputs, x = _start(input_shape)
    wavelet = layers.Conv1D(2, len(DB2_LOW), strides=2, use_bias=False, trainable=False, name="db2_level1")
    x = wavelet(x)
    # a convolution correlates; the wavelet transform convolves: the filters run backwards
    wavelet.set_weights([np.stack([DB2_LOW[::-1], DB2_HIGH[::-1]], axis=1)[:, None, :].astype(np.float32)])
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, num_classes), name="pearson_wavelet_mlp")


@register_model("pearson-cnn", "Pearson et al. (2018): a 1-D CNN (16 and 8 filters of width 5, average pooling) "
                               "and dense layers (64, 32, 8) on a whitened light curve")
def pearson_cnn(input_shape=(180, 1), num_classes=2):
    import keras
    from keras import layers

    inputs, x = _start(input_shape)
    x = layers.Conv1D(16, 5, name="conv1")(x)  # linear, as in Pearson's code: pooling and the dense layers follow
    x = layers.AveragePooling1D(5, strides=2, name="pool1")(x)
    x = layers.Conv1D(8, 5, name="conv2")(x)
    x = layers.AveragePooling1D(5, strides=2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, num_classes), name="pearson_cnn")
