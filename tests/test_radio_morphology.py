"""Radio morphology: the paper's preprocessing of FITS and PNG, the MiraBest reader, the FR features and the CLI."""

import csv
import json

import numpy as np
import pytest

from conftest import SHARED_DATA
from conftest import run_in_process as run_cli
from deepsky.baselines import radio_features
from deepsky.data.radio import clip_and_scale, load_radio_folder, read_radio_image, read_radio_images
from deepsky.errors import DeepskyError
from deepsky.simulate.radio import make_radio_galaxies

MIRABEST = SHARED_DATA / "radio_mirabest"
needs_mirabest = pytest.mark.skipif(not MIRABEST.is_dir(), reason=f"MiraBest is not here ({MIRABEST})")


def _write_fits(path, image):
    from astropy.io import fits

    fits.PrimaryHDU(np.asarray(image, np.float32)).writeto(path)
    return path


def _write_png(path, image):
    from PIL import Image

    Image.fromarray(np.asarray(np.clip(image, 0, 1) * 255, np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def simulated():
    return make_radio_galaxies(60, seed=2, classes=("FRI", "FRII"), workers=1)


def test_preprocessing_zeroes_the_noise_and_scales_the_source():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:300, :300]
    image = rng.normal(0, 1e-4, (300, 300)) + 5e-3 * np.exp(-((yy - 150) ** 2 + (xx - 150) ** 2) / 20)
    image[:5, :5] = np.nan  # blanked pixels
    out = clip_and_scale(image)
    assert out.shape == (150, 150, 1) and out.max() == pytest.approx(1.0) and out.min() == 0
    assert (out > 0).mean() < 0.02  # the source and a few 3-sigma noise peaks are all that is left
    small = clip_and_scale(image[100:200, 100:200])  # smaller than 150: resampled up
    assert small.shape == (150, 150, 1)
    with pytest.raises(DeepskyError, match="blank.fits: nothing above 3 rms"):
        clip_and_scale(np.zeros((200, 200)), source="blank.fits")


@needs_mirabest
def test_fits_through_the_pipeline_match_mirabest_pngs():
    # the same source read from FIRST's FITS and from MiraBest's PNG: equal up to MiraBest's one-pixel crop offset
    for fits_name, png_name in (("200_126.269+012.735_0.3216_0111.43.fits", "200_126.269_+012.735.png"),
                                ("100_243.922+047.187_0.1986_0068.16.fits", "100_243.922_+047.187.png")):
        from_fits = read_radio_image(MIRABEST / "fits_examples" / fits_name)[..., 0]
        from_png = read_radio_image(MIRABEST / "images" / png_name)[..., 0]
        best = max(np.corrcoef(np.roll(from_fits, (dy, dx), (0, 1)).ravel(), from_png.ravel())[0, 1]
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        assert best > 0.98, (fits_name, best)


@needs_mirabest
def test_mirabest_folder_and_fits_names_give_the_labels():
    data = load_radio_folder(MIRABEST)
    assert len(data) == 696 and np.bincount(data.labels).tolist() == [310, 386]
    assert data.inputs.shape[1:] == (150, 150, 1) and data.objects["confident"].all()
    fits_examples = load_radio_folder(MIRABEST / "fits_examples")
    assert fits_examples.labels.tolist() == [0] * 6 + [1] * 6  # 100/110 FRI, 200/210 FRII by file name
    assert (~fits_examples.objects["confident"]).sum() == 4  # 110 and 210: uncertain


def test_bad_files_and_tables_are_clear_errors(tmp_path, simulated):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DeepskyError, match="broken.png: corrupt or truncated"):
        read_radio_images([tmp_path / "broken.png"])
    good = _write_fits(tmp_path / "good.fits", simulated.inputs[0, ..., 0])
    (tmp_path / "cut.fits").write_bytes(good.read_bytes()[:4000])
    with pytest.raises(DeepskyError, match="cut.fits"):
        read_radio_images([tmp_path / "cut.fits"])
    nan = _write_fits(tmp_path / "nan.fits", np.full((150, 150), np.nan))
    with pytest.raises(DeepskyError, match="nan.fits: every pixel is NaN"):
        read_radio_images([nan])
    from PIL import Image

    Image.new("RGB", (150, 150), (255, 0, 0)).save(tmp_path / "colour.png")
    with pytest.raises(DeepskyError, match="colour.png: a colour image with 3 band"):
        read_radio_images([tmp_path / "colour.png"])
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    (folder / "labels.csv").write_text("filename,label\nmissing.png,FRI\n")
    with pytest.raises(DeepskyError, match="lists missing.png, which is not in"):
        load_radio_folder(folder)
    (folder / "labels.csv").write_text("name,class\nx.png,FRI\n")
    with pytest.raises(DeepskyError, match="needs the columns filename and label"):
        load_radio_folder(folder)


def test_the_fanaroff_riley_ratio_separates_simulated_fri_from_frii(simulated):
    images = np.stack([clip_and_scale(image) for image in simulated.inputs])
    features = radio_features(images)
    assert features.shape == (60, 9) and np.isfinite(features).all()
    ratio = features[:, 0]
    fri, frii = ratio[simulated.labels == 0], ratio[simulated.labels == 1]
    assert np.median(fri) < 0.5 < np.median(frii), (np.median(fri), np.median(frii))


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory, simulated):
    """A labelled folder as MiraBest's: labels.csv and images/ of 60 simulated FRI and FRII PNGs."""
    folder = tmp_path_factory.mktemp("radio")
    (folder / "images").mkdir()
    rows = []
    for i, (image, label) in enumerate(zip(simulated.inputs, simulated.labels)):
        name = f"{i:03d}.png"
        _write_png(folder / "images" / name, clip_and_scale(image)[..., 0])
        rows.append(f"{name},{('FRI', 'FRII')[label]}")
    (folder / "labels.csv").write_text("filename,label\n" + "\n".join(rows) + "\n")
    return folder


def test_train_on_a_folder_and_predict_fits_and_png_one_row_per_file(tmp_path, simulated, png_folder):
    folder = png_folder
    run = tmp_path / "run"
    run_cli("train", "radio-morphology", "--data", folder, "--epochs", 1, "--model", "lenet-5", "-o", run)
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["n"] == 48  # 80% of 60 trains; the rest is held out
    evaluated = run_cli("evaluate", run)
    assert "Accuracy (held-out)" in evaluated.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 12 and "rotation_averaged" in metrics and "baseline" in metrics
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _write_fits(mixed / "a.fits", simulated.inputs[0, ..., 0])
    _write_png(mixed / "b.png", clip_and_scale(simulated.inputs[1])[..., 0])
    table = tmp_path / "classes.csv"
    run_cli("predict", run, mixed, "-o", table)
    got = list(csv.DictReader(table.open()))
    assert [row["id"] for row in got] == ["a.fits", "b.png"] and {"p_FRII", "class"} <= set(got[0])
    (mixed / "c.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    refused = run_cli("predict", run, mixed, "-o", tmp_path / "none.csv", check=False)
    assert refused.returncode != 0 and "c.fits" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "none.csv").exists()


def test_fusion_votes_and_leaves_the_unsure_to_a_human():
    from deepsky.experiments.radio_fusion import fuse

    p = np.array([[0.95, 0.1, 0.2],   # FRI, sure
                  [0.7, 0.2, 0.1],    # FRI by vote, but only 70% sure: "?"
                  [0.2, 0.3, 0.4],    # every network says no: a tie, the most confident (bent) wins, unsure
                  [0.6, 0.97, 0.1]])  # two say yes: FRII is the more confident of the tied
    called, certainty = fuse(p)
    assert called.tolist() == [0, -1, -1, 1]
    assert certainty.tolist() == [0.95, 0.7, 0.4, 0.97]
    assert fuse(p, 0.0)[0].tolist() == [0, 0, 2, 1]


def test_the_fusion_experiment_writes_the_three_class_table(tmp_path, png_folder):
    out = tmp_path / "fusion"
    run_cli("experiment", "radio-fusion", "--data", png_folder, "--epochs", 1, "--n", 12, "--model", "lenet-5",
            "-o", out)
    record = json.loads((out / "experiment.json").read_text())
    assert [net["class"] for net in record["networks"]] == ["FRI", "FRII", "bent"]
    assert record["test_counts"][:2] == [6, 6] and record["test_counts"][2] >= 8  # 20% of 60 real, simulated bent
    assert record["n_train"] + record["n_validation"] == 48 + 36  # the folder's training part and 3 x 12 simulated
    assert 0 <= record["unsure_fraction"] <= 1 and "accuracy" in record["fused_all"]
    page = (out / "report.html").read_text()
    assert "Aniyan" in page and (out / "figures" / "fusion.png").exists()


def test_training_where_mirabest_is_absent_simulates_and_records_first(tmp_path, monkeypatch):
    from deepsky import paths

    monkeypatch.setattr(paths, "shared_data_dir", lambda name: None)  # a user's clone without ../shared
    run = tmp_path / "run"
    result = run_cli("train", "radio-morphology", "--n", 64, "--epochs", 1, "--batch-size", 32, "-o", run)
    assert "simulating" in result.stderr.lower() or "simulating" in result.stdout.lower()
    assert json.loads((run / "config.json").read_text())["contract"]["survey"] == "FIRST"
