"""The difference-imaging real/bogus simulator: reproducible, consistent channels, not separable by brightness."""

import numpy as np
import pytest

from deepsky.errors import DeepskyError
from deepsky.simulate import difference
from deepsky.simulate.difference import BANDS, CLASSES, DECAM_HITS, KINDS, make_real_bogus

N = 400
REAL_KINDS = [KINDS.index(k) for k in ("transient", "supernova", "variable-star")]


def _make(**kwargs):
    # small chunks, so that a few hundred stamps span several seeded chunks and both workers
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(difference, "CHUNK", 100)
        return make_real_bogus(**kwargs)


@pytest.fixture(scope="module")
def sample():
    return _make(n=N, seed=7, workers=2)


def test_same_seed_gives_same_bytes_whatever_the_workers(sample):
    again = _make(n=N, seed=7, workers=1)
    assert again.inputs.tobytes() == sample.inputs.tobytes()
    assert again.objects["snr"].tobytes() == sample.objects["snr"].tobytes()
    other = _make(n=N, seed=8, workers=1)
    assert other.inputs.tobytes() != sample.inputs.tobytes()


def test_shapes_dtypes_labels_and_provenance(sample):
    assert sample.inputs.shape == (N, 21, 21, 4) and sample.inputs.dtype == np.float32
    assert np.isfinite(sample.inputs).all()
    assert sample.labels.dtype == np.int64 and set(np.unique(sample.labels)) == {0, 1}
    meta = sample.meta
    assert meta["task"] == "real-bogus" and meta["classes"] == list(CLASSES) == ["bogus", "real"]
    assert meta["bands"] == list(BANDS) == ["template", "science", "difference", "snr"]
    assert meta["pixel_scale_arcsec"] == 0.27 and meta["seed"] == 7 and meta["simulator"] == "real-bogus-1"
    assert meta["kinds"] == list(KINDS) and "nanomaggies" in meta["units"]
    assert meta["psf"] and meta["noise"]
    columns = ("kind", "kind_code", "snr", "snr_signed", "mag", "on_galaxy", "science_fwhm_arcsec",
               "template_fwhm_arcsec")
    for column in columns:
        assert len(sample.objects[column]) == N, column
    science, template = sample.objects["science_fwhm_arcsec"], sample.objects["template_fwhm_arcsec"]
    assert 0.8 <= science.min() and science.max() <= 1.8 and template.min() >= 0.7
    assert (template < science).mean() > 0.6  # templates are chosen in good seeing


def test_every_kind_occurs_and_labels_follow_kinds(sample):
    kind = sample.objects["kind_code"]
    assert set(np.unique(kind)) == set(range(len(KINDS)))
    assert (np.asarray(KINDS)[kind] == sample.objects["kind"]).all()
    assert ((sample.labels == 1) == np.isin(kind, REAL_KINDS)).all()
    assert abs(sample.labels.mean() - 0.5) < 0.08
    supernovae = kind == KINDS.index("supernova")
    assert sample.objects["on_galaxy"][supernovae].all()
    assert 0.3 < sample.objects["on_galaxy"][sample.labels == 1].mean() < 0.55


@pytest.mark.parametrize("fraction", [0.0, 0.2, 1.0])
def test_real_fraction_is_kept(fraction):
    labels = make_real_bogus(n=150, seed=3, real_fraction=fraction, workers=1).labels
    assert abs(labels.mean() - fraction) < 0.08


def test_snr_channel_is_difference_over_its_noise(sample):
    diff, snr = sample.inputs[..., 2], sample.inputs[..., 3]
    noise = diff / np.where(snr == 0, np.nan, snr)
    # the implied noise is positive and near the sky's (lower where the kernel smoothed a sharp science image)
    assert np.nanmin(noise) > 0.3 * DECAM_HITS.science_sky_noise_nmgy
    assert 0.7 < np.nanmedian(noise) / DECAM_HITS.science_sky_noise_nmgy < 1.5
    # on pure-noise candidates the snr channel is unit-variance noise, bar the peak itself
    peaks = sample.objects["kind_code"] == KINDS.index("noise")
    border = np.ones((21, 21), bool)
    border[6:15, 6:15] = False
    assert 0.85 < snr[peaks][:, border].std() < 1.2


def test_reals_are_positive_point_sources_at_the_centre(sample):
    real = sample.labels == 1
    centre = sample.inputs[real, 9:12, 9:12, :]
    assert (centre[..., 2].max(axis=(1, 2)) > 0).mean() > 0.97
    assert (centre[..., 3].max(axis=(1, 2)) > 5).mean() > 0.5  # the peak pixel alone
    assert (sample.objects["snr_signed"][real] > 4).mean() > 0.95  # the matched filter
    np.testing.assert_array_equal(sample.objects["snr"], np.abs(sample.objects["snr_signed"]))
    mag = sample.objects["mag"]
    assert np.isfinite(mag[real]).all() and np.isnan(mag[~real]).all()
    assert 19 < mag[real].min() and mag[real].max() < 25.5


def test_bogus_brightness_overlaps_the_reals(sample):
    """Hard negatives: brightness alone must not separate bogus from real."""
    snr, kind = sample.objects["snr"], sample.objects["kind_code"]
    lo, hi = np.percentile(snr[sample.labels == 1], [10, 90])
    assert lo < np.median(snr[sample.labels == 0]) < hi
    for name in ("bad-subtraction", "cosmic-ray", "bad-pixel"):
        assert lo < np.median(snr[kind == KINDS.index(name)]) < hi, name
    noise = snr[kind == KINDS.index("noise")]
    assert (noise > 5).mean() > 0.9 and np.median(noise) < 7


def test_artefacts_look_like_artefacts(sample):
    kind, snr = sample.objects["kind_code"], sample.objects["snr"]
    peak_pixel = np.abs(sample.inputs[:, 8:13, 8:13, 3]).max(axis=(1, 2))
    sharpness = peak_pixel / snr
    cosmic, real = kind == KINDS.index("cosmic-ray"), sample.labels == 1
    # cosmic rays are not blurred by the PSF: far more of their signal sits in one pixel
    assert np.median(sharpness[cosmic]) > 1.5 * np.median(sharpness[real])
    saturated = kind == KINDS.index("saturated-star")
    tops = sample.inputs[saturated, :, :, 1].max(axis=(1, 2))
    np.testing.assert_allclose(tops, DECAM_HITS.science_saturation_nmgy_per_pixel, rtol=1e-5)


def test_progress_counts_every_stamp():
    done = []
    _make(n=250, seed=1, workers=1, progress=done.append)
    assert done == [100, 100, 50]


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"n": 0}, "n=0"),
        ({"real_fraction": 1.5}, "real_fraction=1.5"),
        ({"real_fraction": -0.1}, "real_fraction=-0.1"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, received):
    with pytest.raises(DeepskyError, match=received):
        make_real_bogus(**kwargs)
