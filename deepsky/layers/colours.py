"""Colours from magnitudes inside the model, so a saved network takes plain catalogue magnitudes."""

from __future__ import annotations

import keras

from deepsky.fastpath import register_kernel


@keras.saving.register_keras_serializable(package="deepsky")
class AdjacentColours(keras.layers.Layer):
    """Append the colours of adjacent bands to the magnitudes: (N, B) -> (N, 2B - 1).

    For u,g,r,i,z this gives u,g,r,i,z, u-g, g-r, r-i, i-z. Colours cancel
    distance and most of the extinction, which is what separates stars,
    galaxies and quasars; a network could learn the differences, but giving
    them saves it the trouble with few labels.
    """

    def call(self, inputs):
        colours = inputs[:, :-1] - inputs[:, 1:]
        return keras.ops.concatenate([inputs, colours], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1] - 1)


@register_kernel(AdjacentColours, layout="channels_last")
def _colours_kernel(layer, x, ctx):
    """The colours in torch ops on the fast path."""
    import torch

    return torch.cat([x, x[..., :-1] - x[..., 1:]], dim=-1)
