"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, NIPS 25), the ImageNet 2012 winner.

Five convolutions (ReLU; local response normalisation after the first two),
overlapping 3x3 max pooling with stride 2, two 4096-unit layers with dropout
0.5 and a softmax output.
"""

from __future__ import annotations

from deepsky.models._classic import check_input_shape, window_fits
from deepsky.models.registry import register_model

# (filters, kernel, stride, padding, grouped in the two-GPU original, then LRN, then pooling)
_CONVS = [
    (96, 11, 4, "valid", False, True, True),
    (256, 5, 1, "same", True, True, True),
    (384, 3, 1, "same", False, False, False),
    (384, 3, 1, "same", True, False, False),
    (256, 3, 1, "same", True, False, True),
]
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}  # the paper's n, alpha, beta, k


@register_model(
    "alexnet", "AlexNet (Krizhevsky et al. 2012): 5 conv with LRN, overlapping max pooling, 2x FC 4096, softmax"
)
def alexnet(input_shape=(227, 227, 3), num_classes=1000, dropout=0.5, grouped=False, name="alexnet"):
    """Build AlexNet.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands) in pixels, at least 11x11 (the first kernel).
        The paper says 224x224 but its arithmetic (55x55 after an 11x11
        stride-4 convolution) needs 227x227, the default here.
    num_classes : int
        Output classes (softmax).
    dropout : float
        Dropout rate after each 4096-unit layer.
    grouped : bool
        Split convolutions 2, 4 and 5 into two groups, as the paper's two
        GPUs did (each half sees only its own GPU's maps). Off by default:
        the single-tower network is the usual re-implementation.
    name : str
        Name of the Keras model.

    Returns
    -------
    keras.Model
        62,378,344 parameters at 227x227x3 with 1000 classes
        (60,965,224 with ``grouped=True``, the paper's "60 million").

    Notes
    -----
    On small cutouts the feature map shrinks below the 3x3 pooling window
    (44x44 pixels are 9, 4 and 1 pixels after conv1, pool1 and pool2); a
    pooling that does not fit is left out: ``pool5`` is absent below 67
    pixels, ``pool2`` below 35 and ``pool1`` below 19.
    Weights start from Keras' Glorot-uniform default with zero biases rather
    than the paper's N(0, 0.01) and unit biases, which need the paper's
    hand-tuned learning-rate schedule.
    """
    import keras
    from keras import layers

    from deepsky.layers.lrn import LocalResponseNormalization

    shape = check_input_shape(input_shape, "alexnet", minimum=11)
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for index, (filters, kernel, stride, padding, split, lrn, pool) in enumerate(_CONVS, start=1):
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, activation="relu",
            groups=2 if grouped and split else 1, name=f"conv{index}",
        )(x)
        if lrn:
            x = LocalResponseNormalization(**LRN, name=f"lrn{index}")(x)
        # "Overlapping pooling": a 3x3 window every 2 pixels (the paper found
        # it overfits slightly less than 2x2/2).
        if pool and window_fits(x, 3):
            x = layers.MaxPooling2D(3, strides=2, name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    for index in (6, 7):
        x = layers.Dense(4096, activation="relu", name=f"fc{index}")(x)
        x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
