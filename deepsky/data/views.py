"""Phase-folded light-curve views of transit signals (AstroNet's global and local view), read from TFRecords.

Each record is one threshold-crossing event (a periodic dip a pipeline
found): its ``global_view`` (the whole orbit folded and binned) and
``local_view`` (the transit zoomed in), both normalised to median 0 and
minimum -1, and catalogue values (star, period, epoch, duration, depth,
signal-to-noise, and where known a disposition).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError

VIEWS = ("global_view", "local_view")
# record feature -> catalogue column (units as the TESS triage records give them)
COLUMNS = {"tic_id": "tic_id", "Period": "period_days", "Epoc": "epoch_btjd", "Duration": "duration",
           "Transit_Depth": "depth_ppm", "SN": "snr"}


def record_files(path) -> list[Path]:
    """The TFRecord files at ``path``: the file itself, or a folder's files (not hidden, not .csv/.md/.txt)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in {".csv", ".md", ".txt"})
        if not files:
            raise DeepskyError(f"{path}: holds no TFRecord files")
        return files
    if not path.exists():
        raise DeepskyError(f"{path}: no such file or folder")
    return [path]


def read_views(paths, label_feature: str | None = "Disposition") -> Dataset:
    """Every record of the TFRecord files ``paths`` as a data set of named series inputs.

    Inputs ``global_view`` and ``local_view`` are float32 (N, bins, 1);
    ``objects`` hold the catalogue columns present (``tic_id``,
    ``period_days``...), ``label_feature`` as strings (``disposition``),
    and ``file``/``record`` (where each row came from). Labels are left to
    the task. Records that lack a view, or whose views differ in length from
    the first record's, are one error naming the file and record.
    """
    from deepsky.data.tfrecords import read_examples

    views = {name: [] for name in VIEWS}
    columns: dict[str, list] = {}
    where_file, where_record = [], []
    lengths = None
    for path in paths:
        for index, example in enumerate(read_examples(path)):
            got = {name: len(example.get(name, ())) for name in VIEWS}
            if min(got.values()) == 0:
                missing = [name for name in VIEWS if not got[name]]
                raise DeepskyError(f"{path}: record {index} has no {' or '.join(missing)}; "
                                   f"records need both phase-folded views")
            lengths = lengths or got
            if got != lengths:
                raise DeepskyError(f"{path}: record {index} has views of {got['global_view']} and "
                                   f"{got['local_view']} bins; earlier records have {lengths['global_view']} and "
                                   f"{lengths['local_view']}")
            for name in VIEWS:
                views[name].append(np.asarray(example[name], np.float32))
            for feature, column in COLUMNS.items():
                if feature in example and len(example[feature]):
                    columns.setdefault(column, []).append(example[feature][0])
            if label_feature:
                value = example.get(label_feature)
                columns.setdefault("disposition", []).append(value[0].decode() if value else "")
            where_file.append(str(path))
            where_record.append(index)
    if lengths is None:
        raise DeepskyError(f"{', '.join(map(str, paths))}: holds no records")
    objects = {column: np.asarray(values) for column, values in columns.items() if len(values) == len(where_file)}
    objects["file"], objects["record"] = np.asarray(where_file), np.asarray(where_record)
    inputs = {name: np.stack(views[name])[:, :, None] for name in VIEWS}
    return Dataset(inputs=inputs, objects=objects,
                   meta={"layout": "series", "units": "relative flux (median 0, transit minimum -1)",
                         "source": [str(p) for p in paths]})
