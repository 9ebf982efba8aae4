"""Transit speed: light curves simulated per second, and signals vetted per second end to end.

    .venv/bin/python benchmarks/bench_transits.py            # about 2 min on an idle 2-core machine
    .venv/bin/python benchmarks/bench_transits.py --quick    # a smoke test of the script

1. Simulation of Pearson-grid curves (180 points, batman): a naive loop that
   builds a batman ``TransitModel`` for every curve, against
   ``make_transits`` (one model reused; chunks of curves) in one process and
   on every core. Printed as curves per second and ratios.
2. Vetting, file in and table out (``deepsky.predict.predict_files`` on a
   ``transit-vetting`` run): the shared K2 light curves (read, detrend,
   search with box least squares, fold, network) against the box least
   squares search alone on the same files; and TESS records (read, network).
   The run is trained here for one epoch on 256 records: speed does not
   depend on how well it was trained.

Needs ``../shared/data`` for part 2 (skipped without it). The exit code is 0
unless the script crashes: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def naive_curves(n: int, seed: int) -> np.ndarray:
    """Pearson-grid transits as a first script would make them: a new batman model for every curve."""
    import batman

    from deepsky.simulate.transits import A_OVER_RSTAR, LIMB_DARKENING, PEARSON_TRAIN, window_times

    rng = np.random.default_rng(seed)
    times = window_times()
    relative = times - times.min()
    out = np.empty((n, len(times)), np.float32)
    for i in range(n):
        params = batman.TransitParams()
        depth = rng.choice(PEARSON_TRAIN.depth_ppm) * 1e-6
        params.t0, params.per, params.rp, params.a = 1.0, rng.choice(PEARSON_TRAIN.period_days), np.sqrt(depth), \
            A_OVER_RSTAR
        params.inc, params.ecc, params.w = rng.choice(PEARSON_TRAIN.inclination_deg), 0.0, 90.0
        params.u, params.limb_dark = list(LIMB_DARKENING), "quadratic"
        shape = batman.TransitModel(params, times).light_curve(params)
        amplitude = rng.choice(PEARSON_TRAIN.variability_amplitude_ppm) * 1e-6
        period = rng.choice(PEARSON_TRAIN.variability_period_hours) / 24
        noise = depth / rng.choice(PEARSON_TRAIN.depth_over_noise)
        out[i] = shape * rng.normal(1, noise, len(times)) * (1 + amplitude * np.sin(2 * np.pi * relative / period))
    return out


def timed(function, *args, repeat: int = 2, **kwargs) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best


def simulation(n_naive: int, n_batched: int) -> None:
    from deepsky.simulate.transits import make_transits

    naive = timed(naive_curves, n_naive, 0) / n_naive
    one = timed(make_transits, n_batched, 0, workers=1) / n_batched
    every = timed(make_transits, n_batched, 0, workers=os.cpu_count()) / n_batched
    print(f"simulation: naive loop {1 / naive:,.0f} curves/s ({n_naive}), make_transits {1 / one:,.0f} curves/s in one "
          f"process, {1 / every:,.0f} on {os.cpu_count()} cores ({n_batched}; with red noise, gaps, dumps, binaries)")
    print(f"simulate_one_process_vs_naive={naive / one:.2f} simulate_all_cores_vs_naive={naive / every:.2f}")


def vetting(records: int) -> None:
    from deepsky.data.lightcurves import detrend, read_targets, search_transits
    from deepsky.data.tfrecords import iter_records, write_records
    from deepsky.predict import predict_files
    from deepsky.train import TrainConfig, train_task

    tess, k2 = SHARED / "tess_astronet_triage", SHARED / "kepler_k2_lightcurves" / "k2"
    if not tess.exists() or not k2.exists():
        print(f"vetting: skipped ({SHARED} is not here)")
        return
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        data = folder / "records"
        data.mkdir()
        write_records(data / "train-00000-of-00001", list(iter_records(tess / "train-00000-of-00008"))[:256])
        run = train_task("transit-vetting", folder / "run", data=data, config=TrainConfig(epochs=1))
        curves = sorted(k2.glob("*.csv"))
        table = folder / "verdicts.csv"
        predict_files(run.path, curves[:1], folder / "warm.csv")  # the frozen graph and the kernels ready
        end_to_end = timed(predict_files, run.path, curves, table, repeat=1)
        signals = sum(1 for line in table.open() if line[:1] not in "#i")
        search = timed(lambda: [search_transits(detrend(c), max_signals=6) for c in read_targets(curves)], repeat=1)
        print(f"light curves: {len(curves)} K2 curves ({signals} signals) read, detrended, searched, folded and vetted "
              f"in {end_to_end:.2f} s ({len(curves) / end_to_end:.2f} curves/s); the box least squares search "
              f"alone {search:.2f} s")
        print(f"vetting_vs_bls_alone={end_to_end / search:.2f}")
        shard = tess / "val-00000-of-00001"
        subset = folder / "val-subset"
        write_records(subset, list(iter_records(shard))[:records])
        seconds = timed(predict_files, run.path, [subset], folder / "records.csv")
        print(f"records: {records} TESS records read and vetted in {seconds:.2f} s ({records / seconds:,.0f} per second)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the script")
    args = parser.parse_args()
    n_naive, n_batched, records = (200, 2000, 200) if args.quick else (2000, 40000, 1657)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the start")
    simulation(n_naive, n_batched)
    vetting(records)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
