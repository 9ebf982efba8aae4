"""Readers of users' data: SDSS luptitudes, cutout stacks, FITS images and catalogues.

One test per bad input: each must raise DeepskyError with a one-line message
that names the offending file.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from deepsky.data import tables
from deepsky.data.fits_cutouts import cutouts_from_fits
from deepsky.data.sdss import (
    SDSS_SOFTENING_MAGGIES,
    load_sdss_cutouts,
    luptitudes_to_nanomaggies,
    nanomaggies_to_luptitudes,
)
from deepsky.data.stacks import iter_stack, read_stack
from deepsky.data.store import Dataset
from deepsky.data.tables import read_catalog, write_table
from deepsky.errors import DeepskyError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SDSS_CUTOUTS = SHARED_DATA / "sdss_stargalaxy_cutouts"

SHAPE = (100, 100)  # (ny, nx) pixels
SOURCES_XY = [(30.0, 40.0), (61.0, 55.0), (70.0, 24.0)]  # 0-based pixel positions
BANDS = 3
SIZE = 15


@contextmanager
def raises_naming(path):
    """Expect a one-line DeepskyError whose message names ``path``."""
    with pytest.raises(DeepskyError) as info:
        yield info
    message = str(info.value)
    assert Path(path).name in message, message
    assert "\n" not in message


def _wcs() -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [50.5, 50.5]
    wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
    return wcs


def _band_images() -> np.ndarray:
    """(bands, ny, nx) float32: Gaussian sources on faint noise, brighter in redder bands."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    images = rng.normal(0.0, 0.01, (BANDS, *SHAPE))
    for k, (x, y) in enumerate(SOURCES_XY):
        blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
        images += (k + 1) * blob * np.arange(1, BANDS + 1)[:, None, None]
    return images.astype(np.float32)


def _write_mef(path, images, with_wcs=True) -> Path:
    header = _wcs().to_header() if with_wcs else None
    hdus = [fits.PrimaryHDU(images[0], header=header)]
    hdus += [fits.ImageHDU(band, header=header) for band in images[1:]]
    fits.HDUList(hdus).writeto(path)
    return Path(path)


def _write_per_band(tmp_path, images) -> list[Path]:
    paths = []
    for k, band in enumerate(images):
        path = tmp_path / f"band{k}.fits"
        fits.PrimaryHDU(band, header=_wcs().to_header()).writeto(path)
        paths.append(path)
    return paths


def _write_catalog(path, by="radec", positions=SOURCES_XY) -> Path:
    x, y = np.array(positions, dtype=float).T
    columns = {"ID": np.array([101, 102, 103][: len(x)])}
    if by == "radec":
        ra, dec = _wcs().all_pix2world(x, y, 0)
        columns.update(ra=ra, dec=dec)
    else:
        columns.update(x=x, y=y)
    return write_table(columns, path)


@pytest.fixture
def mef(tmp_path) -> Path:
    return _write_mef(tmp_path / "field.fits", _band_images())


@pytest.fixture
def radec_csv(tmp_path) -> Path:
    return _write_catalog(tmp_path / "objects.csv")


# --- SDSS luptitudes -------------------------------------------------------------


def test_luptitudes_round_trip_over_bright_faint_and_negative_flux():
    flux = np.array([[1e4, 100.0, 1.0, 0.0, -0.3], [0.05, -1.0, 3.0, 1e-3, 50.0]])
    lup = nanomaggies_to_luptitudes(flux)
    np.testing.assert_allclose(luptitudes_to_nanomaggies(lup), flux, rtol=1e-5, atol=1e-4)
    # Bright objects: luptitudes equal AB magnitudes 22.5 - 2.5 log10(nmgy).
    assert abs(lup[0, 0] - (22.5 - 2.5 * 4)) < 1e-3
    # Zero flux sits at -(2.5/ln10) ln b, the softening magnitude.
    assert np.isclose(lup[0, 3], -2.5 / np.log(10) * np.log(SDSS_SOFTENING_MAGGIES["i"]), atol=1e-4)


def test_luptitudes_band_axis_channels_first():
    flux = np.linspace(-0.5, 20.0, 5 * 4 * 4).reshape(1, 5, 4, 4)
    lup = nanomaggies_to_luptitudes(flux, axis=1)
    np.testing.assert_allclose(luptitudes_to_nanomaggies(lup, axis=1), flux, rtol=1e-5, atol=1e-4)


def test_load_sdss_cutouts_real_sample():
    if not SDSS_CUTOUTS.is_dir():
        pytest.skip(f"real SDSS cutouts not at {SDSS_CUTOUTS} (shared/data lives outside the repo)")
    dataset = load_sdss_cutouts(SDSS_CUTOUTS)
    assert dataset.images.shape == (20, 48, 48, 5) and dataset.images.dtype == np.float32
    assert dataset.labels.dtype == np.int64 and set(dataset.labels) == {0, 1}
    assert dataset.meta["units"] == "nanomaggies" and dataset.meta["classes"] == ["star", "galaxy"]
    # Sky-subtracted nanomaggies: the sky near zero, of the order of the SDSS noise (0.01-0.1).
    assert abs(np.median(dataset.images[:, :6])) < 0.2
    # Stars (label 0) are point sources: more of their light sits in the central pixels.
    yy, xx = np.mgrid[:48, :48]
    radius = np.hypot(yy - 23.5, xx - 23.5)
    r_band = dataset.images[..., 2]
    concentration = np.array([im[radius < 3].sum() / im[radius < 12].sum() for im in r_band])
    stars, galaxies = concentration[dataset.labels == 0], concentration[dataset.labels == 1]
    assert np.median(stars) > 2 * np.median(galaxies)


# --- cutouts from FITS -----------------------------------------------------------


def _assert_peaks_at_centre(cutouts):
    assert cutouts.shape == (len(SOURCES_XY), SIZE, SIZE, BANDS)
    for cutout in cutouts:
        for band in range(BANDS):
            peak = np.unravel_index(np.argmax(cutout[..., band]), (SIZE, SIZE))
            assert peak == (SIZE // 2, SIZE // 2)


def test_cutouts_by_radec_land_on_sources(mef, radec_csv):
    cutouts, ids, info = cutouts_from_fits([mef], radec_csv, bands=BANDS, size=SIZE)
    _assert_peaks_at_centre(cutouts)
    assert ids.tolist() == [101, 102, 103] and info["positions"] == "ra/dec"
    np.testing.assert_allclose(info["x"], [x for x, _ in SOURCES_XY], atol=1e-6)


def test_cutouts_by_xy_land_on_sources(tmp_path, mef):
    catalog = _write_catalog(tmp_path / "xy.csv", by="xy")
    cutouts, _, info = cutouts_from_fits([mef], catalog, bands=BANDS, size=SIZE)
    _assert_peaks_at_centre(cutouts)
    assert info["positions"] == "x/y"


def test_one_file_per_band_matches_multi_extension_file(tmp_path, mef, radec_csv):
    per_band = _write_per_band(tmp_path, _band_images())
    from_mef, _, _ = cutouts_from_fits([mef], radec_csv, bands=BANDS, size=SIZE)
    from_files, _, _ = cutouts_from_fits(per_band, radec_csv, bands=BANDS, size=SIZE)
    np.testing.assert_array_equal(from_mef, from_files)


def test_fits_catalogue_gives_the_same_cutouts(tmp_path, mef, radec_csv):
    as_fits = write_table({c: np.asarray(read_catalog(radec_csv)[c]) for c in ("ID", "ra", "dec")},
                          tmp_path / "objects.fits")
    expected, _, _ = cutouts_from_fits([mef], radec_csv, bands=BANDS, size=SIZE)
    cutouts, ids, _ = cutouts_from_fits([mef], as_fits, bands=BANDS, size=SIZE)
    np.testing.assert_array_equal(cutouts, expected)
    assert ids.tolist() == [101, 102, 103]


def test_missing_image_file(tmp_path, radec_csv):
    with raises_naming(tmp_path / "nowhere.fits"):
        cutouts_from_fits([tmp_path / "nowhere.fits"], radec_csv, bands=BANDS, size=SIZE)


def test_corrupt_fits_file(tmp_path, radec_csv):
    path = tmp_path / "noise.fits"
    path.write_bytes(np.random.default_rng(1).bytes(5760))
    with raises_naming(path):
        cutouts_from_fits([path], radec_csv, bands=BANDS, size=SIZE)


def test_truncated_fits_file(tmp_path, mef, radec_csv):
    path = tmp_path / "half.fits"
    whole = mef.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with raises_naming(path):
        cutouts_from_fits([path], radec_csv, bands=BANDS, size=SIZE)


def test_nan_pixels_inside_a_cutout(tmp_path, radec_csv):
    images = _band_images()
    x, y = SOURCES_XY[1]
    images[2, int(y) + 2, int(x) - 1] = np.nan
    path = _write_mef(tmp_path / "holes.fits", images)
    with raises_naming(path) as info:
        cutouts_from_fits([path], radec_csv, bands=BANDS, size=SIZE)
    assert "102" in str(info.value) and "101" not in str(info.value)


def test_wrong_band_count_in_fits(mef, radec_csv):
    with raises_naming(mef) as info:
        cutouts_from_fits([mef], radec_csv, bands=5, size=SIZE)
    assert "has 3 band images; the model expects 5" in str(info.value)


def test_band_images_of_different_shapes(tmp_path, radec_csv):
    paths = _write_per_band(tmp_path, _band_images())
    fits.PrimaryHDU(np.zeros((80, 100), np.float32), header=_wcs().to_header()).writeto(
        paths[2], overwrite=True
    )
    with raises_naming(paths[2]):
        cutouts_from_fits(paths, radec_csv, bands=BANDS, size=SIZE)


def test_no_wcs_with_radec_catalogue(tmp_path, radec_csv):
    path = _write_mef(tmp_path / "nowcs.fits", _band_images(), with_wcs=False)
    with raises_naming(path):
        cutouts_from_fits([path], radec_csv, bands=BANDS, size=SIZE)


def test_catalogue_without_position_columns(tmp_path, mef):
    catalog = write_table({"objid": np.arange(3), "mag_r": np.ones(3)}, tmp_path / "mags.csv")
    with raises_naming(catalog) as info:
        cutouts_from_fits([mef], catalog, bands=BANDS, size=SIZE)
    assert "objid, mag_r" in str(info.value)


def test_empty_catalogue(tmp_path, mef):
    catalog = tmp_path / "empty.csv"
    catalog.write_text("id,ra,dec\n")
    with raises_naming(catalog):
        cutouts_from_fits([mef], catalog, bands=BANDS, size=SIZE)


def test_positions_off_the_image_or_too_close_to_the_edge(tmp_path, mef):
    positions = [(50, 50), (3, 50), (250, 10)]  # inside, 3 pixels from the edge, off the image
    catalog = _write_catalog(tmp_path / "edge.csv", by="xy", positions=positions)
    with raises_naming(catalog) as info:
        cutouts_from_fits([mef], catalog, bands=BANDS, size=SIZE)
    assert "ids 102, 103" in str(info.value) and "100x100" in str(info.value)


def test_cutout_larger_than_the_image(mef, radec_csv):
    with raises_naming(mef):
        cutouts_from_fits([mef], radec_csv, bands=BANDS, size=128)


# --- stacks ----------------------------------------------------------------------


def test_stack_npy_channels_first_luptitudes_are_detected_and_converted(tmp_path):
    flux = np.random.default_rng(2).normal(0.0, 0.05, (4, 48, 48, 5)).astype(np.float32)
    path = tmp_path / "stack.npy"
    np.save(path, nanomaggies_to_luptitudes(flux).transpose(0, 3, 1, 2))
    images, ids, info = read_stack(path, bands=5, size=48)
    assert images.shape == (4, 48, 48, 5) and images.dtype == np.float32
    assert info["units"] == "luptitudes" and info["layout"] == "channels_first"
    np.testing.assert_allclose(images, flux, atol=1e-4)
    assert ids.tolist() == [0, 1, 2, 3]


def test_stack_single_cutout_in_nanomaggies(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, np.full((48, 48, 5), 0.2, np.float32))
    images, _, info = read_stack(path, bands=5, size=48)
    assert images.shape == (1, 48, 48, 5) and info["units"] == "nanomaggies"


def test_stack_h5_dataset_ids_and_units_from_metadata(tmp_path):
    path = Dataset(
        inputs=np.full((3, 32, 32, 5), 21.0, np.float32),
        objects={"id": np.array([7, 8, 9])},
        meta={"units": "nanomaggies"},
    ).save(tmp_path / "stack.h5")
    images, ids, info = read_stack(path, bands=5, size=32)
    assert ids.tolist() == [7, 8, 9]
    assert info["units"] == "nanomaggies" and info["units_from"] == "metadata"
    assert np.all(images == 21.0)  # a median of 21 would look like luptitudes without the metadata


def test_stack_read_by_chunks_equals_the_whole_stack(tmp_path):
    rng = np.random.default_rng(3)
    path = Dataset(inputs=rng.normal(size=(23, 16, 16, 5)).astype(np.float32),
                   objects={"id": np.arange(100, 123)}, meta={"units": "nanomaggies"}).save(tmp_path / "s.h5")
    whole, ids, _ = read_stack(path, bands=5, size=16)
    parts = list(iter_stack(path, bands=5, size=16, rows=10))
    assert [len(images) for images, _, _ in parts] == [10, 10, 3]
    assert np.array_equal(np.concatenate([images for images, _, _ in parts]), whole)
    assert np.concatenate([part_ids for _, part_ids, _ in parts]).tolist() == ids.tolist()


def test_stack_chunks_name_bad_cutouts_by_their_place_in_the_file(tmp_path):
    path = _save(tmp_path, "late.npy", _with_nan(20))
    with raises_naming(path) as info:
        list(iter_stack(path, bands=5, size=48, rows=8))
    assert "cutouts 3" in str(info.value)
    array = np.zeros((20, 5, 48, 48), np.float32)
    array[13, 0, 1, 1] = np.nan
    path = _save(tmp_path, "later.npy", array)
    with raises_naming(path) as info:
        list(iter_stack(path, bands=5, size=48, rows=8))
    assert "cutouts 13 have NaN" in str(info.value)


def _save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return path


def _junk(tmp_path):
    path = tmp_path / "junk.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    return path


def _with_nan(n):
    array = np.zeros((n, 5, 48, 48), np.float32)
    array[[3, 17], 0, 5, 5] = [np.nan, np.inf]
    return array


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "absent.npy", "no such file"),
        (_junk, "not a readable"),
        (lambda d: _save(d, "flat.npy", np.zeros((4, 48 * 48 * 5), np.float32)), "2 dimensions"),
        (lambda d: _save(d, "rgb.npy", np.zeros((2, 3, 48, 48), np.float32)),
         "has 3 bands; the model expects 5 (u,g,r,i,z)"),
        (lambda d: _save(d, "big.npy", np.zeros((2, 64, 64, 5), np.float32)), "64x64"),
        (lambda d: _save(d, "none.npy", np.zeros((0, 5, 48, 48), np.float32)), "0 cutouts"),
        (lambda d: _save(d, "nan.npy", _with_nan(20)), "cutouts 3, 17 have NaN or infinite"),
        (lambda d: _save(d, "text.npy", np.array(["a", "b"])), "expected a real numeric array"),
    ],
    ids=["missing", "corrupt", "wrong-ndim", "wrong-bands", "wrong-size", "empty", "nan", "text"],
)
def test_bad_stack(tmp_path, make, words):
    path = make(tmp_path)
    with raises_naming(path) as info:
        read_stack(path, bands=5, size=48)
    assert words in str(info.value)


def test_truncated_npy_stack(tmp_path):
    path = _save(tmp_path, "cut.npy", np.zeros((10, 5, 48, 48), np.float32))
    path.write_bytes(path.read_bytes()[:20000])
    with raises_naming(path):
        read_stack(path, bands=5, size=48)


# --- tables ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".fits.gz", ".parquet"])
def test_table_round_trip(tmp_path, suffix):
    columns = {
        "id": np.array([3, 4]),
        "flux_nmgy": np.array([1.5, -0.5]),
        "name": np.array(["a", "bc"]),
    }
    path = write_table(columns, tmp_path / f"out{suffix}", meta={"units": "nanomaggies"})
    table = read_catalog(path)
    for name, values in columns.items():
        assert table[name].tolist() == values.tolist()
    if suffix != ".csv":  # CSV stays plain so that every reader takes it
        assert {k.lower(): v for k, v in table.meta.items()}["units"] == "nanomaggies"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_unknown_table_extension_writes_nothing(tmp_path):
    path = tmp_path / "out.xlsx"
    with raises_naming(path) as info:
        write_table({"a": np.arange(3)}, path)
    assert ".parquet" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_failing_write_leaves_no_file_behind(tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    path.write_text("id\n1\n")

    def half_write(arrays, tmp, meta):
        Path(tmp).write_text("id\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(tables._WRITERS, "csv", half_write)
    with raises_naming(path):
        write_table({"id": np.arange(5)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert path.read_text() == "id\n1\n"  # the old file is untouched


def test_corrupt_catalogue(tmp_path):
    path = tmp_path / "objects.fits"
    path.write_bytes(b"SIMPLE  = nonsense" * 100)
    with raises_naming(path):
        read_catalog(path)


def test_dataset_round_trips_text_columns(tmp_path):
    # Galaxy Zoo's 18-digit SDSS objIDs are kept as text: exact, and readable by any HDF5 tool
    from deepsky.data.store import Dataset

    ids = np.array(["587722981741363294", "587722981742084216"])
    data = Dataset(inputs=np.zeros((2, 4, 4, 1), np.float32), labels=np.array([0, 1]),
                   objects={"objid": ids, "mag": np.array([17.0, 16.5])})
    back = Dataset.load(data.save(tmp_path / "d.h5"))
    assert back.objects["objid"].tolist() == ids.tolist() and back.objects["objid"].dtype.kind == "U"
    np.testing.assert_array_equal(back.objects["mag"], [17.0, 16.5])


def test_a_byte_order_mark_does_not_hide_the_first_column(tmp_path):
    """Excel writes UTF-8 CSV with a BOM; the first column keeps its name in catalogues and light curves."""
    from deepsky.data.lightcurves import read_light_curve
    from deepsky.data.tables import read_catalog

    catalog = tmp_path / "photometry.csv"
    catalog.write_text("u,g,r\n19.1,18.2,17.9\n", encoding="utf-8-sig")
    assert read_catalog(catalog).colnames == ["u", "g", "r"]
    curve = tmp_path / "curve.csv"
    times = np.linspace(0, 27, 300)
    curve.write_text("time,flux\n" + "".join(f"{t},{1 + 1e-3 * np.sin(t)}\n" for t in times), encoding="utf-8-sig")
    assert len(read_light_curve(curve).time) == 300
