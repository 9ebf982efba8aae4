"""The torch fast path computes what the Keras model computes."""

import numpy as np
import pytest

from deepsky import tasks
from deepsky.fastpath import TorchChain
from deepsky.predict import predict_array
from deepsky.simulate.stargalaxy import make_star_galaxy


def _model_and_data():
    data = make_star_galaxy(n=64, seed=2, workers=1)
    return tasks.get("star-galaxy").build_model("kim-brunner", data), data


def test_fast_path_matches_keras_in_float32():
    import torch

    model, data = _model_and_data()
    assert TorchChain.supports(model)
    x = torch.from_numpy(data.images[:16])
    with torch.no_grad():
        expected = model(x, training=False).numpy()
        got = TorchChain(model)(x).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bf16_prediction_stays_close_to_float32():
    model, data = _model_and_data()
    fp32 = predict_array(model, data.images, precision="fp32")
    bf16 = predict_array(model, data.images, precision="bf16", batch_size=20)
    assert np.abs(fp32 - bf16).max() < 0.02
    np.testing.assert_allclose(fp32.sum(axis=1), 1, atol=1e-5)


def test_training_through_the_fast_path_updates_the_keras_variables():
    from deepsky.train import TrainConfig, fit

    model, data = _model_and_data()
    before = model.get_layer("conv1").kernel.numpy().copy()
    fit(model, data.images[:48], data.labels[:48], data.images[48:], data.labels[48:], TrainConfig(epochs=1))
    assert not np.allclose(model.get_layer("conv1").kernel.numpy(), before)


def test_balanced_class_weights_pull_a_minority_class_up():
    # 90% of one class: unweighted training predicts it everywhere; balanced weights must not
    import keras

    from deepsky import models
    from deepsky.train import TrainConfig, fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4)).astype("float32")
    y = (rng.random(600) < 0.1).astype(np.int64)
    x[y == 1] += 0.8  # a weak signal: the minority overlaps the majority
    recalls = {}
    for weighting in ("none", "balanced"):
        keras.utils.set_random_seed(0)
        model = models.create("mlp", input_shape=(4,), num_classes=2, hidden=(16,))
        fit(model, x, y, x[:50], y[:50], TrainConfig(epochs=8, batch_size=32, augment=False, learning_rate=1e-2,
                                                      class_weight=weighting, precision="fp32"))
        predicted = np.asarray(model.predict_on_batch(x)).argmax(1)
        recalls[weighting] = (predicted[y == 1] == 1).mean()
    assert recalls["balanced"] > recalls["none"] + 0.3, recalls


def test_sersic_inputs_on_the_fast_path_equal_the_keras_layer():
    """The structural-parameter network's first layer (references and stretch), in torch ops and in keras.ops."""
    import keras
    import torch

    from deepsky.layers.references import SersicInputs, _sersic_inputs_kernel

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:64, :64] - 31.5
    scale = rng.uniform(1.0, 6.0, (6, 1, 1))
    images = (rng.uniform(0.1, 20.0, (6, 1, 1)) * np.exp(-np.hypot(x, y) / scale) / (2 * np.pi * scale**2)
              + rng.normal(0, 0.00063, (6, 64, 64)))[..., None].astype(np.float32)
    images[0] = -0.001  # a sum below the flux floor
    layer = SersicInputs(0.00063, 1.6, 1.3, 0.06, crop=48)
    expected = keras.ops.convert_to_numpy(layer(images))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in training: must not round the sums
        got = _sersic_inputs_kernel(layer, torch.from_numpy(images), None).numpy()
    assert got.shape == expected.shape == (6, 48, 48, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_turn_predicts_what_the_turned_cutouts_give():
    from deepsky.data.augment import dihedral

    model, data = _model_and_data()
    images = data.images[:40]
    for k in range(8):
        turned = dihedral(images, None, np.full(len(images), k))
        np.testing.assert_allclose(predict_array(model, images, batch_size=16, precision="fp32", turn=k),
                                   predict_array(model, turned, batch_size=16, precision="fp32"), atol=1e-5)


def test_turns_share_the_sersic_input_layer_and_predict_what_each_turn_gives():
    """Computing the input layer once and turning its output equals predicting each turned cutout."""
    from deepsky.layers.references import SersicInputs
    from deepsky.models import create
    from deepsky.models.compose import with_preprocessing

    rng = np.random.default_rng(1)
    y, x = np.mgrid[:64, :64] - 31.5
    # elongated, off-centre galaxies, so that every turn changes the pixels
    images = (np.exp(-np.hypot((x - 3) / 2.0, y / 0.8)) * rng.uniform(0.5, 5, (12, 1, 1))
              + rng.normal(0, 0.001, (12, 64, 64)))[..., None].astype(np.float32)
    core = create("sersic-cnn", input_shape=(48, 48, 3), num_classes=12)
    model = with_preprocessing(core, [SersicInputs(0.001, 1.0, 1.0, 0.06, crop=48)], (64, 64, 1))
    assert TorchChain(model)._turnable_prefix(images.shape) == 1  # only the input layer is shared
    together = predict_array(model, images, batch_size=5, precision="fp32", turns=range(8))
    assert together.shape == (8, 12, 12)
    for k in range(8):
        np.testing.assert_allclose(together[k], predict_array(model, images, batch_size=5, precision="fp32", turn=k),
                                   rtol=1e-4, atol=1e-5)
    assert np.abs(together[1] - together[0]).max() > 1e-3  # the turns did differ


def test_inference_with_the_relu_fused_into_the_convolutions_matches_keras():
    """Frozen for inference, convolutions with a ReLU run as one oneDNN op: the same numbers as Keras."""
    import torch

    from deepsky.fastpath import _fused_conv_relu_available, _is_relu
    from deepsky.models import create

    model = create("sersic-cnn", input_shape=(48, 48, 3), num_classes=12)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert convs and all(_is_relu(layer.activation) for layer in convs)
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((10, 48, 48, 3)).astype(np.float32))
    with torch.no_grad():
        if not _fused_conv_relu_available():
            pytest.skip("this torch build has no oneDNN fused convolution")
        expected = model(x, training=False).numpy()
        got = TorchChain(model).freeze(torch.float32)(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# -- any functional graph -----------------------------------------------------------
def _two_view_model():
    """A two-input 1-D network (global and local light-curve views), dilated convolutions, concatenation."""
    import keras
    from keras import layers

    views = []
    inputs = []
    for name, length in (("global_view", 61), ("local_view", 21)):
        x = inp = keras.Input((length, 1), name=name)
        x = layers.Conv1D(4, 5, padding="same", activation="relu")(x)
        x = layers.Conv1D(4, 3, dilation_rate=2, padding="causal", activation="elu")(x)
        x = layers.MaxPooling1D(3, strides=2, padding="same")(x)
        x = layers.Conv1D(6, 3, strides=2, padding="same", groups=2)(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.1)(x)
        views.append(layers.Flatten()(x))
        inputs.append(inp)
    pooled = layers.GlobalAveragePooling1D()(layers.UpSampling1D(2)(layers.Reshape((-1, 2))(views[1])))
    x = layers.Concatenate()([*views, pooled])
    x = layers.Dense(8, activation="gelu")(x)
    x = layers.Dropout(0.2)(x)
    out = layers.Dense(3, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, out)


def _tiny_unet():
    import keras
    from keras import layers

    inp = keras.Input((16, 16, 2), name="image")
    d1 = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    d2 = layers.Conv2D(8, 3, strides=2, padding="same", activation="swish")(layers.ZeroPadding2D(((0, 1), (1, 0)))(d1))
    d2 = layers.Cropping2D(((0, 1), (1, 0)))(d2)  # back to 8x8
    b = layers.AveragePooling2D(2, padding="same")(d2)
    b = layers.Conv2D(8, 3, padding="same", activation="tanh")(b)
    u2 = layers.UpSampling2D(2)(b)
    u2 = layers.Concatenate()([u2, d2])
    u1 = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="selu")(u2)
    u1 = layers.Add()([u1, d1])
    u1 = layers.Multiply()([u1, layers.Activation("sigmoid")(u1)])
    out = layers.Conv2D(1, 1, name="mask")(layers.Conv2DTranspose(3, 2, padding="valid")(u1))
    return keras.Model(inp, out)


def _inputs_for(model, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, *t.shape[1:])).astype(np.float32) for t in model.inputs]


def _logits_model(model):
    import keras

    producing = model.outputs[0]._keras_history[0]
    inner = producing._inbound_nodes[0].input_tensors[0] if type(producing).__name__ == "Activation" else None
    return model if inner is None else keras.Model(model.inputs, inner)


def _assert_close(got, expected, rtol=1e-4):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def _graph_cases():
    from deepsky.models import create

    return {
        "resnet-18": lambda: create("resnet-18", input_shape=(32, 32, 5), num_classes=3),
        "inception-v1": lambda: create("inception-v1", input_shape=(32, 32, 3), num_classes=4),
        "two-view-1d": _two_view_model,
        "unet": _tiny_unet,
        "deep-hits": lambda: create("deep-hits", input_shape=(21, 21, 4), num_classes=2),  # shared layers, turns
        "alexnet": lambda: create("alexnet", input_shape=(40, 40, 1), num_classes=3),  # local response norm
    }


@pytest.mark.parametrize("name", ["resnet-18", "inception-v1", "two-view-1d", "unet", "deep-hits", "alexnet"])
def test_graph_forward_matches_keras_in_float32(name):
    """Residual additions, concatenations, two inputs, transposed convolutions: the fast path equals Keras."""
    import torch

    import keras

    keras.utils.set_random_seed(0)
    model = _graph_cases()[name]()
    assert TorchChain.supports(model)
    xs = [torch.from_numpy(x) for x in _inputs_for(model, 3)]
    xs = xs[0] if len(xs) == 1 else xs
    graph = TorchChain(model)
    with torch.no_grad():
        _assert_close(graph(xs).numpy(), model(xs, training=False).numpy())
        # before the softmax, where differences are not squashed
        expected = _logits_model(model)(xs, training=False).numpy()
        got = graph(xs, logits=True)
        if _logits_model(model) is model and name == "two-view-1d":  # a Dense layer's own softmax
            got = torch.softmax(got, -1)
        _assert_close(got.numpy(), expected)
        graph.freeze(torch.float32)
        _assert_close(graph(xs).numpy(), model(xs, training=False).numpy())


def test_graph_takes_inputs_by_name_and_runs_nested_models():
    import keras
    import torch

    inner = keras.Sequential([keras.Input((21, 1)), keras.layers.Conv1D(3, 3), keras.layers.GlobalMaxPooling1D()])
    a, b = keras.Input((21, 1), name="a"), keras.Input((21, 1), name="b")
    model = keras.Model([a, b], keras.layers.Subtract()([inner(a), inner(b)]))  # one sub-model called twice
    xa, xb = (torch.from_numpy(x) for x in _inputs_for(model, 4))
    with torch.no_grad():
        expected = model([xa, xb]).numpy()
        _assert_close(TorchChain(model)({"b": xb, "a": xa}).numpy(), expected)


def test_a_layer_without_a_kernel_runs_as_keras_and_matches():
    import keras
    import torch

    from deepsky.fastpath import kernel_for

    class CentreSurround(keras.layers.Layer):  # a layer the fast path has never heard of
        def call(self, x):
            return x - keras.ops.mean(x, axis=(1, 2), keepdims=True) * keras.ops.arange(x.shape[-1], dtype=x.dtype)

    class Doubled(keras.layers.Conv2D):  # a known class with its own call is not the known computation
        def call(self, x):
            return 2 * super().call(x)

    inp = keras.Input((12, 12, 2))
    x = keras.layers.Conv2D(3, 3, activation="relu")(inp)
    surround = CentreSurround()
    doubled = Doubled(2, 3)
    x = doubled(surround(x))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    assert kernel_for(surround) is None and kernel_for(doubled) is None
    x = torch.from_numpy(_inputs_for(model, 3)[0])
    with torch.no_grad():
        _assert_close(TorchChain(model)(x).numpy(), model(x).numpy())
        _assert_close(TorchChain(model).freeze(torch.float32)(x).numpy(), model(x).numpy())


def test_batch_norm_moving_statistics_move_as_keras_moves_them():
    """Training mode: batch statistics, and Keras' momentum convention with the biased variance."""
    import keras
    import torch

    keras.utils.set_random_seed(1)
    model = _graph_cases()["resnet-18"]()
    xs = torch.from_numpy(_inputs_for(model, 4)[0] * 3 + 1)
    start = [v.numpy().copy() for v in model.weights]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    with torch.no_grad():
        expected_out = _logits_model(model)(xs, training=True).numpy()
        expected = [(layer.moving_mean.numpy().copy(), layer.moving_variance.numpy().copy()) for layer in norms]
        model.set_weights(start)
        got_out = TorchChain(model)(xs, training=True, logits=True).numpy()
    _assert_close(got_out, expected_out)
    for layer, (mean, variance) in zip(norms, expected):
        assert not np.allclose(mean, 0)
        _assert_close(layer.moving_mean.numpy(), mean)
        _assert_close(layer.moving_variance.numpy(), variance)


def test_local_response_norm_kernel_has_the_keras_layers_values_and_gradient(monkeypatch):
    import keras
    import torch

    from deepsky import fastpath
    from deepsky.fastpath import kernel_for
    from deepsky.layers.lrn import LocalResponseNormalization

    for size, beta in ((5, 0.75), (3, 0.5)):
        layer = LocalResponseNormalization(size=size, alpha=1e-2, beta=beta, k=2.0)
        x = torch.from_numpy(np.random.default_rng(size).normal(0, 5, (2, 6, 4, 7)).astype(np.float32))
        x_keras, x_fast = x.clone().requires_grad_(), x.permute(0, 3, 1, 2).clone().requires_grad_()
        expected = layer(x_keras)
        got = kernel_for(layer).fn(layer, x_fast, None)
        _assert_close(got.detach().permute(0, 2, 3, 1).numpy(), keras.ops.convert_to_numpy(expected))
        weights = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
        (expected * weights).sum().backward()
        (got * weights.permute(0, 3, 1, 2)).sum().backward()
        _assert_close(x_fast.grad.permute(0, 2, 3, 1).numpy(), x_keras.grad.numpy())
        monkeypatch.setattr(fastpath, "CHUNK_ELEMENTS", x[0].numel())  # inference a cutout at a time
        with torch.no_grad():
            chunked = kernel_for(layer).fn(layer, x.permute(0, 3, 1, 2), None)
        _assert_close(chunked.permute(0, 2, 3, 1).numpy(), keras.ops.convert_to_numpy(expected.detach()))
        monkeypatch.undo()


@pytest.mark.parametrize("name", ["resnet-18", "two-view-1d"])
def test_a_bf16_training_step_through_the_graph_updates_the_keras_variables(name):
    import keras
    import torch
    import torch.nn.functional as F

    keras.utils.set_random_seed(2)
    model = _graph_cases()[name]()
    before = [v.numpy().copy() for v in model.trainable_variables]
    graph = TorchChain(model)
    optimizer = torch.optim.AdamW([v.value for v in model.trainable_variables], lr=1e-3)
    xs = [torch.from_numpy(x) for x in _inputs_for(model, 4)]
    xs = xs[0] if len(xs) == 1 else xs
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = graph(xs, training=True, logits=True)
    loss = F.cross_entropy(logits.float(), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    after = [v.numpy() for v in model.trainable_variables]
    assert all(not np.allclose(a, b) for a, b in zip(after, before))


def test_bf16_graph_prediction_stays_close_to_float32():
    import keras

    keras.utils.set_random_seed(3)
    model = _graph_cases()["resnet-18"]()
    images = _inputs_for(model, 6)[0]
    fp32 = predict_array(model, images, precision="fp32")
    bf16 = predict_array(model, images, precision="bf16", batch_size=4)
    assert np.abs(fp32 - bf16).max() < 0.02
    np.testing.assert_allclose(fp32, TorchChain(model)(to_torch_input(images)).detach().numpy(), atol=1e-5)


def to_torch_input(images):
    from deepsky.fastpath import to_torch

    return to_torch(images)


def test_laying_kernels_out_for_torch_keeps_their_values():
    """The graph re-strides convolution kernels once (no copy per step); the Keras variables keep their values."""
    import keras

    keras.utils.set_random_seed(4)
    model = _tiny_unet()
    before = [v.numpy().copy() for v in model.weights]
    TorchChain(model)
    for value, variable in zip(before, model.weights):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_cached_frozen_graph_follows_every_change_of_the_weights():
    import keras
    import torch

    from deepsky.predict import predict_array

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(4)(inputs)))
    x = np.random.default_rng(0).random((10, 8), dtype=np.float32)
    first = predict_array(model, x, precision="fp32")
    assert np.array_equal(predict_array(model, x, precision="fp32"), first)  # reused, same answer
    weights = model.get_weights()
    weights[0] += 1
    model.set_weights(weights)
    second = predict_array(model, x, precision="fp32")
    with torch.no_grad():  # as an optimizer step changes them: in place
        model.layers[1].kernel.value.add_(1.0)
    third = predict_array(model, x, precision="fp32")
    assert not np.allclose(first, second) and not np.allclose(second, third)
    # fused AdamW steps change the weights in place without torch counting the change
    from deepsky.train import TrainConfig, fit

    fit(model, x, np.arange(10) % 3, x, np.arange(10) % 3, TrainConfig(epochs=3, batch_size=5, learning_rate=0.1))
    fourth = predict_array(model, x, precision="fp32")
    fresh = keras.Model.from_config(model.get_config())
    fresh.set_weights(model.get_weights())
    assert not np.allclose(third, fourth)
    np.testing.assert_allclose(fourth, predict_array(fresh, x, precision="fp32"), atol=1e-6)
