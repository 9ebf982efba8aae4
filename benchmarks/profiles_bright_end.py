"""The bright end of galaxy-profiles measured precisely: network against least-squares fit on H 19-21 only.

``deepsky evaluate`` scores a test set with the training set's magnitude counts, in which
about 17% of galaxies are brighter than H = 21: 342 of the default 2,000, so each bright-end
scatter ratio carries a sampling error of about 7% (±0.1 at 1.5). This script simulates
``--n`` held-out galaxies with H between 19 and 21 only (the same simulator and magnitude
law, another seed), fits them all with the GALFIT-style fit and predicts them with the run's
network averaged over ``--views`` orientations, and prints per parameter the scatter (1.4826
MAD of the errors, relative for radius and n) of both and their ratio, the bar being 1.5.

Run::

    .venv/bin/python benchmarks/profiles_bright_end.py --run runs/galaxy-profiles-...   # ~6 min on 2 cores

The exit code is 0 unless the script crashes: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "torch")

BAR = 1.5


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a trained galaxy-profiles run")
    parser.add_argument("--n", type=int, default=3000, help="bright galaxies to simulate and fit")
    parser.add_argument("--seed", type=int, default=9137, help="simulation seed (training uses 0)")
    parser.add_argument("--views", type=int, nargs="+", default=[1, 2, 4, 8], help="orientations averaged")
    args = parser.parse_args(argv)

    import numpy as np

    from deepsky.runs import Run
    from deepsky.simulate.profiles import make_profiles
    from deepsky.tasks.galaxy_profiles import BRIGHT_LIMIT, PARAMETERS, SPECS, errors

    run = Run.open(args.run)
    task, model = run.task(), run.load_model()
    data = make_profiles(args.n, seed=args.seed, survey=task.survey, mag_range=(19.0, BRIGHT_LIMIT))
    start = time.perf_counter()
    fit = task.baseline_predictions(data)
    print(f"fitted {args.n} galaxies with H 19-{BRIGHT_LIMIT:g} in {time.perf_counter() - start:.0f} s")

    def scatter(delta):
        delta = delta[np.isfinite(delta)]
        return 1.4826 * np.median(np.abs(delta - np.median(delta)))

    names = [p for p in PARAMETERS if p != "position_angle_deg"]
    fit_scatter = {p: scatter(errors(p, fit[p], data.objects[p])) for p in names}
    print(f"\n{'views':>5}  " + "  ".join(f"{SPECS[p].label:>26}" for p in names))
    print(f"{'fit':>5}  " + "  ".join(f"{fit_scatter[p]:>26.4f}" for p in names))
    for views in args.views:
        predicted = task.decode(task.predict_outputs(model, data.images, views=views), data.images,
                                run.config["contract"])
        cells = []
        for p in names:
            s = scatter(errors(p, predicted[p], data.objects[p]))
            ratio = s / fit_scatter[p]
            cells.append(f"{s:.4f} ({ratio:.2f}x {'<=' if ratio <= BAR else '> '} {BAR})")
        print(f"{views:>5}  " + "  ".join(f"{c:>26}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
