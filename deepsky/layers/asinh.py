"""Asinh stretch of fluxes, the idea behind SDSS luptitudes (Lupton et al. 1999)."""

from __future__ import annotations

import keras

from deepsky.fastpath import register_kernel


@keras.saving.register_keras_serializable(package="deepsky")
class AsinhStretch(keras.layers.Layer):
    """``asinh(flux / softening)`` per band: linear near the noise, logarithmic when bright.

    Fluxes from a faint sky pixel to an r=14 star span five decades; the
    stretch brings them to a range a network can learn from without clipping.

    Parameters
    ----------
    softening : list of float
        One value per band (last axis), in the input's flux units; the sky
        noise per pixel is a good choice.
    """

    def __init__(self, softening, **kwargs):
        super().__init__(**kwargs)
        self.softening = [float(s) for s in softening]

    def call(self, inputs):
        scale = keras.ops.convert_to_tensor(self.softening, dtype=inputs.dtype)
        return keras.ops.arcsinh(inputs / scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "softening": list(self.softening)}


def _softening(layer):
    import torch

    from deepsky.fastpath import weights_device

    return (torch.tensor(layer.softening, dtype=torch.float32, device=weights_device()),)


@register_kernel(AsinhStretch, weights=_softening, turns=True, cast_weights=False)
def _asinh_kernel(layer, x, ctx):
    """The stretch in torch ops on the fast path (asinh from log1p: 3x faster on a CPU)."""
    from deepsky.fastpath import _fast_asinh

    (softening,) = ctx.weights(layer)
    return _fast_asinh(x / softening.to(x.dtype).view(ctx.channel_shape(x)))
