"""Run a Keras model through PyTorch ops directly, for training and inference speed.

Keras on the torch backend transposes every convolution's input to NCHW and
back, adds biases as separate ops and casts weights on every call. For a
chain of layers (each feeding the next, as in LeNet, VGG or Kim & Brunner)
this module runs the same Keras variables through ``torch.nn.functional``
in channels-last memory, which is 2.5-3x faster to train and 4x faster to
predict on a CPU. Layers it does not know run as Keras layers on an NHWC
view, so any chain works; other graphs run as Keras models. Gradients land
in the Keras variables, so the model stays a Keras model.
"""

from __future__ import annotations

import numpy as np


def _is_chain(model) -> bool:
    import keras

    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for layer in layers:
        if len(layer._inbound_nodes) != 1 or isinstance(layer, keras.Model):
            return False
    for previous, layer in zip(layers, layers[1:]):
        parents = layer._inbound_nodes[0].parent_nodes
        if len(parents) != 1 or parents[0].operation is not previous:
            return False
    return bool(layers) and layers[0]._inbound_nodes[0].parent_nodes[0].operation is model.layers[0]


class TorchChain:
    """A Keras chain model executed with torch functional ops on its own variables.

    Inputs are NHWC torch tensors, as the Keras model takes them; internally
    4-D activations and kernels are NCHW in channels-last memory, the layout
    oneDNN prefers (measured here: 1.65x faster to predict in bf16 than
    contiguous NCHW, as fast to train).
    """

    def __init__(self, model, float32_head: bool = False):
        """``float32_head``: run the last dense layer in float32 even under bf16 (regression outputs).

        bf16 keeps 8 significant bits: a standardised magnitude near 2 would be
        rounded to steps of 0.008, i.e. 0.012 mag, as coarse as a good fit's
        error; the one small layer in float32 costs nothing measurable.
        """
        import keras

        if keras.backend.backend() != "torch":
            raise RuntimeError("TorchChain needs the torch backend")
        self.model = model
        self.layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        self._frozen: dict | None = None
        dense = [layer for layer in self.layers if isinstance(layer, keras.layers.Dense)]
        self._float32_layer = dense[-1] if float32_head and dense else None

    @staticmethod
    def supports(model) -> bool:
        """True when ``model`` is a channels-last chain on the torch backend."""
        import keras

        if keras.backend.backend() != "torch" or not _is_chain(model):
            return False
        return all(getattr(layer, "data_format", "channels_last") == "channels_last" for layer in model.layers)

    # -- weights -----------------------------------------------------------------
    def _weights(self, layer):
        """Torch views of a layer's weights, or bf16 copies frozen for inference."""
        if self._frozen is not None:
            return self._frozen[id(layer)]
        import keras

        if isinstance(layer, keras.layers.Conv2D):
            import torch

            bias = layer.bias.value if layer.use_bias else None
            kernel = layer.kernel.value.permute(3, 2, 0, 1)
            return kernel.contiguous(memory_format=torch.channels_last), bias
        if isinstance(layer, keras.layers.Dense):
            return layer.kernel.value, (layer.bias.value if layer.use_bias else None)
        return None

    def freeze(self, dtype):
        """Cache inference copies of the weights in ``dtype`` (e.g. ``torch.bfloat16``)."""
        import keras
        import torch

        frozen = {}
        for layer in self.layers:
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
                self._frozen = None
                weight, bias = self._weights(layer)
                layer_dtype = torch.float32 if layer is self._float32_layer else dtype
                weight = weight.detach().to(layer_dtype)
                if weight.ndim == 4:
                    import torch

                    weight = weight.contiguous(memory_format=torch.channels_last)
                else:
                    weight = weight.contiguous()
                frozen[id(layer)] = (weight, None if bias is None else bias.detach().to(layer_dtype))
        self._frozen = frozen
        return self

    def unfreeze(self):
        self._frozen = None
        return self

    @staticmethod
    def _to_nchw(x):
        import torch

        return x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

    # -- forward -----------------------------------------------------------------
    def __call__(self, x, training: bool = False, logits: bool = False):
        """Forward pass; with ``logits=True`` a final softmax is left out."""
        layers = self.layers
        if logits and _is_softmax(layers[-1]):
            layers = layers[:-1]
        return self._forward(x, layers, training)

    def turned(self, x, turns) -> list:
        """Outputs for ``x`` turned by each of ``turns`` (:func:`deepsky.train.turn` numbering).

        The leading layers that act on each pixel alone, or on the whole
        cutout as a turn leaves it (:class:`~deepsky.layers.references.SersicInputs`
        cropping a square's centre evenly), run once; only their output is
        turned. For the Sersic network that input layer is half the time of
        one orientation.
        """
        import torch

        shared = self._turnable_prefix(x.shape)
        x = self._forward(x, self.layers[:shared], False)
        rest = self.layers[shared:]
        first = self._frozen.get(id(rest[0])) if rest and self._frozen is not None else None
        if x.ndim != 4 or first is None or first[0].ndim != 4 or not _plain_conv(rest[0]):
            return [self._forward(turn_tensor(x, k, (1, 2)).contiguous(), rest, False) for k in turns]
        # a convolution comes next: cast and lay out the shared output for it once, then each turn
        # is one copy (turning the NHWC tensor, then laying it out and casting, were three)
        x = x.permute(0, 3, 1, 2).to(first[0].dtype)
        return [self._forward(turn_tensor(x, k, (2, 3)).contiguous(memory_format=torch.channels_last), rest, False,
                              nchw=True) for k in turns]

    def _turnable_prefix(self, shape) -> int:
        """How many leading layers give the same output for a turned input as turned output."""
        import keras

        from deepsky.layers import AsinhStretch
        from deepsky.layers.references import SersicInputs

        if len(shape) != 4 or shape[1] != shape[2]:
            return 0
        count = 0
        for layer in self.layers:
            if isinstance(layer, SersicInputs):
                top, bottom = layer._margins(shape[1])
                if top != shape[1] - bottom:
                    break
            elif not isinstance(layer, (keras.layers.Normalization, AsinhStretch)):
                break
            count += 1
        return count

    def _forward(self, x, layers, training, nchw: bool = False):
        """``layers`` on ``x``: NHWC, or an NCHW view of channels-last memory when ``nchw``."""
        import keras
        import torch
        import torch.nn.functional as F

        from deepsky.layers import AsinhStretch
        from deepsky.layers.references import SersicInputs

        for layer in layers:
            if isinstance(layer, keras.layers.Conv2D) and _plain_conv(layer):
                if not nchw:
                    x, nchw = self._to_nchw(x), True
                weight, bias = self._weights(layer)
                if self._frozen is not None:
                    x = x.to(weight.dtype)
                padding = 0 if layer.padding == "valid" else layer.kernel_size[0] // 2
                if self._frozen is not None and _is_relu(layer.activation) and _fused_conv_relu_available():
                    # oneDNN's convolution with the ReLU fused in (what torch.compile emits on a CPU): a
                    # separate ReLU pass over the output cost 40% of the convolution itself
                    x = torch.ops.mkldnn._convolution_pointwise(
                        x, weight, bias, [padding, padding], list(layer.strides), list(layer.dilation_rate), 1,
                        "relu", [], "")
                    continue
                x = F.conv2d(x, weight, bias, layer.strides, padding, layer.dilation_rate)
                x = _activate(layer.activation, x, nchw, inplace=self._frozen is not None)
            elif isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)) and (
                layer.padding == "valid"
            ):
                if not nchw:
                    x, nchw = self._to_nchw(x), True
                pool = F.max_pool2d if isinstance(layer, keras.layers.MaxPooling2D) else F.avg_pool2d
                x = pool(x, layer.pool_size, layer.strides)
            elif isinstance(layer, keras.layers.Flatten):
                if nchw:
                    x, nchw = x.permute(0, 2, 3, 1), False
                x = x.reshape(x.shape[0], -1)
            elif isinstance(layer, keras.layers.Dense) and x.ndim == 2:
                weight, bias = self._weights(layer)
                if self._frozen is not None:
                    x = x.to(weight.dtype)
                if layer is self._float32_layer:
                    with torch.autocast("cpu", enabled=False):
                        x, weight = x.float(), weight.float()
                        x = x @ weight if bias is None else torch.addmm(bias.float(), x, weight)
                else:
                    x = x @ weight if bias is None else torch.addmm(bias, x, weight)
                x = _activate(layer.activation, x, nchw, inplace=self._frozen is not None)
            elif isinstance(layer, keras.layers.Dropout):
                x = F.dropout(x, layer.rate, training=training)
            elif isinstance(layer, keras.layers.Cropping2D) and not nchw:
                (top, bottom), (left, right) = layer.cropping
                x = x[:, top : x.shape[1] - bottom, left : x.shape[2] - right]
            elif isinstance(layer, keras.layers.Normalization) and not layer.invert and not nchw:
                mean = layer.mean.reshape(_channel_shape(x, nchw)).to(x.dtype)
                std = torch.sqrt(layer.variance.reshape(_channel_shape(x, nchw))).clamp_min(keras.config.epsilon())
                x = (x - mean) / std.to(x.dtype)
            elif isinstance(layer, SersicInputs) and not nchw:
                x = _sersic_inputs(layer, x)
            elif isinstance(layer, AsinhStretch):
                x = _fast_asinh(x / torch.tensor(layer.softening, dtype=x.dtype).view(_channel_shape(x, nchw)))
            elif isinstance(layer, keras.layers.LeakyReLU):
                # in place when frozen for inference: no graph to keep, one allocation less
                x = F.leaky_relu(x, layer.negative_slope, inplace=self._frozen is not None)
            elif isinstance(layer, keras.layers.Activation):
                x = _activate(layer.activation, x, nchw)
            else:  # any other Keras layer, on the channels-last view it expects
                if nchw:
                    x, nchw = x.permute(0, 2, 3, 1), False
                x = layer(x, training=training)
        if nchw:
            x = x.permute(0, 2, 3, 1)
        return x


def turn_tensor(x, k: int, dims=(1, 2)):
    """Torch tensor turned over its (row, column) ``dims`` as :func:`deepsky.train.turn` turns numpy cutouts."""
    import torch

    x = torch.rot90(x, k % 4, dims=dims) if k % 4 else x
    return x.flip(dims[1]) if k >= 4 else x


def _plain_conv(layer) -> bool:
    kernel = layer.kernel_size
    same_ok = layer.padding == "valid" or (
        all(k % 2 == 1 for k in kernel) and tuple(layer.strides) == (1, 1) and kernel[0] == kernel[1]
    )
    return len(kernel) == 2 and layer.groups == 1 and same_ok


def _channel_shape(x, nchw):
    return (1, -1, 1, 1) if nchw else (1,) * (x.ndim - 1) + (-1,)


def _sersic_inputs(layer, x):
    """:class:`~deepsky.layers.references.SersicInputs` in plain torch ops, NHWC in and out.

    The same values as the Keras layer (within float32 rounding), about ten
    times faster: the two sums over the pixels are one matrix product, and
    no Keras op dispatch. Runs in float32 even under bf16 autocast: the
    reference magnitude comes from a sum of thousands of pixels.
    """
    import torch

    from deepsky.layers import references as ref

    n, height, width, _ = x.shape
    key = (height, width)
    basis = _SERSIC_BASES.get(key)
    if basis is None:
        grid = ref._radius_grid(height, width).ravel()
        basis = _SERSIC_BASES[key] = torch.from_numpy(np.stack([np.ones_like(grid), grid], 1).astype(np.float32))
    with torch.autocast("cpu", enabled=False):
        x = x.float()
        sums = x.reshape(n, height * width) @ basis  # (N, 2): flux, flux-weighted radius
        flux = sums[:, 0].clamp_min(ref.FLUX_FLOOR_NMGY)
        mean_radius = (sums[:, 1] / flux).clamp(0.5, min(height, width) / 2) * layer.pixel_scale_arcsec
        mag = (22.5 - 2.5 * torch.log10(flux) - ref.MAG_CENTRE) / ref.MAG_SCALE
        log_radius = (torch.log10(mean_radius) - ref.LOG_RADIUS_CENTRE) / ref.LOG_RADIUS_SCALE
        top, bottom = layer._margins(height)
        left, right = layer._margins(width)
        stretched = _fast_asinh(x[:, top:bottom, left:right, 0] / layer.softening).sub_(layer.mean).div_(layer.std)
        out = torch.empty((n, bottom - top, right - left, 3), dtype=torch.float32)
        out[..., 0] = stretched
        out[..., 1] = mag[:, None, None]
        out[..., 2] = log_radius[:, None, None]
        return out


_SERSIC_BASES: dict = {}  # (height, width) -> (H*W, 2) matrix of ones and pixel radii


def _fast_asinh(y):
    """asinh(y) from log1p and sqrt: 3x faster than ``torch.asinh`` on CPU, within 2e-7."""
    import torch

    a = y.abs()
    return torch.copysign(torch.log1p(a + a * a / (1 + torch.sqrt(a * a + 1))), y)


def _is_softmax(layer) -> bool:
    import keras

    return isinstance(layer, keras.layers.Activation) and getattr(layer.activation, "__name__", "") == "softmax"


def _is_relu(activation) -> bool:
    return getattr(activation, "__name__", "") == "relu"


def _fused_conv_relu_available() -> bool:
    import torch

    return not torch.is_grad_enabled() and torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_convolution_pointwise")


def _activate(activation, x, nchw, inplace: bool = False):
    """``activation`` on ``x``; ``inplace`` for a fresh layer output no gradient needs (a third of the
    Sersic network's inference time was out-of-place ReLUs: an allocation and a copy each)."""
    import torch.nn.functional as F

    name = getattr(activation, "__name__", "")
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x, inplace=inplace)
    if name == "softmax":
        return F.softmax(x.float(), dim=1 if nchw else -1)
    return activation(x)  # elementwise Keras activations work on any layout


def to_torch(batch: np.ndarray):
    """A float32 torch tensor sharing ``batch``'s memory."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
