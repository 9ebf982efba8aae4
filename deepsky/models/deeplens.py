"""CMU DeepLens (Lanusse, Ma, Li et al. 2018, MNRAS 473, 3895): the lens finder of the LSST-like challenge.

A pre-activation residual network (He et al. 2016b) of bottleneck blocks, as in the authors' code:
a 7x7 convolution of 32 filters, batch norm and ELU; five stages of three blocks whose (reduce,
3x3, expand) widths are 16-16-32, 32-32-64, 64-64-128, 128-128-256 and 256-256-512, the first
block of every stage after the first halving the map with a stride-2 1x1 convolution (and a
stride-2 1x1 projection on its shortcut); ELU throughout; batch norm, ELU and global average
pooling after the last stage; one output per class (softmax; the paper's single sigmoid is the
two-class case).

A block's input is batch-normalised and activated once; the convolution path and a projected
shortcut both read that pre-activated tensor, an identity shortcut reads the block's raw input.
"""

from __future__ import annotations

from deepsky.models._classic import check_input_shape
from deepsky.models.registry import register_model

STAGES = ((16, 32), (32, 64), (64, 128), (128, 256), (256, 512))  # (bottleneck width, output channels)
BLOCKS_PER_STAGE = 3
STEM_FILTERS = 32


@register_model("deeplens", "CMU DeepLens (Lanusse et al. 2018): pre-activation bottleneck ResNet, 5x3 blocks, ELU")
def deeplens(input_shape=(45, 45, 1), num_classes=2, blocks_per_stage=BLOCKS_PER_STAGE, name="deeplens"):
    """Build CMU DeepLens.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands) in pixels; the paper's LSST cutouts are 45x45 in one band.
    num_classes : int
        Output classes (softmax).
    blocks_per_stage : int
        Residual blocks in each of the five stages (3 in the paper).
    """
    import keras
    from keras import layers

    shape = check_input_shape(input_shape, "deeplens")
    he = keras.initializers.HeNormal

    def bn_elu(x, prefix):
        x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
        return layers.Activation("elu", name=f"{prefix}_elu")(x)

    inputs = keras.Input(shape=shape, name="cutout")
    x = layers.Conv2D(STEM_FILTERS, 7, padding="same", use_bias=False, kernel_initializer="glorot_uniform",
                      name="stem_conv")(inputs)
    x = bn_elu(x, "stem")
    channels = STEM_FILTERS
    for stage, (width, out_channels) in enumerate(STAGES, start=1):
        for block in range(1, blocks_per_stage + 1):
            prefix = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            # the stem already ends in batch norm and ELU: the first block takes its output as pre-activated
            pre = x if stage == 1 and block == 1 else bn_elu(x, f"{prefix}_pre")
            y = layers.Conv2D(width, 1, strides=strides, use_bias=False, kernel_initializer=he(),
                              name=f"{prefix}_reduce")(pre)
            y = bn_elu(y, f"{prefix}_reduce")
            y = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=he(),
                              name=f"{prefix}_conv")(y)
            y = bn_elu(y, f"{prefix}_conv")
            y = layers.Conv2D(out_channels, 1, kernel_initializer=he(), name=f"{prefix}_expand")(y)
            if strides != 1 or channels != out_channels:
                shortcut = layers.Conv2D(out_channels, 1, strides=strides, kernel_initializer=he(),
                                         name=f"{prefix}_project")(pre)
            else:
                shortcut = x
            x = layers.Add(name=f"{prefix}_add")([y, shortcut])
            channels = out_channels
    x = bn_elu(x, "head")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
