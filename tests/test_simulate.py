"""The GalSim star-galaxy simulator: reproducible, and realistic where it matters."""

import numpy as np
import pytest

from deepsky.errors import DeepskyError
from deepsky.simulate.stargalaxy import make_star_galaxy
from deepsky.simulate.surveys import SDSS
from deepsky.tasks.base import border_noise


@pytest.fixture(scope="module")
def sample():
    return make_star_galaxy(n=400, seed=11, workers=2)


def test_same_seed_gives_same_bytes_whatever_the_workers(sample):
    again = make_star_galaxy(n=400, seed=11, workers=1)
    assert again.images.tobytes() == sample.images.tobytes()
    other = make_star_galaxy(n=400, seed=12, workers=1)
    assert other.images.tobytes() != sample.images.tobytes()


def test_shape_units_and_provenance(sample):
    assert sample.images.shape == (400, 48, 48, 5) and sample.images.dtype == np.float32
    assert sample.meta["units"] == "nanomaggies" and sample.meta["bands"] == list("ugriz")
    assert sample.meta["pixel_scale_arcsec"] == 0.396 and sample.meta["seed"] == 11
    assert set(np.unique(sample.labels)) == {0, 1}
    r = sample.objects["r_mag"]
    assert 14 <= r.min() and r.max() <= 22
    assert (r > 20).mean() > 0.35  # the hard faint regime is well populated
    fwhm = sample.objects["psf_fwhm_arcsec"][:, 2]
    assert 0.9 < fwhm.min() and fwhm.max() < 1.9 and fwhm.std() > 0.15


def test_sky_noise_matches_the_survey(sample):
    noise = border_noise(sample.images)
    np.testing.assert_allclose(noise, SDSS.sky_noise_nmgy, rtol=0.2)


def test_stars_are_more_concentrated_than_galaxies(sample):
    bright = sample.objects["r_mag"] < 19
    centre = sample.images[:, 22:26, 22:26, 2].sum(axis=(1, 2))
    total = sample.images[:, 12:36, 12:36, 2].sum(axis=(1, 2))
    concentration = centre / total
    stars, galaxies = bright & (sample.labels == 0), bright & (sample.labels == 1)
    assert np.median(concentration[stars]) > 1.5 * np.median(concentration[galaxies])


def test_star_colours_follow_the_stellar_locus(sample):
    stars = (sample.labels == 0) & (sample.objects["r_mag"] < 19)
    g_r = sample.objects["mag_g"][stars] - sample.objects["mag_r"][stars]
    u_g = sample.objects["mag_u"][stars] - sample.objects["mag_g"][stars]
    # along the locus u-g grows with g-r: blue turn-off stars vs red M dwarfs
    assert np.corrcoef(g_r, u_g)[0, 1] > 0.6


def test_bad_arguments_are_clear_errors():
    with pytest.raises(DeepskyError, match="n=0"):
        make_star_galaxy(n=0)
    with pytest.raises(DeepskyError, match="unknown survey"):
        make_star_galaxy(n=2, survey="hubble-deep-field")


def test_dataset_round_trip(tmp_path, sample):
    from deepsky.data.store import Dataset

    path = sample.subset(np.arange(10)).save(tmp_path / "x.h5")
    back = Dataset.load(path)
    assert back.images.tobytes() == sample.images[:10].tobytes()
    assert back.meta["seed"] == 11 and set(back.objects) == set(sample.objects)
