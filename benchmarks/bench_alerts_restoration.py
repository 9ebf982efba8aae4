"""Real/bogus and deconvolution speed: stamps simulated and candidates classified per second; GAN against Richardson-Lucy.

    .venv/bin/python benchmarks/bench_alerts_restoration.py            # about 3 min on an idle 2-core machine
    .venv/bin/python benchmarks/bench_alerts_restoration.py --quick    # a smoke test of the script

1. Difference-imaging stamps (``make_real_bogus``): stamps simulated per
   second in one process and on every core.
2. Candidates classified end to end, stamps in and table out
   (``deepsky.predict.predict_files`` on a ``real-bogus`` run: read the
   stack, the Deep-HiTS network over the 4 rotations, write the CSV),
   against the random forest's path on the same stamps (the 14 stamp
   features, then the forest). The run is trained here for one epoch on
   2,000 stamps: speed does not depend on how well it was trained.
3. Galaxy images deconvolved per second: the ``deconvolution`` task's
   pix2pix generator (prediction, bf16 where the CPU has it) against
   Richardson-Lucy with the sky put back (the task's baseline, 40
   iterations: what its calibration chose) and the Wiener filter, on the
   same 64x64x3 images.

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

import numpy as np  # noqa: E402
from _timing import best_of  # noqa: E402




def stamps(n: int) -> None:
    from deepsky.simulate.difference import make_real_bogus

    one = best_of(lambda: make_real_bogus(n, seed=1, workers=1)) / n
    every = best_of(lambda: make_real_bogus(n, seed=1, workers=os.cpu_count())) / n
    print(f"stamps: {1 / one:,.0f} stamps/s in one process, {1 / every:,.0f} on {os.cpu_count()} cores ({n} stamps)")
    print(f"stamps_all_cores_vs_one={one / every:.2f}")


def candidates(n: int, folder: Path) -> None:
    from deepsky.baselines import difference_stamp_features, fit_random_forest
    from deepsky.predict import predict_files
    from deepsky.simulate.difference import make_real_bogus
    from deepsky.train import TrainConfig, train_task

    train = folder / "train.h5"
    training = make_real_bogus(2000, seed=2)
    training.save(train)
    run = train_task("real-bogus", folder / "run", data=train, config=TrainConfig(epochs=1, batch_size=128))
    stack = folder / "candidates.h5"
    make_real_bogus(n, seed=3).save(stack)
    forest = fit_random_forest(difference_stamp_features(training.inputs), training.labels)
    predict_files(run.path, [stack], folder / "warm.csv")  # the frozen graph built before the timing
    network = best_of(lambda: predict_files(run.path, [stack], folder / "table.csv")) / n

    def forest_path():
        from deepsky.data.store import Dataset

        stamps_read = Dataset.load(stack).inputs
        forest.predict_proba(difference_stamp_features(stamps_read))

    baseline = best_of(forest_path) / n
    print(f"candidates, stack in and table out: Deep-HiTS {1 / network:,.0f}/s, features + random forest "
          f"{1 / baseline:,.0f}/s ({n} candidates)")
    print(f"network_vs_forest_candidates_per_second={baseline / network:.2f}")


def restoration(n: int, folder: Path) -> None:
    from deepsky import tasks
    from deepsky.simulate.degrade import Degradation, gaussian_kernel, make_deconvolution
    from deepsky.tasks.deconvolution import richardson_lucy, wiener
    from deepsky.train import TrainConfig, train_task

    train = folder / "pairs.h5"
    make_deconvolution(64, seed=4).save(train)
    model = train_task("deconvolution", folder / "gan", data=train,
                       config=TrainConfig(epochs=1, batch_size=16)).load_model()
    data = make_deconvolution(n, seed=5)
    kernel = gaussian_kernel(Degradation().sigma_pixels(data.meta["pixel_scale_arcsec"]))
    rms = np.asarray(data.meta["sky_noise"]) * Degradation().noise_factor
    task = tasks.get("deconvolution")
    task.predict_outputs(model, data.inputs[:64])
    gan = best_of(lambda: task.predict_outputs(model, data.inputs, batch_size=64)) / n
    single = best_of(lambda: task.predict_outputs(model, data.inputs, views=1, batch_size=64)) / n
    lucy = best_of(lambda: richardson_lucy(data.inputs, kernel, 40, 10 * rms)) / n
    filtered = best_of(lambda: wiener(data.inputs, kernel, 0.1)) / n
    print(f"deconvolution, 64x64x3 images: GAN {1 / gan:,.0f}/s averaged over {task.default_views} turns "
          f"(one view: {1 / single:,.0f}/s), Richardson-Lucy (40 iterations) {1 / lucy:,.0f}/s, "
          f"Wiener {1 / filtered:,.0f}/s ({n} images)")
    print(f"gan_vs_richardson_lucy_images_per_second={lucy / gan:.2f} gan_one_view_vs_richardson_lucy="
          f"{lucy / single:.2f} gan_vs_wiener={filtered / gan:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the script")
    args = parser.parse_args()
    n_stamps, n_candidates, n_images = (2000, 2000, 64) if args.quick else (20000, 20000, 512)
    with tempfile.TemporaryDirectory() as tmp:
        stamps(n_stamps)
        candidates(n_candidates, Path(tmp))
        restoration(n_images, Path(tmp))


if __name__ == "__main__":
    main()
