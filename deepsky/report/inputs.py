"""Everything a report reads from an evaluated run directory, loaded once.

``config.json`` and ``metrics.json`` are required; ``history.json`` and
``model.keras`` are optional (their figures are skipped without them). From
``evaluation.h5`` the report reads what the run's objective wrote (labels
and probabilities; predicted parameters; restored images), the per-object
columns and the gallery cutouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError


@dataclass
class ReportInputs:
    """The pieces of one evaluated run that the figures and the page use.

    Attributes
    ----------
    run : deepsky.runs.Run
    config, metrics : dict
        ``config.json`` and ``metrics.json``.
    history : dict or None
        ``history.json`` (lists per epoch), None when absent.
    labels : ndarray
        (N,) integer class of each test object.
    probabilities : ndarray
        (N, classes) predicted class probabilities.
    baseline_probabilities : ndarray or None
        (N, classes) the baseline's class probabilities, when stored.
    objects : dict of ndarray
        Per-object columns (``r_mag`` in AB magnitudes, sizes in arcsec...).
    gallery : dict of ndarray
        ``index``, ``images`` (len(index), H, W, bands) raw fluxes in the
        contract's units, and ``worst``, ``examples``,
        ``feature_map_examples`` (test-set indices); missing keys are absent.
    predicted, baseline_predicted : dict of ndarray
        Regression runs: each parameter, its ``_lo``/``_hi``/``_err`` per
        test object, from the network and from the baseline fit.
    """

    run: object
    spec: object  # the run's task (deepsky.tasks.base.Task)
    config: dict
    metrics: dict
    history: dict | None
    labels: np.ndarray
    probabilities: np.ndarray
    baseline_probabilities: np.ndarray | None = None
    objects: dict = field(default_factory=dict)
    gallery: dict = field(default_factory=dict)
    predicted: dict = field(default_factory=dict)
    baseline_predicted: dict = field(default_factory=dict)

    @property
    def objective(self):
        """The run's :class:`~deepsky.objectives.Objective`."""
        return self.spec.objective

    @property
    def parameters(self) -> list:
        """Regression runs: the :class:`~deepsky.metrics.Parameter` of each predicted quantity scored."""
        scored = self.metrics.get("parameters") or {}
        return [p for p in getattr(self.objective, "parameters", ()) if p.name in scored]

    @property
    def caption_column(self) -> str | None:
        """The per-object column galleries quote (the one the binned metrics use), if any."""
        column = (self.metrics.get("by_bin") or {}).get("column")
        return column if column in self.objects else None

    @property
    def task(self) -> str:
        return str(self.config.get("task") or self.metrics.get("task") or "unknown task")

    @property
    def classes(self) -> list[str]:
        classes = (self.config.get("contract") or {}).get("classes")
        return list(classes) if classes else [f"class {k}" for k in range(self.probabilities.shape[1])]

    @property
    def bands(self) -> list[str]:
        return list((self.config.get("contract") or {}).get("bands") or [])

    @property
    def binary(self) -> bool:
        """True for two-class tasks, whose score is the probability of the second class."""
        return self.probabilities.shape[1] == 2

    @property
    def positive(self) -> str:
        """Name of the class whose probability is the score (``galaxy`` for star-galaxy)."""
        return self.classes[1] if self.binary else ""

    @property
    def scores(self) -> np.ndarray:
        """(N,) probability of the positive class (two-class tasks)."""
        return self.probabilities[:, 1]

    @property
    def baseline_scores(self) -> np.ndarray | None:
        """(N,) the baseline's probability of the positive class (two-class tasks), when stored."""
        if self.baseline_probabilities is None or self.baseline_probabilities.shape[1] != 2:
            return None
        return self.baseline_probabilities[:, 1]

    @property
    def baseline(self) -> dict | None:
        baseline = self.metrics.get("baseline")
        return baseline if isinstance(baseline, dict) else None

    @property
    def baseline_name(self) -> str:
        return str((self.baseline or {}).get("name") or "baseline")

    def gallery_series(self, test_index: int) -> dict | None:
        """The stored series of test object ``test_index``: name -> (time steps, channels), or None."""
        index = self.gallery.get("index")
        named = self.gallery.get("inputs")
        if named is None:
            images = self.gallery.get("images")
            named = {"inputs": images} if images is not None and images.ndim == 3 else None
        if index is None or not named:
            return None
        where = np.flatnonzero(index == test_index)
        return {name: array[where[0]] for name, array in named.items()} if where.size else None

    def gallery_image(self, test_index: int) -> np.ndarray | None:
        """The stored cutout (H, W, bands) of test object ``test_index``, or None (none stored, or not a cutout)."""
        index = self.gallery.get("index")
        images = self.gallery.get("images")
        if index is None or images is None or images.ndim != 4:
            return None
        where = np.flatnonzero(index == test_index)
        return images[where[0]] if where.size else None


def plural(name: str) -> str:
    """English plural of a class name.

    >>> plural("galaxy"), plural("star")
    ('galaxies', 'stars')
    """
    if name.endswith("y") and name[-2:-1] not in ("a", "e", "o", "u"):
        return name[:-1] + "ies"
    return name + ("es" if name.endswith(("s", "x", "sh", "ch")) else "s")


def load_inputs(run_dir) -> ReportInputs:
    """Read an evaluated run; raise DeepskyError naming what is missing.

    Parameters
    ----------
    run_dir : path
        A run directory after ``deepsky evaluate``.
    """
    from deepsky.runs import Run, read_json

    run = Run.open(run_dir)
    if not run.metrics_path.exists():
        raise DeepskyError(f"{run.path}: not evaluated yet (no metrics.json); run deepsky evaluate {run.path} first")
    if not run.evaluation_path.exists():
        raise DeepskyError(
            f"{run.path}: metrics.json has no evaluation.h5 beside it; rerun deepsky evaluate {run.path}"
        )
    history = read_json(run.history_path) if run.history_path.exists() else None
    inputs = ReportInputs(run=run, spec=run.task(), config=run.config, metrics=read_json(run.metrics_path),
                          history=history, labels=np.zeros(0, np.int64), probabilities=np.zeros((0, 2)))
    _read_evaluation(run.evaluation_path, inputs)
    return inputs


def _read_evaluation(path: Path, inputs: ReportInputs) -> None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            inputs.objective.read_evaluation(f, inputs)
            _read_objects(f, inputs)
    except OSError as exc:
        raise DeepskyError(f"{path}: not a readable HDF5 file ({exc})") from None


def _read_objects(f, inputs: ReportInputs) -> None:
    import h5py

    from deepsky.data.store import read_column

    if "objects" in f:
        inputs.objects = {name: read_column(column) for name, column in f["objects"].items()}
    if "gallery" in f:
        inputs.gallery.update({name: np.asarray(item[...]) for name, item in f["gallery"].items()
                               if not isinstance(item, h5py.Group)})
        if "inputs" in f["gallery"]:  # named inputs (a light curve's views)
            inputs.gallery["inputs"] = {name: np.asarray(item[...]) for name, item in f["gallery/inputs"].items()}
