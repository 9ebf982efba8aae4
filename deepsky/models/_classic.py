"""Helpers shared by the classic ImageNet networks (LeNet, AlexNet, VGG, Inception, ResNet).

A private module (leading underscore): the registry does not import it as a
model module, and it imports no backend.
"""

from __future__ import annotations

from deepsky.errors import DeepskyError


def check_input_shape(input_shape, model: str, minimum: int = 1) -> tuple[int, int, int]:
    """``(height, width, bands)`` as ints, or a DeepskyError naming what was received.

    Parameters
    ----------
    input_shape : tuple
        (height, width, bands) in pixels, channels last.
    model : str
        The model's name, for the message.
    minimum : int
        Smallest height and width (pixels) the network can take.
    """
    try:
        height, width, bands = (int(n) for n in input_shape)
    except (TypeError, ValueError):
        raise DeepskyError(
            f"{model} takes input_shape=(height, width, bands) in pixels. Received: input_shape={input_shape!r}"
        ) from None
    if bands < 1 or min(height, width) < minimum:
        raise DeepskyError(
            f"{model} needs at least {minimum}x{minimum} pixels and one band. "
            f"Received: input_shape={(height, width, bands)}"
        )
    return height, width, bands


def window_fits(tensor, window: int) -> bool:
    """True when a ``window`` x ``window`` unpadded pooling fits the (batch, h, w, c) ``tensor``.

    The classic networks pool a 224-pixel image down to 7 or 6 pixels; a
    32-pixel cutout runs out of pixels earlier, and a pooling that does not
    fit is left out rather than failing (sizes unknown until run time fit).
    """
    return all(size is None or size >= window for size in tensor.shape[1:3])


def conv_pool_chain(x, layout, width: float = 1.0, pooling: str = "max"):
    """Apply ``layout`` to the Keras tensor ``x``: ReLU convolutions and 2x2 poolings in order.

    Each entry is ``(filters, kernel)`` or ``(filters, kernel, stride)`` for a
    'valid' convolution named ``conv1``, ``conv2``..., or None for a pooling
    named ``pool1``... (``pooling``: "max" or "average"); ``width``
    multiplies every filter count.
    """
    from keras import layers

    pool_layer = {"max": layers.MaxPooling2D, "average": layers.AveragePooling2D}[pooling]
    conv = pool = 0
    for spec in layout:
        if spec is None:
            pool += 1
            x = pool_layer(2, name=f"pool{pool}")(x)
        else:
            conv += 1
            filters, kernel, stride = (*spec, 1) if len(spec) == 2 else spec
            x = layers.Conv2D(max(1, int(round(filters * width))), kernel, strides=stride, activation="relu",
                              name=f"conv{conv}")(x)
    return x
