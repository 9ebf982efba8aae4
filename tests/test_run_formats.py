"""Run directories stay readable across versions: a small run of each released format is kept and used.

``tests/data/runs/format-N`` is a one-epoch transit-detection run (the
Pearson MLP, 88 kB) written by the release that introduced format N. When a
change raises ``deepsky.runs.FORMAT_VERSION``, add the new format's run
beside the old ones and keep every older one loading (or refused with a
message saying what to do).
"""

import json

import numpy as np
import pytest

from conftest import REPO, run_in_process
from deepsky.runs import FORMAT_VERSION, Run

KEPT = sorted((REPO / "tests" / "data" / "runs").glob("format-*"))


def test_every_format_up_to_the_current_one_is_kept():
    assert [int(path.name.split("-")[1]) for path in KEPT] == list(range(1, FORMAT_VERSION + 1))


@pytest.mark.parametrize("kept", KEPT, ids=[path.name for path in KEPT])
def test_a_kept_run_loads_predicts_and_evaluates(kept, tmp_path):
    import shutil

    run = tmp_path / kept.name
    shutil.copytree(kept, run)  # evaluate writes into the run directory; the kept one stays as released
    config = Run.open(run).config
    assert config["format_version"] == int(kept.name.split("-")[1])
    data = tmp_path / "curves.h5"
    run_in_process("simulate", config["task"], "--n", 20, "--seed", 3, "-o", data)
    out = tmp_path / "table.csv"
    run_in_process("predict", run, data, "-o", out)
    rows = out.read_text().splitlines()
    assert len(rows) == 21 and "p_transit" in rows[0]
    run_in_process("evaluate", run, "--n", 40)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and np.isfinite(metrics["accuracy"])


def test_a_run_without_a_format_version_is_read_as_format_one(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    config = json.loads((KEPT[0] / "config.json").read_text())
    config.pop("format_version")
    (run / "config.json").write_text(json.dumps(config))
    assert Run.open(run).config["task"] == "transit-detection"
