"""Train and predict several networks three ways, side by side: deepsky's fast path, plain Keras, hand-written torch.

For each model (random data of the model's input shape, batch 64):

1. deepsky: the training step of ``deepsky.train`` on the torch backend
   (:class:`deepsky.fastpath.TorchGraph`, bf16 autocast where
   ``deepsky.config.bf16_supported()``, fused AdamW, cross-entropy on logits),
   and prediction through ``deepsky.predict.predict_array`` (batch 128).
2. plain Keras: the same architecture, ``compile(AdamW)``, ``model.fit`` and
   ``model.predict`` (default batch 32), float32.
3. hand-written PyTorch: an ``nn.Module`` of the same layer sizes, bf16
   autocast, channels_last, fused AdamW; bf16 inference under
   ``torch.inference_mode`` (batch 128).

The three take turns round by round (deepsky, Keras, torch, deepsky, ...) so
that other work on a shared machine slows them alike; ratios use medians of
step (or whole prediction call) times.

Then the contention measurement: one training epoch of kim-brunner on the
deepsky path, alone and while a second CPU-bound torch process (matrix
products on all cores) runs, each in a fresh process per thread setting:
the default, ``torch.set_num_threads(1)``, ``OMP_WAIT_POLICY=PASSIVE`` and
``GOMP_SPINCOUNT=0`` set before torch is imported.

It ends with one line per model,
``model=NAME train_vs_keras=X train_vs_torch=Y predict_vs_keras=Z``, one line
``contention epoch_ratio=R`` (default settings), and PASS/FAIL per target.

Run::

    .venv/bin/python benchmarks/bench_models.py            # about 5 min on an idle 2-core machine
    .venv/bin/python benchmarks/bench_models.py --quick    # smoke test, under 2 min
    .venv/bin/python benchmarks/bench_models.py --models resnet-18,two-view

The exit code is 0 unless the script crashes: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # the comparison is defined on the torch backend
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

BATCH = 64  # --quick uses 16
PREDICT_BATCH = 128  # predict_array's default; the torch module uses it too
TARGETS = {"train_vs_keras": 1.8, "train_vs_torch": 0.9, "predict_vs_keras": 4.0, "epoch_ratio": 2.5}
LEAK = 0.01  # Kim & Brunner's leaky ReLU slope
CONTENTION_SETTINGS = {
    "default": {},
    "threads1": {},  # DEEPSKY_THREADS=1 in the training process
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spincount0": {"GOMP_SPINCOUNT": "0"},
}


# -- the models -----------------------------------------------------------------------
def two_view_keras(num_classes=2, global_bins=2001, local_bins=201):
    """An AstroNet-like classifier of a light curve's two views (Shallue & Vanderburg 2018).

    A global view (the whole phase-folded orbit, 2001 bins) and a local view
    (the transit, 201 bins) go through columns of 1-D convolutions and max
    pooling; the flattened columns are concatenated and go through four dense
    layers of 512 units.
    """
    import keras
    from keras import layers

    def column(x, widths, pool, name):
        for i, width in enumerate(widths, 1):
            x = layers.Conv1D(width, 5, padding="same", activation="relu", name=f"{name}_conv{i}a")(x)
            x = layers.Conv1D(width, 5, padding="same", activation="relu", name=f"{name}_conv{i}b")(x)
            x = layers.MaxPooling1D(pool, strides=2, name=f"{name}_pool{i}")(x)
        return layers.Flatten(name=f"{name}_flatten")(x)

    global_view = keras.Input((global_bins, 1), name="global_view")
    local_view = keras.Input((local_bins, 1), name="local_view")
    x = layers.Concatenate(name="views")([column(global_view, (16, 32, 64, 128, 256), 5, "global"),
                                          column(local_view, (16, 32), 7, "local")])
    for i in range(1, 5):
        x = layers.Dense(512, activation="relu", name=f"fc{i}")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    out = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model([global_view, local_view], out, name="two_view")


MODELS = {
    # name: (builder of the Keras model, input shapes)
    "kim-brunner": (lambda: _create("kim-brunner", (44, 44, 5)), [(44, 44, 5)]),
    "resnet-18": (lambda: _create("resnet-18", (64, 64, 5)), [(64, 64, 5)]),
    "inception-v1": (lambda: _create("inception-v1", (96, 96, 3)), [(96, 96, 3)]),
    "two-view": (two_view_keras, [(2001, 1), (201, 1)]),
}


def _create(name, shape):
    from deepsky import models

    return models.create(name, input_shape=shape, num_classes=2)


def torch_module(name, shapes):
    """A hand-written ``nn.Module`` with the layer sizes of the Keras model ``name`` (NHWC inputs)."""
    import torch.nn as nn
    import torch.nn.functional as F

    class KimBrunner(nn.Module):
        def __init__(self, bands):
            super().__init__()
            layout = [(32, 5, 0), (32, 3, 1), None, (64, 3, 1), (64, 3, 1), (64, 3, 1), None,
                      (128, 3, 1), (128, 3, 1), (128, 3, 1), None]
            convs, channels = [], bands
            for spec in layout:
                if spec is None:
                    convs.append(nn.MaxPool2d(2))
                    continue
                filters, kernel, pad = spec
                convs += [nn.Conv2d(channels, filters, kernel, padding=pad), nn.LeakyReLU(LEAK)]
                channels = filters
            self.features = nn.Sequential(*convs)
            self.fc1, self.fc2, self.logits = nn.Linear(128 * 5 * 5, 2048), nn.Linear(2048, 2048), nn.Linear(2048, 2)

        def forward(self, x):
            x = self.features(x).flatten(1)
            x = F.leaky_relu(self.fc1(F.dropout(x, 0.5, self.training)), LEAK)
            x = F.leaky_relu(self.fc2(F.dropout(x, 0.5, self.training)), LEAK)
            return self.logits(F.dropout(x, 0.5, self.training))

    def conv_bn(cin, cout, kernel, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                             nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.a, self.b = conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, 1)
            self.short = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

        def forward(self, x):
            return F.relu(self.short(x) + self.b(F.relu(self.a(x))))

    class ResNet18(nn.Module):
        def __init__(self, bands):
            super().__init__()
            self.stem = conv_bn(bands, 64, 7, 2)
            blocks, cin = [], 64
            for stage, width in enumerate((64, 128, 256, 512)):
                blocks += [Basic(cin, width, 2 if stage else 1), Basic(width, width, 1)]
                cin = width
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(512, 2)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.stem(x)), 3, 2, 1)
            return self.fc(self.blocks(x).mean((2, 3)))

    class Inception(nn.Module):
        def __init__(self, cin, n1, r3, n3, r5, n5, pool):
            super().__init__()
            self.b1 = nn.Conv2d(cin, n1, 1)
            self.b3 = nn.Sequential(nn.Conv2d(cin, r3, 1), nn.ReLU(inplace=True), nn.Conv2d(r3, n3, 3, padding=1))
            self.b5 = nn.Sequential(nn.Conv2d(cin, r5, 1), nn.ReLU(inplace=True), nn.Conv2d(r5, n5, 5, padding=2))
            self.bp = nn.Conv2d(cin, pool, 1)

        def forward(self, x):
            pooled = F.max_pool2d(x, 3, 1, 1)
            return torch_cat([F.relu(self.b1(x)), F.relu(self.b3(x)), F.relu(self.b5(x)), F.relu(self.bp(pooled))])

    class GoogLeNet(nn.Module):
        def __init__(self, bands):
            super().__init__()
            from deepsky.models.inception import _MODULES

            self.conv1 = nn.Conv2d(bands, 64, 7, 2, 3)
            self.conv2r, self.conv2 = nn.Conv2d(64, 64, 1), nn.Conv2d(64, 192, 3, padding=1)
            self.lrn = nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)
            modules, cin = [], 192
            for module in _MODULES:
                if module is None:
                    modules.append(nn.MaxPool2d(3, 2, 1))
                    continue
                n1, r3, n3, r5, n5, pool = module[1]
                modules.append(Inception(cin, n1, r3, n3, r5, n5, pool))
                cin = n1 + n3 + n5 + pool
            self.modules_ = nn.Sequential(*modules)
            self.fc = nn.Linear(cin, 2)

        def forward(self, x):
            x = self.lrn(F.max_pool2d(F.relu(self.conv1(x)), 3, 2, 1).float()).to(x.dtype)
            x = F.relu(self.conv2(F.relu(self.conv2r(x))))
            x = F.max_pool2d(self.lrn(x.float()).to(x.dtype), 3, 2, 1)
            x = self.modules_(x).mean((2, 3))
            return self.fc(F.dropout(x, 0.4, self.training))

    class Column(nn.Module):
        def __init__(self, widths, pool):
            super().__init__()
            layers, cin = [], 1
            for width in widths:
                layers += [nn.Conv1d(cin, width, 5, padding=2), nn.ReLU(inplace=True),
                           nn.Conv1d(width, width, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool1d(pool, 2)]
                cin = width
            self.layers = nn.Sequential(*layers)

        def forward(self, x):
            return self.layers(x).transpose(1, 2).flatten(1)  # Keras flattens (length, channels)

    class TwoView(nn.Module):
        def __init__(self):
            super().__init__()
            self.global_, self.local = Column((16, 32, 64, 128, 256), 5), Column((16, 32), 7)
            features = _column_length(shapes[0][0], 5, 5) * 256 + _column_length(shapes[1][0], 7, 2) * 32
            self.fcs = nn.ModuleList([nn.Linear(features if i == 0 else 512, 512) for i in range(4)])
            self.logits = nn.Linear(512, 2)

        def forward(self, global_view, local_view):
            x = torch_cat([self.global_(global_view), self.local(local_view)])
            for fc in self.fcs:
                x = F.relu(fc(x))
            return self.logits(x)

    bands = shapes[0][-1]
    return {"kim-brunner": lambda: KimBrunner(bands), "resnet-18": lambda: ResNet18(bands),
            "inception-v1": lambda: GoogLeNet(bands), "two-view": TwoView}[name]()


def torch_cat(xs):
    import torch

    return torch.cat(xs, 1)


def _column_length(length, pool, blocks):
    for _ in range(blocks):
        length = (length - pool) // 2 + 1
    return length


# -- the three ways ---------------------------------------------------------------------
class DeepskyWay:
    """deepsky.train's torch training step and deepsky.predict.predict_array."""

    key = "deepsky"

    def __init__(self, model):
        import torch

        from deepsky.config import bf16_supported
        from deepsky.fastpath import TorchGraph

        self.model = model
        self.graph = TorchGraph(model)
        # fused: one kernel for all parameters, as deepsky.train does
        self.optimizer = torch.optim.AdamW([v.value for v in model.trainable_variables], lr=1e-4,
                                           weight_decay=1e-4, fused=True)
        self.bf16 = bf16_supported()

    def train_steps(self, xs, y, steps):
        import torch
        import torch.nn.functional as F

        from deepsky.fastpath import to_torch

        times = []
        for b in range(steps):
            t0 = time.perf_counter()
            index = slice(b * BATCH, (b + 1) * BATCH)
            inputs = [to_torch(x[index]) for x in xs]
            target = torch.from_numpy(y[index])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.graph(inputs if len(inputs) > 1 else inputs[0], training=True, logits=True)
            loss = F.cross_entropy(logits.float(), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            times.append(time.perf_counter() - t0)
        return times

    def predict(self, xs):
        from deepsky.predict import predict_array

        if len(xs) == 1:
            return predict_array(self.model, xs[0], batch_size=PREDICT_BATCH)
        named = {t.name: x for t, x in zip(self.model.inputs, xs)}
        try:
            return predict_array(self.model, named, batch_size=PREDICT_BATCH)
        except Exception:  # a predict_array that takes one array: its own steps, written out
            return _frozen_graph_predict(self.model, named, self.bf16)


def _frozen_graph_predict(model, named, bf16):
    import torch

    from deepsky.fastpath import TorchGraph, to_torch

    graph = TorchGraph(model).freeze(torch.bfloat16 if bf16 else torch.float32)
    n = len(next(iter(named.values())))
    out = []
    with torch.no_grad():
        for start in range(0, n, PREDICT_BATCH):
            out.append(graph({k: to_torch(v[start : start + PREDICT_BATCH]) for k, v in named.items()}).float().numpy())
    return np.concatenate(out)


class KerasWay:
    """A lecture's compile/fit/predict, float32."""

    key = "keras"

    def __init__(self, model):
        import keras

        self.model = model
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-4, weight_decay=1e-4),
                      loss="sparse_categorical_crossentropy")

    def train_steps(self, xs, y, steps):
        import keras

        ticks = []

        class Tick(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if not ticks:
                    ticks.append(time.perf_counter())

            def on_train_batch_end(self, batch, logs=None):
                ticks.append(time.perf_counter())

        n = steps * BATCH
        self.model.fit([x[:n] for x in xs] if len(xs) > 1 else xs[0][:n], y[:n], batch_size=BATCH, epochs=1,
                       shuffle=False, verbose=0, callbacks=[Tick()])
        return list(np.diff(ticks))

    def predict(self, xs):
        return self.model.predict(xs if len(xs) > 1 else xs[0], verbose=0)


class TorchWay:
    """The hand-written module: bf16 autocast, channels_last, fused AdamW, bf16 inference."""

    key = "torch"

    def __init__(self, name, shapes):
        import torch

        self.module = torch_module(name, shapes)
        if len(shapes[0]) == 3:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.module.parameters(), lr=1e-4, weight_decay=1e-4, fused=True)
        self.infer = None

    @staticmethod
    def _inputs(xs, index, dtype=None):
        import torch

        out = []
        for x in xs:
            t = torch.from_numpy(np.ascontiguousarray(x[index]))
            t = t.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last) if t.ndim == 4 \
                else t.transpose(1, 2)
            out.append(t if dtype is None else t.to(dtype))
        return out

    def train_steps(self, xs, y, steps):
        import torch
        import torch.nn.functional as F

        self.module.train()
        self.infer = None
        times = []
        for b in range(steps):
            t0 = time.perf_counter()
            index = slice(b * BATCH, (b + 1) * BATCH)
            target = torch.from_numpy(y[index])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = self.module(*self._inputs(xs, index))
            loss = F.cross_entropy(logits.float(), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            times.append(time.perf_counter() - t0)
        return times

    def predict(self, xs):
        import copy

        import torch

        if self.infer is None:
            self.infer = copy.deepcopy(self.module).eval().to(torch.bfloat16)
        n = len(xs[0])
        out = np.zeros((n, 2), np.float32)
        with torch.inference_mode():
            for start in range(0, n, PREDICT_BATCH):
                index = slice(start, start + PREDICT_BATCH)
                logits = self.infer(*self._inputs(xs, index, torch.bfloat16))
                out[index] = torch.softmax(logits.float(), 1).numpy()
        return out


# -- measuring -----------------------------------------------------------------------
def bench_model(name, args):
    import keras

    build, shapes = MODELS[name]
    rng = np.random.default_rng(0)
    n_train = args.steps * BATCH
    xs = [rng.standard_normal((n_train, *s)).astype(np.float32) for s in shapes]
    y = rng.integers(0, 2, n_train).astype(np.int64)
    xp = [rng.standard_normal((args.n_predict, *s)).astype(np.float32) for s in shapes]
    keras.utils.set_random_seed(0)
    ways = [DeepskyWay(build()), KerasWay(build()), TorchWay(name, shapes)]
    for way in ways:  # warm-up: oneDNN primitives, allocator, Keras' traced functions
        way.train_steps(xs, y, 2)
        way.predict([x[: min(len(x), PREDICT_BATCH)] for x in xp])
    steps = {way.key: [] for way in ways}
    for _ in range(args.rounds):
        for way in ways:
            steps[way.key] += way.train_steps(xs, y, args.steps)[1:]  # the first step of a call is not timed
    predict = {way.key: [] for way in ways}
    for _ in range(args.predict_rounds):
        for way in ways:
            t0 = time.perf_counter()
            way.predict(xp)
            predict[way.key].append(time.perf_counter() - t0)
    train_img_s = {k: BATCH / statistics.median(v) for k, v in steps.items()}
    predict_img_s = {k: args.n_predict / statistics.median(v) for k, v in predict.items()}
    print(f"  {name}: train img/s (median step) " + ", ".join(f"{k} {v:.0f}" for k, v in train_img_s.items())
          + "; predict img/s " + ", ".join(f"{k} {v:.0f}" for k, v in predict_img_s.items()), flush=True)
    return {"train_images_per_s": train_img_s, "predict_images_per_s": predict_img_s,
            "train_vs_keras": train_img_s["deepsky"] / train_img_s["keras"],
            "train_vs_torch": train_img_s["deepsky"] / train_img_s["torch"],
            "predict_vs_keras": predict_img_s["deepsky"] / predict_img_s["keras"],
            "torch_predict_vs_keras": predict_img_s["torch"] / predict_img_s["keras"],
            "predict_vs_torch": predict_img_s["deepsky"] / predict_img_s["torch"]}


def burner(seconds):
    """A CPU-bound torch process on all cores: matrix products until ``seconds`` pass."""
    import torch

    a = torch.randn(512, 512)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = torch.tanh(a @ a)


def contention_worker(setting, steps):
    """One kim-brunner epoch of ``deepsky.train.fit`` alone, then beside a burner; prints JSON."""
    import torch

    from deepsky.train import TrainConfig, fit

    if setting == "threads1":
        os.environ["DEEPSKY_THREADS"] = "1"  # fixed: deepsky keeps a count the user chose
        torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((steps * BATCH, 44, 44, 5)).astype(np.float32)
    y = rng.integers(0, 2, steps * BATCH).astype(np.int64)
    model = _create("kim-brunner", (44, 44, 5))
    config = TrainConfig(epochs=1, batch_size=BATCH, learning_rate=1e-4, augment=False)

    def epoch():
        t0 = time.perf_counter()
        history = fit(model, x, y, x[:BATCH], y[:BATCH], config)
        return time.perf_counter() - t0, history["threads"][-1]

    epoch()  # warm-up
    idle, idle_threads = epoch()
    # the burner keeps torch's defaults: it stands for someone else's job
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    other = subprocess.Popen([sys.executable, __file__, "--burner", str(max(30.0, 30 * idle))], env=env)
    try:
        if hasattr(os, "sched_setaffinity"):  # on the very cores this process may use
            os.sched_setaffinity(other.pid, os.sched_getaffinity(0))
        time.sleep(2.0)  # let it start its threads
        busy, busy_threads = epoch()
    finally:
        other.kill()
        other.wait()
    print(json.dumps({"setting": setting, "threads": idle_threads, "busy_threads": busy_threads,
                      "idle_s": idle, "busy_s": busy}))


def contention(args):
    results = {}
    for setting, extra in CONTENTION_SETTINGS.items():
        env = {**os.environ, **extra}
        done = subprocess.run([sys.executable, __file__, "--contention-worker", setting, "--batch", str(BATCH),
                               "--contention-steps", str(args.contention_steps)],
                              env=env, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        r["ratio"] = r["busy_s"] / r["idle_s"]
        results[setting] = r
        print(f"  contention {setting:10s} ({r['threads']:.3g} threads{', ' + ' '.join(f'{k}={v}' for k, v in extra.items()) if extra else ''}): "
              f"epoch {r['idle_s']:.1f} s alone, {r['busy_s']:.1f} s beside a torch job "
              f"({r['busy_threads']:.3g} threads on average): {r['ratio']:.2f}x", flush=True)
    return results


def others_busy() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    except OSError:
        return "load unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--steps", type=int, default=4, help="training steps per turn, the first untimed (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="turns of each way (default 2)")
    parser.add_argument("--n-predict", type=int, default=256, help="images predicted per call (default 256)")
    parser.add_argument("--predict-rounds", type=int, default=2)
    parser.add_argument("--contention-steps", type=int, default=32, help="steps in the contention epoch (default 32)")
    parser.add_argument("--no-contention", action="store_true", help="skip the contention measurement")
    parser.add_argument("--quick", action="store_true", help="a smoke test of the script, under 2 minutes")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--burner", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--contention-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.burner is not None:
        burner(args.burner)
        return 0
    if args.contention_worker is not None:
        if args.batch:
            globals()["BATCH"] = args.batch
        contention_worker(args.contention_worker, args.contention_steps)
        return 0
    if args.quick:
        global BATCH
        BATCH = 16
        args.steps, args.rounds, args.n_predict, args.predict_rounds, args.contention_steps = 3, 1, 64, 1, 4
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")

    import torch

    from deepsky.config import bf16_supported

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 {'yes' if bf16_supported() else 'no'}, "
          f"{others_busy()} at the start; batch {BATCH}, {args.steps} steps x {args.rounds} rounds per way", flush=True)
    results = {name: bench_model(name, args) for name in names}
    print(f"  ({others_busy()} after the models)")
    contended = None if args.no_contention else contention(args)

    print()
    for name, r in results.items():
        print(f"model={name} train_vs_keras={r['train_vs_keras']:.2f} train_vs_torch={r['train_vs_torch']:.2f} "
              f"predict_vs_keras={r['predict_vs_keras']:.2f}")
    if contended is not None:
        print(f"contention epoch_ratio={contended['default']['ratio']:.2f}")
    print("  (the ceiling on this CPU: hand-written torch predicts "
          + ", ".join(f"{name} {r['torch_predict_vs_keras']:.2f}x" for name, r in results.items())
          + " Keras; deepsky predicts " + ", ".join(f"{r['predict_vs_torch']:.2f}x" for r in results.values())
          + " torch)")
    for name, r in results.items():
        for key in ("train_vs_keras", "train_vs_torch", "predict_vs_keras"):
            ok = r[key] >= TARGETS[key]
            print(f"{'PASS' if ok else 'FAIL'}  {name} {key} {r[key]:.2f} (target >= {TARGETS[key]})")
    if contended is not None:
        ratio = contended["default"]["ratio"]
        print(f"{'PASS' if ratio <= TARGETS['epoch_ratio'] else 'FAIL'}  contention epoch_ratio {ratio:.2f} "
              f"(target <= {TARGETS['epoch_ratio']})")
    if args.quick:
        print("(--quick: too few steps for stable timings; a smoke test of the script only)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "contention": contended, "targets": TARGETS,
                                         "settings": vars(args) | {"json": str(args.json)}}, indent=1,
                                        default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
