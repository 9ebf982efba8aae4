"""Gravitational waves and quasar microlensing: simulation, search and ray-shooting speed, side by side.

    .venv/bin/python benchmarks/bench_time_series.py            # about 4 min on an idle 2-core machine
    .venv/bin/python benchmarks/bench_time_series.py --quick    # a smoke test of the script

1. Strain windows (``make_gravitational_waves``: IMRPhenomD, two
   detectors, 4 s of coloured noise whitened per window) simulated per
   second on one process and on every core.
2. Seconds of strain searched per second: George & Huerta's shallow
   network sliding every 0.125 s (8 windows per second of strain, bf16
   where the CPU has it) against the matched filter over the 52-template
   bank of ``gw-detection``'s baseline, whose FFT correlation covers every
   lag of a 1 s window at once. Untrained weights: speed does not depend
   on training.
3. Magnification maps: deepsky's ray shooting (near stars exact, far
   ones by Taylor series) against the brute-force loop that sums every
   star for every ray, on the same rays of the same map (the brute force
   on a map small enough to finish; rays per second compared), and the
   1000x1000 map of the issue timed whole.
4. Microlensing light curves (decade, LSST sampling) made per second from
   a cached map, in one process and on every core.

Ratios are measured side by side in one run; absolute times drift on a
shared machine. The exit code is 0 unless the script crashes.
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

from _timing import best_of  # noqa: E402




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that the script runs")
    args = parser.parse_args(argv)
    quick = args.quick
    os.environ.setdefault("DEEPSKY_CACHE", tempfile.mkdtemp(prefix="bench-cache-"))

    from deepsky.simulate.gravitational_waves import make_gravitational_waves

    cores = os.cpu_count() or 1
    n = 64 if quick else 1024
    make_gravitational_waves(16, 0, workers=1)  # lal's tables warm
    one = best_of(lambda: make_gravitational_waves(n, 1, workers=1), 1 if quick else 2)
    many = best_of(lambda: make_gravitational_waves(n, 1, workers=cores), 1 if quick else 2)
    print(f"strain windows simulated: {n / one:,.0f}/s on 1 process, {n / many:,.0f}/s on {cores} "
          f"({one / many:.2f}x)")

    from deepsky import models
    from deepsky.fitting.matched_filter import TemplateBank, default_bank
    from deepsky.predict import predict_array
    from deepsky.tasks.gw_detection import BANK_PER_AXIS, STRIDE_SECONDS

    windows = make_gravitational_waves(256 if quick else 2048, 2).inputs
    model = models.create("george-huerta-shallow", input_shape=windows.shape[1:], num_classes=2)
    predict_array(model, windows[:256])
    network = best_of(lambda: predict_array(model, windows, batch_size=256)) / len(windows)
    bank = TemplateBank(default_bank(BANK_PER_AXIS))
    some = windows[: 16 if quick else 128]
    bank.search(some[:4])
    matched = best_of(lambda: bank.search(some)) / len(some)
    network_per_second = network / STRIDE_SECONDS
    print(f"strain searched: network {1 / network_per_second:,.0f} s of strain per second "
          f"({network * 1e3:.2f} ms per window, a window every {STRIDE_SECONDS} s), matched filter "
          f"({len(bank.masses)} templates) {1 / matched:,.0f} s per second ({matched * 1e3:.1f} ms per window): "
          f"{matched / network_per_second:.1f}x")

    from deepsky.simulate import microlensing as ml

    small = dict(kappa=0.4, gamma=0.4, smooth_fraction=0.0, pixels=40 if quick else 100, width_re=4.0 if quick else 8.0,
                 rays_per_pixel=3.0, seed=1)
    ml.magnification_map(**small)  # compiled
    ml.magnification_map(**small, method="direct")
    taylor_map = ml.magnification_map(**small)
    taylor = best_of(lambda: ml.magnification_map(**small))
    direct = best_of(lambda: ml.magnification_map(**small, method="direct"), 1)
    print(f"ray shooting, the same {taylor_map.rays:,} rays and {taylor_map.stars:,} stars: near-exact/far-Taylor "
          f"{taylor_map.rays / taylor / 1e6:,.1f} M rays/s, every star for every ray {taylor_map.rays / direct / 1e6:,.2f} "
          f"M rays/s: {direct / taylor:,.0f}x")
    if not quick:
        start = time.perf_counter()
        full = ml.magnification_map(0.4, 0.4, 0.0, seed=2)
        seconds = time.perf_counter() - start
        brute = full.rays * full.stars / (taylor_map.rays * taylor_map.stars / direct)
        print(f"a 1000x1000 map over {full.width_re:g} R_E ({full.stars:,} stars, {full.rays:.2e} rays): {seconds:.1f} s; "
              f"the brute force at its measured speed per ray-star pair would take {brute / 3600:,.1f} h")

    count = 60 if quick else 1200
    settings = dict(map_seeds=(0,), pixels=200 if quick else ml.TASK_MAP_PIXELS)
    ml.make_microlensing(count, 0, workers=1, **settings)  # the map shot and cached
    one = best_of(lambda: ml.make_microlensing(count, 1, workers=1, **settings), 1)
    many = best_of(lambda: ml.make_microlensing(count, 1, workers=cores, **settings), 1)
    print(f"microlensing light curves (one cached map, 3 profiles x 10 sizes convolved): {count / one:,.0f}/s on 1 "
          f"process, {count / many:,.0f}/s on {cores} ({one / many:.2f}x)")


if __name__ == "__main__":
    main()
