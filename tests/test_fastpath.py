"""The torch fast path computes what the Keras model computes."""

import numpy as np

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
