"""Inception v1, "GoogLeNet" (Szegedy et al. 2014, arXiv:1409.4842; CVPR 2015), the ImageNet 2014 winner.

Nine "Inception modules with dimension reductions": four parallel branches
(1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pooling then 1x1) concatenated
along the channels, after a convolutional stem, with global average pooling,
dropout 0.4 and one linear layer before the softmax; two optional auxiliary
classifiers on modules 4a and 4d.
"""

from __future__ import annotations

from deepsky.models._classic import check_input_shape, window_fits
from deepsky.models.registry import register_model

# The paper's Table 1: module -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj);
# None marks the 3x3 stride-2 max pooling between stages.
_MODULES = [
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    None,
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    None,
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
]
AUX_AFTER = ("4a", "4d")  # where the auxiliary classifiers attach
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}


@register_model(
    "inception-v1",
    "Inception v1 / GoogLeNet (Szegedy et al. 2014): 9 Inception modules, global average pool, softmax",
)
def inception_v1(
    input_shape=(224, 224, 3),
    num_classes=1000,
    dropout=0.4,
    aux_classifiers=False,
    lrn=True,
    name="inception_v1",
):
    """Build GoogLeNet.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands) in pixels; the paper's is 224x224x3.
    num_classes : int
        Output classes (softmax).
    dropout : float
        Dropout rate before the final linear layer (the paper's 40%).
    aux_classifiers : bool
        Add the paper's two auxiliary classifiers (5x5/3 average pooling,
        1x1 convolution with 128 filters, FC-1024, dropout 0.7, softmax) on
        modules 4a and 4d; the model then has three outputs, main first.
        The paper weights their losses by 0.3 in training and drops them
        at inference.
    lrn : bool
        Local response normalisation after the stem's first pooling and
        its 3x3 convolution, as in the paper's Figure 3.
    name : str
        Name of the Keras model.

    Returns
    -------
    keras.Model
        6,998,552 parameters at 224x224x3 with 1000 classes and no auxiliary
        classifiers (13,378,280 with them).

    Notes
    -----
    The count is the paper's network with biases in every convolution and
    no batch normalisation (that came with Inception v2); the paper's
    Table 1 rounds the weights to "6.8M". Every strided convolution and
    pooling uses "same" padding, so each halves its map rounding up (as
    Caffe's pooling did): 224 pixels reach 7 before the global average
    pooling, and small cutouts work unchanged (32 pixels reach 1, 44
    pixels 2). An auxiliary classifier whose 5x5 pooling does not fit
    (inputs under 65 pixels) is left without it.
    """
    import keras
    from keras import layers

    from deepsky.layers.lrn import LocalResponseNormalization

    def conv(x, filters, kernel, name, strides=1):
        return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu", name=name)(x)

    def max_pool(x, name):
        return layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)

    shape = check_input_shape(input_shape, "inception-v1")
    inputs = keras.Input(shape=shape, name="image")
    x = conv(inputs, 64, 7, "conv1_7x7_s2", strides=2)
    x = max_pool(x, "pool1_3x3_s2")
    if lrn:
        x = LocalResponseNormalization(**LRN, name="pool1_norm1")(x)
    x = conv(x, 64, 1, "conv2_3x3_reduce")
    x = conv(x, 192, 3, "conv2_3x3")
    if lrn:
        x = LocalResponseNormalization(**LRN, name="conv2_norm2")(x)
    x = max_pool(x, "pool2_3x3_s2")

    aux_outputs = []
    stage = 3
    for module in _MODULES:
        if module is None:
            x = max_pool(x, f"pool{stage}_3x3_s2")
            stage += 1
            continue
        label, (n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj) = module
        prefix = f"inception_{label}"
        # The 1x1 reductions are what make the module affordable: they cut
        # the channels before the 3x3 and 5x5 convolutions see them.
        branch1 = conv(x, n1x1, 1, f"{prefix}_1x1")
        branch3 = conv(conv(x, n3x3_reduce, 1, f"{prefix}_3x3_reduce"), n3x3, 3, f"{prefix}_3x3")
        branch5 = conv(conv(x, n5x5_reduce, 1, f"{prefix}_5x5_reduce"), n5x5, 5, f"{prefix}_5x5")
        pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{prefix}_pool")(x)
        branch_pool = conv(pooled, pool_proj, 1, f"{prefix}_pool_proj")
        x = layers.Concatenate(name=f"{prefix}_output")([branch1, branch3, branch5, branch_pool])
        if aux_classifiers and label in AUX_AFTER:
            aux_outputs.append(_auxiliary(x, num_classes, f"loss{len(aux_outputs) + 1}", layers))

    x = layers.GlobalAveragePooling2D(name="pool5_avg")(x)
    x = layers.Dropout(dropout, name="pool5_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    if aux_outputs:
        return keras.Model(inputs, [outputs, *aux_outputs], name=name)
    return keras.Model(inputs, outputs, name=name)


def _auxiliary(x, num_classes, prefix, layers):
    """The paper's auxiliary classifier on an intermediate module's output."""
    if window_fits(x, 5):
        x = layers.AveragePooling2D(5, strides=3, name=f"{prefix}_ave_pool")(x)
    x = layers.Conv2D(128, 1, activation="relu", name=f"{prefix}_conv")(x)
    x = layers.Flatten(name=f"{prefix}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{prefix}_fc")(x)
    x = layers.Dropout(0.7, name=f"{prefix}_dropout")(x)
    x = layers.Dense(num_classes, name=f"{prefix}_logits")(x)
    return layers.Activation("softmax", dtype="float32", name=f"{prefix}_probabilities")(x)
