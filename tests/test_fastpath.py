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

    from deepsky.fastpath import _sersic_inputs
    from deepsky.layers.references import SersicInputs

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:64, :64] - 31.5
    scale = rng.uniform(1.0, 6.0, (6, 1, 1))
    images = (rng.uniform(0.1, 20.0, (6, 1, 1)) * np.exp(-np.hypot(x, y) / scale) / (2 * np.pi * scale**2)
              + rng.normal(0, 0.00063, (6, 64, 64)))[..., None].astype(np.float32)
    images[0] = -0.001  # a sum below the flux floor
    layer = SersicInputs(0.00063, 1.6, 1.3, 0.06, crop=48)
    expected = keras.ops.convert_to_numpy(layer(images))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in training: must not round the sums
        got = _sersic_inputs(layer, torch.from_numpy(images)).numpy()
    assert got.shape == expected.shape == (6, 48, 48, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_turn_predicts_what_the_turned_cutouts_give():
    from deepsky.train import dihedral

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
