"""Residual networks (He, Zhang, Ren & Sun 2016, CVPR; arXiv:1512.03385), ResNet-18 to ResNet-152.

A 7x7 stride-2 convolution and 3x3 stride-2 max pooling, four stages of
residual blocks (64, 128, 256, 512 channels; each later stage halves the map
in its first block), global average pooling and a softmax layer. Every
convolution is followed by batch normalisation; a shortcut is the identity
unless the block changes the shape, where it is a 1x1 convolution with batch
normalisation (the paper's option B).
"""

from __future__ import annotations

from deepsky.models._classic import check_input_shape
from deepsky.models.registry import register_model

WIDTHS = (64, 128, 256, 512)  # channels of the 3x3 convolutions in stages conv2_x .. conv5_x
EXPANSION = {"basic": 1, "bottleneck": 4}  # output channels of a block / its width
BN = {"epsilon": 1e-5, "momentum": 0.9}  # torchvision's (and Caffe's) values, not Keras' 1e-3 / 0.99

# depth -> (block type, blocks per stage, trainable parameters at 224x224x3 with 1000 classes)
_DEPTHS = {
    18: ("basic", (2, 2, 2, 2), 11_689_512),
    34: ("basic", (3, 4, 6, 3), 21_797_672),
    50: ("bottleneck", (3, 4, 6, 3), 25_557_032),
    101: ("bottleneck", (3, 4, 23, 3), 44_549_160),
    152: ("bottleneck", (3, 8, 36, 3), 60_192_808),
}


def resnet(depth=50, input_shape=(224, 224, 3), num_classes=1000, small_input=False, name=None):
    """Build ResNet-``depth`` (He et al. 2016, Table 1).

    Parameters
    ----------
    depth : int
        18 or 34 (basic blocks of two 3x3 convolutions), 50, 101 or 152
        (bottleneck blocks: 1x1 reduce, 3x3, 1x1 expand by 4).
    input_shape : tuple
        (height, width, bands) in pixels; the paper's is 224x224x3.
    num_classes : int
        Output classes (softmax).
    small_input : bool
        For small cutouts: the stem convolution keeps stride 1 and the max
        pooling is left out, so the map is not cut by 4 before the first
        stage (a 32-pixel cutout then reaches stage 5 at 4x4 pixels, not
        1x1). The weights keep their shapes, so the count is unchanged.
    name : str, optional
        Name of the Keras model; ``resnet<depth>`` by default.

    Returns
    -------
    keras.Model
        Trainable parameters at 224x224x3 with 1000 classes: 11,689,512
        (18), 21,797,672 (34), 25,557,032 (50), 44,549,160 (101) and
        60,192,808 (152), torchvision's numbers. ``count_params()`` is
        larger: it also counts batch normalisation's moving means and
        variances, which are statistics, not parameters.

    Notes
    -----
    Convolutions have no biases (batch normalisation's beta is one).
    A bottleneck block strides in its 3x3 convolution, as torchvision's
    "ResNet v1.5" does, rather than in the first 1x1 as the authors' Caffe
    model did: the count is the same, and a strided 1x1 would ignore three
    pixels in four. Strided convolutions and the pooling are zero-padded
    symmetrically (as in PyTorch) rather than Keras' "same", which pads
    more at the bottom and right; every stride halves the map rounding up, so
    any input of at least one pixel works (32 pixels reach 1x1 in stage 5).
    """
    import keras
    from keras import layers

    from deepsky.errors import DeepskyError

    if depth not in _DEPTHS:
        raise DeepskyError(f"ResNet depth must be one of {', '.join(map(str, _DEPTHS))}. Received: depth={depth!r}")
    block_type, stage_blocks, _ = _DEPTHS[depth]
    expansion = EXPANSION[block_type]
    shape = check_input_shape(input_shape, f"resnet-{depth}")

    def conv_bn(x, filters, kernel, strides, prefix, relu=True):
        if strides > 1 and kernel > 1:
            x = layers.ZeroPadding2D(kernel // 2, name=f"{prefix}_pad")(x)
            padding = "valid"
        else:
            padding = "same"
        x = layers.Conv2D(
            filters, kernel, strides=strides, padding=padding, use_bias=False,
            kernel_initializer=he_init(), name=f"{prefix}_conv",
        )(x)
        x = layers.BatchNormalization(**BN, name=f"{prefix}_bn")(x)
        return layers.ReLU(name=f"{prefix}_relu")(x) if relu else x

    inputs = keras.Input(shape=shape, name="image")
    x = conv_bn(inputs, 64, 7, 1 if small_input else 2, "conv1")
    if not small_input:
        # Zero padding equals the usual -inf padding here: after the ReLU no
        # activation is below zero.
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    channels = 64
    for stage, (width, blocks) in enumerate(zip(WIDTHS, stage_blocks), start=2):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 2 and block == 1 else 1
            prefix = f"conv{stage}_block{block}"
            out_channels = width * expansion
            if strides != 1 or channels != out_channels:
                shortcut = conv_bn(x, out_channels, 1, strides, f"{prefix}_0", relu=False)
            else:
                shortcut = x
            if block_type == "basic":
                y = conv_bn(x, width, 3, strides, f"{prefix}_1")
                y = conv_bn(y, width, 3, 1, f"{prefix}_2", relu=False)
            else:
                y = conv_bn(x, width, 1, 1, f"{prefix}_1")
                y = conv_bn(y, width, 3, strides, f"{prefix}_2")
                y = conv_bn(y, out_channels, 1, 1, f"{prefix}_3", relu=False)
            x = layers.Add(name=f"{prefix}_add")([shortcut, y])
            x = layers.ReLU(name=f"{prefix}_out")(x)
            channels = out_channels

    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")


def he_init():
    """He et al.'s (2015) initialiser as torchvision draws it: normal, variance 2 / fan-out.

    Keras' ``"he_normal"`` truncates, and its truncated sampler on torch makes
    building ResNet-152 take 10x longer. A new instance per layer: an
    unseeded Keras initialiser repeats its values on every call.
    """
    import keras

    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def _register(depth):
    """Register ``resnet(depth)`` as ``resnet-<depth>``."""
    block_type, stage_blocks, params = _DEPTHS[depth]

    def build(input_shape=(224, 224, 3), num_classes=1000, small_input=False, name=None):
        return resnet(depth, input_shape=input_shape, num_classes=num_classes, small_input=small_input, name=name)

    build.__name__ = build.__qualname__ = f"resnet{depth}"
    build.__doc__ = (
        f"Build ResNet-{depth} ({block_type} blocks {stage_blocks}); {params:,} trainable parameters "
        f"at 224x224x3, 1000 classes.\n\nKeywords as ``resnet``, with ``depth={depth}``."
    )
    blocks = "-".join(map(str, stage_blocks))
    description = f"ResNet-{depth} (He et al. 2016): {block_type} residual blocks {blocks}, batch norm, softmax"
    register_model(f"resnet-{depth}", description)(build)
    return build


BUILDERS = {depth: _register(depth) for depth in _DEPTHS}
