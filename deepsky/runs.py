"""The run directory: everything one training run leaves behind.

``config.json`` (task, model, data contract, data provenance, settings),
``model.keras``, ``history.json``, ``checkpoint/`` (last finished epoch),
``metrics.json`` and ``evaluation.h5`` (after ``evaluate``), ``report.html``
and ``figures/`` (after ``report``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from deepsky.errors import DeepskyError


# 1: config.json, model.keras (Keras 3), history.json, checkpoint/, metrics.json. Raise it when a
# change means an older deepsky would misread a run, and read the older format or say what to do.
FORMAT_VERSION = 1
REQUIRED_KEYS = ("task", "model")


class Run:
    """A run directory on disk."""

    def __init__(self, path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    model_path = property(lambda self: self.path / "model.keras")
    history_path = property(lambda self: self.path / "history.json")
    metrics_path = property(lambda self: self.path / "metrics.json")
    evaluation_path = property(lambda self: self.path / "evaluation.h5")
    checkpoint_dir = property(lambda self: self.path / "checkpoint")
    report_path = property(lambda self: self.path / "report.html")
    figures_dir = property(lambda self: self.path / "figures")

    @classmethod
    def open(cls, path) -> "Run":
        """An existing run; raises DeepskyError if ``path`` holds none."""
        run = cls(path)
        if not run.config_path.exists():
            raise DeepskyError(f"{run.path}: not a deepsky run directory (no config.json); train one with deepsky train")
        run.config  # a corrupt or newer config fails here, not halfway through a command
        return run

    @property
    def config(self) -> dict:
        """The run's settings, checked: a config.json this version cannot follow raises DeepskyError."""
        config = read_json(self.config_path)
        if not isinstance(config, dict):
            raise DeepskyError(f"{self.config_path}: holds a {type(config).__name__}, not a run's settings; "
                               "train the run again")
        missing = [key for key in REQUIRED_KEYS if not isinstance(config.get(key), str)]
        if not isinstance(config.get("contract", {}), dict):
            missing.append("contract")
        if missing:
            raise DeepskyError(f"{self.config_path}: no {', '.join(missing)} in the run's settings; "
                               "train the run again")
        version = config.get("format_version", 1)  # runs from before the field existed are format 1
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise DeepskyError(f"{self.config_path}: run format {version!r} is newer than this deepsky reads "
                               f"({FORMAT_VERSION}); upgrade deepsky to use it")
        return config

    @property
    def contract(self) -> dict:
        """What the run's model expects of its input (written by train); DeepskyError where it is missing."""
        contract = self.config.get("contract")
        if not isinstance(contract, dict):
            raise DeepskyError(f"{self.config_path}: no contract (what the model takes) in the run's settings; "
                               "train the run again")
        return contract

    def task(self):
        from deepsky import tasks

        config = self.config
        return tasks.get(config["task"], **(config.get("task_options") or {}))

    def load_model(self):
        from deepsky.io import load_model

        if not self.model_path.exists():
            raise DeepskyError(
                f"{self.path}: training has not finished (no model.keras); resume it with deepsky train --resume"
            )
        return load_model(self.model_path)


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DeepskyError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise DeepskyError(f"{path}: not readable JSON ({exc})") from None


def write_json(path, data) -> None:
    """Write JSON atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=_plain))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
