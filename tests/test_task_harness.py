"""Every registered task, end to end through the real CLI on tiny data.

Simulate or read, train one epoch, evaluate on held-out data, write the
report, predict a table: a new task module is covered here without a line
of its own. Tasks whose default data is a file that is not on this machine
(the shared real data sets) are skipped, saying which file. The commands
run through ``deepsky.cli.main`` in this process (argument parsing, errors
to exit status 2 and all), which saves starting Keras and torch afresh for
each of them; ``test_cli.py`` runs the installed command itself.
"""

import csv
import json

import pytest

from conftest import report_problems, run_in_process as run_cli
from deepsky import tasks


@pytest.mark.parametrize("name", tasks.names())
def test_task_trains_evaluates_reports_and_predicts(name, tmp_path, browser):
    run = tmp_path / "run"
    trained = run_cli("train", name, "--n", 96, "--epochs", 1, "--batch-size", 32, "-o", run, check=False)
    if trained.returncode == 2 and "--data" in trained.stderr:
        pytest.skip(f"{name}: its default data is not here ({trained.stderr.strip()})")
    assert trained.returncode == 0, trained.stderr
    assert "Traceback" not in trained.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == name and (run / "model.keras").exists()
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 1 and "val_loss" in history

    evaluated = run_cli("evaluate", run, "--n", 32)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["held_out"] is True and metrics["task"] == name
    shown = [line for line in tasks.get(name, **config["task_options"]).headline
             if line.value(metrics) is not None]
    assert shown, f"none of {name}'s headline metrics is in metrics.json"
    assert shown[0].label in evaluated.stdout  # the CLI prints what the task declares

    run_cli("report", run)
    page = (run / "report.html").read_text()
    assert shown[0].label.replace("'", "&#x27;") in page
    assert not list(run.glob("**/.*part*"))
    assert report_problems(browser, run / "report.html") == []  # as a reader sees it, in Chromium

    # predict: the file the run trained on, or a few freshly simulated objects
    source = config["data"].get("path")
    if source is None:
        source = tmp_path / "objects.h5"
        run_cli("simulate", name, "--n", 8, "--seed", 99, "-o", source)
    table = tmp_path / "predictions.csv"
    run_cli("predict", run, source, "-o", table)
    rows = list(csv.DictReader(table.open()))
    assert rows and rows[0]["id"] != "" and len(rows[0]) > 1

