"""Galaxy Zoo 1 reader, image-file reader for predict, and the crop/downsample pipeline they share."""

import csv
import zlib

import numpy as np
import pytest
from conftest import shared

from deepsky.data.galaxyzoo import GZ1_CLASSES, MERGED_CLASSES, load_galaxy_zoo, stratified_split
from deepsky.data.image_folders import crop_and_resample, load_image, prepare_image, read_images
from deepsky.errors import DeepskyError

Image = pytest.importorskip("PIL.Image", reason="Pillow decodes the JPEG/PNG images")

GZ1 = "galaxyzoo1_sdss"
LIMIT = 200


# -- the real Galaxy Zoo 1 folder -----------------------------------------------------


@pytest.fixture(scope="module")
def real_folder():
    return shared(GZ1)


@pytest.fixture(scope="module")
def real_rows(real_folder):
    with open(real_folder / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))[:LIMIT]


@pytest.fixture(scope="module")
def merged(real_folder):
    return load_galaxy_zoo(real_folder, size=64, limit=LIMIT)


@pytest.fixture(scope="module")
def original(real_folder):
    return load_galaxy_zoo(real_folder, size=64, limit=LIMIT, classes="original")


def test_real_shapes_value_range_and_meta(merged, real_rows):
    n_kept = sum(row["gz1_class"] != "4" for row in real_rows)
    assert merged.images.shape == (n_kept, 64, 64, 3)
    assert merged.images.dtype == np.float32
    assert merged.images.min() >= 0.0 and merged.images.max() <= 1.0
    assert merged.images.std() > 0.01  # real pictures, not blank
    assert merged.labels.dtype == np.int64 and len(merged.labels) == n_kept
    meta = merged.meta
    assert meta["task"] == "galaxy-morphology"
    assert meta["bands"] == ["g", "r", "i"]
    assert meta["classes"] == list(MERGED_CLASSES)
    assert meta["pixel_scale_arcsec"] is None and "Petrosian" in meta["pixel_scale_note"]
    assert meta["source_pixels"] == [[423, 423]]
    assert (meta["size"], meta["crop_fraction"]) == (64, 0.5)


def test_real_galaxy_sits_in_the_centre(merged):
    """The crop default relies on galaxies filling the centre: the centre is brighter than the rim."""
    mean = merged.images.mean(axis=(0, 3))
    assert mean[24:40, 24:40].mean() > 3 * np.concatenate([mean[:4].ravel(), mean[-4:].ravel()]).mean()


def test_real_class_counts_merged_vs_original(merged, original, real_rows):
    codes = np.array([int(row["gz1_class"]) for row in real_rows])
    assert original.meta["classes"] == list(GZ1_CLASSES)
    assert np.array_equal(original.labels, codes)
    assert np.array_equal(np.bincount(original.labels, minlength=6), np.bincount(codes, minlength=6))
    by_code = np.bincount(codes, minlength=6)
    expected = [by_code[0], by_code[1] + by_code[2], by_code[3], by_code[5]]
    assert np.bincount(merged.labels, minlength=4).tolist() == expected
    assert merged.meta["dropped"] == {"don't know": int(by_code[4])}
    # The same pixels either way: merging only relabels and drops "don't know".
    kept = codes != 4
    assert np.array_equal(merged.images, original.images[kept])
    assert np.array_equal(merged.objects["gz1_class"], codes[kept])


def test_real_objids_are_exact_strings(original, real_rows):
    objids = original.objects["objid"]
    assert objids.dtype.kind == "U"
    assert objids.tolist() == [row["sdss_objid"] for row in real_rows]
    assert all(len(o) in (18, 19) and o.isdigit() for o in objids)
    # Exact: float64 would have rounded these 18-digit numbers.
    assert objids.tolist() == [row["filename"].removesuffix(".jpeg") for row in real_rows]


def test_real_load_is_deterministic(real_folder, merged):
    again = load_galaxy_zoo(real_folder, size=64, limit=LIMIT, workers=1)
    assert np.array_equal(again.images, merged.images)
    assert np.array_equal(again.labels, merged.labels)
    assert np.array_equal(again.objects["objid"], merged.objects["objid"])


def test_read_images_matches_the_training_reader(real_folder, original):
    """deepsky predict on the JPEG files must see exactly what training saw."""
    names = [f"{objid}.jpeg" for objid in original.objects["objid"][:5]]
    images, ids, info = read_images([real_folder / "images" / n for n in names], 64, ["g", "r", "i"])
    assert ids == names
    assert np.array_equal(images, original.images[:5])
    assert info["formats"] == {"jpeg": 5}


def test_real_stratified_split_keeps_class_fractions(merged):
    labels = merged.labels
    train, val = stratified_split(labels, 0.25, seed=3)
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.union1d(train, val), np.arange(len(labels)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    for c in np.unique(labels):
        n_c = (labels == c).sum()
        assert abs((labels[val] == c).sum() - 0.25 * n_c) <= 1
    again = stratified_split(labels, 0.25, seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    assert not np.array_equal(stratified_split(labels, 0.25, seed=4)[1], val)


# -- stratified_split on its own --------------------------------------------------------


def test_stratified_split_small_classes_and_string_labels():
    labels = np.array(["a"] * 10 + ["b"] * 2 + ["c"])
    train, val = stratified_split(labels, 0.2, seed=0)
    assert (labels[val] == "a").sum() == 2
    assert (labels[val] == "b").sum() == 1 and (labels[train] == "b").sum() == 1  # both sides
    assert (labels[train] == "c").sum() == 1  # a single member stays in training
    assert val.dtype == np.int64


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_stratified_split_refuses_bad_fraction(fraction):
    with pytest.raises(DeepskyError, match="fraction"):
        stratified_split(np.zeros(10), fraction, seed=0)


# -- the crop/downsample pipeline -------------------------------------------------------


def test_area_average_not_nearest_neighbour():
    """A one-pixel checkerboard halved must average to grey; nearest-neighbour would keep 0 or 1."""
    board = (np.indices((8, 8)).sum(axis=0) % 2).astype(np.float32)[..., None]
    out = crop_and_resample(board, 4, crop_fraction=1.0)
    assert np.allclose(out, 0.5)


def test_crop_is_centred_with_fractional_edges():
    image = np.zeros((5, 5, 1), np.float32)
    image[2, 2] = 1.0
    # crop 0.6 of 5 = pixels 1..4, downsampled to 1: the mean of the central 3x3 block
    assert np.isclose(crop_and_resample(image, 1, 0.6)[0, 0, 0], 1 / 9)
    # crop 0.5 of 5 = 2.5 pixels from 1.25 to 3.75: the central pixel counts fully, its neighbours by 3/4
    assert np.isclose(crop_and_resample(image, 1, 0.5)[0, 0, 0], 1 / 6.25)
    constant = np.full((9, 13, 2), 7.0)
    assert np.allclose(crop_and_resample(constant, 5, 0.37), 7.0)  # non-square: crop of the shorter side


@pytest.mark.parametrize("size, crop", [(0, 0.5), (64.0, 0.5), (64, 0.0), (64, 1.2)])
def test_pipeline_refuses_bad_geometry(size, crop):
    with pytest.raises(DeepskyError, match="size|crop_fraction"):
        crop_and_resample(np.zeros((8, 8, 1)), size, crop)


def test_colour_channels_become_g_r_i(tmp_path):
    """SDSS colour JPEGs show i, r, g as red, green, blue; band 0 must be g (blue)."""
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50  # red, green, blue
    Image.fromarray(rgb).save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png", 3)
    assert np.allclose(out[0, 0], [50 / 255, 100 / 255, 200 / 255])
    image, shape = prepare_image(tmp_path / "x.png", 4, 3, crop_fraction=1.0)
    assert shape == (10, 10)
    assert np.allclose(image, out[:4, :4].mean(axis=(0, 1)), atol=1e-6)


def test_picture_scaling_16_bit_and_alpha(tmp_path):
    Image.fromarray(np.full((6, 6), 65535 // 5, np.uint16)).save(tmp_path / "deep.png")
    assert np.allclose(load_image(tmp_path / "deep.png", 1), (65535 // 5) / 65535)
    Image.fromarray(np.full((6, 6, 4), 51, np.uint8), mode="RGBA").save(tmp_path / "alpha.png")
    assert load_image(tmp_path / "alpha.png", 3).shape == (6, 6, 3)  # transparency is not a band


# -- synthetic Galaxy Zoo folders: every bad input ---------------------------------------


def _jpeg(path, grey=False, side=40, value=120):
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    shape = (side, side) if grey else (side, side, 3)
    array = np.clip(rng.normal(value, 20, size=shape), 0, 255).astype(np.uint8)
    Image.fromarray(array).save(path, quality=95)


def make_folder(root, codes=(0, 1, 2, 3, 4, 5), header="filename,sdss_objid,gz1_class,gz1_name,redshift",
                images=True):
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    lines = [header]
    for i, code in enumerate(codes):
        objid = str(587722952767439450 + i)
        lines.append(f"{objid}.jpeg,{objid},{code},name{code},0.{i + 1}")
        if images:
            _jpeg(root / "images" / f"{objid}.jpeg")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def test_synthetic_folder_counts_extra_columns_and_limit(tmp_path):
    folder = make_folder(tmp_path / "gz", codes=(0, 1, 2, 3, 4, 5, 0))
    data = load_galaxy_zoo(folder, size=8, workers=2)
    assert data.images.shape == (6, 8, 8, 3)
    assert data.labels.tolist() == [0, 1, 1, 2, 3, 0]
    assert data.meta["dropped"] == {"don't know": 1}
    assert np.allclose(data.objects["redshift"], [0.1, 0.2, 0.3, 0.4, 0.6, 0.7])
    assert "gz1_name" not in data.objects  # text, not per-object numbers
    original = load_galaxy_zoo(folder, size=8, classes="original", limit=3)
    assert original.labels.tolist() == [0, 1, 2] and original.meta["n_rows"] == 3
    seen = []
    load_galaxy_zoo(folder, size=8, progress=seen.append)
    assert sum(seen) == 6


def test_missing_folder(tmp_path):
    with pytest.raises(DeepskyError, match="nowhere: no such folder"):
        load_galaxy_zoo(tmp_path / "nowhere")


def test_missing_labels_csv(tmp_path):
    (tmp_path / "gz" / "images").mkdir(parents=True)
    with pytest.raises(DeepskyError, match=r"labels\.csv: no such file"):
        load_galaxy_zoo(tmp_path / "gz")


def test_missing_columns(tmp_path):
    folder = make_folder(tmp_path / "gz", header="filename,sdss_objid,class,gz1_name,redshift")
    with pytest.raises(DeepskyError, match=r"labels\.csv: missing column\(s\) gz1_class; found"):
        load_galaxy_zoo(folder)


@pytest.mark.parametrize("code", ["7", "-1", "x", "1.5"])
def test_label_code_outside_0_to_5(tmp_path, code):
    folder = make_folder(tmp_path / "gz", codes=(0, 1), images=True)
    text = (folder / "labels.csv").read_text().splitlines()
    text[2] = text[2].replace(",1,name1", f",{code},name1")
    (folder / "labels.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DeepskyError, match=rf"labels\.csv: line 3: gz1_class '{code}' is not a Galaxy Zoo 1 class"):
        load_galaxy_zoo(folder)


def test_objid_mangled_into_a_float(tmp_path):
    folder = make_folder(tmp_path / "gz", codes=(0,))
    text = (folder / "labels.csv").read_text().replace(",587722952767439450,", ",5.8772295276744E+17,")
    (folder / "labels.csv").write_text(text)
    with pytest.raises(DeepskyError, match="line 2: sdss_objid '5.8772295276744E\\+17' is not a whole number"):
        load_galaxy_zoo(folder)


def test_repeated_objid(tmp_path):
    folder = make_folder(tmp_path / "gz", codes=(0, 1))
    text = (folder / "labels.csv").read_text().replace("587722952767439451", "587722952767439450")
    (folder / "labels.csv").write_text(text)
    with pytest.raises(DeepskyError, match="line 3: sdss_objid 587722952767439450 repeats line 2"):
        load_galaxy_zoo(folder)


def test_image_listed_but_absent(tmp_path):
    folder = make_folder(tmp_path / "gz", codes=(0, 1, 3))
    (folder / "images" / "587722952767439451.jpeg").unlink()
    with pytest.raises(DeepskyError, match=r"587722952767439451\.jpeg: listed in .*labels\.csv \(line 3\) but absent"):
        load_galaxy_zoo(folder)


def test_corrupt_jpeg(tmp_path):
    folder = make_folder(tmp_path / "gz", codes=(0, 1, 3))
    (folder / "images" / "587722952767439451.jpeg").write_bytes(b"not a jpeg at all" * 10)
    with pytest.raises(DeepskyError, match=r"587722952767439451\.jpeg: corrupt or truncated image"):
        load_galaxy_zoo(folder, workers=2)


def test_truncated_jpeg(tmp_path):
    folder = make_folder(tmp_path / "gz", codes=(0, 1, 3))
    path = folder / "images" / "587722952767439452.jpeg"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DeepskyError, match=r"587722952767439452\.jpeg: corrupt or truncated image"):
        load_galaxy_zoo(folder, workers=2)


def test_grey_jpeg_in_a_colour_set(tmp_path):
    folder = make_folder(tmp_path / "gz", codes=(0, 1))
    _jpeg(folder / "images" / "587722952767439450.jpeg", grey=True)
    with pytest.raises(DeepskyError, match=r"439450\.jpeg: a grey image with 1 band\(s\); the model expects 3"):
        load_galaxy_zoo(folder)


def test_bad_arguments(tmp_path):
    folder = make_folder(tmp_path / "gz", codes=(0,))
    with pytest.raises(DeepskyError, match="classes must be 'merged' or 'original'"):
        load_galaxy_zoo(folder, classes="six")
    with pytest.raises(DeepskyError, match="limit"):
        load_galaxy_zoo(folder, limit=0)
    with pytest.raises(DeepskyError, match="crop_fraction"):
        load_galaxy_zoo(folder, crop_fraction=0)


# -- read_images: files and folders for deepsky predict -----------------------------------


def _grey_png(path, value, side=12):
    Image.fromarray(np.full((side, side), value, np.uint8)).save(path)


def test_read_images_keeps_input_order_and_sorts_folders(tmp_path):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    _grey_png(folder / "b.png", 20)
    _grey_png(folder / "a.png", 10)
    _grey_png(folder / "sub" / "skipped.png", 99)  # not recursive
    (folder / "notes.txt").write_text("not an image")
    _grey_png(folder / ".hidden.png", 98)
    _grey_png(tmp_path / "z.png", 30)
    seen = []
    images, ids, info = read_images([tmp_path / "z.png", folder], 4, 1, progress=seen.append)
    assert ids == ["z.png", "a.png", "b.png"]
    assert np.allclose(images[:, 0, 0, 0], np.array([30, 10, 20]) / 255)
    assert images.shape == (3, 4, 4, 1) and images.dtype == np.float32
    assert info["n"] == 3 and sum(seen) == 3


def test_read_images_grey_picture_for_a_colour_model(tmp_path):
    _grey_png(tmp_path / "grey.png", 10)
    with pytest.raises(DeepskyError, match=r"grey\.png: a grey image with 1 band\(s\); the model expects 3"):
        read_images([tmp_path / "grey.png"], 8, ["g", "r", "i"])


def test_read_images_colour_picture_for_a_grey_model(tmp_path):
    _jpeg(tmp_path / "colour.jpg")
    with pytest.raises(DeepskyError, match=r"colour\.jpg: a colour image with 3 band\(s\); the model expects 1"):
        read_images([tmp_path / "colour.jpg"], 8, 1)


def test_read_images_unsupported_extension(tmp_path):
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(DeepskyError, match=r"x\.gif: unsupported image format; supported: .*\.jpeg.*\.png.*\.fits"):
        read_images([tmp_path / "x.gif"], 8, 1)


def test_read_images_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeepskyError, match="empty: folder holds no images"):
        read_images([tmp_path / "empty"], 8, 1)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DeepskyError, match=r"folder holds no images, only 1 other file\(s\)"):
        read_images(tmp_path / "empty", 8, 1)


def test_read_images_missing_path_and_nothing_given(tmp_path):
    with pytest.raises(DeepskyError, match="gone.png: no such file or folder"):
        read_images([tmp_path / "gone.png"], 8, 1)
    with pytest.raises(DeepskyError, match="no image files given"):
        read_images([], 8, 1)


def test_read_images_corrupt_png(tmp_path):
    _grey_png(tmp_path / "a.png", 10)
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(DeepskyError, match=r"b\.png: corrupt or truncated image"):
        read_images(tmp_path, 8, 1, workers=2)


def test_read_images_fits_values_kept_and_cube_layouts(tmp_path):
    from astropy.io import fits

    plane = np.arange(16, dtype=np.float32).reshape(4, 4) * 1000 - 3000  # flux, not 0-1
    fits.PrimaryHDU(plane).writeto(tmp_path / "one.fits")
    images, ids, info = read_images([tmp_path / "one.fits"], 2, 1, crop_fraction=1.0)
    assert np.allclose(images[0, ..., 0], [[-500, 1500], [7500, 9500]])
    assert info["formats"] == {"fits": 1}

    cube = np.stack([plane, 2 * plane, 3 * plane])  # bands first, as FITS keeps NAXIS3
    fits.PrimaryHDU(cube).writeto(tmp_path / "first.fits")
    fits.PrimaryHDU(np.moveaxis(cube, 0, -1)).writeto(tmp_path / "last.fits")
    images, ids, _ = read_images([tmp_path / "first.fits", tmp_path / "last.fits"], 4, 3, crop_fraction=1.0)
    assert np.array_equal(images[0], images[1])
    assert np.allclose(images[0, ..., 2], 3 * plane)
    assert ids == ["first.fits", "last.fits"]


def test_read_images_fits_with_nan(tmp_path):
    from astropy.io import fits

    plane = np.ones((6, 6), np.float32)
    plane[2, 3] = np.nan
    fits.PrimaryHDU(plane).writeto(tmp_path / "holes.fits")
    with pytest.raises(DeepskyError, match=r"holes\.fits: 1 NaN or infinite pixels"):
        read_images([tmp_path / "holes.fits"], 4, 1)


def test_read_images_fits_band_mismatch_and_damage(tmp_path):
    from astropy.io import fits

    fits.PrimaryHDU(np.ones((6, 6), np.float32)).writeto(tmp_path / "flat.fits")
    with pytest.raises(DeepskyError, match=r"flat\.fits: a 2-D FITS image with 1 band\(s\); the model expects 3"):
        read_images([tmp_path / "flat.fits"], 4, 3)
    fits.PrimaryHDU(np.ones((2, 6, 6), np.float32)).writeto(tmp_path / "two.fits")
    with pytest.raises(DeepskyError, match=r"two\.fits: cube of shape \(2, 6, 6\).*expects 3"):
        read_images([tmp_path / "two.fits"], 4, 3)
    fits.PrimaryHDU(np.ones((1, 2, 6, 6), np.float32)).writeto(tmp_path / "four.fits")
    with pytest.raises(DeepskyError, match=r"four\.fits: image has 4 dimensions"):
        read_images([tmp_path / "four.fits"], 4, 1)
    data = (tmp_path / "flat.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(data[: len(data) - 2000])
    with pytest.raises(DeepskyError, match=r"cut\.fits: corrupt or truncated FITS file"):
        read_images([tmp_path / "cut.fits"], 4, 1)
