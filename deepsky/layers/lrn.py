"""Local response normalisation across channels (Krizhevsky, Sutskever & Hinton 2012, sec. 3.3)."""

from __future__ import annotations

from deepsky.config import ensure_backend

# Keras picks its backend on first import; make that deepsky's default (torch)
# when this module is the first to import it.
ensure_backend()

import keras  # noqa: E402

from deepsky.errors import DeepskyError  # noqa: E402
from deepsky.fastpath import in_cache_chunks, register_kernel  # noqa: E402


@keras.saving.register_keras_serializable(package="deepsky")
class LocalResponseNormalization(keras.layers.Layer):
    """``a_i / (k + alpha * sum_j a_j^2) ** beta`` over ``size`` neighbouring channels.

    A strongly responding feature map damps its neighbours at the same pixel
    ("lateral inhibition"), as in AlexNet after its first two convolutions
    and in VGG-A-LRN and GoogLeNet's stem. The layer has no weights.

    Parameters
    ----------
    size : int
        Number of adjacent channels summed over, ``n`` in the paper (odd;
        the window is centred on the channel, clipped at the edges).
    alpha : float
        Scale of the squared sum. As in the paper's formula, and unlike
        Caffe's and ``torch.nn.LocalResponseNorm``, ``alpha`` is *not*
        divided by ``size``.
    beta : float
        Exponent of the denominator.
    k : float
        Additive constant of the denominator.

    Notes
    -----
    Channels-last inputs only (the last axis is normalised over). The
    defaults are the paper's: ``size=5, alpha=1e-4, beta=0.75, k=2``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((1, 1, 1, 3), "float32")
    >>> y = LocalResponseNormalization(size=3, alpha=1.0, beta=1.0, k=1.0)(x)
    >>> np.round(keras.ops.convert_to_numpy(y).ravel(), 4)  # 1/(1+2), 1/(1+3), 1/(1+2)
    array([0.3333, 0.25  , 0.3333], dtype=float32)
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, **kwargs):
        super().__init__(**kwargs)
        if int(size) != size or size < 1 or size % 2 == 0:
            raise DeepskyError(
                f"local response normalisation needs an odd, positive window of channels. Received: size={size}"
            )
        self.size = int(size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)

    def call(self, inputs):
        ops = keras.ops
        channels = inputs.shape[-1]
        half = self.size // 2
        squared = ops.square(inputs)
        # Zero-pad the channel axis so every channel sees a full window; the
        # padding adds nothing to the sum, which clips the window at the edges
        # as the paper's max(0, i - n/2) .. min(N - 1, i + n/2) does.
        padding = [[0, 0]] * (len(inputs.shape) - 1) + [[half, half]]
        padded = ops.pad(squared, padding)
        window_sum = padded[..., 0:channels]
        for offset in range(1, self.size):
            window_sum = window_sum + padded[..., offset:offset + channels]
        return inputs / ops.power(self.k + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


@register_kernel(LocalResponseNormalization, layout="channels_first")
def _lrn_kernel(layer, x, ctx):
    """The window sums as shifted adds over channels (torch's own LRN, 3-D average pooling, measured 4-6x slower)."""
    if x.ndim != 4:
        return None
    return in_cache_chunks(lambda part: _lrn(layer, part), x)


def _lrn(layer, x):
    import torch.nn.functional as F

    # the sums of squares in float32: bf16 would round a large activation's square
    x32 = x.float()
    half, channels = layer.size // 2, x.shape[1]
    padded = F.pad(x32 * x32, (0, 0, 0, 0, half, half))
    window = padded[:, 0:channels] + padded[:, 1:1 + channels] if layer.size > 1 else padded.clone()
    for offset in range(2, layer.size):
        window += padded[:, offset:offset + channels]
    window.mul_(layer.alpha).add_(layer.k)
    if layer.beta == 0.75:  # AlexNet's: d^-0.75 = r sqrt(r) with r = d^-0.5, cheaper than a general power
        scale = window.rsqrt_()
        scale = scale * scale.sqrt()
    else:
        scale = window.pow_(-layer.beta)
    return (x32 * scale).to(x.dtype)
