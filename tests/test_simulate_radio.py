"""The FIRST radio-galaxy simulator: reproducible, balanced, in Jy/beam, and each class looks like itself."""

import dataclasses

import numpy as np
import pytest

from deepsky.errors import DeepskyError
from deepsky.simulate import radio
from deepsky.simulate.radio import FIRST, RADIO_CLASSES, make_radio_galaxies

SIZE = 128
FRI, FRII, BENT = range(3)


@pytest.fixture(scope="module")
def first():
    """150 cutouts of 128 pixels, 50 per class, drawn by two worker processes (two chunks)."""
    return make_radio_galaxies(150, seed=4, size=SIZE, workers=2)


def host(data, i):
    """(x, y) array position (column, row) of source ``i``'s core."""
    size = data.inputs.shape[1]
    return (size - 1) / 2 + data.objects["host_offset_pixels"][i]


def above_3_sigma(data, i):
    """Image ``i`` with everything below 3 times its drawn rms set to 0 (the paper's threshold)."""
    image = data.inputs[i, :, :, 0]
    rms = data.objects["rms_mjy_per_beam"][i] * 1e-3
    return np.where(image > 3 * rms, image, 0.0)


def radius(data, i):
    size = data.inputs.shape[1]
    yy, xx = np.mgrid[0:size, 0:size]
    hx, hy = host(data, i)
    return np.hypot(xx - hx, yy - hy), xx - hx, yy - hy


# -- the dataset contract ----------------------------------------------------------------
def test_shapes_dtypes_units_and_meta(first):
    assert first.inputs.shape == (150, SIZE, SIZE, 1) and first.inputs.dtype == np.float32
    assert first.labels.dtype == np.int64
    assert np.all(np.isfinite(first.inputs))
    meta = first.meta
    assert meta["classes"] == list(RADIO_CLASSES)
    assert meta["bands"] == ["1.4GHz"] and meta["units"] == "Jy/beam" and meta["survey"] == "FIRST"
    assert meta["pixel_scale_arcsec"] == 1.8 and meta["seed"] == 4 and meta["simulator"] == "radio-1"
    assert "beam" in meta and "noise" in meta
    for column in ("size_arcsec", "position_angle_deg", "peak_snr", "bend_angle_deg", "flux_mjy"):
        assert first.objects[column].shape == (150,), column
    # Jy/beam, not normalised: FIRST noise is ~0.15 mJy/beam, peaks are mJy to a few hundred mJy
    assert 1e-4 < np.median(np.abs(first.inputs)) < 1e-3
    assert first.inputs.max() < 1.0


def test_classes_are_balanced_and_shuffled(first):
    assert np.bincount(first.labels).tolist() == [50, 50, 50]
    assert len(set(first.labels[:6].tolist())) > 1  # not in blocks


def test_catalogue_ranges(first):
    obj = first.objects
    assert np.all((obj["size_arcsec"] >= 20) & (obj["size_arcsec"] <= 0.75 * SIZE * 1.8 + 1e-3))
    assert np.all((obj["position_angle_deg"] >= 0) & (obj["position_angle_deg"] < 360))
    assert np.all((obj["peak_snr"] >= 10) & (obj["peak_snr"] <= 1000))
    bent = first.labels == BENT
    assert np.all(obj["bend_angle_deg"][~bent] == 0)
    assert np.all((obj["bend_angle_deg"][bent] >= 30) & (obj["bend_angle_deg"][bent] <= 170))
    assert np.all((obj["rms_mjy_per_beam"] >= 0.12) & (obj["rms_mjy_per_beam"] <= 0.2))
    # an extended source's total flux density is at least its peak brightness (Jy vs Jy/beam)
    peak_mjy = obj["peak_snr"] * obj["rms_mjy_per_beam"]
    assert np.all(obj["flux_mjy"] >= 0.95 * peak_mjy)


def test_class_subset_and_order_are_honoured():
    data = make_radio_galaxies(9, seed=1, classes=("bent", "FRI"), size=64, workers=1)
    assert data.meta["classes"] == ["bent", "FRI"]
    assert np.bincount(data.labels).tolist() == [5, 4]  # the remainder goes to the first class
    bend = data.objects["bend_angle_deg"]
    assert np.all(bend[data.labels == 0] >= 30) and np.all(bend[data.labels == 1] == 0)
    single = make_radio_galaxies(3, seed=1, classes="FRII", size=64, workers=1)
    assert single.meta["classes"] == ["FRII"] and np.all(single.labels == 0)


def test_same_seed_same_bytes_for_any_number_of_workers(first):
    again = make_radio_galaxies(150, seed=4, size=SIZE, workers=1)
    assert again.inputs.tobytes() == first.inputs.tobytes()
    assert np.array_equal(again.labels, first.labels)
    for column, values in first.objects.items():
        assert np.array_equal(again.objects[column], values), column


def test_other_seed_other_images():
    a = make_radio_galaxies(3, seed=1, size=64, workers=1)
    b = make_radio_galaxies(3, seed=2, size=64, workers=1)
    assert not np.array_equal(a.inputs, b.inputs)


def test_progress_counts_every_image():
    seen = []
    make_radio_galaxies(radio.CHUNK + 5, seed=0, size=32, workers=1, progress=seen.append)
    assert seen == [radio.CHUNK, 5]


# -- the survey -----------------------------------------------------------------------------
def test_first_preset_carries_units_and_is_frozen():
    assert FIRST.pixel_scale_arcsec == 1.8 and FIRST.beam_fwhm_arcsec == 5.4 and FIRST.rms_mjy_per_beam == 0.15
    # a 5.4 arcsec FWHM Gaussian beam covers 2 pi sigma^2 = 10.2 pixels of 1.8 arcsec
    assert FIRST.beam_area_pixels == pytest.approx(10.2, abs=0.05)
    with pytest.raises(dataclasses.FrozenInstanceError):
        FIRST.pixel_scale_arcsec = 1.0


def test_noise_in_source_free_corners_has_the_drawn_rms(first):
    ratios = []
    for i in range(len(first)):
        image = first.inputs[i, :, :, 0]
        corners = np.concatenate([c.ravel() for c in (image[:20, :20], image[:20, -20:],
                                                       image[-20:, :20], image[-20:, -20:])])
        # the MAD ignores the odd faint unrelated source in a corner
        robust_rms = 1.4826 * np.median(np.abs(corners - np.median(corners)))
        ratios.append(robust_rms / (first.objects["rms_mjy_per_beam"][i] * 1e-3))
    ratios = np.array(ratios)
    assert np.median(ratios) == pytest.approx(1.0, abs=0.05)
    assert np.all((ratios > 0.7) & (ratios < 1.35))


def test_noise_is_correlated_on_the_beam_scale(first):
    lag1, lag4 = [], []
    for i in range(len(first)):
        corner = first.inputs[i, :40, :40, 0].astype(np.float64)
        corner = corner - corner.mean()
        lag1.append((corner[:, 1:] * corner[:, :-1]).mean() / corner.var())
        lag4.append((corner[:, 4:] * corner[:, :-4]).mean() / corner.var())
    # real FIRST cutouts: 0.6-0.9 one pixel (1.8 arcsec) apart, ~0 four pixels apart
    assert 0.6 < np.median(lag1) < 0.9 and abs(np.median(lag4)) < 0.15


def test_peak_snr_is_the_peak_over_the_rms(first):
    obj = first.objects
    measured = first.inputs[..., 0].max(axis=(1, 2)) / (obj["rms_mjy_per_beam"] * 1e-3)
    # noise moves the peak by a few sigma; a rare bright unrelated source can outshine a faint galaxy
    assert np.median(np.abs(measured / obj["peak_snr"] - 1)) < 0.05


# -- physics seen in the images ---------------------------------------------------------------
def test_friis_are_edge_brightened_and_fris_edge_darkened(first):
    """Fanaroff & Riley's criterion: light beyond half the source's half-extent over light within it."""
    outer_over_inner = []
    for i in range(len(first)):
        image = above_3_sigma(first, i)
        r, _, _ = radius(first, i)
        half = first.objects["size_arcsec"][i] / FIRST.pixel_scale_arcsec / 4
        outer_over_inner.append(image[r > half].sum() / max(image[r <= half].sum(), 1e-12))
    ratio = np.array(outer_over_inner)
    fri, frii = ratio[first.labels == FRI], ratio[first.labels == FRII]
    assert np.median(frii) > 3 * np.median(fri)
    assert np.median(fri) < 1 < np.median(frii)


def test_fri_jets_are_brighter_in_their_inner_half():
    params = radio.draw_parameters(60, 5, ("FRI",), 150)
    rng = np.random.default_rng(0)
    half = radio.SAMPLES_PER_ARM // 2
    for i in range(60):
        position, _, flux = radio._components(params, i, rng)
        path, _ = radio.arm_paths(params, i)
        nearest = np.abs(position[:, None, None] - path[None]).reshape(len(position), -1).argmin(axis=1)
        along = nearest % radio.SAMPLES_PER_ARM
        jet = np.abs(position) > 0  # the core sits at the host
        assert flux[jet & (along < half)].sum() > flux[jet & (along >= half)].sum()


def test_bent_arms_differ_from_opposite_by_the_bend_angle():
    params = radio.draw_parameters(60, 6, RADIO_CLASSES, 150)
    straightness = {FRI: [], FRII: [], BENT: []}
    for i in range(60):
        path, length = radio.arm_paths(params, i)
        ends = path[:, -1]
        between = np.degrees(abs(np.angle(ends[0] / ends[1])))
        assert 180 - between == pytest.approx(params["bend_angle_deg"][i], abs=1e-6)
        # the largest distance between points of the paths is the drawn size
        points = path.ravel()
        las = np.abs(points[:, None] - points[None, :]).max()
        assert las == pytest.approx(params["size_pixels"][i], rel=1e-6)
        straightness[int(params["label"][i])].append(abs(ends[0] - ends[1]) / length.sum())
    assert np.mean(straightness[BENT]) < 0.8 < min(np.mean(straightness[FRI]), np.mean(straightness[FRII]))
    # wiggles and mild curvature: straight sources are not perfectly straight either
    assert max(straightness[FRI] + straightness[FRII]) < 1.0


def test_bent_sources_put_their_light_on_one_side_of_the_host(first):
    """The mean direction from the core to the emission: ~0 for two opposite arms, large for a C or V."""
    one_sided = []
    for i in range(len(first)):
        image = above_3_sigma(first, i)
        r, dx, dy = radius(first, i)
        weight = image * (r > 3)  # leave out the core
        total = max(weight.sum(), 1e-12)
        one_sided.append(np.hypot((weight * dx / np.maximum(r, 1e-9)).sum(),
                                  (weight * dy / np.maximum(r, 1e-9)).sum()) / total)
    one_sided = np.array(one_sided)
    assert np.median(one_sided[first.labels == BENT]) > 1.5 * np.median(one_sided[first.labels != BENT])


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "n=0"),
        ({"n": -3}, "n=-3"),
        ({"size": 16}, "size=16"),
        ({"classes": ("FRI", "FRIII")}, "'FRIII'"),
        ({"classes": ()}, "classes=()"),
        ({"classes": ("FRI", "FRI")}, "distinct"),
    ],
)
def test_bad_arguments_raise_deepsky_error(kwargs, message):
    with pytest.raises(DeepskyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_radio_galaxies(**{"n": 3, "size": 64, "workers": 1, **kwargs})


def test_unknown_class_names_the_known_ones():
    with pytest.raises(DeepskyError, match="FRI, FRII, bent"):
        make_radio_galaxies(3, classes=("compact",), size=64, workers=1)
