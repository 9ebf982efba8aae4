"""The star-galaxy ConvNet of Kim & Brunner (2017, MNRAS 464, 4463).

Eight convolutions in three blocks, two 2048-unit dense layers, leaky ReLU,
orthogonal initial weights with biases 0.1 (convolutions) and 0.01 (dense),
dropout 0.5 before each dense layer, as in the lecture's table.
"""

from __future__ import annotations

from deepsky.models.registry import register_model

# (filters, kernel, padding) per convolution; None marks a 2x2 max pooling.
_LAYOUT = [
    (32, 5, "valid"), (32, 3, "same"), None,
    (64, 3, "same"), (64, 3, "same"), (64, 3, "same"), None,
    (128, 3, "same"), (128, 3, "same"), (128, 3, "same"), None,
]
LEAKINESS = 0.01  # Lasagne's leaky_rectify, which the authors used


@register_model("kim-brunner", "Kim & Brunner (2017) star-galaxy ConvNet: 8 conv, 2x FC 2048, softmax")
def kim_brunner(
    input_shape=(44, 44, 5),
    num_classes=2,
    dropout=0.5,
    data_format="channels_last",
    name="kim_brunner",
):
    """Build the Kim & Brunner network.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands) in pixels for ``channels_last``, else
        (bands, height, width). The paper uses 44x44 in u,g,r,i,z.
    num_classes : int
        Output classes (softmax).
    dropout : float
        Dropout rate before each fully-connected layer.
    data_format : str
        ``channels_last`` (Keras' default) or ``channels_first``.
    """
    import keras
    from keras import layers

    ortho = keras.initializers.Orthogonal
    inputs = keras.Input(shape=tuple(input_shape), name="cutout")
    x = inputs
    conv_index = pool_index = 0
    for spec in _LAYOUT:
        if spec is None:
            pool_index += 1
            x = layers.MaxPooling2D(2, data_format=data_format, name=f"pool{pool_index}")(x)
            continue
        filters, kernel, padding = spec
        conv_index += 1
        x = layers.Conv2D(
            filters, kernel, padding=padding, data_format=data_format,
            kernel_initializer=ortho(seed=conv_index),
            bias_initializer=keras.initializers.Constant(0.1),
            name=f"conv{conv_index}",
        )(x)
        x = layers.LeakyReLU(LEAKINESS, name=f"conv{conv_index}_act")(x)
    x = layers.Flatten(data_format=data_format, name="flatten")(x)
    for i in (1, 2):
        x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        x = layers.Dense(
            2048, kernel_initializer=ortho(seed=100 + i),
            bias_initializer=keras.initializers.Constant(0.01), name=f"fc{i}",
        )(x)
        x = layers.LeakyReLU(LEAKINESS, name=f"fc{i}_act")(x)
    x = layers.Dropout(dropout, name="out_dropout")(x)
    outputs = layers.Dense(
        num_classes, kernel_initializer=ortho(seed=103),
        bias_initializer=keras.initializers.Constant(0.01), name="logits",
    )(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(outputs)
    return keras.Model(inputs, outputs, name=name)
