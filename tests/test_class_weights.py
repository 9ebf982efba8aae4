"""Class weights in training, divided out of the saved model's probabilities (deepsky.objectives.undo_class_weights)."""

import numpy as np
import pytest

from deepsky.train import TrainConfig, fit


def _classifier(n_classes=3, softmax_layer=True):
    import keras

    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    if softmax_layer:
        outputs = keras.layers.Activation("softmax")(keras.layers.Dense(n_classes, name="logits")(hidden))
    else:
        outputs = keras.layers.Dense(n_classes, activation="softmax")(hidden)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("softmax_layer", [True, False])
def test_undo_class_weights_divides_the_weights_out_of_the_probabilities(softmax_layer):
    from deepsky.objectives import undo_class_weights

    model = _classifier(softmax_layer=softmax_layer)
    x = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)
    before = np.asarray(model.predict_on_batch(x), np.float64)
    weights = np.array([0.5, 2.0, 4.0])
    assert undo_class_weights(model, weights)
    expected = before / weights
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(x)), expected, atol=1e-5)


def test_undo_class_weights_leaves_other_models_alone():
    import keras

    from deepsky.objectives import undo_class_weights

    inputs = keras.Input((2,))
    regression = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    kernel = regression.layers[-1].bias.numpy().copy()
    assert not undo_class_weights(regression, np.ones(3) * 2)
    np.testing.assert_array_equal(regression.layers[-1].bias.numpy(), kernel)


def test_weighted_training_then_correction_predicts_the_real_class_mix():
    """A rare class (10%) overlapping a common one: balanced weights overstate it, the correction does not."""
    from deepsky.objectives import class_weights, undo_class_weights

    rng = np.random.default_rng(1)
    labels = (rng.random(4000) < 0.1).astype(np.int64)
    x = (rng.standard_normal((4000, 2)) + labels[:, None] * 1.5).astype(np.float32)
    model = _classifier(n_classes=2)
    config = TrainConfig(epochs=8, batch_size=64, learning_rate=3e-3, augment=False, class_weight="balanced",
                         precision="fp32")
    fit(model, x[:3000], labels[:3000], x[3000:3200], labels[3000:3200], config)
    test_x, test_y = x[3000:], labels[3000:]
    weighted = np.asarray(model.predict_on_batch(test_x))[:, 1].mean()
    assert undo_class_weights(model, class_weights(config, labels[:3000], 2))
    corrected = np.asarray(model.predict_on_batch(test_x))[:, 1].mean()
    assert weighted > 0.25  # balanced weights: the rare class looks as common as the other
    assert abs(corrected - test_y.mean()) < 0.04 < abs(weighted - test_y.mean())
