"""Vernardos & Tsagkatakis (2019, MNRAS 486, 1944): a 1-D CNN that reads a quasar microlensing light curve.

After a linear 1x1 convolution to 32 channels, five residual groups each
apply convolutions of 32 filters with kernels 10, 20 and 50 (ReLU, 'same'
padding), add the group's input back, max-pool by 3 with stride 2 and
batch-normalise. Two linear dense layers (128 and 32 units), each followed
by dropout, lead to the softmax over the classes (disc sizes in the paper).
The authors' code also puts an L2 penalty of 0.1 on the dense weights;
deepsky trains with AdamW's weight decay instead, as every model here.
"""

from __future__ import annotations

from deepsky.models.registry import register_model

KERNELS = (10, 20, 50)
GROUPS = 5
FILTERS = 32


@register_model("vernardos-tsagkatakis",
                "Vernardos & Tsagkatakis (2019): 5 residual groups of 1-D conv (32 filters, kernels 10/20/50), "
                "dense 128, 32 with dropout")
def vernardos_tsagkatakis(input_shape=(366, 2), num_classes=10, dropout=0.75):
    """The network on (epochs, channels) light curves; ``dropout`` after each dense layer (the paper's 0.75)."""
    import keras
    from keras import layers

    inputs = keras.Input(tuple(input_shape), name="light_curve")
    x = layers.Conv1D(FILTERS, 1, name="project")(inputs)
    for g in range(1, GROUPS + 1):
        y = x
        for kernel in KERNELS:
            y = layers.Conv1D(FILTERS, kernel, padding="same", activation="relu", name=f"group{g}_conv{kernel}")(y)
        x = layers.Add(name=f"group{g}_add")([x, y])
        x = layers.MaxPooling1D(3, strides=2, padding="same", name=f"group{g}_pool")(x)
        x = layers.BatchNormalization(name=f"group{g}_bn")(x)
    x = layers.Flatten(name="flatten")(x)
    for width in (128, 32):
        x = layers.Dense(width, name=f"fc{width}")(x)
        x = layers.Dropout(dropout, name=f"dropout{width}")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="vernardos_tsagkatakis")
