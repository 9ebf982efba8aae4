"""Deep-HiTS (Cabrera-Vives et al. 2017, ApJ 836, 97): the rotation-invariant real/bogus network.

Each candidate's stamps (template, science, difference, S/N) are seen in
their four 90-degree rotations; one stack of convolutions with shared
weights reads every rotation (zero padding 3, 32 4x4, 32 3x3, 2x2 pooling,
three 64 3x3, 2x2 pooling), the four flattened maps are concatenated, and
two dense layers of 64 with dropout 0.5 feed a softmax. Leaky ReLU
(slope 0.01) throughout, as in the authors' Theano code.
"""

from __future__ import annotations

from deepsky.models.registry import register_model

# (filters, kernel, padding) per convolution; None marks a 2x2 max pooling
_LAYOUT = [(32, 4, "valid"), (32, 3, "same"), None, (64, 3, "same"), (64, 3, "same"), (64, 3, "same"), None]
LEAKINESS = 0.01
PADDING_PIXELS = 3  # 21x21 stamps become 27x27, so the first 4x4 convolution leaves 24x24


@register_model("deep-hits", "Deep-HiTS (Cabrera-Vives et al. 2017): 4 rotations through shared convolutions, "
                             "2x FC 64, softmax")
def deep_hits(input_shape=(21, 21, 4), num_classes=2, dropout=0.5, name="deep_hits"):
    """Build the Deep-HiTS network.

    Parameters
    ----------
    input_shape : tuple
        (height, width, channels) in pixels; square (the rotations must
        share one shape). The paper's stamps are 21x21 with 4 channels
        (template, science, difference, S/N).
    num_classes : int
        Output classes (softmax): bogus and real.
    dropout : float
        Dropout rate after each dense layer.

    Returns
    -------
    keras.Model
        A softmax over ``num_classes``; 697,858 parameters for the paper's
        21x21x4 stamps and two classes.
    """
    import keras
    from keras import layers

    from deepsky.layers.turns import QuarterTurn
    from deepsky.models._classic import check_input_shape
    from deepsky.errors import DeepskyError

    height, width, channels = check_input_shape(input_shape, "deep-hits", minimum=4)
    if height != width:
        raise DeepskyError(f"deep-hits turns its stamps, so they must be square. Received: input_shape={input_shape}")
    shared = [layers.ZeroPadding2D(PADDING_PIXELS, name="pad")]
    conv_index = pool_index = 0
    for spec in _LAYOUT:
        if spec is None:
            pool_index += 1
            shared.append(layers.MaxPooling2D(2, name=f"pool{pool_index}"))
            continue
        filters, kernel, padding = spec
        conv_index += 1
        shared.append(layers.Conv2D(filters, kernel, padding=padding, name=f"conv{conv_index}"))
        shared.append(layers.LeakyReLU(LEAKINESS, name=f"conv{conv_index}_act"))
    shared.append(layers.Flatten(name="flatten"))

    inputs = keras.Input(shape=(height, width, channels), name="stamps")
    branches = []
    for turns in range(4):
        x = QuarterTurn(turns, name=f"turn{turns}")(inputs)
        for layer in shared:  # the same layer objects: one set of weights for all four rotations
            x = layer(x)
        branches.append(x)
    x = layers.Concatenate(name="rotations")(branches)
    for index in (1, 2):
        x = layers.Dense(64, name=f"fc{index}")(x)
        x = layers.LeakyReLU(LEAKINESS, name=f"fc{index}_act")(x)
        x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
