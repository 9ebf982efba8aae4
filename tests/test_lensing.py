"""Strong lensing: the lenstronomy simulator, CMU DeepLens, the search metrics, folders of cutouts and the gallery."""

import csv

import numpy as np
import pytest
from astropy.io import fits

from conftest import run_in_process as run_cli
from deepsky import models
from deepsky.errors import DeepskyError
from deepsky.simulate.lensing import KINDS, MIN_IMAGES, image_count, make_lenses, psf_kernel
from deepsky.tasks.lens_finding import completeness_at_rejection, true_positive_rate_at


@pytest.fixture(scope="module")
def kids_lenses():
    return make_lenses(40, seed=4, survey="kids", workers=1)


def test_the_same_seed_gives_the_same_bytes_whatever_the_workers():
    one = make_lenses(70, seed=11, survey="lsst", workers=1)
    two = make_lenses(70, seed=11, survey="lsst", workers=2)
    assert one.images.shape == (70, 45, 45, 1) and one.images.dtype == np.float32
    assert one.images.tobytes() == two.images.tobytes()
    assert np.array_equal(one.labels, two.labels)
    assert not np.array_equal(one.images, make_lenses(70, seed=12, survey="lsst", workers=1).images)


def test_lenses_are_multiply_imaged_and_the_rest_are_not(kids_lenses):
    data = kids_lenses
    kinds = np.asarray(data.objects["kind"])
    lens_kind = kinds == KINDS.index("lens")
    assert set(np.unique(kinds)) >= {KINDS.index(k) for k in ("lens", "lens galaxy alone", "blend")}
    assert np.array_equal(data.labels == 1, lens_kind & (data.objects["image_count"] >= MIN_IMAGES))
    assert (data.objects["image_count"][kinds == KINDS.index("unlensed source")] < MIN_IMAGES).all()
    assert (data.objects["magnification"][data.labels == 1] > 1).all()  # a strong lens magnifies its source
    snr = data.objects["lensed_snr"]
    no_source = ~np.isin(kinds, [KINDS.index("lens"), KINDS.index("unlensed source")])
    assert (snr[no_source] == 0).all()  # S/N is the lensed source's; rings and blends have none
    assert snr[data.labels == 1].max() > 10


def test_the_lensed_source_is_where_the_lens_equation_puts_it():
    from lenstronomy.LensModel.lens_model import LensModel

    lens = LensModel(["SIE", "SHEAR"])
    kwargs = [{"theta_E": 1.2, "e1": 0.0, "e2": 0.0, "center_x": 0.0, "center_y": 0.0}, {"gamma1": 0.0, "gamma2": 0.0}]
    assert image_count(lens, kwargs, 0.3, 0.0, 1.2) == 2  # a singular isothermal sphere: two images inside theta_E
    assert image_count(lens, kwargs, 1.8, 0.0, 1.2) == 1  # outside: one


def test_noise_follows_the_survey_and_no_noise_means_none():
    clean = make_lenses(20, seed=3, survey="euclid", noise=False, workers=1)
    noisy = make_lenses(20, seed=3, survey="euclid", workers=1)
    border = lambda images: np.concatenate([images[:, :3].ravel(), images[:, -3:].ravel()])  # noqa: E731
    assert np.median(np.abs(border(clean.images))) < 0.1 * 0.0030  # the border is mostly empty sky
    sigma = np.std(border(noisy.images - clean.images))
    assert 0.7 * 0.0030 < sigma < 1.4 * 0.0030  # Euclid VIS sky noise (nanomaggies per pixel), scaled 0.8-1.25x


def test_psf_kernels_have_the_fwhm_asked_for():
    for beta in (0.0, 3.0):
        kernel = psf_kernel(0.8, beta, 0.05, 200)
        assert kernel.sum() == pytest.approx(1.0)
        middle = kernel[kernel.shape[0] // 2]
        above = np.flatnonzero(middle >= middle.max() / 2)
        assert (above[-1] - above[0] + 1) * 0.05 == pytest.approx(0.8, abs=0.1)


def test_unknown_survey_and_bad_counts_are_refused():
    with pytest.raises(DeepskyError, match="no lens population"):
        make_lenses(4, survey="sdss")
    with pytest.raises(DeepskyError, match="at least 1"):
        make_lenses(0)
    from deepsky import tasks

    with pytest.raises(DeepskyError, match="lsst, kids, euclid"):
        tasks.get("lens-finding", survey="hst-candels")


def test_completeness_at_rejection_and_the_challenge_rates():
    labels = np.r_[np.zeros(1000, int), np.ones(100, int)]
    negatives = np.linspace(0, 0.9, 1000)
    positives = np.r_[np.full(50, 0.95), np.full(40, 0.895), np.full(10, 0.1)]
    scores = np.r_[negatives, positives]
    threshold, completeness = completeness_at_rejection(labels, scores, 0.99)
    assert threshold == pytest.approx(np.quantile(negatives, 0.99))
    assert completeness == pytest.approx(0.9)
    assert true_positive_rate_at(labels, scores, 0) == pytest.approx(0.5)  # only the 0.95s beat the best non-lens
    assert true_positive_rate_at(labels, scores, 10) == pytest.approx(0.9)
    assert true_positive_rate_at(labels[:5], scores[:5], 10) is None


def test_deeplens_is_the_authors_network():
    model = models.create("deeplens", input_shape=(45, 45, 1), num_classes=2)
    adds = [layer for layer in model.layers if layer.__class__.__name__ == "Add"]
    assert len(adds) == 15  # five stages of three blocks
    assert model.get_layer("stem_conv").kernel_size == (7, 7) and model.get_layer("stem_conv").filters == 32
    widths = [model.get_layer(f"stage{s}_block1_expand").filters for s in range(1, 6)]
    assert widths == [32, 64, 128, 256, 512]
    assert [model.get_layer(f"stage{s}_block1_reduce").strides for s in range(1, 6)] == [(1, 1)] + [(2, 2)] * 4
    assert tuple(model.get_layer("stage5_block3_add").output.shape[1:]) == (3, 3, 512)  # 45 halved four times
    assert model.get_layer("stage2_block2_conv_elu").get_config()["activation"] == "elu"
    x = np.random.default_rng(0).normal(size=(4, 45, 45, 1)).astype(np.float32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert np.isfinite(float(model.train_on_batch(x, np.array([0, 1, 0, 1]))))


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from deepsky import models
model = models.create("deeplens", input_shape=(32, 32, 4), num_classes=2, blocks_per_stage=1)
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
x = np.random.default_rng(0).normal(size=(2, 32, 32, 4)).astype(np.float32)
assert np.isfinite(float(model.train_on_batch(x, np.array([0, 1]))))
print("jax ok")
"""


@pytest.mark.slow  # compiling with XLA: ./test.sh -m slow
def test_deeplens_trains_one_step_on_jax():
    from conftest import run_on_jax

    pytest.importorskip("jax", reason="JAX is not installed (./test.sh installs it)")
    result = run_on_jax(JAX_SCRIPT)
    assert result.returncode == 0 and "jax ok" in result.stdout, result.stderr[-2000:]


def test_noise_scaling_makes_the_input_independent_of_flux_units():
    from deepsky.layers.noise_scale import NoiseScaledAsinh

    images = make_lenses(6, seed=2, survey="kids", workers=1).images
    layer = NoiseScaledAsinh(subtract_sky=True)
    import keras

    a = keras.ops.convert_to_numpy(layer(images))
    b = keras.ops.convert_to_numpy(layer(images * 3000.0 + 1200.0))  # ADU with the sky left in
    np.testing.assert_allclose(a, b, atol=2e-3)
    border = np.concatenate([a[:, :4].reshape(6, -1, 4), a[:, -4:].reshape(6, -1, 4)], axis=1)
    assert 0.7 < np.median(np.abs(border)) / 0.6745 < 1.3  # the sky comes out at unit noise


def test_noise_scaling_on_the_fast_path_equals_the_keras_layer():
    import keras
    import torch

    from deepsky.fastpath import TorchChain, kernel_for
    from deepsky.layers.noise_scale import NoiseScaledAsinh

    images = make_lenses(6, seed=3, survey="kids", workers=1).images * 50.0 + 7.0
    inputs = keras.Input(images.shape[1:])
    layer = NoiseScaledAsinh(subtract_sky=True)
    model = keras.Model(inputs, layer(inputs))
    assert kernel_for(layer) is not None
    with torch.no_grad():
        got = TorchChain(model)(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model(images)), atol=1e-5)


@pytest.mark.parametrize("count", [575, 576, 8])
def test_the_fast_paths_median_is_keras_linear_quantile(count):
    import keras
    import torch

    from deepsky.layers.noise_scale import _median

    rng = np.random.default_rng(count)
    smooth = rng.normal(size=(5, count, 3)).astype(np.float32)
    tied = np.round(smooth * 1.5)  # repeated values around the middle
    for values in (smooth, tied):
        expected = keras.ops.convert_to_numpy(keras.ops.quantile(values, 0.5, axis=1, keepdims=True))
        np.testing.assert_allclose(_median(torch.from_numpy(values)).numpy(), expected, rtol=1e-6, atol=1e-7)


# -- folders of cutouts, as the lens-finding challenge ships them -----------------------------------
CHALLENGE_BANDS = (("Band1", "R"), ("Band2", "I"), ("Band3", "G"), ("Band4", "U"))


def write_challenge_folder(root, images, first=100001, pad=18, scale=1000.0, skip=None):
    """Write cutouts (N, H, W, u g r i) as the challenge does: Public/BandK/imageSDSS_<B>-<number>.fits."""
    order = "ugri"
    for folder, band in CHALLENGE_BANDS:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for j, image in enumerate(images):
            if skip == (band, j):
                continue
            plane = np.pad(image[:, :, order.index(band.lower())], pad, mode="reflect") * scale
            fits.PrimaryHDU(plane.astype(np.float32)).writeto(root / folder / f"imageSDSS_{band}-{first + j}.fits")
    return root


@pytest.fixture(scope="module")
def kids_run(tmp_path_factory):
    """An ensemble of two different networks (Jacobs et al.), one epoch on 64 KiDS cutouts."""
    run = tmp_path_factory.mktemp("lens") / "run"
    run_cli("train", "lens-finding", "--survey", "kids", "--model", "deeplens,kim-brunner", "--n", 64, "--epochs", 1,
            "--batch-size", 32, "-o", run)
    return run


def test_an_ensemble_of_different_networks_keeps_its_members(kids_run):
    import json

    from deepsky.io import load_model

    config = json.loads((kids_run / "config.json").read_text())
    assert config["model"] == "deeplens,kim-brunner" and config["train"]["ensemble"] == 2
    names = [load_model(kids_run / "members" / f"member{k}.keras").name for k in range(2)]
    assert names == ["deeplens", "kim_brunner"]
    assert load_model(kids_run / "model.keras").get_layer("ensemble_mean") is not None


def test_a_challenge_folder_is_read_by_object_number_and_ranked(kids_run, kids_lenses, tmp_path):
    from deepsky.data.object_folders import iter_object_folder

    images = kids_lenses.images[:10]
    folder = write_challenge_folder(tmp_path / "Public", images, scale=1.0)
    # a folder of bands the model does not use (the Euclid set's NISP beside VIS) is left out
    (tmp_path / "Public" / "Band5").mkdir()
    fits.PrimaryHDU(np.zeros((5, 5), np.float32)).writeto(tmp_path / "Public" / "Band5" / "imageEUC_J-100001.fits")
    cutouts, ids, info = next(iter_object_folder(folder, ["u", "g", "r", "i"], 64, 0.2))
    assert list(ids) == list(range(100001, 100011)) and info["unused_folders"] == ["Band5"]
    np.testing.assert_allclose(cutouts, images, rtol=1e-6, atol=1e-7)  # 100x100 cut back to the centre 64

    table = tmp_path / "candidates.csv"
    result = run_cli("predict", kids_run, folder, "-o", table, "--gallery", 3)
    rows = list(csv.DictReader(table.open()))
    assert [int(r["id"]) for r in rows] == list(range(100001, 100011))  # input order kept
    ranks = sorted(int(r["rank"]) for r in rows)
    assert ranks == list(range(1, 11))
    best = min(rows, key=lambda r: int(r["rank"]))
    assert float(best["p_lens"]) == max(float(r["p_lens"]) for r in rows)
    gallery = tmp_path / "candidates_gallery.html"
    page = gallery.read_text()
    assert page.count("<img") == 3 and f"id {best['id']}" in page and "gallery" in result.stdout


def test_one_fits_per_object_and_padding(kids_run, kids_lenses, tmp_path):
    folder = tmp_path / "cutouts"
    folder.mkdir()
    for j in range(4):  # 50x50 cubes, bands first: padded to 64 by reflection
        fits.PrimaryHDU(np.moveaxis(kids_lenses.images[j, 7:57, 7:57], -1, 0)).writeto(folder / f"lens_{j:03d}.fits")
    table = tmp_path / "p.csv"
    run_cli("predict", kids_run, folder, "-o", table)
    assert [r["id"] for r in csv.DictReader(table.open())] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("problem, message", [
    ("missing band", "lacks object(s) 100003"),
    ("sizes", "different sizes"),
    ("nan", "NaN"),
    ("scale", "0.1 arcsec"),
    ("unnamed", "cannot tell which band"),
])
def test_bad_folders_get_one_line_naming_the_problem(kids_run, kids_lenses, tmp_path, problem, message):
    folder = tmp_path / "Public"
    write_challenge_folder(folder, kids_lenses.images[:4], skip=("G", 2) if problem == "missing band" else None)
    target = folder / "Band4" / "imageSDSS_U-100002.fits"
    if problem == "sizes":
        target.unlink()
        fits.PrimaryHDU(np.zeros((90, 90), np.float32)).writeto(target)
    elif problem == "nan":
        data = fits.getdata(target)
        data[50, 50] = np.nan
        fits.PrimaryHDU(data).writeto(target, overwrite=True)
    elif problem == "scale":
        header = fits.Header({"CDELT1": -0.1 / 3600, "CDELT2": 0.1 / 3600})
        fits.PrimaryHDU(fits.getdata(target), header=header).writeto(target, overwrite=True)
    elif problem == "unnamed":
        for path in (folder / "Band4").iterdir():
            path.rename(path.with_name(path.name.replace("imageSDSS_U-", "")))
    out = tmp_path / "out.csv"
    result = run_cli("predict", kids_run, folder, "-o", out, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not out.exists()


# -- lens parameters ---------------------------------------------------------------------------
def _moments_ellipticity(image):
    """(e1, e2) = (1 - q)/(1 + q) (cos 2phi, sin 2phi) of an image's second moments (x along columns)."""
    y, x = np.indices(image.shape) - (np.array(image.shape)[:, None, None] - 1) / 2
    w = np.clip(image, 0, None)
    w = w / w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    xx, yy, xy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum(), (w * (x - mx) * (y - my)).sum()
    chi = complex(xx - yy, 2 * xy) / (xx + yy)  # |chi| = (1 - q^2)/(1 + q^2)
    q2 = (1 - abs(chi)) / (1 + abs(chi))
    e = (1 - np.sqrt(q2)) / (1 + np.sqrt(q2)) * chi / abs(chi)
    return np.array([e.real, e.imag]), np.array([mx, my])


def test_targets_turn_with_the_cutout():
    from deepsky.data.augment import turn
    from deepsky.simulate.lensing import ellipticity
    from deepsky.tasks.lens_parameters import TARGET_SCALING, turn_lens_targets

    data = make_lenses(12, seed=8, survey="hst-acs", lens_fraction=0.0, noise=False, workers=1)
    galaxy = np.flatnonzero(data.objects["kind"] == KINDS.index("lens galaxy alone"))[0]
    image = data.images[galaxy : galaxy + 1, ..., 1:]
    o = data.objects
    e1, e2 = ellipticity(o["lens_axis_ratio"][galaxy], o["lens_angle_deg"][galaxy])
    measured, centre = _moments_ellipticity(image[0, ..., 0])
    scale = {name: s for name, _, s in TARGET_SCALING}
    targets = np.zeros((1, len(TARGET_SCALING)), np.float32)
    names = [t[0] for t in TARGET_SCALING]
    targets[0, names.index("e1")], targets[0, names.index("e2")] = measured / scale["e1"]
    targets[0, names.index("lens_x")], targets[0, names.index("lens_y")] = centre / scale["lens_x"]
    # the galaxy's major axis, as the simulator drew it (moments of a truncated, seen profile are rounder)
    angle = lambda e: np.degrees(0.5 * np.arctan2(e[1], e[0]))  # noqa: E731
    assert np.hypot(*measured) > 0.05 and abs(angle(measured) - angle([e1, e2])) < 8
    for k in range(8):
        turned = turn_lens_targets(targets, np.array([k]))[0]
        e_k, centre_k = _moments_ellipticity(turn(image, k)[0, ..., 0])
        np.testing.assert_allclose(turned[[names.index("e1"), names.index("e2")]] * scale["e1"], e_k, atol=1e-4)
        np.testing.assert_allclose(turned[[names.index("lens_x"), names.index("lens_y")]] * scale["lens_x"],
                                   centre_k, atol=1e-4)


def test_parameters_decode_what_they_encode_with_calibrated_sigmas():
    from deepsky.tasks.lens_parameters import PARAMETERS, TARGET_SCALING, decode, encode, spin2

    data = make_lenses(6, seed=1, survey="hst-acs", lens_fraction=1.0, lens_light=False, workers=1)
    targets = encode(data.objects)
    outputs = np.concatenate([targets, np.full_like(targets, np.log(0.1))], 1)
    values = decode(outputs, sigma_scale=[2.0] * len(TARGET_SCALING))
    truth = {**data.objects, **spin2(data.objects)}
    for name, _, scale in TARGET_SCALING:
        np.testing.assert_allclose(values[name], truth[name], atol=1e-5)
        np.testing.assert_allclose(values[f"{name}_err"], 0.2 * scale, rtol=1e-5)
    assert set(PARAMETERS) <= set(values)


def test_ica_finds_the_arcs_under_the_lens_light():
    from deepsky.fitting.lens_light import source_by_ica

    data = make_lenses(12, seed=2, survey="hst-acs", lens_fraction=1.0, keep_clean_source=True, workers=1)
    bright = np.flatnonzero(data.objects["lensed_snr"] > 60)
    assert len(bright) >= 2
    images, clean = data.inputs["images"][bright], data.inputs["clean_source"][bright][..., 1:]
    cleaned = source_by_ica(images)
    corr = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]  # noqa: E731
    assert np.mean([corr(c, s) for c, s in zip(cleaned, clean)]) > np.mean(
        [corr(r, s) for r, s in zip(images[..., 1:], clean)]) + 0.15
    with pytest.raises(DeepskyError, match="bands >= 2"):
        source_by_ica(images[..., :1])


@pytest.mark.slow  # a full PSO + MCMC fit, about 15 s (the task harness runs a short one): ./test.sh -m slow
def test_lenstronomys_fit_recovers_a_bright_lens():
    from deepsky.fitting.lens_model import fit_lenses
    from deepsky.simulate.surveys import get_survey

    survey = get_survey("hst-acs")
    data = make_lenses(8, seed=5, survey="hst-acs", lens_fraction=1.0, lens_light=False, clumpy=False,
                       neighbours=False, workers=1)
    row = int(np.argmax(data.objects["lensed_snr"]))
    o = data.objects
    fit = fit_lenses(data.images[row : row + 1, ..., 1], 0.04, survey.sky_noise_nmgy[1] * o["noise_scale"][row],
                     float(survey.electrons_per_nmgy[1]), o["psf_fwhm_arcsec"][row : row + 1, 1],
                     o["psf_beta"][row : row + 1], workers=1)
    assert abs(fit["theta_e_arcsec"][0] - o["theta_e_arcsec"][row]) < 0.1
    assert fit["theta_e_arcsec_lo"][0] < fit["theta_e_arcsec_hi"][0] and fit["seconds"][0] > 0


def test_calibration_scales_sigmas_to_hold_68_percent():
    from deepsky import tasks
    from deepsky.data.store import Dataset

    rng = np.random.default_rng(0)
    labels = rng.normal(0, 1, (4000, 7)).astype(np.float32)
    errors = rng.normal(0, 1, labels.shape) * np.array([2.0, 0.5, 1, 1, 1, 1, 3.0])

    class Stub(type(tasks.get("lens-parameters"))):
        def predict_outputs(self, model, inputs, **kwargs):  # means off by the errors above, sigma 1 claimed
            return np.concatenate([labels + errors, np.zeros_like(labels)], 1)

    scale = Stub().calibrate(None, Dataset(inputs=np.zeros((4000, 2, 2, 1), np.float32), labels=labels))
    np.testing.assert_allclose(scale["sigma_scale"], [2.0, 0.5, 1, 1, 1, 1, 3.0], rtol=0.06)


def test_ranks_and_cutout_sizes():
    from deepsky.data.object_folders import fit_to_size, pixel_scale_arcsec
    from deepsky.predict import candidate_ranks

    assert candidate_ranks(np.array([0.2, np.nan, 0.9, 0.2])).tolist() == [2, 0, 1, 3]
    image = np.arange(50 * 40 * 2, dtype=np.float32).reshape(50, 40, 2)
    out = fit_to_size(image, 45)
    assert out.shape == (45, 45, 2)
    np.testing.assert_array_equal(out[:, 2:42], image[2:47])  # rows cut to the centre, columns padded
    assert fit_to_size(np.ones((3, 3, 1)), 16).shape == (16, 16, 1)  # more than reflection can give
    assert pixel_scale_arcsec({"CDELT1": -0.2 / 3600}) == pytest.approx(0.2)
    assert pixel_scale_arcsec({"PIXSCALE": 0.1}) == 0.1 and pixel_scale_arcsec({}) is None


def test_the_tasks_model_defaults_apply_unless_the_user_gives_others():
    from deepsky import tasks

    task = tasks.get("lens-parameters")
    grouped = task.create_model("alexnet", input_shape=(96, 96, 1), num_classes=14)
    single = task.create_model("alexnet", input_shape=(96, 96, 1), num_classes=14, grouped=False)
    assert grouped.get_layer("conv2").groups == 2 and single.get_layer("conv2").groups == 1
