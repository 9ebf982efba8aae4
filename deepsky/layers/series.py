"""Layers for time series: each light curve standardised on its own."""

from __future__ import annotations

import keras

from deepsky.fastpath import register_kernel

EPSILON = 1e-12  # a flat curve (all one value) comes out as zeros, not NaN


@keras.saving.register_keras_serializable(package="deepsky")
class StandardiseEachSeries(keras.layers.Layer):
    """``(x - mean) / std`` of each series over its time axis, per channel (Pearson et al.'s whitening).

    A transit's depth is then measured in units of the curve's own scatter,
    so one network serves stars of any brightness and noise level.
    """

    def call(self, inputs):
        mean = keras.ops.mean(inputs, axis=1, keepdims=True)
        centred = inputs - mean
        std = keras.ops.sqrt(keras.ops.mean(centred * centred, axis=1, keepdims=True) + EPSILON)
        return centred / std

    def compute_output_shape(self, input_shape):
        return input_shape


@register_kernel(StandardiseEachSeries, layout="channels_last")
def _standardise_kernel(layer, x, ctx):
    """The same in float32 torch ops (a bf16 variance of a 1e-4 dip would round it away)."""
    if x.ndim != 3:
        return None
    y = x.float()
    centred = y - y.mean(dim=1, keepdim=True)
    return (centred / (centred.square().mean(dim=1, keepdim=True) + EPSILON).sqrt()).to(x.dtype)
