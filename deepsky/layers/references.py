"""Direct photometric measurements a network can refine: cutout magnitude and light-weighted radius.

A ConvNet that outputs a magnitude over a 6-magnitude range keeps an error
floor of a few per cent of that range; one that outputs the correction to a
direct measurement (the light that falls outside the cutout, the noise in the
sum) works on a range a hundred times smaller. :func:`references` computes the
measurements, and :class:`SersicInputs` gives them to the network as two extra
constant channels beside the stretched image, so that it knows what it is
correcting. One function serves both numpy (targets, decoding) and Keras
(inside the model), so the two can never disagree.
"""

from __future__ import annotations

import keras
import numpy as np

from deepsky.fastpath import register_kernel

FLUX_FLOOR_NMGY = 0.05  # fluxes are floored here (AB 25.75): a noisy faint sum can be negative
MAG_CENTRE, MAG_SCALE = 22.0, 1.5
LOG_RADIUS_CENTRE, LOG_RADIUS_SCALE = -0.5, 0.3


def _radius_grid(height: int, width: int) -> np.ndarray:
    """Distance of every pixel centre from the cutout centre ((size - 1) / 2), in pixels."""
    y, x = np.mgrid[:height, :width].astype(np.float64)
    return np.hypot(y - (height - 1) / 2, x - (width - 1) / 2).astype(np.float32)


def references(images, pixel_scale_arcsec: float, ops=np):
    """``(mag, log10_radius_arcsec)`` per (N, H, W, 1) cutout in nanomaggies.

    ``mag`` is 22.5 - 2.5 log10 of the cutout's total flux (floored at
    ``FLUX_FLOOR_NMGY``); the radius is the light-weighted mean distance from
    the cutout centre, ``sum(r f) / sum(f)`` with the same floor, clipped to
    0.5 pixels - half the cutout. ``ops`` is numpy or ``keras.ops``.
    """
    _, height, width, _ = images.shape
    radius = _radius_grid(int(height), int(width))[None, :, :, None]
    if ops is not np:
        radius = ops.convert_to_tensor(radius, dtype=images.dtype)
    flux = ops.maximum(ops.sum(images, axis=(1, 2, 3)), FLUX_FLOOR_NMGY)
    weighted = ops.sum(images * radius, axis=(1, 2, 3)) / flux
    mean_radius = ops.clip(weighted, 0.5, min(int(height), int(width)) / 2) * pixel_scale_arcsec
    return 22.5 - 2.5 * ops.log10(flux), ops.log10(mean_radius)


@keras.saving.register_keras_serializable(package="deepsky")
class SersicInputs(keras.layers.Layer):
    """One band of raw fluxes in, three channels out: stretched image, reference magnitude, reference radius.

    Channel 0 is ``(asinh(flux / softening) - mean) / std`` of the central
    ``crop`` x ``crop`` pixels; channels 1 and 2 are :func:`references` of the
    whole cutout, scaled to order one and repeated over the pixels. The crop
    makes the network 1.8x cheaper (48 of 64 pixels) while the references
    still see the light far out.

    Parameters
    ----------
    softening : float
        Sky noise per pixel (nanomaggies).
    mean, std : float
        Standardisation of the stretched image (from the training set).
    pixel_scale_arcsec : float
        Pixel scale of the cutouts.
    crop : int, optional
        Side of the central square the network sees (default: all of it).
    """

    def __init__(self, softening, mean, std, pixel_scale_arcsec, crop=None, **kwargs):
        super().__init__(**kwargs)
        self.softening, self.mean, self.std = float(softening), float(mean), float(std)
        self.pixel_scale_arcsec = float(pixel_scale_arcsec)
        self.crop = None if crop is None else int(crop)

    def _margins(self, height):
        start = 0 if self.crop is None or self.crop >= height else (height - self.crop) // 2
        return start, height - start

    def call(self, inputs):
        ops = keras.ops
        mag, log_radius = references(inputs, self.pixel_scale_arcsec, ops=ops)
        top, bottom = self._margins(inputs.shape[1])
        left, right = self._margins(inputs.shape[2])
        centre = inputs[:, top:bottom, left:right, :] / self.softening
        # asinh from log1p and sqrt: three times faster than ops.arcsinh on a CPU, equal to 2e-7
        size = ops.abs(centre)
        stretched = ops.sign(centre) * ops.log1p(size + size * size / (1 + ops.sqrt(size * size + 1)))
        stretched = (stretched - self.mean) / self.std
        ones = ops.ones_like(stretched)
        mag = ((mag - MAG_CENTRE) / MAG_SCALE)[:, None, None, None] * ones
        log_radius = ((log_radius - LOG_RADIUS_CENTRE) / LOG_RADIUS_SCALE)[:, None, None, None] * ones
        return ops.concatenate([stretched, mag, log_radius], axis=-1)

    def compute_output_shape(self, input_shape):
        height = input_shape[1] if self.crop is None or input_shape[1] is None else min(self.crop, input_shape[1])
        width = input_shape[2] if self.crop is None or input_shape[2] is None else min(self.crop, input_shape[2])
        return (input_shape[0], height, width, 3)

    def get_config(self):
        return {**super().get_config(), "softening": self.softening, "mean": self.mean, "std": self.std,
                "pixel_scale_arcsec": self.pixel_scale_arcsec, "crop": self.crop}


def _turns_with_the_cutout(layer, shape) -> bool:
    """A square cutout's centre crop and its radius grid are the same after a turn."""
    top, bottom = layer._margins(shape[1])
    return shape[1] == shape[2] and top == shape[1] - bottom


@register_kernel(SersicInputs, layout="channels_last", turns=_turns_with_the_cutout)
def _sersic_inputs_kernel(layer, x, ctx):
    """:class:`SersicInputs` in plain torch ops, NHWC in and out.

    The same values as the Keras layer (within float32 rounding), about ten
    times faster: the two sums over the pixels are one matrix product, and
    no Keras op dispatch. Runs in float32 even under bf16 autocast: the
    reference magnitude comes from a sum of thousands of pixels.
    """
    import torch

    from deepsky.fastpath import _fast_asinh

    n, height, width, _ = x.shape
    basis = _SERSIC_BASES.get((height, width, x.device))
    if basis is None:
        grid = _radius_grid(height, width).ravel()
        basis = _SERSIC_BASES[(height, width, x.device)] = torch.from_numpy(
            np.stack([np.ones_like(grid), grid], 1).astype(np.float32)).to(x.device)
    with torch.autocast(x.device.type, enabled=False):
        x = x.float()
        sums = x.reshape(n, height * width) @ basis  # (N, 2): flux, flux-weighted radius
        flux = sums[:, 0].clamp_min(FLUX_FLOOR_NMGY)
        mean_radius = (sums[:, 1] / flux).clamp(0.5, min(height, width) / 2) * layer.pixel_scale_arcsec
        mag = (22.5 - 2.5 * torch.log10(flux) - MAG_CENTRE) / MAG_SCALE
        log_radius = (torch.log10(mean_radius) - LOG_RADIUS_CENTRE) / LOG_RADIUS_SCALE
        top, bottom = layer._margins(height)
        left, right = layer._margins(width)
        stretched = _fast_asinh(x[:, top:bottom, left:right, 0] / layer.softening).sub_(layer.mean).div_(layer.std)
        out = torch.empty((n, bottom - top, right - left, 3), dtype=torch.float32, device=x.device)
        out[..., 0] = stretched
        out[..., 1] = mag[:, None, None]
        out[..., 2] = log_radius[:, None, None]
        return out


_SERSIC_BASES: dict = {}  # (height, width) -> (H*W, 2) matrix of ones and pixel radii
