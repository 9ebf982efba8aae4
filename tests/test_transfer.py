"""Transfer learning: weights copied by name, layers frozen from the input, and the measured sweep."""

import json

import numpy as np
import pytest

from deepsky.errors import DeepskyError


def test_transfer_weights_copies_matching_layers_and_skips_a_new_head():
    from deepsky import models
    from deepsky.finetune import freeze_layers, transfer_weights, weight_layers

    source = models.create("mlp", input_shape=(9,), num_classes=3, hidden=(16, 8))
    target = models.create("mlp", input_shape=(9,), num_classes=5, hidden=(16, 8))
    copied = transfer_weights(source, target)
    assert copied == ["dense1", "dense2"]  # the 5-class head has another shape and starts afresh
    np.testing.assert_array_equal(source.get_layer("dense2").kernel.numpy(), target.get_layer("dense2").kernel.numpy())
    assert [layer.name for layer in weight_layers(target)] == ["dense1", "dense2", "logits"]
    assert freeze_layers(target, 1) == ["dense1"]
    assert not target.get_layer("dense1").trainable and target.get_layer("dense2").trainable
    with pytest.raises(DeepskyError, match="between 0 and 2"):
        freeze_layers(target, 3)


def test_transfer_refuses_an_unrelated_model():
    from deepsky import models
    from deepsky.finetune import transfer_weights

    with pytest.raises(DeepskyError, match="no layer"):
        transfer_weights(models.create("mlp", input_shape=(9,), num_classes=3),
                         models.create("kim-brunner", input_shape=(44, 44, 5), num_classes=2))


@pytest.mark.slow  # default suite under 10 minutes; run with -m slow
def test_transfer_experiment_sweeps_frozen_layers_on_another_survey(trained_run, tmp_path):
    from deepsky.experiments.transfer import run_transfer

    out = tmp_path / "transfer"
    report = run_transfer(out, pretrained=trained_run, freeze="0,10", n=60, epochs=1, test_size=80)
    record = json.loads((out / "experiment.json").read_text())
    assert [r["label"] for r in record["runs"]] == ["from scratch", "fine-tuned, 0 frozen", "fine-tuned, 10 frozen"]
    for r in record["runs"]:
        assert 0 <= r["roc_auc"] <= 1 and r["n_train"] == 54
    config = json.loads((out / "freeze-10" / "config.json").read_text())
    assert config["task_options"] == {"survey": "cfhtls"} and config["contract"]["pixel_scale_arcsec"] == 0.187
    assert len(config["transfer"]["frozen_layers"]) == 10
    assert (out / "figures" / "transfer.png").exists() and "AUC gain over scratch" in report.read_text()


def test_freeze_list_is_checked():
    from deepsky.experiments.transfer import parse_freeze

    assert parse_freeze("5, 0,2") == (0, 2, 5)
    with pytest.raises(DeepskyError, match="comma-separated"):
        parse_freeze("a,b")
