"""Augmentations a task declares: turns and flips of cutouts, any-angle rotations, time reversal and shifts of series.

Each ``Augmentation`` maps a batch ``(x, y)`` to an augmented batch with a
seeded ``numpy.random.Generator``; ``fit`` calls it on every training batch
and nothing else about the data's kind is known to the training loop.
Targets that turn with the input (a position angle) are turned by the
task's ``turn_targets(targets, choice)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from deepsky.errors import DeepskyError

ROTATIONS = ("dihedral", "any")
# the turns averaged for 1, 2, 4 or 8 views of a cutout (numbered as in dihedral); a half turn
# first, as it leaves a position angle as it is
VIEW_CHOICES = {1: (0,), 2: (0, 2), 4: (0, 1, 2, 3), 8: tuple(range(8))}


def view_choices(views: int) -> tuple[int, ...]:
    """The turns averaged for ``views`` (1, 2, 4 or 8) orientations of each cutout."""
    if views not in VIEW_CHOICES:
        raise DeepskyError(f"views must be one of {', '.join(map(str, VIEW_CHOICES))}; received {views!r}")
    return VIEW_CHOICES[views]


def turn(images: np.ndarray, k: int) -> np.ndarray:
    """All (N, H, W, C) cutouts turned by rotation/flip ``k`` of the 8 (numbered as in :func:`dihedral`)."""
    if not k:
        return images
    block = np.rot90(images, k % 4, axes=(1, 2))
    return np.ascontiguousarray(block[:, :, ::-1] if k >= 4 else block)


def unturn(images: np.ndarray, k: int) -> np.ndarray:
    """Undo :func:`turn`: ``unturn(turn(x, k), k)`` is ``x``."""
    if not k:
        return images
    block = images[:, :, ::-1] if k >= 4 else images
    return np.ascontiguousarray(np.rot90(block, -(k % 4), axes=(1, 2)))


def dihedral(images: np.ndarray, rng: np.random.Generator, choice: np.ndarray | None = None) -> np.ndarray:
    """Apply one of the 8 rotations/flips of the square to each (N, H, W, C) cutout.

    ``choice`` (N,) in 0..7 picks them (``k % 4`` quarter turns of ``np.rot90``
    over axes (1, 2), then a reversal of axis 2 when ``k >= 4``); by default
    they are drawn from ``rng``.
    """
    out = np.empty_like(images)
    choice = rng.integers(0, 8, len(images)) if choice is None else choice
    for k in range(8):
        sel = choice == k
        if not sel.any():
            continue
        out[sel] = turn(images[sel], k)
    return out


def random_affine(images: np.ndarray, rng: np.random.Generator, zoom: float = 1.0,
                  shift_pixels: float = 0.0) -> np.ndarray:
    """Turn each (N, H, W, C) cutout by a random angle, maybe mirror it, scale and shift it.

    Dieleman et al.'s augmentation for galaxy images: rotations by any angle
    (a galaxy has no preferred orientation on the sky, and the 8 rotations of
    the square teach the network only 8 of them), a mirror image half of the
    time, a scale drawn log-uniformly in [1/``zoom``, ``zoom``] and a shift
    of up to ``shift_pixels`` in x and y, with bilinear interpolation. What a
    turned square leaves uncovered (its corners) is filled with the cutout's
    sky, the median of its outermost pixels in each band: reflecting the
    image there would fold the galaxy's own light into the corners.
    Uses torch's grid sampler (9 ms for 64 images of 96x96x3 on one core,
    ten times a vectorised numpy version).
    """
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as exc:  # pragma: no cover - torch is installed with deepsky[torch]
        raise DeepskyError("augmentation by any angle needs PyTorch: pip install 'deepsky[torch]'") from exc
    if zoom < 1.0 or shift_pixels < 0:
        raise DeepskyError(f"zoom must be at least 1 and shift_pixels non-negative; received {zoom}, {shift_pixels}")
    n, height, width, channels = images.shape
    angle = rng.uniform(0.0, 2 * np.pi, n)
    scale = np.exp(rng.uniform(-np.log(zoom), np.log(zoom), n))
    mirror = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    dx, dy = rng.uniform(-shift_pixels, shift_pixels, (2, n))
    # input = A (output - shift) in the sampler's [-1, 1] coordinates: the galaxy lands at the
    # shift in output pixels, turned, mirrored in x and scaled about it
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 1] = mirror * np.cos(angle) / scale, -np.sin(angle) / scale
    theta[:, 1, 0], theta[:, 1, 1] = mirror * np.sin(angle) / scale, np.cos(angle) / scale
    shift = np.stack([2 * dx / max(width - 1, 1), 2 * dy / max(height - 1, 1)], axis=1)  # (N, 2)
    theta[:, :, 2] = -np.einsum("nij,nj->ni", theta[:, :, :2], shift)
    images = np.asarray(images, dtype=np.float32)
    edge = np.concatenate([images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1)
    sky = np.median(edge, axis=1)[:, None, None, :]  # (N, 1, 1, C)
    with torch.no_grad():
        grid = F.affine_grid(torch.from_numpy(theta), (n, channels, height, width), align_corners=True)
        nchw = torch.from_numpy(np.ascontiguousarray(images - sky)).permute(0, 3, 1, 2)
        out = F.grid_sample(nchw, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.permute(0, 2, 3, 1).numpy() + sky


def time_reverse(series: np.ndarray, rng: np.random.Generator, fraction: float = 0.5) -> np.ndarray:
    """Reverse the time axis of a random ``fraction`` of (N, T, C) series (a transit is symmetric in time)."""
    out = np.array(series, copy=True)
    flip = rng.random(len(series)) < fraction
    out[flip] = out[flip, ::-1]
    return out


def time_shift(series: np.ndarray, rng: np.random.Generator, max_steps: int) -> np.ndarray:
    """Roll each (N, T, C) series along time by up to ``max_steps`` samples either way."""
    if max_steps < 0:
        raise DeepskyError(f"max_steps must be non-negative; received {max_steps}")
    out = np.empty_like(series)
    steps = rng.integers(-max_steps, max_steps + 1, len(series))
    for i, k in enumerate(steps):
        out[i] = np.roll(series[i], int(k), axis=0)
    return out


@dataclass(frozen=True)
class Augmentation:
    """A batch augmentation: ``augmentation(x, y, rng) -> (x, y)`` on a training batch.

    Build one with :func:`cutout_augmentation` or :func:`series_augmentation`;
    inputs with several named arrays are augmented array by array with the
    same draws.
    """

    name: str
    apply: Callable

    def __call__(self, x, y, rng: np.random.Generator):
        if not isinstance(x, dict):
            return self.apply(x, y, rng)
        # one object's views (a light curve's global and local view) must turn or flip together
        start = rng.bit_generator.state
        out = {}
        for name, array in x.items():
            rng.bit_generator.state = start
            out[name], new_y = self.apply(array, y, rng)
        return out, new_y


def cutout_augmentation(rotations: str = "dihedral", zoom: float = 1.0, shift_pixels: float = 0.0,
                        turn_targets: Callable | None = None) -> Augmentation:
    """Rotations and flips of (N, H, W, C) cutouts: the 8 of the square, or any angle with zoom and shift.

    ``turn_targets(targets, choice)`` gives the targets of cutouts turned by
    :func:`dihedral` with ``choice``, for targets that change with the
    orientation; such targets cannot follow turns by other angles.
    """
    if rotations not in ROTATIONS:
        raise DeepskyError(f"rotations must be dihedral or any; received {rotations!r}")
    if rotations == "any":
        if turn_targets is not None:
            raise DeepskyError("rotations by any angle are for tasks whose targets do not turn with the image")
        return Augmentation("any", lambda x, y, rng: (random_affine(x, rng, zoom, shift_pixels), y))

    def apply(x, y, rng):
        choice = rng.integers(0, 8, len(x))
        return dihedral(x, rng, choice), (y if turn_targets is None else turn_targets(y, choice))

    return Augmentation("dihedral", apply)


def series_augmentation(reverse: bool = True, max_shift_steps: int = 0, negate: bool = False,
                        swap_channels: bool = False) -> Augmentation:
    """For (N, T, C) series: time reversal (half of them), shifts of up to ``max_shift_steps``, a change of sign
    (``negate``: half of them) and the channels' order reversed (``swap_channels``: half of them)."""

    def apply(x, y, rng):
        if reverse:
            x = time_reverse(x, rng)
        if max_shift_steps:
            x = time_shift(x, rng, max_shift_steps)
        if negate:
            x = x * np.where(rng.random(len(x)) < 0.5, -1.0, 1.0).astype(x.dtype)[:, None, None]
        if swap_channels:
            swap = rng.random(len(x)) < 0.5
            x = np.array(x, copy=True)
            x[swap] = x[swap, :, ::-1]
        return x, y

    return Augmentation("time", apply)
