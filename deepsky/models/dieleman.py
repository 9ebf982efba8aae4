"""The Galaxy Zoo ConvNet of Dieleman, Willett & Dambre (2015, MNRAS 450, 1441), the Kaggle winner.

Four convolutions (32 6x6, 64 5x5, 128 3x3, 128 3x3) with ReLU and three 2x2
max-poolings, two 2048-unit dense layers with dropout 0.5, softmax. The paper
fed each galaxy to this stack as 16 rotated, flipped and cropped viewpoints
and pooled their features; deepsky gets the same invariance from random
rotations and flips in training (and averaging the 8 of them at prediction,
``deepsky.predict.predict_array(..., dihedral_average=True)``), which keeps
the network a plain chain that the torch fast path runs. The paper's dense
layers are maxout with 2 pieces; here ReLU, which trains as well at this size.
"""

from __future__ import annotations

from deepsky.models.registry import register_model

# (filters, kernel); None marks a 2x2 max pooling
_LAYOUT = [(32, 6), None, (64, 5), None, (128, 3), (128, 3), None]


@register_model("dieleman", "Dieleman et al. (2015) Galaxy Zoo ConvNet: 4 conv, 2x FC 2048, softmax")
def dieleman(input_shape=(96, 96, 3), num_classes=4, dropout=0.5, name="dieleman"):
    """Build the Dieleman et al. network.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands); the paper's viewpoints were 45x45 in 3 colours.
        Inputs from 40 pixels up work (all three poolings fit).
    num_classes : int
        Output classes (softmax).
    dropout : float
        Dropout rate before each dense layer.
    """
    import keras
    from keras import layers

    from deepsky.models._classic import check_input_shape, conv_pool_chain

    check_input_shape(input_shape, minimum=40, model="dieleman")
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = conv_pool_chain(inputs, _LAYOUT)
    x = layers.Flatten(name="flatten")(x)
    for k in (1, 2):
        x = layers.Dropout(dropout, name=f"drop{k}")(x)
        x = layers.Dense(2048, activation="relu", name=f"fc{k}")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
