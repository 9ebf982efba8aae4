"""The model registry and the Kim & Brunner network as the lecture's table gives it."""

import numpy as np
import pytest

from deepsky import models
from deepsky.errors import DeepskyError


def test_registry_lists_kim_brunner_with_a_description():
    assert "kim-brunner" in models.names()
    assert "Kim & Brunner" in models.describe()["kim-brunner"]


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(DeepskyError, match="unknown model 'nope'.*kim-brunner"):
        models.create("nope")


def test_kim_brunner_layers_match_the_paper_table():
    model = models.create("kim-brunner", input_shape=(44, 44, 5), num_classes=2)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    # the lecture's feature-map figure: layer 1 is 32x40x40, layer 3 64x20x20, layer 6 128x10x10
    assert shapes["conv1"] == (40, 40, 32)
    assert shapes["conv3"] == (20, 20, 64)
    assert shapes["conv6"] == (10, 10, 128)
    assert shapes["pool3"] == (5, 5, 128)
    assert shapes["fc1"] == (2048,) and shapes["fc2"] == (2048,)
    assert shapes["probabilities"] == (2,)
    convs = [layer for layer in model.layers if layer.name.startswith("conv") and not layer.name.endswith("_act")]
    assert [c.filters for c in convs] == [32, 32, 64, 64, 64, 128, 128, 128]
    assert [c.kernel_size for c in convs] == [(5, 5)] + [(3, 3)] * 7
    # 8 convolutions + 3 dense layers: about 11 million parameters, as the paper says
    assert model.count_params() == 11_230_754


def test_kim_brunner_initial_weights_are_orthogonal_with_paper_biases():
    model = models.create("kim-brunner")
    np.testing.assert_allclose(model.get_layer("conv2").bias.numpy(), 0.1)
    np.testing.assert_allclose(model.get_layer("fc1").bias.numpy(), 0.01)
    kernel = model.get_layer("fc2").kernel.numpy()
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(2048), atol=1e-4)


def test_every_registered_model_has_one_step_training_tests_on_torch_and_jax():
    # The one-step tests live beside each family (classic, zoo, fundamentals, backends);
    # a model added to the registry without joining one of their lists fails here.
    from test_classic_models import ALIASES, CLASSIC
    from test_zoo import ZOO

    papers = {"perceptron", "mlp", "kim-brunner", "dieleman", "sersic-cnn", "astronet", "pearson-mlp", "deep-hits", "pix2pix-unet",
              "pearson-wavelet-mlp", "pearson-cnn", "george-huerta-shallow", "george-huerta-deep",
              "vernardos-tsagkatakis", "deeplens"}
    covered = set(CLASSIC) | set(ALIASES) | set(ZOO) | papers
    assert set(models.names()) <= covered, sorted(set(models.names()) - covered)


def test_astronet_has_the_triage_columns():
    model = models.create("astronet", input_shape={"global_view": (201, 1), "local_view": (61, 1)}, num_classes=2)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    # global: 5 blocks of two k5 convolutions, 16..256 filters, pool 5 stride 2; local: 2 blocks, pool 7 stride 2
    assert shapes["global_conv1a"] == (201, 16) and shapes["global_conv5b"][-1] == 256
    assert shapes["global_flatten"] == (768,) and shapes["local_flatten"] == (352,)
    assert [shapes[f"fc{i}"] for i in range(1, 5)] == [(512,)] * 4 and shapes["probabilities"] == (2,)
    with pytest.raises(DeepskyError, match="two named inputs"):
        models.create("astronet", input_shape=(201, 1), num_classes=2)
