"""Predict over a whole survey on Dask: FITS tiles with a catalogue, a catalogue alone, or many files.

The work is cut into *partitions*, each predicted by one Dask task and
written once, atomically, as one Parquet file under ``OUT/parts/``:

- **tiles** (``deepsky predict RUN --tiles TILE.fits... --catalog CAT -o OUT``):
  the catalogue is read part by part (:mod:`deepsky.data.catalog_parts`:
  CSV, FITS, Parquet or a HATS catalogue through LSDB) and every row is
  assigned to exactly one tile, the one whose edge it lies farthest from
  (tiles may overlap); rows on no tile keep their row with the flag
  ``off_tiles``. Each tile is then one partition: its cutouts are read from
  the memory-mapped FITS file next to the data, a batch at a time.
- **catalogue** (a catalogue task such as sdss-photometry): one partition per
  catalogue part.
- **files** (light curves, strain, cutout stacks): one partition per file.

A worker loads the model once and keeps it for every task it runs.
``OUT/manifest.json`` records the inputs and every finished partition; a
rerun after an interruption (a killed worker, or the command killed with
kill -9) skips what is finished and does the rest, so the table holds every
catalogue row exactly once. The table is the Parquet data set ``OUT/parts``
(``pandas.read_parquet("OUT/parts")``); ``ordered=True`` also writes
``OUT/predictions.parquet`` in catalogue order.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from deepsky.errors import DeepskyError, first_line

MANIFEST = "manifest.json"
FORMAT = "deepsky-survey-1"
PARTS, PLAN = "parts", "plan"
CUTOUT_ROWS = 2048  # cutouts a worker holds at once
ORDER_ROWS = 1_000_000  # rows sorted at once when the table is put in catalogue order
OFF_TILES, EDGE, BAD_PIXELS = "off_tiles", "edge", "nan_pixels"
ID_COLUMNS = ("id", "objid", "object_id", "obj_id", "source_id")


@dataclass
class Partition:
    """One unit of work: a tile's rows, a catalogue part or a file; ``rows`` expected (None: known when done)."""

    name: str
    rows: int | None
    work: Callable
    spec: dict


# -- the driver --------------------------------------------------------------------------------
def predict_survey(run_dir, inputs, output, catalog=None, tiles: bool = False, scheduler: str | None = None,
                   workers: int | None = None, batch_size: int = 256, ordered: bool = False,
                   on_progress: Callable | None = None, rows_per_part: int | None = None, client=None) -> dict:
    """Predict every object of a survey on Dask and write ``output/parts/*.parquet`` and ``output/manifest.json``.

    Parameters
    ----------
    run_dir : path
        Trained run.
    inputs : list of path
        FITS tiles (``tiles=True``: each a multi-extension file of the
        model's bands, or one band), else one catalogue (catalogue tasks) or
        the files to predict (one partition each).
    output : path
        Folder to create, or to resume when it holds this same job's manifest.
    catalog : path, optional
        With tiles: CSV, FITS, Parquet or HATS catalogue with ra/dec in
        degrees (or x/y in 0-based pixels for a single tile).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default a
        LocalCluster of ``workers`` processes on this machine.
    workers : int, optional
        LocalCluster processes, one thread each (default: the cores this process may use).
    ordered : bool
        Also write ``output/predictions.parquet`` in catalogue order.
    on_progress : callable, optional
        Called as ``on_progress(stage, done, total, rows_done, rows_total)``.
    client : dask.distributed.Client, optional
        A client to run on (kept open), instead of ``scheduler`` or a new LocalCluster.
    """
    from deepsky.data.catalog_parts import PART_ROWS
    from deepsky.runs import Run

    run = Run.open(run_dir)
    task, contract = run.task(), run.contract
    inputs = [Path(p) for p in inputs]
    output = Path(output)
    if not inputs:
        raise DeepskyError("no input files given")
    for path in [*inputs, *([Path(catalog)] if catalog else [])]:
        if not path.exists():
            raise DeepskyError(f"{path}: no such file")
    rows_per_part = rows_per_part or PART_ROWS
    mode = "tiles" if tiles else ("catalogue" if contract.get("layout") == "tables" else "files")
    if mode == "tiles":
        if contract.get("layout") != "cutouts":
            raise DeepskyError(f"--tiles cuts cutouts from images; {task.name} does not take cutouts")
        if catalog is None:
            raise DeepskyError("--tiles needs a --catalog of object positions (ra/dec in degrees)")
    elif catalog is not None:
        raise DeepskyError("--catalog goes with --tiles (FITS images); a catalogue task takes its catalogue as input")
    if mode == "catalogue" and len(inputs) != 1:
        raise DeepskyError(f"{inputs[0]}: give one catalogue (CSV, FITS, Parquet or HATS folder) to {task.name}")
    if mode == "catalogue" and not hasattr(task, "read_table"):
        raise DeepskyError(f"{task.name} cannot read a catalogue part by part")
    job = {"format": FORMAT, "run": str(Path(run_dir).resolve()), "mode": mode,
           "inputs": [_identity(p) for p in inputs], "catalog": _identity(Path(catalog)) if catalog else None,
           "batch_size": batch_size}
    manifest = _open_manifest(output, job)
    settings = {"run": job["run"], "batch_size": batch_size}

    started = time.perf_counter()
    own_client = client is None
    client, cluster = _client(scheduler, workers) if own_client else (client, None)
    try:
        progress = on_progress or (lambda *args: None)
        if mode == "tiles":
            partitions = _tile_partitions(client, manifest, output, inputs, Path(catalog), contract, settings,
                                          rows_per_part, progress)
        elif mode == "catalogue":
            partitions = _catalogue_partitions(inputs[0], settings, rows_per_part)
        else:
            partitions = [Partition(f"file-{k:06d}-{path.stem}", None, _predict_file,
                                    {**settings, "path": str(path)}) for k, path in enumerate(inputs)]
        skipped = _run_partitions(client, manifest, output, partitions, progress)
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    done = manifest["partitions"]
    total = sum(entry["rows"] for entry in done.values())
    expected = manifest.get("catalog_rows")
    if expected is not None and total != expected:
        raise DeepskyError(f"{output}: the parts hold {total} rows but the catalogue has {expected}; rerun to repair")
    if ordered:
        progress("ordering", 0, 1, 0, total)
        _write_ordered(output, manifest, total)
        progress("ordering", 1, 1, total, total)
    seconds = time.perf_counter() - started
    summary = {"rows": total, "predicted": sum(entry.get("predicted", 0) for entry in done.values()),
               "flagged": {flag: sum(entry.get("flags", {}).get(flag, 0) for entry in done.values())
                           for flag in sorted({f for entry in done.values() for f in entry.get("flags", {})})},
               "partitions": len(done), "skipped": skipped, "seconds": seconds,
               "objects_per_second": (total - sum(done[name]["rows"] for name in manifest.get("skipped", [])))
               / max(seconds, 1e-9), "table": str(output / PARTS),
               "ordered": str(output / "predictions.parquet") if ordered else None}
    manifest.update(complete=True, rows=total, summary=summary)
    manifest.pop("skipped", None)
    _write_manifest(output, manifest)
    return summary


def _client(scheduler, workers):
    """A Dask client: of the cluster at ``scheduler``, else of a new :func:`local_cluster`."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise DeepskyError("running on Dask needs dask.distributed: pip install 'deepsky[scale]'") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise DeepskyError(f"could not reach the Dask scheduler at {scheduler} ({exc})") from None
    cluster = local_cluster(workers)
    client = Client(cluster)
    try:
        client.wait_for_workers(1, timeout=120)
    except TimeoutError:
        client.close()
        cluster.close()
        raise DeepskyError("no Dask worker started within 2 minutes on this machine (short of memory?)") from None
    return client, cluster


def local_cluster(workers: int | None = None):
    """A LocalCluster of ``workers`` processes (default: the cores this process may use), one torch thread each.

    Processes, not threads: torch's kernels hold the GIL between operations, so threads in one
    process contend. Dask's workers get ``MALLOC_TRIM_THRESHOLD_=65536`` by default, which
    switches off glibc's adaptive mmap threshold: every large tensor is then mapped and unmapped
    afresh, and a network predicted 1.7x slower in a worker than in a plain process (measured
    on 3,000 star-galaxy cutouts); it is unset here.
    """
    import logging

    import dask
    from dask.distributed import LocalCluster

    from deepsky.config import THREADS_ENV, available_cores

    workers = workers or available_cores()
    if workers < 1:
        raise DeepskyError(f"--workers must be at least 1; received {workers}")
    # one thread per worker, whatever this process's own OMP_NUM_THREADS (which workers would inherit)
    single = {THREADS_ENV: "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                            silence_logs=logging.ERROR, env=single, death_timeout=30)


def _run_partitions(client, manifest, output: Path, partitions: list[Partition], progress) -> int:
    """Submit every unfinished partition; record each in the manifest as it lands. Returns those skipped."""
    from dask.distributed import as_completed

    done = manifest["partitions"]
    pending = []
    for part in partitions:
        if part.name in done and (output / done[part.name]["file"]).is_file():
            continue
        recovered = _finished_file(output, part)  # written before a kill, never recorded
        if recovered is not None:
            done[part.name] = recovered
        else:
            pending.append(part)
    skipped = len(partitions) - len(pending)
    manifest["skipped"] = [part.name for part in partitions if part.name in done]
    _write_manifest(output, manifest)
    total_rows = sum(p.rows or 0 for p in partitions)
    rows_done = sum(done[p.name]["rows"] for p in partitions if p.name in done)
    progress("predicting", skipped, len(partitions), rows_done, total_rows)
    if not pending:
        return skipped
    # the largest first: the last tasks to run are then the shortest, and no worker waits long on another
    pending.sort(key=lambda part: -(part.rows or 0))
    futures = {client.submit(part.work, {**part.spec, "out": str(output / PARTS / f"{part.name}.parquet")},
                             key=f"deepsky-{part.name}-{os.getpid()}", retries=2, pure=False): part
               for part in pending}
    finished = skipped
    for future in as_completed(futures):
        part = futures[future]
        try:
            entry = future.result()
        except Exception as exc:  # noqa: BLE001 - what failed on a worker (after Dask's retries) is reported
            for other in futures:
                other.cancel()
            if isinstance(exc, DeepskyError):
                raise
            raise DeepskyError(f"{part.name}: failed on a Dask worker ({first_line(exc)}); the finished parts are "
                               "kept, rerun the command to go on") from None
        if part.rows is not None and entry["rows"] != part.rows:
            raise DeepskyError(f"{part.name}: wrote {entry['rows']} rows, expected {part.rows}")
        done[part.name] = {**entry, "file": f"{PARTS}/{part.name}.parquet"}
        _write_manifest(output, manifest)
        finished += 1
        rows_done += entry["rows"]
        progress("predicting", finished, len(partitions), rows_done, max(total_rows, rows_done))
    return skipped


def _finished_file(output: Path, part: Partition) -> dict | None:
    """The manifest entry of a part file a worker finished before the driver was killed, when it is whole."""
    import pyarrow.parquet as pq

    path = output / PARTS / f"{part.name}.parquet"
    if not path.is_file() or part.rows is None:
        return None
    try:
        meta = pq.ParquetFile(path).schema_arrow.metadata or {}
        entry = json.loads(meta.get(b"deepsky_partition", b"{}"))
    except Exception:  # noqa: BLE001 - an unreadable file is simply redone
        return None
    if entry.get("rows") != part.rows:
        return None
    return {**entry, "file": f"{PARTS}/{part.name}.parquet"}


# -- manifest ----------------------------------------------------------------------------------
def _identity(path: Path) -> dict:
    """What tells one input from another: its path, size and modification time."""
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size if path.is_file() else None,
            "mtime_ns": stat.st_mtime_ns}


def _open_manifest(output: Path, job: dict) -> dict:
    """This job's manifest: resumed from ``output`` when it holds the same job, new when ``output`` is empty."""
    path = output / MANIFEST
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
        except ValueError:
            raise DeepskyError(f"{path}: unreadable manifest; give a new output folder") from None
        if {key: manifest.get(key) for key in job} != job:
            changed = [key for key in job if manifest.get(key) != job[key]]
            raise DeepskyError(f"{output}: holds predictions of another job (different {', '.join(changed)}); "
                               "give a new output folder")
        manifest.setdefault("partitions", {})
        manifest["complete"] = False
        return manifest
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise DeepskyError(f"{output}: exists and is not an empty folder nor an earlier run of this job; "
                           "give a new output folder")
    output.mkdir(parents=True, exist_ok=True)
    manifest = {**job, "partitions": {}, "plan": {}, "complete": False}
    _write_manifest(output, manifest)
    return manifest


def _write_manifest(output: Path, manifest: dict) -> None:
    tmp = output / f".{MANIFEST}.part"
    tmp.write_text(json.dumps(manifest, indent=1, default=_plain))
    os.replace(tmp, output / MANIFEST)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


# -- tiles -------------------------------------------------------------------------------------
def tile_info(path: Path, bands: int, pixel_scale: float | None = None) -> dict:
    """A tile's image HDUs (indices), shape (ny, nx) and celestial WCS header, read without its pixels; a stated
    pixel scale must be the model's ``pixel_scale`` (arcsec) within 5%."""
    import warnings

    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*truncated")
            with fits.open(path, memmap=True) as hdus:
                images = [(k, hdu.header) for k, hdu in enumerate(hdus)
                          if hdu.is_image and hdu.header.get("NAXIS") == 2]
    except Exception as exc:  # noqa: BLE001
        raise DeepskyError(f"{path}: corrupt or truncated FITS file ({first_line(exc)})") from None
    if len(images) != bands:
        raise DeepskyError(f"{path}: has {len(images)} band images; the model expects {bands} "
                           "(one 2-D image HDU per band)")
    shapes = {(h["NAXIS2"], h["NAXIS1"]) for _, h in images}
    if len(shapes) != 1:
        raise DeepskyError(f"{path}: its band images differ in size {sorted(shapes)}; all bands share one grid")
    header = images[0][1]
    if pixel_scale:
        from deepsky.data.object_folders import SCALE_TOLERANCE, pixel_scale_arcsec

        scale = pixel_scale_arcsec(header)
        if scale is not None and abs(scale / pixel_scale - 1) > SCALE_TOLERANCE:
            raise DeepskyError(f"{path}: pixels of {scale:.4g} arcsec; the model was trained on {pixel_scale:.4g} "
                               "arcsec pixels (resample the tile first)")
    return {"path": str(path), "hdus": [k for k, _ in images], "shape": shapes.pop(),
            "wcs": header.tostring() if _has_wcs(header) else None}


def _has_wcs(header) -> bool:
    from astropy.wcs import WCS

    try:
        return WCS(header).has_celestial
    except Exception:  # noqa: BLE001
        return False


def _tile_partitions(client, manifest, output, tiles, catalog, contract, settings, rows_per_part, progress):
    """Assign every catalogue row to one tile (on the workers, part by part); one partition per tile and
    one per catalogue part for its rows on no tile."""
    from dask.distributed import as_completed

    from deepsky.data.catalog_parts import catalog_columns, catalog_parts

    bands, size = len(contract["bands"]), contract["cutout_pixels"][0]
    infos = [tile_info(path, bands, contract.get("pixel_scale_arcsec")) for path in tiles]
    columns = {name.lower(): name for name in catalog_columns(catalog)}
    if "ra" in columns and "dec" in columns:
        positions = (columns["ra"], columns["dec"])
        missing = [info["path"] for info in infos if info["wcs"] is None]
        if missing:
            raise DeepskyError(f"{missing[0]}: no celestial WCS in its header, but {catalog} gives ra/dec")
    elif "x" in columns and "y" in columns and len(infos) == 1:
        positions = (columns["x"], columns["y"])
    else:
        raise DeepskyError(f"{catalog}: no ra/dec columns (degrees; x/y pixels only for a single tile); found "
                           f"{', '.join(list(columns.values())[:20])}")
    id_column = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    parts = catalog_parts(catalog, rows_per_part)
    manifest["catalog_rows"] = sum(part.rows for part in parts)
    plan = manifest.setdefault("plan", {})
    todo = [part for part in parts if part.name not in plan or not (output / PLAN / f"{part.name}.parquet").is_file()]
    progress("assigning rows to tiles", len(parts) - len(todo), len(parts), 0, manifest["catalog_rows"])
    if todo:
        spec = {"tiles": infos, "positions": positions, "id_column": id_column, "size": size,
                "radec": positions[0].lower() == "ra"}
        futures = {client.submit(_plan_part, {**spec, "part": part, "out": str(output / PLAN / f"{part.name}.parquet")},
                                 key=f"deepsky-plan-{part.name}-{os.getpid()}", retries=2, pure=False): part
                   for part in todo}
        for k, future in enumerate(as_completed(futures)):
            try:
                plan[futures[future].name] = future.result()
            except DeepskyError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise DeepskyError(f"{catalog}: reading part {futures[future].name} failed on a Dask worker "
                                   f"({first_line(exc)})") from None
            _write_manifest(output, manifest)
            progress("assigning rows to tiles", len(parts) - len(todo) + k + 1, len(parts), 0,
                     manifest["catalog_rows"])
    per_tile = {}
    for part in parts:
        for tile, count in plan[part.name].items():
            per_tile.setdefault(int(tile), []).append((part.name, count))
    partitions = []
    for tile, info in enumerate(infos):
        sources = per_tile.get(tile, [])
        if sources:
            name = f"tile-{tile:05d}-{Path(info['path']).stem}"
            partitions.append(Partition(name, sum(c for _, c in sources), _predict_tile,
                                        {**settings, "tile": tile, "info": info,
                                         "plan": [str(output / PLAN / f"{p}.parquet") for p, _ in sources]}))
    for part_name, count in per_tile.get(-1, []):
        partitions.append(Partition(f"off-{part_name}", count, _predict_tile,
                                    {**settings, "tile": -1, "info": None,
                                     "plan": [str(output / PLAN / f"{part_name}.parquet")]}))
    return partitions


def _plan_part(spec) -> dict:
    """(worker) Assign the rows of one catalogue part to tiles; write them to the plan; counts per tile."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.io import fits
    from astropy.wcs import WCS

    part = spec["part"]
    names = list(spec["positions"]) + ([spec["id_column"]] if spec["id_column"] else [])
    table = part.read(columns=names)
    a, b = (np.ma.filled(np.ma.asarray(table[name]).astype(np.float64), np.nan) for name in spec["positions"])
    n = len(a)
    best_margin = np.full(n, -np.inf)
    tile_of = np.full(n, -1, np.int32)
    x_of, y_of = np.full(n, np.nan), np.full(n, np.nan)
    rows_xyz = _unit_vectors(a, b) if spec["radec"] else None
    for k, info in enumerate(spec["tiles"]):
        ny, nx = info["shape"]
        if spec["radec"]:
            wcs = WCS(fits.Header.fromstring(info["wcs"])).celestial
            near = np.flatnonzero(_near_footprint(wcs, nx, ny, rows_xyz))
            if near.size == 0:
                continue
            x, y = wcs.all_world2pix(a[near], b[near], 0, quiet=True)
        else:
            near, x, y = np.arange(n), a, b
        with np.errstate(invalid="ignore"):
            # the cutout's centre pixel must be on the tile; the farthest from an edge wins
            cx, cy = np.floor(x + 0.5), np.floor(y + 0.5)
            margin = np.minimum.reduce([cx, cy, nx - 1 - cx, ny - 1 - cy])
            better = np.isfinite(margin) & (margin >= 0) & (margin > best_margin[near])
        rows = near[better]
        best_margin[rows], tile_of[rows] = margin[better], k
        x_of[rows], y_of[rows] = x[better], y[better]
    ids = np.asarray(table[spec["id_column"]]) if spec["id_column"] else part.first_row + np.arange(n)
    order = np.lexsort((np.arange(n), tile_of))
    columns = {"row": part.first_row + np.arange(n, dtype=np.int64), "id": ids, "tile": tile_of, "x": x_of,
               "y": y_of, "edge_margin": best_margin.clip(-1, None)}
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    pq.write_table(pa.table({k: np.asarray(v)[order] for k, v in columns.items()}), tmp, row_group_size=65536)
    os.replace(tmp, out)
    counts = np.bincount(tile_of + 1, minlength=len(spec["tiles"]) + 1)
    return {str(k - 1): int(c) for k, c in enumerate(counts) if c}


def _unit_vectors(ra_deg, dec_deg) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _near_footprint(wcs, nx: int, ny: int, rows_xyz: np.ndarray) -> np.ndarray:
    """Rows within the circle around the tile's corners (a cheap cut before the exact WCS)."""
    px = np.array([0, nx - 1, 0, nx - 1, (nx - 1) / 2])
    py = np.array([0, 0, ny - 1, ny - 1, (ny - 1) / 2])
    ra, dec = wcs.all_pix2world(px, py, 0)
    corners = _unit_vectors(ra, dec)
    centre = corners[-1]
    radius = np.arccos(np.clip(corners[:4] @ centre, -1, 1)).max() * 1.05 + 1e-6
    with np.errstate(invalid="ignore"):
        return rows_xyz @ centre >= np.cos(radius)


def _predict_tile(spec) -> dict:
    """(worker) Cut and predict the rows the plan gave one tile (or flag the rows on no tile); write its part."""
    import pyarrow.parquet as pq

    task, model, contract = _loaded(spec["run"])
    plan = pq.read_table(spec["plan"], filters=[("tile", "=", spec["tile"])]).sort_by("row")
    rows = plan.column("row").to_numpy()
    ids = plan.column("id").to_numpy(zero_copy_only=False)
    x, y = plan.column("x").to_numpy(), plan.column("y").to_numpy()
    size, bands = contract["cutout_pixels"][0], len(contract["bands"])
    parts = []
    with _TileReader(spec["info"]) as reader:
        for start in range(0, len(rows), CUTOUT_ROWS):
            sl = slice(start, start + CUTOUT_ROWS)
            if reader.hdus is None:
                cutouts = np.broadcast_to(np.zeros((1, size, size, bands), np.float32), (len(rows[sl]), size, size, bands))
                flags = np.full(len(rows[sl]), OFF_TILES, dtype=object)
            else:
                cutouts, flags = reader.cut(x[sl], y[sl], size)
            valid = flags == ""
            columns = task.objective.prediction_columns(
                task, model, cutouts, ids[sl], valid, {"flags": flags.astype(str)}, contract,
                batch_size=spec["batch_size"])
            columns.pop("id")
            columns.setdefault("flag", flags.astype(str))  # regression columns carry no flag of their own
            parts.append({"row": rows[sl], "id": ids[sl], "tile": np.full(len(rows[sl]), _tile_name(spec["info"])),
                          "x": x[sl], "y": y[sl], **columns})
    return _write_part(spec["out"], parts, len(rows))


def _tile_name(info) -> str:
    return Path(info["path"]).name if info else ""


class _TileReader:
    """Cutouts from one tile's memory-mapped band images, read a section at a time."""

    def __init__(self, info):
        self.info, self.hdus, self._file = info, None, None

    def __enter__(self):
        if self.info is not None:
            from astropy.io import fits

            self._file = fits.open(self.info["path"], memmap=True)
            # unscaled, uncompressed images are sliced straight from the memory map (microseconds);
            # the others through astropy's sections, which read and scale only the rows asked for
            self.hdus = [hdu.data if _plain_image(hdu) else hdu.section
                         for hdu in (self._file[k] for k in self.info["hdus"])]
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            self._file.close()

    def cut(self, x, y, size):
        """(n, size, size, bands) cutouts centred on pixels (x, y) and their flags (edge, nan_pixels, or '')."""
        ny, nx = self.info["shape"]
        half = size // 2
        x0 = (np.floor(x + 0.5) - half).astype(int)
        y0 = (np.floor(y + 0.5) - half).astype(int)
        cutouts = np.zeros((len(x), size, size, len(self.hdus)), np.float32)
        flags = np.full(len(x), "", dtype=object)
        inside = (x0 >= 0) & (y0 >= 0) & (x0 + size <= nx) & (y0 + size <= ny)
        flags[~inside] = EDGE
        for i in np.flatnonzero(inside):
            for b, hdu in enumerate(self.hdus):  # a memory map or a section
                cutouts[i, :, :, b] = hdu[y0[i] : y0[i] + size, x0[i] : x0[i] + size]
        bad = inside & ~np.isfinite(cutouts).all(axis=(1, 2, 3))
        flags[bad] = BAD_PIXELS
        return cutouts, flags


def _plain_image(hdu) -> bool:
    from astropy.io import fits

    return (not isinstance(hdu, fits.CompImageHDU) and hdu.header.get("BSCALE", 1) == 1
            and hdu.header.get("BZERO", 0) == 0 and "BLANK" not in hdu.header)


# -- catalogues and files ----------------------------------------------------------------------
def _catalogue_partitions(path: Path, settings, rows_per_part) -> list[Partition]:
    from deepsky.data.catalog_parts import catalog_parts

    return [Partition(f"part-{part.index:06d}-{part.name}", part.rows, _predict_catalogue_part,
                      {**settings, "part": part}) for part in catalog_parts(path, rows_per_part)]


def _predict_catalogue_part(spec) -> dict:
    """(worker) Predict one part of a catalogue with a catalogue task; write its part."""
    task, model, contract = _loaded(spec["run"])
    part = spec["part"]
    x, ids, valid, info = task.read_table(part.read(), contract, f"{part.path} ({part.name})")
    columns = task.objective.prediction_columns(task, model, x, ids, valid, info, contract,
                                                batch_size=spec["batch_size"])
    rows = part.first_row + np.arange(len(ids), dtype=np.int64)
    return _write_part(spec["out"], [{"row": rows, **columns}], len(rows))


def _predict_file(spec) -> dict:
    """(worker) Predict one input file as ``deepsky predict`` would; write its part (a ``file`` column added)."""
    task, model, contract = _loaded(spec["run"])
    path = Path(spec["path"])
    parts, info = [], {}
    for x, ids, valid, part_info in task.input_chunks([path], contract):
        task.check_inputs(contract, x, str(path))
        info = info or part_info
        columns = task.objective.prediction_columns(task, model, x, ids, valid, part_info, contract,
                                                    batch_size=spec["batch_size"])
        parts.append({"id": columns.pop("id"), **(part_info.get("columns") or {}), **columns})
    if not parts:
        raise DeepskyError(f"{path}: holds no objects to predict")
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    columns = task.finish_predictions(model, columns, info, contract)
    n = len(columns["id"])
    return _write_part(spec["out"], [{"file": np.full(n, path.name), **columns}], n)


# -- worker side -------------------------------------------------------------------------------
_LOADED: dict = {}  # run folder -> (task, model, contract): each worker process loads a model once
MODEL_LOADS = []  # (pid, run) for each load in this process; the tests count them


def _loaded(run_dir: str):
    if run_dir not in _LOADED:
        from deepsky.runs import Run

        run = Run.open(run_dir)
        _LOADED[run_dir] = (run.task(), run.load_model(), run.contract)
        MODEL_LOADS.append((os.getpid(), run_dir))
    return _LOADED[run_dir]


def _write_part(out, parts: list[dict], expected: int) -> dict:
    """Write one partition's rows atomically, with its summary in the Parquet metadata; return the summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: np.concatenate([np.asarray(part[name]) for part in parts]) for name in parts[0]} if parts else {}
    n = len(next(iter(columns.values()))) if columns else 0
    if n != expected:
        raise DeepskyError(f"{out}: {n} rows predicted, {expected} expected")
    flags = columns.get("flag")
    counted = {}
    if flags is not None:
        values, counts = np.unique(np.asarray(flags).astype(str), return_counts=True)
        counted = {str(v): int(c) for v, c in zip(values, counts) if v}
    entry = {"rows": n, "predicted": n - sum(counted.values()), "flags": counted, "pid": os.getpid(),
             "model_loads": sum(1 for pid, _ in MODEL_LOADS if pid == os.getpid())}
    table = pa.table({name: _arrow_ready(values) for name, values in columns.items()})
    table = table.replace_schema_metadata({b"deepsky_partition": json.dumps(entry).encode()})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return entry


def _arrow_ready(values):
    values = np.asarray(values)
    return values.astype(str) if values.dtype.kind in "OU" else values


# -- catalogue order ---------------------------------------------------------------------------
def _write_ordered(output: Path, manifest: dict, total: int) -> None:
    """``predictions.parquet`` in catalogue order: parts of files and catalogue parts one after another, tiles'
    rows sorted ``ORDER_ROWS`` at a time."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    names = sorted(manifest["partitions"])  # zero-padded: the inputs' and the catalogue parts' order
    files = [str(output / manifest["partitions"][name]["file"]) for name in names]
    if manifest["mode"] == "tiles":
        dataset = ds.dataset(files, format="parquet")
        chunks = (dataset.to_table(filter=(pc.field("row") >= start) & (pc.field("row") < start + ORDER_ROWS))
                  .sort_by("row") for start in range(0, max(total, 1), ORDER_ROWS))
    else:
        chunks = (pq.read_table(path) for path in files)
    target, tmp = output / "predictions.parquet", output / ".predictions.parquet.part"
    writer = None
    try:
        for chunk in chunks:
            chunk = chunk.replace_schema_metadata(None)
            if writer is None:
                writer = pq.ParquetWriter(tmp, chunk.schema)
            writer.write_table(chunk.cast(writer.schema))
        if writer is not None:
            writer.close()
            writer = None
            os.replace(tmp, target)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
