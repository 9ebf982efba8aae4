"""Quarter turns of an image inside a network, for models that see every 90-degree rotation of their input."""

from __future__ import annotations

from deepsky.config import ensure_backend

ensure_backend()

import keras  # noqa: E402

from deepsky.errors import DeepskyError  # noqa: E402
from deepsky.fastpath import register_kernel  # noqa: E402


@keras.saving.register_keras_serializable(package="deepsky")
class QuarterTurn(keras.layers.Layer):
    """Turn (N, height, width, bands) images anticlockwise by ``turns`` x 90 degrees, as ``numpy.rot90`` does.

    Parameters
    ----------
    turns : int
        Quarter turns, 0-3.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    >>> y = keras.ops.convert_to_numpy(QuarterTurn(1)(x))
    >>> bool((y[0, ..., 0] == np.rot90(x[0, ..., 0])).all())
    True
    """

    def __init__(self, turns=1, **kwargs):
        super().__init__(**kwargs)
        if int(turns) != turns or not 0 <= turns <= 3:
            raise DeepskyError(f"a quarter turn layer takes 0-3 turns. Received: turns={turns!r}")
        self.turns = int(turns)

    def call(self, inputs):
        ops = keras.ops
        x = inputs
        for _ in range(self.turns):
            # one anticlockwise quarter turn: transpose rows and columns, then reverse the rows
            x = ops.flip(ops.transpose(x, (0, 2, 1, 3)), axis=1)
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, bands = input_shape
        return (batch, width, height, bands) if self.turns % 2 else tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "turns": self.turns}


@register_kernel(QuarterTurn, layout="channels_last", fresh=False)
def _quarter_turn_kernel(layer, x, ctx):
    import torch

    return torch.rot90(x, layer.turns, dims=(1, 2)) if layer.turns else x
