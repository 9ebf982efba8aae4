"""Survey-scale prediction: objects per second over FITS tiles, bare loop vs Dask with 1 and 2 workers.

    .venv/bin/python benchmarks/bench_scale.py            # a few minutes on an idle 2-core machine
    .venv/bin/python benchmarks/bench_scale.py --quick    # a smoke test of the script

A star-galaxy model (Kim & Brunner, trained for one epoch on 300 cutouts: speed does not
depend on training) predicts every object of a catalogue over SDSS-like tiles (5 bands), three
ways, on the same files, each warm (model loaded, kernels chosen) before it is timed:

- **bare loop**: this process, one torch thread, the same per-tile work deepsky's workers do
  (assign the catalogue's rows to tiles, cut the cutouts from the memory-mapped tiles, predict,
  write one Parquet part per tile), called one tile after another with no Dask;
- **Dask, 1 worker** and **Dask, 2 workers**: ``deepsky.scale.predict_survey`` on a
  LocalCluster of 1 or 2 processes with one thread each (the CLI's default), manifest and all.

Printed: objects per second for each, the speed-up from 1 to 2 workers (target >= 1.7x) and the
Dask layer's cost per object, (Dask 1 worker - bare) / bare (target < 10%). Ratios are measured
side by side in one run; absolute times drift on a shared machine. The exit code is 0 unless the
script crashes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def bare_loop(run, tiles, catalog, out: Path) -> float:
    """Seconds for the per-tile work of deepsky's workers, called one after another in this process."""
    from deepsky import scale
    from deepsky.data.catalog_parts import catalog_parts

    import torch

    task, model, contract = scale._loaded(str(run))
    torch.set_num_threads(1)  # what each worker has
    start = time.perf_counter()
    infos = [scale.tile_info(path, len(contract["bands"]), contract.get("pixel_scale_arcsec")) for path in tiles]
    counts = {}
    for part in catalog_parts(catalog):
        counts[part.name] = scale._plan_part({"tiles": infos, "positions": ("ra", "dec"), "id_column": "id",
                                              "size": contract["cutout_pixels"][0], "radec": True, "part": part,
                                              "out": str(out / "plan" / f"{part.name}.parquet")})
    for tile, info in enumerate(infos):
        plans = [str(out / "plan" / f"{name}.parquet") for name, c in counts.items() if str(tile) in c]
        scale._predict_tile({"run": str(run), "batch_size": 256, "tile": tile, "info": info, "plan": plans,
                             "out": str(out / "parts" / f"tile-{tile}.parquet")})
    return time.perf_counter() - start


def on_dask(run, tiles, catalog, out: Path, workers: int, warm_tile) -> tuple[float, float]:
    """(seconds for predict_survey on a warm LocalCluster of ``workers`` processes, seconds to start it)."""
    from dask.distributed import Client

    from deepsky.scale import local_cluster, predict_survey

    started = time.perf_counter()
    cluster = local_cluster(workers)  # what deepsky predict --workers starts
    client = Client(cluster)
    try:
        # every worker loads the model and predicts once before the clock starts
        client.run(_warm, str(run), str(warm_tile))
        startup = time.perf_counter() - started
        start = time.perf_counter()
        summary = predict_survey(run, tiles, out, catalog=catalog, tiles=True, client=client)
        seconds = time.perf_counter() - start
        assert summary["rows"] > 0
        return seconds, startup
    finally:
        client.close()
        cluster.close()


def _warm(run, tile):
    import numpy as np

    from deepsky import scale

    task, model, contract = scale._loaded(run)
    size = contract["cutout_pixels"][0]
    task.predict_outputs(model, np.zeros((256, size, size, len(contract["bands"])), np.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=8, help="tiles (a grid of 4 x tiles/4)")
    parser.add_argument("--objects", type=int, default=24000, help="catalogue rows over the tiles")
    parser.add_argument("--quick", action="store_true", help="2 tiles, 1,000 objects")
    args = parser.parse_args()
    if args.quick:
        args.tiles, args.objects = 2, 1000
    from test_scale import write_catalogue, write_tiles

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        print("training a star-galaxy model for one epoch on 300 cutouts ...", flush=True)
        subprocess.run([sys.executable, "-m", "deepsky.cli", "simulate", "star-galaxy", "--n", "300", "-o",
                        str(work / "sg.h5")], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "deepsky.cli", "train", "star-galaxy", "--data", str(work / "sg.h5"),
                        "--epochs", "1", "-o", str(work / "run")], check=True, capture_output=True)
        grid = (max(args.tiles // 4, 1), min(args.tiles, 4))
        tiles = write_tiles(work, grid=grid, seed=0)
        write_catalogue(work / "objects.parquet", tiles, n=args.objects, off=0)
        run, catalog = work / "run", work / "objects.parquet"
        print(f"{len(tiles)} tiles, {args.objects:,} objects", flush=True)

        bare_loop(run, tiles[:1], catalog, work / "warm")  # model loaded, kernels chosen
        bare = bare_loop(run, tiles, catalog, work / "bare")
        one, start_one = on_dask(run, tiles, catalog, work / "dask1", 1, tiles[0])
        two, start_two = on_dask(run, tiles, catalog, work / "dask2", 2, tiles[0])
        rows = [("bare loop (1 thread)", bare), ("Dask, 1 worker", one), ("Dask, 2 workers", two)]
        print(f"\n{'':24s} {'seconds':>8s} {'objects/s':>10s}")
        for name, seconds in rows:
            print(f"{name:24s} {seconds:8.2f} {args.objects / seconds:10,.0f}")
        speedup, overhead = one / two, one / bare - 1
        print(f"\ncluster start-up and warm-up (not timed above): {start_one:.1f} s (1 worker), "
              f"{start_two:.1f} s (2 workers)")
        print(f"speed-up 1 -> 2 workers: {speedup:.2f}x  [{'PASS' if speedup >= 1.7 else 'FAIL'}: target >= 1.7x]")
        print(f"Dask layer's cost per object: {overhead:+.1%} of the bare loop's  "
              f"[{'PASS' if overhead < 0.10 else 'FAIL'}: target < 10%]")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
