"""Augmentation by any angle, scale and shift (deepsky.data.augment.random_affine), as Dieleman et al. used it."""

import numpy as np
import pytest

from deepsky.errors import DeepskyError
from deepsky.data.augment import cutout_augmentation, random_affine, turn, unturn, view_choices
from deepsky.train import TrainConfig, fit


def _elongated_galaxies(n, size=64, sigma_major=8.0, sigma_minor=2.0):
    """``n`` copies of one elongated Gaussian along x, centred, in 2 channels (the second twice as bright)."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    image = np.exp(-0.5 * ((x / sigma_major) ** 2 + (y / sigma_minor) ** 2)).astype(np.float32)
    return np.repeat(np.stack([image, 2 * image], -1)[None], n, axis=0)


def _moments(images):
    """Centroid (x, y), major-axis angle (degrees in [0, 180)) and second-moment size of channel 0."""
    size = images.shape[1]
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    f = images[..., 0]
    total = f.sum(axis=(1, 2))
    cx, cy = (f * x).sum(axis=(1, 2)) / total, (f * y).sum(axis=(1, 2)) / total
    dx, dy = x[None] - cx[:, None, None], y[None] - cy[:, None, None]
    qxx, qyy, qxy = ((f * dx * dx).sum(axis=(1, 2)) / total, (f * dy * dy).sum(axis=(1, 2)) / total,
                     (f * dx * dy).sum(axis=(1, 2)) / total)
    angle = np.degrees(0.5 * np.arctan2(2 * qxy, qxx - qyy)) % 180.0
    return cx, cy, angle, np.sqrt(qxx + qyy)


def test_any_angle_turns_galaxies_to_angles_between_the_quarter_turns():
    images = _elongated_galaxies(400)
    out = random_affine(images, np.random.default_rng(3))
    assert out.shape == images.shape and out.dtype == np.float32
    _, _, angle, size = _moments(out)
    off_axis = np.minimum(angle % 90.0, 90.0 - angle % 90.0)  # 0 for a quarter turn or a flip
    assert np.mean(off_axis > 10.0) > 0.6  # uniform angles: 78% expected; the 8 dihedral views give 0%
    np.testing.assert_allclose(np.histogram(angle, bins=4, range=(0, 180))[0] / 400, 0.25, atol=0.07)
    np.testing.assert_allclose(size, _moments(images)[3], rtol=0.02)  # no zoom asked: no scaling
    np.testing.assert_allclose(out[..., 1], 2 * out[..., 0], rtol=1e-5, atol=1e-6)  # bands move together


def test_zoom_and_shift_stay_within_their_bounds_and_use_them():
    images = _elongated_galaxies(400, sigma_major=5.0, sigma_minor=3.0)
    out = random_affine(images, np.random.default_rng(4), zoom=1.3, shift_pixels=4.0)
    cx, cy, _, size = _moments(out)
    ratio = size / _moments(images)[3]
    assert ratio.min() > 1 / 1.3 - 0.02 and ratio.max() < 1.3 + 0.02
    assert ratio.min() < 0.85 and ratio.max() > 1.2
    assert np.abs(cx).max() < 4.3 and np.abs(cy).max() < 4.3
    assert np.abs(cx).max() > 3.0 and np.abs(cy).max() > 3.0


def test_same_generator_state_gives_the_same_views():
    images = np.random.default_rng(0).random((5, 32, 32, 3), dtype=np.float32)
    a = random_affine(images, np.random.default_rng(9), zoom=1.2, shift_pixels=2)
    b = random_affine(images, np.random.default_rng(9), zoom=1.2, shift_pixels=2)
    np.testing.assert_array_equal(a, b)


def test_bad_settings_are_one_clear_error():
    images = np.zeros((2, 16, 16, 1), np.float32)
    with pytest.raises(DeepskyError, match="zoom"):
        random_affine(images, np.random.default_rng(0), zoom=0.5)
    with pytest.raises(DeepskyError, match="rotations must be"):
        fit(None, images, np.zeros(2), images, np.zeros(2), TrainConfig(rotations="some"))
    # a regression whose targets turn with the image cannot be trained on arbitrary angles
    with pytest.raises(DeepskyError, match="do not turn with the image"):
        cutout_augmentation("any", turn_targets=lambda targets, choice: targets)



def test_unturn_undoes_each_of_the_eight_turns():
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3))
    assert len({turn(x, k).tobytes() for k in range(8)}) == 8
    for k in range(8):
        np.testing.assert_array_equal(unturn(turn(x, k), k), x)
    assert view_choices(2) == (0, 2)
    with pytest.raises(DeepskyError, match="views must be one of 1, 2, 4, 8"):
        view_choices(3)
