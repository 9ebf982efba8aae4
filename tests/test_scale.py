"""Survey-scale prediction on Dask: tiles with a catalogue, catalogue parts, files; exactly once, resumable."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from conftest import DEEPSKY, run_cli, shared

TILE_PIXELS = 160
SCALE_DEG = 0.396 / 3600
BANDS = 5  # star-galaxy's u,g,r,i,z


def tile_wcs(ra, dec, pixels=TILE_PIXELS):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(pixels + 1) / 2, (pixels + 1) / 2]
    wcs.wcs.cdelt = [-SCALE_DEG, SCALE_DEG]
    return wcs


def write_tiles(folder, grid=(2, 2), seed=0, overlap=60):
    """Overlapping tiles of noise on a grid around (150, 2) deg; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    step = (TILE_PIXELS - overlap) * SCALE_DEG
    for i in range(grid[0]):
        for j in range(grid[1]):
            header = tile_wcs(150 + i * step / np.cos(np.radians(2)), 2 + j * step).to_header()
            images = rng.normal(0, 0.01, (BANDS, TILE_PIXELS, TILE_PIXELS)).astype(np.float32)
            hdus = [fits.PrimaryHDU(images[0], header=header)]
            hdus += [fits.ImageHDU(band, header=header) for band in images[1:]]
            path = folder / f"tile_{i}_{j}.fits"
            fits.HDUList(hdus).writeto(path)
            paths.append(path)
    return paths


def write_catalogue(path, tiles, n=400, off=15, seed=1):
    """Random positions over the tiles, ``off`` of them far from any; CSV, Parquet or FITS by suffix."""
    rng = np.random.default_rng(seed)
    corners = []
    for tile in tiles:
        wcs = WCS(fits.getheader(tile))
        corners.append(wcs.all_pix2world([[0, 0], [TILE_PIXELS - 1, TILE_PIXELS - 1]], 0))
    corners = np.concatenate(corners)
    ra = rng.uniform(corners[:, 0].min(), corners[:, 0].max(), n)
    dec = rng.uniform(corners[:, 1].min(), corners[:, 1].max(), n)
    ra[:off], dec[:off] = 10 + rng.uniform(0, 1, off), -30.0
    table = pd.DataFrame({"id": np.arange(1000, 1000 + n), "ra": ra, "dec": dec})
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        table.to_parquet(path, row_group_size=97)
    else:
        from astropy.table import Table

        Table.from_pandas(table).write(path)
    return table


def read_parts(out):
    return pd.read_parquet(out / "parts")


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    folder = tmp_path_factory.mktemp("survey")
    tiles = write_tiles(folder)
    table = write_catalogue(folder / "objects.csv", tiles)
    return folder, tiles, table


def test_tiles_predict_every_row_exactly_once_and_match_single_process_predict(trained_run, survey, tmp_path):
    folder, tiles, table = survey
    out = tmp_path / "out"
    result = run_cli("predict", trained_run, "--tiles", *tiles, "--catalog", folder / "objects.csv", "-o", out,
                     "--workers", 2, "--ordered")
    assert "400 rows" in result.stdout
    parts = read_parts(out)
    assert sorted(parts["row"]) == list(range(400))  # every row once
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["rows"] == 400
    assert (parts["flag"] == "off_tiles").sum() == 15
    assert set(parts.loc[parts["flag"] == "off_tiles", "row"]) == set(range(15))
    ordered = pd.read_parquet(out / "predictions.parquet")
    assert list(ordered["row"]) == list(range(400)) and list(ordered["id"]) == list(table["id"])
    # the model was loaded once per worker process, not once per tile
    loads = {}
    for entry in manifest["partitions"].values():
        loads[entry["pid"]] = max(loads.get(entry["pid"], 0), entry["model_loads"])
    assert set(loads.values()) == {1}
    # the same cutouts and scores as the single-process predict of one tile
    tile = tiles[0].name
    mine = parts[(parts["tile"] == tile) & (parts["flag"] == "")].sort_values("row")
    xy = pd.DataFrame({"id": mine["id"], "x": mine["x"], "y": mine["y"]})
    xy.to_csv(tmp_path / "xy.csv", index=False)
    run_cli("predict", trained_run, tiles[0], "--catalog", tmp_path / "xy.csv", "-o", tmp_path / "single.csv")
    single = pd.read_csv(tmp_path / "single.csv")
    assert list(single["id"]) == list(mine["id"])
    np.testing.assert_allclose(single["p_galaxy"], mine["p_galaxy"], atol=1e-5)


@pytest.mark.slow  # the default suite's CLI runs of --tiles cover the same code
def test_edge_rows_are_flagged_and_an_overlap_goes_to_the_deeper_tile(trained_run, survey, tmp_path):
    folder, tiles, _ = survey
    wcs0 = WCS(fits.getheader(tiles[0]))
    # one object 3 pixels inside tile 0's east edge (x grows westwards; no tile covers its cutout), one
    # in the overlap with the tile west of it, 25 pixels from tile 0's edge and 34 from that tile's
    ra, dec = wcs0.all_pix2world([TILE_PIXELS - 4.0, 25.0], [80.0, 80.0], 0)
    pd.DataFrame({"id": [1, 2], "ra": ra, "dec": dec}).to_csv(tmp_path / "two.csv", index=False)
    out = tmp_path / "out"
    run_cli("predict", trained_run, "--tiles", *tiles, "--catalog", tmp_path / "two.csv", "-o", out, "--workers", 1)
    parts = read_parts(out).set_index("id")
    assert parts.loc[1, "flag"] == "edge" and np.isnan(parts.loc[1, "p_galaxy"])
    assert parts.loc[2, "flag"] == "" and parts.loc[2, "tile"] == tiles[2].name  # deeper inside the tile west of it


@pytest.mark.slow  # the default suite's CLI runs of --tiles cover the same code
def test_a_rerun_skips_finished_parts_and_refuses_another_job(trained_run, survey, tmp_path):
    folder, tiles, _ = survey
    out = tmp_path / "out"
    args = ("predict", trained_run, "--tiles", *tiles, "--catalog", folder / "objects.csv", "-o", out, "--workers", 1)
    run_cli(*args)
    first = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    again = run_cli(*args)
    assert "parts already done" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()} == first
    other = run_cli("predict", trained_run, "--tiles", *tiles[:2], "--catalog", folder / "objects.csv", "-o", out,
                    check=False)
    assert other.returncode == 2 and "another job" in other.stderr and "Traceback" not in other.stderr


def test_a_killed_worker_then_a_killed_command_still_give_every_row_once(trained_run, tmp_path):
    """kill -9 of a Dask worker mid-run (its tile is redone elsewhere), then kill -9 of the command itself: the
    same command again finishes the job, every row once."""
    tiles = write_tiles(tmp_path, grid=(4, 3), seed=3)
    write_catalogue(tmp_path / "objects.parquet", tiles, n=3000, off=40, seed=4)
    out = tmp_path / "out"
    args = [*DEEPSKY, "predict", str(trained_run), "--tiles", *map(str, tiles), "--catalog",
            str(tmp_path / "objects.parquet"), "-o", str(out), "--workers", "2", "--batch-size", "16"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = out / "manifest.json"
    deadline = time.time() + 300
    killed = []
    while time.time() < deadline and process.poll() is None and len(killed) < 2:
        done = json.loads(manifest.read_text())["partitions"] if manifest.is_file() else {}
        if done and not killed:
            os.kill(next(iter(done.values()))["pid"], signal.SIGKILL)  # a worker that has written a part
            killed.append(len(done))
        elif killed and len(done) > killed[0]:  # the job went on without that worker
            os.kill(process.pid, signal.SIGKILL)
            killed.append(len(done))
        time.sleep(0.05)
    assert len(killed) == 2 and killed[1] < 13, f"the run ended before both kills ({killed}); give it more work"
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL
    # the killed command's workers may still be finishing a tile: a part is written whole or not at all
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "parts already done" in result.stdout
    parts = read_parts(out)
    assert len(parts) == 3000 and sorted(parts["row"]) == list(range(3000))
    assert (parts["flag"] == "off_tiles").sum() == 40


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".parquet", ".fits"])
def test_catalogue_formats_read_by_parts_give_the_same_table(trained_run, survey, tmp_path, suffix):
    folder, tiles, table = survey
    path = tmp_path / f"objects{suffix}"
    write_catalogue(path, tiles)
    out = tmp_path / "out"
    run_cli("predict", trained_run, "--tiles", *tiles, "--catalog", path, "-o", out, "--workers", 1, "--ordered")
    ordered = pd.read_parquet(out / "predictions.parquet")
    assert list(ordered["id"]) == list(table["id"])


def test_a_hats_catalogue_written_by_lsdb_is_read_through_lsdb(trained_run, survey, tmp_path):
    lsdb = pytest.importorskip("lsdb")
    folder, tiles, table = survey
    catalogue = lsdb.from_dataframe(table, ra_column="ra", dec_column="dec", partition_rows=400)
    catalogue.write_catalog(tmp_path / "hats", catalog_name="objects")
    assert catalogue.npartitions == 2  # the rows on the tiles, and those far off them
    out = tmp_path / "out"
    run_cli("predict", trained_run, "--tiles", *tiles, "--catalog", tmp_path / "hats", "-o", out, "--workers", 1)  # the reading is tested; two workers elsewhere
    parts = read_parts(out)
    assert sorted(parts["id"]) == sorted(table["id"])
    assert set(parts.loc[parts["flag"] == "off_tiles", "id"]) == set(table["id"][:15])
    assert np.isfinite(parts.loc[parts["flag"] == "", "p_galaxy"]).all()


@pytest.mark.slow  # the default suite's CLI runs of --tiles cover the same code
def test_catalogue_task_over_a_hats_catalogue(tmp_path):
    lsdb = pytest.importorskip("lsdb")
    sdss = shared("sdss_photometry/sdss_dr17_10k.csv")
    run = tmp_path / "run"
    run_cli("train", "sdss-photometry", "--data", sdss, "--epochs", 1, "--n", 2000, "-o", run)
    table = pd.read_csv(sdss)
    catalogue = lsdb.from_dataframe(table, ra_column="alpha", dec_column="delta", partition_rows=2500, highest_order=10)
    catalogue.write_catalog(tmp_path / "hats", catalog_name="sdss")
    out = tmp_path / "out"
    run_cli("predict", run, tmp_path / "hats", "-o", out, "--workers", 2, "--ordered")
    ordered = pd.read_parquet(out / "predictions.parquet")
    assert len(ordered) == len(table) and ordered["row"].is_monotonic_increasing
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["partitions"]) == catalogue.npartitions


@pytest.mark.slow  # the default suite's CLI runs of --tiles cover the same code
def test_many_files_one_part_each_match_single_process_predict(trained_run, small_data, tmp_path):
    out = tmp_path / "out"
    run_cli("predict", trained_run, small_data, small_data, "-o", out, "--workers", 2, "--ordered")
    ordered = pd.read_parquet(out / "predictions.parquet")
    run_cli("predict", trained_run, small_data, "-o", tmp_path / "single.csv")
    single = pd.read_csv(tmp_path / "single.csv")
    assert len(ordered) == 2 * len(single)
    for k in range(2):
        np.testing.assert_allclose(ordered["p_galaxy"][k * len(single):(k + 1) * len(single)], single["p_galaxy"],
                                   atol=1e-5)


def test_bad_inputs_fail_with_one_line(trained_run, survey, tmp_path):
    folder, tiles, _ = survey
    broken = tmp_path / "broken.fits"
    broken.write_bytes(tiles[0].read_bytes()[: 2880 * 3])
    coarse = tmp_path / "coarse.fits"
    with fits.open(tiles[0]) as hdus:
        for hdu in hdus:
            hdu.header["CDELT1"], hdu.header["CDELT2"] = -2 * SCALE_DEG, 2 * SCALE_DEG
        hdus.writeto(coarse)
    cases = [
        (("--tiles", *tiles, "-o", tmp_path / "a"), "needs a --catalog"),
        (("--tiles", broken, "--catalog", folder / "objects.csv", "-o", tmp_path / "b"), "broken.fits"),
        (("--tiles", *tiles, "--catalog", folder / "missing.csv", "-o", tmp_path / "c"), "missing.csv: no such file"),
        (("--tiles", coarse, "--catalog", folder / "objects.csv", "-o", tmp_path / "e"), "pixels of 0.792 arcsec"),
        (("--tiles", *tiles, "--catalog", folder / "objects.csv", "-o", tmp_path / "d", "--workers", 0),
         "--workers"),
    ]
    for args, expected in cases:
        result = run_cli("predict", trained_run, *args, check=False)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def write_big_tile(path, pixels, bands=BANDS):
    """A multi-extension tile of ``bands`` float32 images of ``pixels``^2, written in strips (never whole in memory)."""
    header = tile_wcs(150, 2, pixels).to_header()
    strip = np.random.default_rng(0).normal(0, 0.01, (256, pixels)).astype(">f4")
    with open(path, "wb") as f:
        for band in range(bands):
            hdu = (fits.PrimaryHDU if band == 0 else fits.ImageHDU)(header=header.copy())
            hdu.header["BITPIX"], hdu.header["NAXIS"] = -32, 2
            hdu.header["NAXIS1"], hdu.header["NAXIS2"] = pixels, pixels
            f.write(hdu.header.tostring().encode("ascii"))
            for start in range(0, pixels, len(strip)):
                f.write(strip[: min(len(strip), pixels - start)].tobytes())
            f.write(b"\0" * (-f.tell() % 2880))


def test_memory_stays_bounded_on_a_tile_larger_than_the_memory_used(trained_run, tmp_path):
    """A 2 GB tile: no process holds as much memory of its own (anonymous pages; the tile is memory-mapped, its
    pages the kernel's to drop); a worker that read the tile whole would hold more than 2 GB."""
    pixels = 10_000
    tile = tmp_path / "big.fits"
    write_big_tile(tile, pixels)
    rng = np.random.default_rng(5)
    wcs = tile_wcs(150, 2, pixels)
    ra, dec = wcs.all_pix2world(rng.uniform(30, pixels - 30, 1000), rng.uniform(30, pixels - 30, 1000), 0)
    pd.DataFrame({"id": np.arange(1000), "ra": ra, "dec": dec}).to_parquet(tmp_path / "objects.parquet")
    peak = predict_measuring_memory(trained_run, tile, tmp_path / "objects.parquet", tmp_path / "out")
    parts = read_parts(tmp_path / "out")
    assert len(parts) == 1000 and (parts["flag"] == "").all() and np.isfinite(parts["p_galaxy"]).all()
    assert 0 < peak < tile.stat().st_size, f"a process held {peak / 2**20:.0f} MiB of its own"


def predict_measuring_memory(run, tile, catalogue, out) -> int:
    """Run ``deepsky predict --tiles`` on one worker; the most memory of its own (anonymous pages, bytes) that the
    command or its Dask worker held, sampled as they ran."""
    import psutil

    command = subprocess.Popen([*DEEPSKY, "predict", str(run), "--tiles", str(tile), "--catalog", str(catalogue),
                                "-o", str(out), "--workers", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while command.poll() is None:
        try:
            processes = [psutil.Process(command.pid), *psutil.Process(command.pid).children(recursive=True)]
        except psutil.Error:
            break
        for process in processes:
            try:
                anonymous = int(open(f"/proc/{process.pid}/status").read().split("RssAnon:")[1].split()[0]) * 1024
            except (OSError, IndexError):
                continue
            peak = max(peak, anonymous)
        time.sleep(0.1)
    _, err = command.communicate()
    assert command.returncode == 0, err
    return peak


@pytest.mark.slow  # about two minutes: 60 million catalogue rows
def test_memory_stays_bounded_on_a_catalogue_larger_than_the_memory_used(trained_run, tmp_path):
    """A Parquet catalogue of 60 million rows (1.4 GB as numbers in memory), almost all off the tile: no process
    holds as much; one reading the catalogue whole would (written as one row group, a single part, a worker held
    21 GB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, group = 60_000_000, 1_000_000
    (tile,) = write_tiles(tmp_path, grid=(1, 1))
    catalogue = tmp_path / "objects.parquet"
    rng = np.random.default_rng(2)
    with pq.ParquetWriter(catalogue, pa.schema([("id", pa.int64()), ("ra", pa.float64()),
                                                ("dec", pa.float64())])) as writer:
        for start in range(0, rows, group):  # written a row group at a time, never whole
            ra, dec = 150 + rng.uniform(-1, 1, group), 2 + rng.uniform(-1, 1, group)
            table = pa.table({"id": np.arange(start, start + group), "ra": ra, "dec": dec})
            writer.write_table(table, row_group_size=group)
    peak = predict_measuring_memory(trained_run, tile, catalogue, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["rows"] == rows
    written = sum(pq.ParquetFile(path).metadata.num_rows for path in (tmp_path / "out" / "parts").glob("*.parquet"))
    assert written == rows
    assert 0 < peak < rows * 24, f"a process held {peak / 2**20:.0f} MiB of its own"
