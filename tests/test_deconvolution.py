"""Deconvolution: the degradation, the pix2pix generator, the classical restorations, SSIM and the task."""

import importlib.util
import json

import numpy as np
import pytest

from conftest import run_in_process as run_cli, run_on_jax, shared
from deepsky import models, tasks
from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.objectives import image_metrics, ssim
from deepsky.simulate.degrade import Degradation, degrade, degrade_originals, gaussian_kernel, make_deconvolution
from deepsky.tasks.deconvolution import cross_calibrated, richardson_lucy, wiener


@pytest.fixture(scope="module")
def pairs():
    return make_deconvolution(48, seed=3, workers=1)


def test_the_degrading_kernel_has_the_asked_fwhm():
    kernel = gaussian_kernel(Degradation(psf_fwhm_arcsec=2.0).sigma_pixels(0.4))
    assert kernel.sum() == pytest.approx(1.0) and kernel.shape[0] % 2 == 1
    centre = kernel[kernel.shape[0] // 2]
    above = np.flatnonzero(centre >= centre.max() / 2)
    assert above[-1] - above[0] + 1 == pytest.approx(2.0 / 0.4, abs=1.0)  # FWHM 5 pixels, to a pixel


def test_degradation_grows_the_background_rms_by_the_noise_factor():
    rng = np.random.default_rng(0)
    sky = np.array([0.02, 0.05])
    blank = (rng.standard_normal((40, 64, 64, 2)) * sky).astype(np.float32)
    degraded = degrade(blank, 0.4, sky, Degradation(psf_fwhm_arcsec=2.0, noise_factor=3.0), rng)
    np.testing.assert_allclose(degraded[:, 8:-8, 8:-8].std(axis=(0, 1, 2)), 3.0 * sky, rtol=0.03)
    with pytest.raises(DeepskyError, match="at least 1"):
        Degradation(noise_factor=0.5)
    with pytest.raises(DeepskyError, match="positive"):
        Degradation(psf_fwhm_arcsec=0)
    with pytest.raises(DeepskyError, match="in pixels"):
        Degradation().sigma_pixels(None)  # pictures without a pixel scale need the FWHM in pixels
    assert Degradation(psf_fwhm_pixels=3.0).sigma_pixels(None) == pytest.approx(3.0 / 2.3548, rel=1e-4)


def test_real_images_are_their_own_truth_and_their_noise_is_seeded():
    rng = np.random.default_rng(5)
    originals = rng.uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)
    pair = degrade_originals(originals, [0.01] * 3, Degradation(psf_fwhm_pixels=3.0), seed=9,
                             meta={"bands": ["g", "r", "i"], "pixel_scale_arcsec": None})
    np.testing.assert_array_equal(pair.labels, originals)
    assert pair.meta["degradation"]["psf_fwhm_pixels"] == 3.0 and "3.0 pixels" in pair.meta["inputs_description"]
    again = degrade_originals(originals, [0.01] * 3, Degradation(psf_fwhm_pixels=3.0), seed=9)
    other = degrade_originals(originals, [0.01] * 3, Degradation(psf_fwhm_pixels=3.0), seed=10)
    np.testing.assert_array_equal(pair.inputs, again.inputs)
    assert not np.array_equal(pair.inputs, other.inputs)


def test_classical_settings_are_chosen_on_the_other_half_of_the_images():
    truth = np.random.default_rng(0).uniform(1, 2, (10, 8, 8, 1)).astype(np.float32)
    inputs = truth.copy()
    inputs[0::2] *= 2  # the even images want halving, the odd ones nothing
    restored, chosen = cross_calibrated(lambda images, factor: images * factor, (1.0, 0.5), inputs, truth)
    assert chosen == [1.0, 0.5]  # the even images get the factor best on the odd ones, and the other way round
    np.testing.assert_allclose(restored[0::2], inputs[0::2])
    np.testing.assert_allclose(restored[1::2], inputs[1::2] * 0.5)


def test_pairs_are_degraded_inputs_and_noiseless_truths(pairs):
    assert pairs.inputs.shape == pairs.labels.shape == (48, 64, 64, 3)
    assert pairs.labels.min() > -0.1 * min(pairs.meta["sky_noise"])  # no noise: only GalSim's faint FFT ringing
    assert image_metrics(pairs.inputs, pairs.labels)["psnr_db"] < 38
    once, again = (make_deconvolution(6, seed=4, workers=1) for _ in range(2))
    np.testing.assert_array_equal(once.inputs, again.inputs)


def test_richardson_lucy_with_the_sky_put_back_beats_the_input_and_wiener(pairs):
    kernel = gaussian_kernel(Degradation().sigma_pixels(pairs.meta["pixel_scale_arcsec"]))
    rms = np.asarray(pairs.meta["sky_noise"]) * 1.5
    restored = richardson_lucy(pairs.inputs, kernel, 20, 3 * rms)
    assert restored.min() >= 0  # the estimate of the galaxy alone stays positive
    degraded, lucy = image_metrics(pairs.inputs, pairs.labels), image_metrics(restored, pairs.labels)
    filtered = image_metrics(wiener(pairs.inputs, kernel, 0.1), pairs.labels)
    assert lucy["psnr_db"] > degraded["psnr_db"] + 8 and lucy["ssim"] > degraded["ssim"]
    assert lucy["psnr_db"] > filtered["psnr_db"] > degraded["psnr_db"]


def test_ssim_is_one_for_the_truth_and_falls_with_noise():
    truth = np.random.default_rng(1).uniform(size=(3, 16, 16, 2))
    np.testing.assert_allclose(ssim(truth, truth), 1.0)
    noisy = truth + np.random.default_rng(2).normal(0, 0.3, truth.shape)
    assert (ssim(noisy, truth) < 0.8).all()
    assert ssim(truth[:, :2, :2], truth[:, :2, :2]) is None  # too small for a window


def test_pix2pix_generator_is_the_paper_u_net():
    model = models.create("pix2pix-unet", input_shape=(256, 256, 3))
    assert model.count_params() == 54_423_875  # pix2pix's 256x256 generator, 3 bands in and out
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["down8_act"] == (1, 1, 512) and shapes["up1_skip"] == (2, 2, 1024)
    assert shapes["image_out"] == (256, 256, 3)
    small = models.create("pix2pix-unet", input_shape=(64, 64, 3), base_filters=32, residual=True)
    x = np.zeros((1, 64, 64, 3), np.float32)
    assert small.predict(x, verbose=0).shape == x.shape
    with pytest.raises(DeepskyError, match="power of two"):
        models.create("pix2pix-unet", input_shape=(48, 48, 3))
    with pytest.raises(DeepskyError, match="as many bands"):
        models.create("pix2pix-unet", input_shape=(64, 64, 3), num_classes=1, residual=True)


def test_the_task_trains_with_the_papers_adam_and_refuses_unknown_outputs(tmp_path, pairs):
    from deepsky.train import default_config

    task = tasks.get("deconvolution")
    config = default_config(task)
    assert (config.beta1, config.learning_rate) == (0.5, 2e-4)
    assert task.objective.critic == "patchgan-70" and task.objective.adversarial == pytest.approx(0.01)
    run = tmp_path / "run"
    data = tmp_path / "pairs.h5"
    pairs.save(data)
    run_cli("train", "deconvolution", "--data", data, "--epochs", 1, "--batch-size", 16, "-o", run)
    out = tmp_path / "restored.h5"
    run_cli("predict", run, data, "-o", out)
    restored = Dataset.load(out)
    assert restored.inputs.shape == pairs.inputs.shape and np.isfinite(restored.inputs).all()
    assert restored.objects["flux_in_r"] == pytest.approx(pairs.inputs[..., 1].sum(axis=(1, 2)), rel=1e-5)
    run_cli("predict", run, data, "-o", tmp_path / "restored.csv")  # a table, the images beside it
    table = (tmp_path / "restored.csv").read_text().splitlines()
    assert len(table) == 49 and table[0].startswith("id,flux_in_g") and table[0].endswith("stack_row")
    np.testing.assert_array_equal(Dataset.load(tmp_path / "restored_images.h5").inputs, restored.inputs)
    from astropy.io import fits

    folder = tmp_path / "fits"
    folder.mkdir()
    for i in range(2):  # bands first, as FITS cubes keep them, with a header worth keeping
        header = fits.Header({"OBJECT": f"galaxy {i}", "FILTER": "gri"})
        fits.PrimaryHDU(np.moveaxis(pairs.inputs[i], -1, 0), header=header).writeto(folder / f"g{i}.fits")
    run_cli("predict", run, folder, "-o", tmp_path / "restored")
    with fits.open(tmp_path / "restored" / "g1_restored.fits") as hdul:
        assert hdul[0].header["OBJECT"] == "galaxy 1" and "deepsky" in str(hdul[0].header["HISTORY"])
        np.testing.assert_allclose(np.moveaxis(hdul[0].data, 0, -1), restored.inputs[1], rtol=1e-2, atol=1e-3)
    assert (tmp_path / "restored" / "restored.csv").read_text().count("_restored.fits") == 2
    again = run_cli("predict", run, folder, "-o", tmp_path / "restored", check=False)  # no overwriting
    assert again.returncode != 0 and "not an empty folder" in again.stderr
    hostile = tmp_path / "hostile.h5"  # ids are file names from someone else's catalogue: no writing outside -o
    Dataset(inputs=pairs.inputs[:2], labels=pairs.labels[:2], meta=pairs.meta,
            objects={"id": np.array(["../../escaped", str(tmp_path / "absolute")])}).save(hostile)
    run_cli("predict", run, hostile, "-o", tmp_path / "inside")
    assert sorted(p.name for p in (tmp_path / "inside").iterdir()) == [
        "absolute_restored.fits", "escaped_restored.fits", "restored.csv"]
    assert not list(tmp_path.parent.parent.glob("escaped*")) and not (tmp_path / "absolute_restored.fits").exists()
    refused = run_cli("predict", run, data, "-o", tmp_path / "restored.txt", check=False)
    assert refused.returncode != 0 and "restored.txt" in refused.stderr and "Traceback" not in refused.stderr
    wrong = tmp_path / "two_bands.npy"
    np.save(wrong, pairs.inputs[:3, ..., :2])
    refused = run_cli("predict", run, wrong, "-o", tmp_path / "x.h5", check=False)
    assert refused.returncode != 0 and "two_bands.npy" in refused.stderr and not (tmp_path / "x.h5").exists()


def test_galaxy_zoo_jpegs_train_evaluate_and_predict(tmp_path):
    folder = shared("galaxyzoo1_sdss")
    task = tasks.get("deconvolution")
    part = task.read_folder(folder, select=lambda labels: np.arange(4))
    assert part.inputs.shape == part.labels.shape == (4, 64, 64, 3) and part.labels.max() <= 1.0
    assert part.meta["degradation"]["psf_fwhm_pixels"] == 3.0 and part.meta["pixel_scale_arcsec"] is None
    np.testing.assert_array_equal(task.read_folder(folder, select=lambda labels: np.arange(4)).inputs, part.inputs)
    run = tmp_path / "gz"
    run_cli("train", "deconvolution", "--data", folder, "--n", 48, "--epochs", 1, "--batch-size", 16, "-o", run)
    run_cli("evaluate", run, "--n", 12)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["held_out"] and metrics["n"] == 12 and metrics["test_data"]["part"] == "held-out images"
    assert metrics["baseline"]["psnr_db"] > metrics["degraded"]["psnr_db"]  # Richardson-Lucy sharpens the JPEGs
    assert len(metrics["richardson_lucy"]["iterations"]) == 2  # one setting per half, chosen on the other
    jpegs = sorted((folder / "images").iterdir())[:2]
    run_cli("predict", run, *jpegs, "-o", tmp_path / "restored.h5")
    restored = Dataset.load(tmp_path / "restored.h5")
    assert restored.inputs.shape == (2, 64, 64, 3) and np.isfinite(restored.inputs).all()
    assert list(restored.objects["id"]) == [p.name for p in jpegs]


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from deepsky import models
model = models.create("pix2pix-unet", input_shape=(16, 16, 2), base_filters=8, residual=True)
model.compile(optimizer="adam", loss="mae")
x = np.random.default_rng(0).normal(size=(4, 16, 16, 2)).astype("float32")
loss = float(model.train_on_batch(x, x * 0.5))
assert np.isfinite(loss), loss
print("jax ok", loss, flush=True)
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
@pytest.mark.slow  # compiling every graph with XLA: ./test.sh -m slow (test_backends keeps JAX in the default run)
def test_pix2pix_trains_one_step_on_jax():
    result = run_on_jax(JAX_SCRIPT)
    assert result.returncode == 0 and "jax ok" in result.stdout, result.stderr[-2000:]
