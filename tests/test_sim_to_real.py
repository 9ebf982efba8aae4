"""Simulated galaxies rendered as Galaxy Zoo pictures, and the sim-to-real experiment end to end."""

import csv
import json
import time
from dataclasses import replace

import numpy as np
import pytest
from conftest import run_in_process as run_cli, shared

from deepsky.errors import DeepskyError
from deepsky.simulate import colour_images as ci

GZ1 = "galaxyzoo1_sdss"


@pytest.fixture(scope="module")
def simulated():
    from deepsky.simulate.morphology import make_morphology

    return make_morphology(48, seed=4, cutout_pixels=128, workers=1)


@pytest.fixture(scope="module")
def rendered(simulated):
    return ci.render_dataset(simulated, seed=1)


def _disks(scales, side=128, noise=0.002, seed=0):
    """Round exponential disks (nanomaggies) of the given scale lengths in pixels and one central surface
    brightness, red as an elliptical."""
    y, x = np.mgrid[:side, :side] + 0.5 - side / 2
    rng = np.random.default_rng(seed)
    out = []
    for scale in scales:
        disk = 1.5 * np.exp(-np.hypot(x, y) / scale)
        out.append(disk[..., None] * np.array([0.5, 1.0, 1.4]) + rng.normal(0, noise, (side, side, 3)))
    return np.array(out, dtype=np.float32)


def test_rendered_images_look_like_the_readers(rendered, simulated):
    images = rendered.images
    assert images.shape == (48, 96, 96, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std() > 0.02  # pictures, not blank
    # the reader's metadata, so that training and prediction treat both alike
    meta = rendered.meta
    assert meta["bands"] == ["g", "r", "i"] and meta["units"].startswith("jpeg")
    assert meta["channels"] == {"g": "blue", "r": "green", "i": "red"}
    assert meta["pixel_scale_arcsec"] is None and meta["crop_fraction"] == 0.5 and meta["size"] == 96
    assert meta["classes"] == simulated.meta["classes"] and meta["renderer"] == ci.RENDERER_VERSION
    np.testing.assert_array_equal(rendered.labels, simulated.labels)
    assert rendered.objects["petrosian_radius_pixels"].shape == (48,)
    # galaxies sit in the middle, well above the sky
    mean = images.mean(axis=(0, 3))
    assert mean[40:56, 40:56].mean() > 5 * mean[:6].mean()


def test_channels_are_g_r_i_blue_to_red(simulated, rendered):
    """Simulated ellipticals are red: their centres are brightest in i (red) and faintest in g (blue)."""
    ellipticals = rendered.images[simulated.labels == simulated.meta["classes"].index("elliptical")]
    g, r, i = ellipticals[:, 44:52, 44:52].mean(axis=(0, 1, 2))
    assert g < r < i


def test_apparent_size_follows_the_petrosian_radius_not_the_angular_size():
    """Galaxy Zoo scales each cutout to the galaxy's Petrosian radius: a disk 2.5x larger on the sky looks the same."""
    disks = _disks([2.0, 5.0])
    radius = ci.petrosian_radius(disks)
    np.testing.assert_allclose(radius / [2.0, 5.0], 3.56, rtol=0.04)  # an exponential's R_P is 3.56 scale lengths
    exact = replace(ci.GALAXY_ZOO_SDSS, petrosian_scatter_dex=0.0, stars_per_arcmin2=0.0, neighbours_per_arcmin2=0.0)
    size = ci.central_source_size(ci.render_colour_images(disks, rendering=exact))
    assert abs(size[1] / size[0] - 1) < 0.05, size
    # and it grows in proportion to the Petrosian radius asked for
    bigger = replace(exact, petrosian_radius_gz_pixels=1.5 * exact.petrosian_radius_gz_pixels)
    grown = ci.central_source_size(ci.render_colour_images(disks, rendering=bigger))
    np.testing.assert_allclose(grown / size, 1.5, rtol=0.12)


def test_galaxies_larger_than_their_stamp_get_noise_margins_not_edges():
    """A galaxy whose crop reaches beyond its stamp is padded with sky noise, not zeros."""
    big = _disks([9.0], side=64, noise=0.02)
    empty_field = replace(ci.GALAXY_ZOO_SDSS, stars_per_arcmin2=0.0, neighbours_per_arcmin2=0.0)
    image = ci.render_colour_images(big, rendering=empty_field)[0]
    corner = image[:10, :10].reshape(-1, 3)
    assert corner.std(axis=0).min() > 0.002  # noise, like the rest of the sky


def test_field_stars_and_neighbours_scale_with_the_sky_covered(simulated):
    """Other sources come with the sky a picture covers: none without a field, more for larger galaxies."""
    images, offsets = simulated.images, simulated.objects["offset_pixels"]
    empty_field = replace(ci.GALAXY_ZOO_SDSS, stars_per_arcmin2=0.0, neighbours_per_arcmin2=0.0)
    bare = ci.field_sources(ci.render_colour_images(images, offsets_pixels=offsets, rendering=empty_field))
    crowded = ci.field_sources(ci.render_colour_images(images, offsets_pixels=offsets))
    assert crowded.mean() > bare.mean() + 1
    radius = ci.petrosian_radius(images, offsets)
    large = radius > np.median(radius)
    assert crowded[large].mean() > crowded[~large].mean()


def test_rendering_is_seeded(simulated):
    images, offsets = simulated.images[:8], simulated.objects["offset_pixels"][:8]
    scattered = replace(ci.GALAXY_ZOO_SDSS, petrosian_scatter_dex=0.1)
    a = ci.render_colour_images(images, offsets_pixels=offsets, seed=3, rendering=scattered)
    b = ci.render_colour_images(images, offsets_pixels=offsets, seed=3, rendering=scattered)
    c = ci.render_colour_images(images, offsets_pixels=offsets, seed=4, rendering=scattered)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # 8-bit pictures: without JPEG every value is a multiple of 1/255 before the area average
    plain = replace(ci.GALAXY_ZOO_SDSS, jpeg_quality=None, crop_fraction=212 / 423, image_pixels=212)
    eight_bit = ci.render_colour_images(images[:2], offsets_pixels=offsets[:2], rendering=plain) * 255
    np.testing.assert_allclose(eight_bit, np.round(eight_bit), atol=1e-3)


def test_bad_inputs_are_refused(simulated):
    with pytest.raises(DeepskyError, match=r"\(N, S, S, 3\)"):
        ci.render_colour_images(np.zeros((2, 64, 64, 5), np.float32))
    with pytest.raises(DeepskyError, match="NaN"):
        ci.render_colour_images(np.full((1, 64, 64, 3), np.nan, np.float32))
    with pytest.raises(DeepskyError, match="offsets_pixels"):
        ci.render_colour_images(np.zeros((2, 64, 64, 3), np.float32), offsets_pixels=np.zeros((3, 2)))
    wrong = replace(simulated, meta={**simulated.meta, "bands": ["r"]})
    with pytest.raises(DeepskyError, match="g, r, i"):
        ci.render_dataset(wrong)


def test_rendered_and_real_pictures_share_their_channel_statistics(rendered):
    """The renderer's calibration holds: colour, sky and centre brightness per channel as in the real JPEGs.

    The same check on the channels reversed (i, r, g) fails, so it protects the band order.
    """
    from deepsky.data.galaxyzoo import load_galaxy_zoo

    real = ci.image_statistics(load_galaxy_zoo(shared(GZ1), size=96, limit=300).images)

    def close(stats):
        return (np.allclose(stats["colour"], real["colour"], atol=0.03)
                and np.allclose(stats["centre"], real["centre"], rtol=0.25)
                and np.allclose(stats["sky"], real["sky"], atol=0.006))

    ours = ci.image_statistics(rendered.images)
    assert close(ours), (ours, real)
    assert not close(ci.image_statistics(rendered.images[..., ::-1])), "a reversed channel order passes too"
    assert real["half_light_radius"][0] * 0.8 < ours["half_light_radius"][1] < real["half_light_radius"][2] * 1.2
    assert 0.5 < ours["field_sources"][0] / real["field_sources"][0] < 2


# -- the experiment ---------------------------------------------------------------------


def test_labels_option_is_checked():
    from deepsky.experiments.sim_to_real import parse_labels

    assert parse_labels("500, all,100") == (100, 500, None)
    assert parse_labels(None) == (100, 500, None)
    for bad, message in (("a,b", "comma-separated"), ("5", "at least 10"), (",", "names no number")):
        with pytest.raises(DeepskyError, match=message):
            parse_labels(bad)


def test_a_folder_without_labels_is_one_error_line(tmp_path):
    folder = tmp_path / "not_gz"
    (folder / "images").mkdir(parents=True)
    result = run_cli("experiment", "sim-to-real", "-o", tmp_path / "out", "--data", folder, check=False)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("deepsky: error: ") and "no labels.csv" in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_without_data_or_the_shared_folder_the_error_asks_for_data(monkeypatch):
    from deepsky import paths
    from deepsky.experiments.sim_to_real import galaxy_zoo_folder

    monkeypatch.setattr(paths, "shared_data_dir", lambda name: None)
    with pytest.raises(DeepskyError, match="pass --data FOLDER"):
        galaxy_zoo_folder(None)


@pytest.fixture(scope="module")
def small_galaxy_zoo(tmp_path_factory):
    """A Galaxy Zoo folder of 96 real galaxies (24 of each class), images linked from the shared one."""
    source = shared(GZ1)
    with open(source / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked, counts = [], {}
    for row in rows:
        code = {"0": 0, "1": 1, "2": 1, "3": 2, "5": 3}.get(row["gz1_class"])
        if code is not None and counts.get(code, 0) < 24:
            counts[code] = counts.get(code, 0) + 1
            picked.append(row)
    folder = tmp_path_factory.mktemp("gz") / "small_gz"
    (folder / "images").mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(picked)
    for row in picked:
        (folder / "images" / row["filename"]).symlink_to(source / "images" / row["filename"])
    return folder


@pytest.mark.slow  # 30 s: pre-training and three fine-tunings; test_transfer keeps an experiment in the default run
def test_experiment_end_to_end_through_the_cli(small_galaxy_zoo, tmp_path):
    out = tmp_path / "s2r"
    start = time.perf_counter()
    run_cli("experiment", "sim-to-real", "-o", out, "--data", small_galaxy_zoo, "--n", 64, "--labels", "20,all",
            "--epochs", 1)
    seconds = time.perf_counter() - start
    record = json.loads((out / "experiment.json").read_text())
    assert record["labels"] == [20, "all"] and record["simulated"]["n"] == 64
    n_all = record["data"]["n_train_part"]
    assert [(r["arm"], r["labels"]) for r in record["runs"]] == [
        ("scratch", 20), ("fine-tuned", 20), ("scratch", n_all), ("fine-tuned", n_all)]
    for run in record["runs"] + [record["pretrained_as_is"]]:
        for key in ("accuracy", "macro_f1", "elliptical_vs_spiral_accuracy"):
            assert 0 <= run[key] <= 1
        assert run["n_test"] == record["test_data"]["n"]  # every run scored on the same held-out images
    # the same real images for both arms; the fine-tuned run started from the pre-trained one
    for size in (20, "all"):
        scratch = json.loads((out / f"scratch-{size}" / "config.json").read_text())
        tuned = json.loads((out / f"finetuned-{size}" / "config.json").read_text())
        assert scratch["data"] == tuned["data"] and scratch["n_train"] == tuned["n_train"]
        assert tuned["transfer"]["from"] == str((out / "pretrained").resolve()) and scratch["transfer"] is None
    assert record["runs"][0]["epochs"] > record["runs"][2]["epochs"] == 1  # fewer labels, more epochs
    assert {g["labels"] for g in record["gains"]} == {20, n_all}
    assert (out / "simulated.h5").exists() and (out / "figures" / "sim_to_real.png").exists()
    assert (out / "figures" / "examples.png").exists()
    assert "elliptical vs spiral" in (out / "report.html").read_text()
    assert seconds < 90, f"the tiny experiment took {seconds:.0f} s"
