"""Seconds per galaxy: the galaxy-profiles ConvNet against the GALFIT-style least-squares fit.

Tuccillo et al. (2018) found their ConvNet about 3,000 times faster than GALFIT on a GPU and 50
times on the same CPU. This measures deepsky's pair on the same simulated HST H-band cutouts:

1. the fit: ``deepsky.fitting.fit_many`` (PSF-convolved Sersic, weighted least squares from a
   moments-based start, the PSF each cutout was simulated with), forked workers on all cores;
2. the network: ``GalaxyProfiles.predict_outputs`` on the ``sersic-cnn`` model behind the task's
   preprocessing (bf16 on CPUs that have it, last layer in float32), batches of 512, all cores,
   averaged over the task's default number of orientations (``--views`` to choose another), as
   ``deepsky evaluate`` and ``deepsky predict`` run it. The weights do not change the time;
   ``--run RUNDIR`` times a trained run's model instead.

Both take turns over ``--rounds`` rounds (so other work on a shared machine slows both alike);
each round fits ``--n-fit / --rounds`` new cutouts and predicts ``--n-predict`` cutouts. The
PASS/FAIL line compares the median of the rounds' ratios with the target of 1,000x.

Run::

    .venv/bin/python benchmarks/bench_profiles.py                 # about 1 min on 2 cores
    .venv/bin/python benchmarks/bench_profiles.py --run runs/profiles --json benchmarks/results/profiles.json

The exit code is 0 unless the script crashes: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "torch")

TARGET = 1000.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-fit", type=int, default=120, help="cutouts fitted over all rounds")
    parser.add_argument("--n-predict", type=int, default=8192, help="cutouts predicted per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run", type=Path, default=None, help="a trained galaxy-profiles run to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--views", type=int, default=None, help="orientations averaged (default: the task's)")
    args = parser.parse_args(argv)

    import numpy as np

    from deepsky import tasks
    from deepsky.fitting.sersic import fit_profiles
    from deepsky.predict import predict_array

    task = tasks.get("galaxy-profiles")
    views = args.views or task.default_views
    per_round = max(1, args.n_fit // args.rounds)
    data = task.prepare(task.simulate(per_round * args.rounds + 512, args.seed), "benchmark")
    if args.run is not None:
        from deepsky.runs import Run

        model = Run.open(args.run).load_model()
    else:
        model = task.build_model(task.default_model, data)
    reps = int(np.ceil(args.n_predict / len(data)))
    stack = np.concatenate([data.images] * reps)[: args.n_predict]
    predict_array(model, stack[:512], float32_head=True)  # warm-up: kernels chosen, weights cast

    rounds = []
    for r in range(args.rounds):
        part = data.subset(np.arange(r * per_round, (r + 1) * per_round))
        start = time.perf_counter()
        fit_profiles(part)
        fit_seconds = (time.perf_counter() - start) / len(part)
        start = time.perf_counter()
        task.predict_outputs(model, stack, views=views, batch_size=512)
        cnn_seconds = (time.perf_counter() - start) / len(stack)
        rounds.append({"fit_seconds_per_galaxy": fit_seconds, "cnn_seconds_per_galaxy": cnn_seconds,
                       "ratio": fit_seconds / cnn_seconds})
        print(f"round {r + 1}: fit {fit_seconds * 1e3:8.1f} ms/galaxy   network {cnn_seconds * 1e6:7.1f} us/galaxy"
              f"   ratio {fit_seconds / cnn_seconds:8.0f}x", flush=True)
    ratio = statistics.median(r["ratio"] for r in rounds)
    fit_median = statistics.median(r["fit_seconds_per_galaxy"] for r in rounds)
    cnn_median = statistics.median(r["cnn_seconds_per_galaxy"] for r in rounds)
    print(f"\nmedian: fit {fit_median * 1e3:.1f} ms/galaxy, network ({views} orientations) {cnn_median * 1e6:.1f} us/galaxy "
          f"({1 / cnn_median:,.0f} galaxies/s), {os.cpu_count()} cores")
    print(f"{'PASS' if ratio >= TARGET else 'FAIL'}: network / fit speed-up {ratio:,.0f}x (target {TARGET:,.0f}x)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rounds": rounds, "median_ratio": ratio, "target": TARGET,
                                         "machine": platform.processor() or platform.machine(),
                                         "cores": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()}},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
