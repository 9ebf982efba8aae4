"""The GalSim galaxy-morphology simulator: reproducible, balanced, and each class looks like itself."""

import numpy as np
import pytest

pytest.importorskip("galsim")

from deepsky.errors import DeepskyError  # noqa: E402
from deepsky.simulate import morphology  # noqa: E402
from deepsky.simulate.morphology import ALL_MORPHOLOGIES, MORPHOLOGY_CLASSES, make_morphology  # noqa: E402
from deepsky.simulate.surveys import SDSS, mag_to_nmgy  # noqa: E402

ELLIPTICAL, SPIRAL, EDGE_ON, MERGER = range(4)


@pytest.fixture(scope="module")
def sdss():
    """96 SDSS g,r,i cutouts, 24 per class, drawn by two worker processes (two chunks)."""
    return make_morphology(96, seed=3, workers=2)


@pytest.fixture(scope="module")
def spirals():
    return make_morphology(40, seed=8, classes=("spiral",), workers=2)


# -- measurements on the images -----------------------------------------------------------
def bilinear(image, x, y):
    """``image`` (rows = y, columns = x) at fractional positions, bilinearly interpolated."""
    h, w = image.shape
    x = np.clip(x, 0, w - 1.001)
    y = np.clip(y, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    return (image[y0, x0] * (1 - fx) * (1 - fy) + image[y0, x0 + 1] * fx * (1 - fy)
            + image[y0 + 1, x0] * (1 - fx) * fy + image[y0 + 1, x0 + 1] * fx * fy)


def centre(data, i):
    """(x, y) array position of galaxy ``i``'s centre."""
    return (data.images.shape[1] - 1) / 2 + data.objects["offset_pixels"][i]


def hlr_pixels(data, i):
    return data.objects["half_light_radius_arcsec"][i] / data.meta["pixel_scale_arcsec"]


def r90_over_r50(data, i, band):
    """Concentration: radii holding 90% and 50% of the light inside the cutout's inscribed circle."""
    image = data.images[i, :, :, band]
    cx, cy = centre(data, i)
    y, x = np.indices(image.shape)
    r = np.hypot(x - cx, y - cy).ravel()
    order = np.argsort(r)
    r, growth = r[order], np.cumsum(image.ravel()[order])
    total = growth[r < image.shape[0] / 2 - 1][-1]
    return r[np.searchsorted(growth, 0.9 * total)] / r[np.searchsorted(growth, 0.5 * total)]


def hsm_axis_ratio(data, i, band):
    """Axis ratio b/a from GalSim's adaptive second moments of the PSF-convolved image."""
    import galsim

    moments = galsim.hsm.FindAdaptiveMom(galsim.ImageF(np.ascontiguousarray(data.images[i, :, :, band])))
    e = moments.observed_shape.e
    return np.sqrt((1 - e) / (1 + e))


def asymmetry(data, i, band):
    """Rotational asymmetry sum|I - I_180| / sum|I| about the galaxy centre, within 3 half-light radii."""
    image = data.images[i, :, :, band]
    cx, cy = centre(data, i)
    y, x = np.indices(image.shape).astype(float)
    rotated = bilinear(image, 2 * cx - x, 2 * cy - y)
    inside = np.hypot(x - cx, y - cy) < min(3 * hlr_pixels(data, i), image.shape[0] / 2 - 1)
    return np.abs(image - rotated)[inside].sum() / np.abs(image)[inside].sum()


def arm_mode(data, i, band, m):
    """Deprojected m-fold Fourier mode between 0.7 and 2.2 half-light radii.

    Returns the slope of its phase against ln(radius) and its median amplitude relative to the
    ring's mean. A ridge at polar angle theta(r) gives phase -m theta(r), so arms winding
    anticlockwise outwards (winding +1) give a negative slope.
    """
    image = data.images[i, :, :, band]
    cx, cy = centre(data, i)
    q = data.objects["axis_ratio"][i]
    pa = np.radians(data.objects["position_angle_deg"][i])
    radii = hlr_pixels(data, i) * np.geomspace(0.7, 2.2, 16)
    phi = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    xd, yd = radii[:, None] * np.cos(phi), q * radii[:, None] * np.sin(phi)
    ring = bilinear(image, cx + xd * np.cos(pa) - yd * np.sin(pa), cy + xd * np.sin(pa) + yd * np.cos(pa))
    mode = (ring * np.exp(-1j * m * phi)).sum(axis=1)
    slope = np.polyfit(np.log(radii), np.unwrap(np.angle(mode)), 1)[0]
    return slope, float(np.median(np.abs(mode) / np.abs(ring.sum(axis=1))))


def of_class(data, label):
    return np.flatnonzero(data.labels == label)


# -- reproducibility, shapes, provenance -----------------------------------------------------
def test_same_seed_gives_same_bytes_whatever_the_workers(monkeypatch):
    monkeypatch.setattr(morphology, "CHUNK", 16)  # three chunks, so two workers really share them
    one = make_morphology(40, seed=21, workers=1)
    two = make_morphology(40, seed=21, workers=2)
    assert one.images.tobytes() == two.images.tobytes()
    assert np.array_equal(one.labels, two.labels)
    for name, column in one.objects.items():
        assert np.array_equal(column, two.objects[name]), name
    other = make_morphology(40, seed=22, workers=1)
    assert other.images.tobytes() != one.images.tobytes()


def test_sdss_shapes_bands_and_provenance(sdss):
    import deepsky

    assert sdss.images.shape == (96, 64, 64, 3) and sdss.images.dtype == np.float32
    assert sdss.labels.shape == (96,) and sdss.labels.dtype == np.int64
    meta = sdss.meta
    assert meta["task"] == "galaxy-morphology" and meta["classes"] == list(MORPHOLOGY_CLASSES)
    assert meta["bands"] == ["g", "r", "i"] and meta["pixel_scale_arcsec"] == 0.396
    assert meta["units"] == "nanomaggies" and meta["survey"]["name"] == "sdss" and meta["seed"] == 3
    assert meta["simulator"] == morphology.SIMULATOR_VERSION and meta["deepsky_version"] == deepsky.__version__
    o = sdss.objects
    for name in ("morphology", "mag", "mag_g", "mag_r", "mag_i", "half_light_radius_arcsec", "axis_ratio",
                 "position_angle_deg", "psf_fwhm_arcsec", "arm_count", "pitch_angle_deg", "winding"):
        assert len(o[name]) == 96, name
    assert o["psf_fwhm_arcsec"].shape == (96, 3)
    r_fwhm = o["psf_fwhm_arcsec"][:, 1]
    assert 0.99 <= r_fwhm.min() and r_fwhm.max() <= 1.81 and r_fwhm.std() > 0.1
    assert 14.0 <= o["mag"].min() and o["mag"].max() <= 17.7
    assert 1.5 <= o["half_light_radius_arcsec"].min() and o["half_light_radius_arcsec"].max() <= 8.0
    np.testing.assert_allclose(o["mag_r"], o["mag"], atol=1e-4)  # r is the reference band
    assert np.array_equal(o["morphology"], sdss.labels)  # default classes: the first four of ALL_MORPHOLOGIES
    spiral = sdss.labels == SPIRAL
    assert set(o["winding"][spiral]) == {-1, 1} and not o["winding"][~spiral].any()
    assert set(o["arm_count"][spiral]) <= {2, 3, 4} and not o["arm_count"][~spiral].any()
    assert 10 <= o["pitch_angle_deg"][spiral].min() and o["pitch_angle_deg"][spiral].max() <= 30


def test_euclid_is_one_vis_band_at_a_tenth_of_an_arcsec():
    data = make_morphology(6, seed=2, survey="euclid", workers=1)
    assert data.images.shape == (6, 128, 128, 1)
    assert data.meta["bands"] == ["VIS"] and data.meta["pixel_scale_arcsec"] == 0.1
    assert data.meta["survey"]["name"] == "euclid" and data.meta["units"] == "nanomaggies"
    o = data.objects
    assert 19.0 <= o["mag"].min() and o["mag"].max() <= 23.0
    assert 0.3 <= o["half_light_radius_arcsec"].min() and o["half_light_radius_arcsec"].max() <= 2.0
    assert 0.159 <= o["psf_fwhm_arcsec"].min() and o["psf_fwhm_arcsec"].max() <= 0.181


def test_band_subset_and_cutout_size():
    data = make_morphology(4, seed=1, bands=("r",), cutout_pixels=48, workers=1)
    assert data.images.shape == (4, 48, 48, 1) and data.meta["bands"] == ["r"]
    assert set(data.objects) >= {"mag_r"} and "mag_g" not in data.objects


def test_classes_are_balanced_and_labels_index_the_classes_given():
    data = make_morphology(10, seed=4, classes=ALL_MORPHOLOGIES, workers=1)
    assert np.bincount(data.labels, minlength=5).tolist() == [2] * 5
    swapped = make_morphology(6, seed=4, classes=("merger", "irregular", "elliptical"), workers=1)
    assert np.bincount(swapped.labels).tolist() == [2, 2, 2]
    assert swapped.meta["classes"] == ["merger", "irregular", "elliptical"]
    # ``morphology`` is the index into ALL_MORPHOLOGIES whatever the classes asked for
    assert np.array_equal(swapped.objects["morphology"], np.array([3, 4, 0])[swapped.labels])


def test_every_class_appears_equally_often(sdss):
    assert np.bincount(sdss.labels).tolist() == [24, 24, 24, 24]


# -- physics ---------------------------------------------------------------------------------
def test_sky_noise_matches_the_survey(sdss):
    border = np.concatenate([sdss.images[:, :3].reshape(-1, 3), sdss.images[:, -3:].reshape(-1, 3)])
    robust_sigma = 1.4826 * np.median(np.abs(border - np.median(border, axis=0)), axis=0)
    sky = np.array([SDSS.sky_noise_nmgy[SDSS.bands.index(b)] for b in "gri"])
    np.testing.assert_allclose(robust_sigma, sky, rtol=0.2)


def test_total_flux_matches_the_magnitude_within_the_noise():
    # a cutout wide enough (38 arcsec) to hold the galaxies smaller than 4 arcsec
    data = make_morphology(32, seed=6, bands=("r",), cutout_pixels=96, workers=2)
    o = data.objects
    flux = data.images[..., 0].sum(axis=(1, 2))
    expected = mag_to_nmgy(o["mag"])
    sky = SDSS.sky_noise_nmgy[SDSS.bands.index("r")] * 1.1
    sigma = np.sqrt(96 * 96 * sky**2 + expected / SDSS.electrons_per_nmgy[SDSS.bands.index("r")])
    small = o["half_light_radius_arcsec"] < 4.0
    assert small.sum() >= 16
    assert np.all(np.abs(flux - expected)[small] < 4 * sigma[small] + 0.03 * expected[small])
    assert 0.97 < np.median(flux[small] / expected[small]) < 1.02


def test_ellipticals_are_redder_than_spirals(sdss):
    flux = sdss.images.sum(axis=(1, 2))  # (n, g r i)
    g_r = -2.5 * np.log10(flux[:, 0] / flux[:, 1])
    assert np.median(g_r[of_class(sdss, ELLIPTICAL)]) > np.median(g_r[of_class(sdss, SPIRAL)]) + 0.15


def test_ellipticals_are_more_concentrated_than_spirals(sdss):
    # SDSS's classic split: r90/r50 about 3 for de Vaucouleurs light, 2.3 for exponential disks
    c_ell = np.median([r90_over_r50(sdss, i, 1) for i in of_class(sdss, ELLIPTICAL)])
    c_spiral = np.median([r90_over_r50(sdss, i, 1) for i in of_class(sdss, SPIRAL)])
    assert c_ell > 2.6 > c_spiral and c_ell - c_spiral > 0.4


def test_edge_on_disks_are_elongated(sdss):
    q_edge = np.array([hsm_axis_ratio(sdss, i, 1) for i in of_class(sdss, EDGE_ON)])
    q_spiral = np.array([hsm_axis_ratio(sdss, i, 1) for i in of_class(sdss, SPIRAL)])
    q_ell = np.array([hsm_axis_ratio(sdss, i, 1) for i in of_class(sdss, ELLIPTICAL)])
    assert np.median(q_edge) < 0.5 and np.percentile(q_edge, 90) < 0.65
    assert np.median(q_spiral) > np.median(q_edge) + 0.2 and np.median(q_ell) > 0.7


def test_spiral_arms_are_non_axisymmetric_and_wind_as_labelled(sdss, spirals):
    o = spirals.objects
    resolved = np.flatnonzero((o["half_light_radius_arcsec"] >= 2.0) & (o["pitch_angle_deg"] >= 15))
    assert len(resolved) >= 8
    modes = [arm_mode(spirals, i, 1, int(o["arm_count"][i])) for i in resolved]
    agree = np.mean(np.sign([-slope for slope, _ in modes]) == o["winding"][resolved])
    assert agree >= 0.8, f"arms wind as labelled in only {agree:.0%} of resolved spirals"
    # an m=2 mode after deprojection: arms for spirals, only noise and isophote twists for ellipticals
    spiral_amp = np.median([amp for _, amp in modes])
    ell_amp = np.median([arm_mode(sdss, i, 1, 2)[1] for i in of_class(sdss, ELLIPTICAL)])
    assert spiral_amp > 2 * ell_amp


def test_mergers_are_asymmetric(sdss):
    a_merger = np.median([asymmetry(sdss, i, 1) for i in of_class(sdss, MERGER)])
    a_ell = np.median([asymmetry(sdss, i, 1) for i in of_class(sdss, ELLIPTICAL)])
    a_edge = np.median([asymmetry(sdss, i, 1) for i in of_class(sdss, EDGE_ON)])
    assert a_merger > 1.8 * a_ell and a_merger > 1.5 * a_edge


def test_merger_pairs_are_within_two_half_light_radii(sdss):
    o = sdss.objects
    m = of_class(sdss, MERGER)
    ratio = o["separation_arcsec"][m] / o["half_light_radius_arcsec"][m]
    assert np.all((ratio >= 0.8 - 1e-6) & (ratio <= 2.0 + 1e-6))
    assert np.all((o["companion_flux_ratio"][m] >= 0.25) & (o["companion_flux_ratio"][m] <= 1.0))


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n=0"),
        ({"n": -3}, "n=-3"),
        ({"n": 2.5}, "n=2.5"),
        ({"n": 4, "classes": ("spiral", "barred")}, "barred"),
        ({"n": 4, "classes": ()}, "at least one"),
        ({"n": 4, "classes": ("spiral", "spiral")}, "distinct"),
        ({"n": 4, "bands": ("g", "y")}, "'y'"),
        ({"n": 4, "bands": ("VIS",)}, "VIS"),
        ({"n": 4, "survey": "euclid", "bands": ("r",)}, "unknown band"),
        ({"n": 4, "survey": "hubble-deep-field"}, "unknown survey"),
        ({"n": 4, "cutout_pixels": 8}, "cutout_pixels=8"),
        ({"n": 4, "workers": 0}, "workers=0"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(DeepskyError, match=match):
        make_morphology(**kwargs)
