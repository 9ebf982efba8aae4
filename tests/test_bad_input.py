"""Every bad input gets one readable line naming the file, exit status 2, no traceback, no output."""

import numpy as np
from astropy.io import fits
from astropy.table import Table

from conftest import run_cli


def assert_user_error(result, *fragments, output=None):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("deepsky: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    if output is not None:
        assert not output.exists()
        assert not [p for p in output.parent.iterdir() if p.name.startswith(f".{output.name}")]


def predict_fails(trained_run, tmp_path, inputs, *fragments, catalog=None, options=(), output="out.csv"):
    """Run ``deepsky predict`` on bad input and check the one-line error, and that nothing was written."""
    out = tmp_path / output
    extra = ["--catalog", catalog] if catalog is not None else []
    result = run_cli("predict", trained_run, inputs, *extra, *options, "-o", out, check=False)
    assert_user_error(result, *fragments, output=out)


def _field(tmp_path, shape=(5, 120, 120), name="field.fits"):
    image = np.random.default_rng(1).normal(0, 0.03, shape).astype(np.float32)
    path = tmp_path / name
    fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(band) for band in image]).writeto(path)
    return path


def _catalog(tmp_path, xs=(60,), ys=(60,), name="cat.csv"):
    path = tmp_path / name
    Table({"id": list(range(len(xs))), "x": list(xs), "y": list(ys)}).write(path, format="ascii.csv")
    return path


def test_unknown_task():
    assert_user_error(run_cli("train", "quasar-hunting", "-o", "nowhere", check=False), "unknown task 'quasar-hunting'")


def test_unknown_model(small_data, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "star-galaxy", "--data", small_data, "--model", "resnet-9000", "-o", out, check=False)
    assert_user_error(result, "unknown model 'resnet-9000'")
    assert not (out / "model.keras").exists()


def test_missing_run_directory(tmp_path):
    assert_user_error(run_cli("evaluate", tmp_path / "nothing", check=False), "not a deepsky run directory")


def test_corrupt_fits(trained_run, tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    predict_fails(trained_run, tmp_path, bad, "bad.fits", catalog=_catalog(tmp_path))


def test_truncated_fits(trained_run, tmp_path):
    whole = _field(tmp_path).read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(whole[: len(whole) // 2])
    predict_fails(trained_run, tmp_path, cut, "cut.fits", catalog=_catalog(tmp_path))


def test_nan_pixels_in_a_stack(trained_run, tmp_path):
    stack = np.random.default_rng(0).normal(0, 0.03, (4, 48, 48, 5)).astype(np.float32)
    stack[2, 10, 10, 1] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, stack)
    predict_fails(trained_run, tmp_path, path, "nan.npy", "2")


def test_nan_pixels_in_a_fits_image(trained_run, tmp_path):
    path = _field(tmp_path)
    with fits.open(path, mode="update") as hdus:
        hdus[3].data[60, 60] = np.nan
    predict_fails(trained_run, tmp_path, path, "NaN", catalog=_catalog(tmp_path))


def test_wrong_number_of_bands(trained_run, tmp_path):
    path = tmp_path / "three.npy"
    np.save(path, np.zeros((3, 48, 48, 3), np.float32))
    predict_fails(trained_run, tmp_path, path, "three.npy", "3 bands")


def test_wrong_number_of_bands_in_fits(trained_run, tmp_path):
    path = _field(tmp_path, shape=(3, 120, 120))
    predict_fails(trained_run, tmp_path, path, "field.fits", catalog=_catalog(tmp_path))


def test_wrong_cutout_size(trained_run, tmp_path):
    path = tmp_path / "small.npy"
    np.save(path, np.zeros((3, 32, 32, 5), np.float32))
    predict_fails(trained_run, tmp_path, path, "small.npy")


def test_positions_off_the_image(trained_run, tmp_path):
    catalog = _catalog(tmp_path, xs=(60, 500), ys=(60, 20))
    predict_fails(trained_run, tmp_path, _field(tmp_path), "cat.csv", catalog=catalog)


def test_empty_catalogue(trained_run, tmp_path):
    catalog = tmp_path / "empty.csv"
    catalog.write_text("id,x,y\n")
    predict_fails(trained_run, tmp_path, _field(tmp_path), "empty.csv", catalog=catalog)


def test_empty_stack(trained_run, tmp_path):
    path = tmp_path / "none.npy"
    np.save(path, np.zeros((0, 48, 48, 5), np.float32))
    predict_fails(trained_run, tmp_path, path, "none.npy")


def test_unknown_output_format(trained_run, small_data, tmp_path):
    predict_fails(trained_run, tmp_path, small_data, "out.xlsx", output="out.xlsx")


def test_corrupt_training_data(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file at all" * 100)
    out = tmp_path / "run"
    assert_user_error(run_cli("train", "star-galaxy", "--data", bad, "-o", out, check=False), "bad.h5")
    assert not (out / "config.json").exists()


def test_unknown_units(trained_run, tmp_path):
    path = tmp_path / "stack.npy"
    np.save(path, np.zeros((2, 48, 48, 5), np.float32))
    predict_fails(trained_run, tmp_path, path, "janskys", options=("--units", "janskys"))
