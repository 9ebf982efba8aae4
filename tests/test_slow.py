"""Paper-scale runs (``./test.sh -m slow``): the issue's science criteria, measured."""

import json

import pytest

from conftest import run_cli


@pytest.mark.slow
def test_default_star_galaxy_run_reaches_the_paper_auc(tmp_path):
    run = tmp_path / "run"
    run_cli("train", "star-galaxy", "-o", run, timeout=3600)
    run_cli("evaluate", run, timeout=1800)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["held_out"] and metrics["test_data"]["seed"] != json.loads((run / "config.json").read_text())["train"]["seed"]
    assert metrics["roc_auc"] >= 0.98
    bins = metrics["by_bin"]["bins"]
    # the faint, small regime is visibly harder than the bright end
    assert bins[-1]["roc_auc"] < bins[0]["roc_auc"] - 0.01
    assert bins[-1]["completeness_star"] < bins[0]["completeness_star"]
    run_cli("report", run)
    assert (run / "report.html").exists()
