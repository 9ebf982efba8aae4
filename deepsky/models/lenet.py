"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, Proc. IEEE 86, 2278), the first deep ConvNet.

Two convolution + subsampling stages, a third convolution that sees the
whole 5x5 map (C5), a 84-unit layer (F6) and the class output, with tanh
units and 2x2 average pooling as in the paper.
"""

from __future__ import annotations

from deepsky.models._classic import check_input_shape
from deepsky.models.registry import register_model

PAPER_SIZE = 32  # pixels; the paper centres 28x28 MNIST digits in a 32x32 field


@register_model("lenet-5", "LeNet-5 (LeCun et al. 1998): conv 6@5x5, pool, conv 16@5x5, pool, C5 120, F6 84, softmax")
def lenet5(input_shape=(32, 32, 1), num_classes=10, name="lenet5"):
    """Build LeNet-5.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands) in pixels. Inputs smaller than the paper's
        32x32 (e.g. 28x28 MNIST digits or cutouts) are zero-padded to 32x32
        first, as the paper did with its digits; larger inputs leave C5 a
        map bigger than 1x1, which is flattened into F6.
    num_classes : int
        Output classes (softmax).
    name : str
        Name of the Keras model.

    Returns
    -------
    keras.Model
        61,706 parameters at 32x32x1 with 10 classes.

    Notes
    -----
    Three simplifications of the paper, each standard in re-implementations:
    C3 connects to all six S2 maps (the paper's partial connection table has
    1,516 instead of 2,416 weights); S2 and S4 are plain average pooling (the
    paper's subsampling has a trainable coefficient and bias per map, 44
    parameters); and the output is a softmax layer instead of the paper's
    Euclidean RBF units with hand-set prototypes. The paper's squashing
    function ``1.7159 tanh(2a/3)`` is plain ``tanh`` here (the next layer's
    weights absorb the scales). The paper's network has about 60,000
    trainable parameters; this one 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706.
    """
    import keras
    from keras import layers

    height, width, bands = check_input_shape(input_shape, "lenet-5")
    inputs = keras.Input(shape=(height, width, bands), name="image")
    x = inputs
    if height < PAPER_SIZE or width < PAPER_SIZE:
        pad_h, pad_w = max(PAPER_SIZE - height, 0), max(PAPER_SIZE - width, 0)
        x = layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)), name="pad")(x)
    x = layers.Conv2D(6, 5, activation="tanh", name="c1")(x)
    x = layers.AveragePooling2D(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation="tanh", name="c3")(x)
    x = layers.AveragePooling2D(2, name="s4")(x)
    # C5 is a convolution, not a dense layer: at 32x32 its 5x5 kernel covers
    # the whole S4 map (so it is one), on bigger inputs it slides.
    x = layers.Conv2D(120, 5, activation="tanh", name="c5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation="tanh", name="f6")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)

