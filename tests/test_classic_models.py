"""The classic ImageNet networks (LeNet-5, AlexNet, VGG A-E, Inception v1, ResNet-18..152).

A harness over their registry names, in the spirit of timm's ``tests/test_models.py``:
published parameter counts at the paper's input, astronomy-shaped inputs, one
training step on torch and on JAX, and ``.keras`` round trips of the models
with the custom local response normalisation layer.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from deepsky import models
from deepsky.errors import DeepskyError
from deepsky.models.registry import get_entry
from deepsky.models.resnet import resnet
from deepsky.models.vgg import vgg

CLASSIC = [
    "lenet-5", "alexnet",
    "vgg-a", "vgg-a-lrn", "vgg-b", "vgg-c", "vgg-d", "vgg-e",
    "inception-v1",
    "resnet-18", "resnet-34", "resnet-50", "resnet-101", "resnet-152",
]
ALIASES = {"vgg-16": "vgg-d", "vgg-19": "vgg-e"}
WITH_LRN = ["alexnet", "vgg-a-lrn", "inception-v1"]

# name -> (input_shape, num_classes, parameters). Published values: LeNet-5 with
# full C3 connectivity and a softmax output; AlexNet single-tower at the 227x227
# its arithmetic needs; VGG from Table 1's layers (C: B plus three 1x1 convolutions,
# 133,047,848 + 65,792 + 2 x 262,656); GoogLeNet with biases, without BN or aux
# heads; ResNet as torchvision counts them (trainable weights, see the test).
PAPER_COUNTS = {
    "lenet-5": ((32, 32, 1), 10, 61_706),
    "alexnet": ((227, 227, 3), 1000, 62_378_344),
    "vgg-a": ((224, 224, 3), 1000, 132_863_336),
    "vgg-a-lrn": ((224, 224, 3), 1000, 132_863_336),
    "vgg-b": ((224, 224, 3), 1000, 133_047_848),
    "vgg-c": ((224, 224, 3), 1000, 133_638_952),
    "vgg-d": ((224, 224, 3), 1000, 138_357_544),
    "vgg-e": ((224, 224, 3), 1000, 143_667_240),
    "inception-v1": ((224, 224, 3), 1000, 6_998_552),
    "resnet-18": ((224, 224, 3), 1000, 11_689_512),
    "resnet-34": ((224, 224, 3), 1000, 21_797_672),
    "resnet-50": ((224, 224, 3), 1000, 25_557_032),
    "resnet-101": ((224, 224, 3), 1000, 44_549_160),
    "resnet-152": ((224, 224, 3), 1000, 60_192_808),
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run this module's torch work on one thread, and restore the setting after.

    Building and stepping networks on 44-pixel cutouts gains nothing from a
    second thread, and on a shared two-core machine OpenMP's barriers wait for
    descheduled threads: ResNet-152's training step measured 22 s on two
    threads and 0.7 s on one.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def one_thread_env(**variables):
    """The environment for a subprocess, on one thread like this module (see ``one_torch_thread``)."""
    xla_flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
    return {**os.environ, "OMP_NUM_THREADS": "1", "XLA_FLAGS": xla_flags, **variables}


def trainable_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def to_numpy(tensor):
    import keras

    return keras.ops.convert_to_numpy(tensor)


def first_conv(model):
    import keras

    return next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def output_of(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape[1:])


def layer_names(model):
    return {layer.name for layer in model.layers}


def test_every_classic_name_is_registered_with_a_citation():
    described = models.describe()
    for name in CLASSIC + list(ALIASES):
        assert name in described, name
    assert "LeCun" in described["lenet-5"] and "He et al." in described["resnet-50"]
    for alias, name in ALIASES.items():
        assert get_entry(alias).builder is get_entry(name).builder


# Feature maps the papers give, checked on the same builds as the counts.
PAPER_SHAPES = {
    "lenet-5": {"c1": (28, 28, 6), "s2": (14, 14, 6), "c3": (10, 10, 16), "s4": (5, 5, 16), "c5": (1, 1, 120)},
    "alexnet": {"conv1": (55, 55, 96), "pool1": (27, 27, 96), "pool2": (13, 13, 256), "pool5": (6, 6, 256)},
    "vgg-d": {"block1_conv2": (224, 224, 64), "block5_pool": (7, 7, 512)},
    "inception-v1": {"inception_3a_output": (28, 28, 256), "inception_4e_output": (14, 14, 832),
                     "inception_5b_output": (7, 7, 1024)},
    "resnet-50": {"conv1_relu": (112, 112, 64), "pool1_pool": (56, 56, 64), "conv2_block3_out": (56, 56, 256),
                  "conv3_block1_out": (28, 28, 512), "conv5_block3_out": (7, 7, 2048)},
}


@pytest.mark.parametrize("name", CLASSIC)
def test_published_parameter_count_at_the_paper_input(name):
    """Trainable weights are what papers and torchvision count.

    For the networks without batch normalisation that is every weight. For
    ResNet, torchvision's 11,689,512 counts ``parameters()``: convolutions, FC
    and BN gamma/beta; Keras' ``count_params()`` also counts BN's moving mean
    and variance (buffers in torch, non-trainable weights in Keras), two
    numbers per BN channel, which is checked too.
    """
    import keras

    input_shape, num_classes, expected = PAPER_COUNTS[name]
    model = models.create(name, input_shape=input_shape, num_classes=num_classes)
    assert trainable_count(model) == expected
    bn_channels = sum(layer.gamma.shape[0] for layer in model.layers
                      if isinstance(layer, keras.layers.BatchNormalization))
    assert model.count_params() == expected + 2 * bn_channels
    assert (bn_channels > 0) == name.startswith("resnet")
    if name == "resnet-18":
        assert bn_channels == 4_800
    assert model.output.shape[1:] == (num_classes,)
    for layer_name, shape in PAPER_SHAPES.get(name, {}).items():
        assert output_of(model, layer_name) == shape, layer_name


def test_variant_counts_grouped_alexnet_and_inception_with_auxiliary_heads():
    # the paper's two-GPU AlexNet: conv2, conv4, conv5 see half the maps
    assert models.create("alexnet", grouped=True).count_params() == 60_965_224
    model = models.create("inception-v1", aux_classifiers=True)
    assert model.count_params() == 13_378_280
    assert [tuple(out.shape[1:]) for out in model.outputs] == [(1000,)] * 3
    assert output_of(model, "loss1_ave_pool") == (4, 4, 512)  # the paper's "4x4x512 output for (4a)"


def test_lenet5_pads_28_pixel_digits_to_the_paper_field_and_slides_c5_on_larger_inputs():
    # the paper centres 28x28 digits in a 32x32 field
    mnist = models.create("lenet-5", input_shape=(28, 28, 1))
    assert output_of(mnist, "pad") == (32, 32, 1) and mnist.count_params() == 61_706
    cutouts = models.create("lenet-5", input_shape=(64, 64, 5), num_classes=2)
    assert output_of(cutouts, "c5") == (9, 9, 120) and output_of(cutouts, "flatten") == (9 * 9 * 120,)


def assert_probabilities(model, x, num_classes):
    p = to_numpy(model(x, training=False))
    assert p.shape == (len(x), num_classes)
    assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("name", CLASSIC)
def test_single_band_64_pixel_cutouts_give_probabilities(name):
    model = models.create(name, input_shape=(64, 64, 1), num_classes=3)
    assert_probabilities(model, np.random.default_rng(0).normal(size=(2, 64, 64, 1)).astype("float32"), 3)


@pytest.mark.parametrize("name", CLASSIC)
def test_five_band_44_pixel_cutouts_give_probabilities_and_train_one_step_on_torch(name):
    """One build serves both checks: building is most of the cost of these tests."""
    import keras

    assert keras.backend.backend() == "torch"
    model = models.create(name, input_shape=(44, 44, 5), num_classes=3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 44, 44, 5)).astype("float32")
    y = np.array([0, 1, 2, 1])
    assert_probabilities(model, x, 3)
    conv = first_conv(model)
    before = to_numpy(conv.kernel).copy()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = float(model.train_on_batch(x, y))
    assert np.isfinite(loss)
    # the first convolution moved: gradients reach the bottom of the network
    assert not np.array_equal(before, to_numpy(conv.kernel))


def test_vgg_leaves_out_the_poolings_a_small_cutout_has_no_room_for():
    # 44 pixels pool to 22, 11, 5, 2, 1 (rounding down): all five fit
    model = models.create("vgg-a", input_shape=(44, 44, 5), num_classes=2)
    assert output_of(model, "block5_pool") == (1, 1, 512)
    # 16 pixels reach 1 after four poolings; the fifth is left out, not an error
    model = models.create("vgg-d", input_shape=(16, 16, 5), num_classes=2)
    assert output_of(model, "block4_pool") == (1, 1, 512)
    assert "block5_pool" not in layer_names(model)
    assert output_of(model, "flatten") == (512,)


def test_alexnet_leaves_out_poolings_on_small_cutouts():
    model = models.create("alexnet", input_shape=(44, 44, 5), num_classes=2)
    assert output_of(model, "conv1") == (9, 9, 96)
    assert output_of(model, "pool2") == (1, 1, 256)
    assert "pool5" not in layer_names(model)
    model = models.create("alexnet", input_shape=(32, 32, 3), num_classes=2)
    assert {"pool2", "pool5"}.isdisjoint(layer_names(model))


def test_small_input_resnet_keeps_resolution_and_weights():
    default = models.create("resnet-18", input_shape=(32, 32, 5), num_classes=2)
    small = models.create("resnet-18", input_shape=(32, 32, 5), num_classes=2, small_input=True)
    assert output_of(default, "conv5_block2_out") == (1, 1, 512)
    assert output_of(small, "conv5_block2_out") == (4, 4, 512)
    assert "pool1_pool" not in layer_names(small)
    assert small.count_params() == default.count_params()


def test_inception_reaches_one_pixel_at_32_and_keeps_auxiliary_heads_on_cutouts():
    model = models.create("inception-v1", input_shape=(32, 32, 5), num_classes=2, aux_classifiers=True)
    assert output_of(model, "inception_5b_output") == (1, 1, 1024)
    assert "loss1_ave_pool" not in layer_names(model)  # 2x2 maps have no room for a 5x5 pooling
    x = np.zeros((1, 32, 32, 5), "float32")
    assert [to_numpy(p).shape for p in model(x, training=False)] == [(1, 2)] * 3


ROUND_TRIP_SCRIPT = """
import json, sys
import numpy as np
import keras
import deepsky.layers.lrn  # registers deepsky>LocalResponseNormalization, as importing a model would
cases = json.loads(sys.argv[1])
for path, inputs, expected in cases:
    model = keras.saving.load_model(path)  # safe mode
    lrn = [layer for layer in model.layers if type(layer).__name__ == "LocalResponseNormalization"]
    assert lrn and lrn[0].get_config()["beta"] == 0.75, path
    got = keras.ops.convert_to_numpy(model(np.load(inputs), training=False))
    np.testing.assert_allclose(got, np.load(expected), rtol=1e-5, atol=1e-6)
print("loaded", len(cases))
"""


@pytest.mark.slow  # default suite under 10 minutes; run with -m slow
def test_lrn_models_round_trip_through_keras_files_in_a_fresh_process(tmp_path):
    cases = []
    rng = np.random.default_rng(2)
    for name in WITH_LRN:
        model = models.create(name, input_shape=(44, 44, 5), num_classes=3)
        x = rng.normal(size=(2, 44, 44, 5)).astype("float32")
        path = tmp_path / f"{name}.keras"
        model.save(path)
        np.save(tmp_path / f"{name}_x.npy", x)
        np.save(tmp_path / f"{name}_p.npy", to_numpy(model(x, training=False)))
        cases.append([str(path), str(tmp_path / f"{name}_x.npy"), str(tmp_path / f"{name}_p.npy")])
    result = subprocess.run([sys.executable, "-c", ROUND_TRIP_SCRIPT, json.dumps(cases)],
                            capture_output=True, text=True, timeout=300, env=one_thread_env(KERAS_BACKEND="torch"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded 3" in result.stdout


def test_lrn_matches_the_paper_formula_and_torch():
    import keras
    import torch

    from deepsky.layers.lrn import LocalResponseNormalization

    x = np.random.default_rng(3).normal(size=(2, 3, 3, 7)).astype("float32")
    ours = keras.ops.convert_to_numpy(LocalResponseNormalization()(x))
    # torch (like Caffe) divides alpha by the window size
    theirs = torch.nn.functional.local_response_norm(
        torch.from_numpy(x).permute(0, 3, 1, 2), size=5, alpha=5e-4, beta=0.75, k=2.0
    ).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    # the edge channel sums over channels 0..2 only
    manual = x[..., 0] / (2 + 1e-4 * (x[..., :3] ** 2).sum(-1)) ** 0.75
    np.testing.assert_allclose(ours[..., 0], manual, rtol=1e-5)


def make_lrn(size):
    from deepsky.layers.lrn import LocalResponseNormalization

    return LocalResponseNormalization(size=size)


@pytest.mark.parametrize(
    "build, arguments",
    [
        (models.create, dict(name="vgg-d", input_shape=(44, 44))),
        (models.create, dict(name="alexnet", input_shape=(8, 8, 5))),
        (models.create, dict(name="resnet-50", input_shape="44x44")),
        (models.create, dict(name="lenet-5", input_shape=(32, 32, 0))),
        (resnet, dict(depth=20)),
        (vgg, dict(config="f")),
        (make_lrn, dict(size=4)),
    ],
    ids=["two-axis-shape", "alexnet-too-small", "string-shape", "no-bands", "resnet-depth-20", "vgg-config-f",
         "lrn-even-size"],
)
def test_bad_arguments_are_deepsky_errors_naming_the_value(build, arguments):
    with pytest.raises(DeepskyError, match="Received|known"):
        build(**arguments)


JAX_SCRIPT = """
import json, sys
import numpy as np
import keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from deepsky import models
rng = np.random.default_rng(4)
x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
y = np.array([0, 1, 2, 1])
for name in json.loads(sys.argv[1]):
    model = models.create(name, input_shape=(32, 32, 3), num_classes=3)
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    before = keras.ops.convert_to_numpy(conv.kernel).copy()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = float(model.train_on_batch(x, y))
    assert np.isfinite(loss), (name, loss)
    assert not np.array_equal(before, keras.ops.convert_to_numpy(conv.kernel)), name
    print("jax ok", name, round(loss, 4), flush=True)
"""


# one of each kind of block (plain convolutions, LRN, inception modules, residual bottlenecks);
# the slow run trains every classic model on JAX
JAX_QUICK = ["lenet-5", "vgg-a-lrn", "inception-v1", "resnet-50"]


@pytest.mark.jax
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (./test.sh installs it)")
@pytest.mark.parametrize("names", [pytest.param(JAX_QUICK, id="one-of-each-block", marks=pytest.mark.slow),
                                   pytest.param(CLASSIC, id="every-model", marks=pytest.mark.slow)])
def test_classic_models_train_one_step_on_jax(names):
    # One process for all models: JAX compiles per shape, and later models reuse
    # the earlier ones' compiled initialisers. XLA's optimisation passes are
    # off: this checks that the step runs, not how fast, and they would
    # triple the compile time of a single step.
    env = one_thread_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, json.dumps(names)],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.count("jax ok") == len(names)
