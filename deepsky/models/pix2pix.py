"""The pix2pix U-Net generator (Isola et al. 2017) that Schawinski et al. (2017) train as a GAN to deconvolve galaxies.

An encoder of 4x4 convolutions with stride 2 (leaky ReLU 0.2, batch norm
from the second) halves the image down to 1x1; a decoder of 4x4 transposed
convolutions (ReLU, batch norm, dropout 0.5 in its three innermost blocks)
doubles it back, each block concatenated with the encoder's map of the same
size (the skips carry the fine detail the bottleneck cannot). Widths 64, 128,
256, 512, 512, ... as in pix2pix, scaled by ``base_filters / 64``. The
output is linear: astronomical fluxes, not pictures in [-1, 1].
"""

from __future__ import annotations

import math

from deepsky.errors import DeepskyError
from deepsky.models.registry import register_model

MAX_LEVELS = 8  # pix2pix's 256x256 generator
DROPOUT_BLOCKS = 3


@register_model("pix2pix-unet", "pix2pix U-Net generator (Isola et al. 2017; Schawinski et al. 2017 GAN deconvolution): "
                                "4x4 stride-2 encoder to 1x1, decoder with skips, image out")
def pix2pix_unet(input_shape=(64, 64, 3), num_classes=None, base_filters=64, residual=False, dropout=0.5,
                 name="pix2pix_unet"):
    """Build the U-Net generator.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands) in pixels; square, a power of two of at
        least 8 (the encoder halves it down to 1x1, at most 8 times).
    num_classes : int, optional
        Bands of the output image (default: the input's).
    base_filters : int
        Width of the first block (64 in pix2pix); deeper blocks double it
        up to 8x.
    residual : bool
        Add the input to the output, so the network learns the correction
        to the degraded image rather than the whole image (needs as many
        output bands as input bands).
    dropout : float
        Dropout rate in the decoder's innermost blocks (pix2pix's noise).
    """
    import keras
    from keras import layers

    from deepsky.models._classic import check_input_shape

    height, width, bands = check_input_shape(input_shape, "pix2pix-unet", minimum=8)
    levels = int(round(math.log2(height))) if height > 0 else 0
    if height != width or 2**levels != height:
        raise DeepskyError(f"pix2pix-unet takes square images whose side is a power of two (8, 16, ... pixels). "
                           f"Received: input_shape={input_shape}")
    levels = min(levels, MAX_LEVELS)
    out_bands = int(num_classes or bands)
    if residual and out_bands != bands:
        raise DeepskyError(f"a residual generator gives back as many bands as it takes ({bands}). "
                           f"Received: num_classes={num_classes}")
    widths = [base_filters * min(2**i, 8) for i in range(levels)]

    inputs = keras.Input(shape=(height, width, bands), name="image")
    x, skips = inputs, []
    for i, filters in enumerate(widths, 1):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=i == 1, name=f"down{i}_conv")(x)
        if 1 < i < levels:  # pix2pix has no norm on the first block, nor on the 1x1 bottleneck
            x = layers.BatchNormalization(name=f"down{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"down{i}_act")(x)
        skips.append(x)
    for i, (filters, skip) in enumerate(zip(reversed(widths[:-1]), reversed(skips[:-1])), 1):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False, name=f"up{i}_conv")(x)
        x = layers.BatchNormalization(name=f"up{i}_bn")(x)
        if i <= DROPOUT_BLOCKS and dropout:
            x = layers.Dropout(dropout, name=f"up{i}_dropout")(x)
        x = layers.ReLU(name=f"up{i}_act")(x)
        x = layers.Concatenate(name=f"up{i}_skip")([x, skip])
    x = layers.Conv2DTranspose(out_bands, 4, strides=2, padding="same", name="output_conv")(x)
    if residual:
        x = layers.Add(name="residual")([x, inputs])
    outputs = layers.Activation("linear", dtype="float32", name="image_out")(x)
    return keras.Model(inputs, outputs, name=name)
