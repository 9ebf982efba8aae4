"""Each cutout in units of its own sky noise, then an asinh stretch: inputs whose flux units are unknown."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="deepsky")
class NoiseScaledAsinh(keras.layers.Layer):
    """``asinh(x / sigma)`` with ``sigma`` each cutout's own per-band sky noise (robust, from its border).

    A network after this layer sees images in signal-to-noise units, whatever
    the images' flux units (nanomaggies, ADU, electrons per second) or depth:
    what lets a lens finder trained on one simulator score another's cutouts.
    ``sigma`` is 1.4826 times the median absolute deviation of the pixels
    within ``border`` pixels of the edge, floored at ``floor`` times the
    largest absolute pixel (an empty or noiseless border would divide by zero).

    Parameters
    ----------
    border : int
        Width of the frame of pixels the noise is measured on (pixels).
    floor : float
        Smallest sigma as a fraction of the cutout's largest absolute value.
    """

    def __init__(self, border: int = 4, floor: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.border = int(border)
        self.floor = float(floor)

    def noise(self, inputs):
        """(N, 1, 1, bands) robust sky sigma of each cutout and band."""
        ops = keras.ops
        w = self.border
        frame = ops.concatenate([
            ops.reshape(inputs[:, :w], (ops.shape(inputs)[0], -1, ops.shape(inputs)[-1])),
            ops.reshape(inputs[:, -w:], (ops.shape(inputs)[0], -1, ops.shape(inputs)[-1])),
            ops.reshape(inputs[:, w:-w, :w], (ops.shape(inputs)[0], -1, ops.shape(inputs)[-1])),
            ops.reshape(inputs[:, w:-w, -w:], (ops.shape(inputs)[0], -1, ops.shape(inputs)[-1])),
        ], axis=1)
        frame = ops.cast(frame, "float32")
        centre = ops.quantile(frame, 0.5, axis=1, keepdims=True)
        sigma = 1.4826 * ops.quantile(ops.abs(frame - centre), 0.5, axis=1, keepdims=True)
        peak = ops.max(ops.abs(ops.cast(inputs, "float32")), axis=(1, 2), keepdims=True)
        sigma = ops.maximum(ops.expand_dims(sigma, 1), self.floor * peak)
        return ops.maximum(sigma, 1e-30)

    def call(self, inputs):
        return keras.ops.cast(keras.ops.arcsinh(keras.ops.cast(inputs, "float32") / self.noise(inputs)), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "border": self.border, "floor": self.floor}
