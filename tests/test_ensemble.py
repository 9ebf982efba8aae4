"""Ensembles: several networks trained with successive seeds, saved as one model that averages them."""

import json
import re

import numpy as np

from conftest import run_in_process as run_cli


def test_an_ensemble_averages_its_members_and_resumes_in_the_member_it_stopped_in(tmp_path):
    import keras

    from deepsky.io import load_model
    from deepsky.predict import predict_array
    from deepsky.simulate.transits import make_transits

    run = tmp_path / "run"
    trained = run_cli("train", "transit-detection", "--n", 800, "--epochs", 1, "--ensemble", 2, "-o", run)
    counts = [(int(a), int(b)) for a, b in re.findall(r"epoch 1\s+\S*\s+(\d+)/(\d+)", trained.stderr)]
    assert len(counts) == 2 and all(done == total for done, total in counts), counts  # a bar per member, full
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["ensemble"] == 2 and config["ensemble"] == 2
    history = json.loads((run / "history.json").read_text())
    assert len(history["members"]) == 2 and len(history["loss"]) == 1
    assert history["loss"][0] == np.mean([m["loss"][0] for m in history["members"]])
    members = [load_model(run / "members" / f"member{k}.keras") for k in range(2)]
    curves = make_transits(64, seed=9).inputs
    each = [predict_array(m, curves, precision="fp32") for m in members]
    assert not np.allclose(each[0], each[1])  # other seeds, other networks
    model = load_model(run / "model.keras")
    assert isinstance(model.get_layer("ensemble_mean"), keras.layers.Average)
    np.testing.assert_allclose(predict_array(model, curves, precision="fp32"), (each[0] + each[1]) / 2, atol=1e-5)
    assert not list(run.glob("checkpoint_member*"))  # a saved member's checkpoint is gone

    # an interruption in the second member: the first is kept, the second trained again from its seed
    first = (run / "members" / "member0.keras").read_bytes()
    for name in ("member1.keras", "member1.json"):
        (run / "members" / name).unlink()
    (run / "model.keras").unlink()
    resumed = run_cli("train", "-o", run, "--resume")
    said = resumed.stdout + resumed.stderr
    assert "ensemble member 2 of 2" in said and "member 1 of 2" not in said
    assert (run / "members" / "member0.keras").read_bytes() == first and (run / "model.keras").exists()
    again = load_model(run / "members" / "member1.keras")
    np.testing.assert_allclose(predict_array(again, curves, precision="fp32"), each[1], atol=2e-3)


def test_an_ensemble_of_none_is_one_clear_error(tmp_path):
    result = run_cli("train", "transit-detection", "--n", 100, "--ensemble", 0, "-o", tmp_path / "run", check=False)
    assert result.returncode == 2 and "--ensemble must be at least 1" in result.stderr
    assert not (tmp_path / "run").exists()
