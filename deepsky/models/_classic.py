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
