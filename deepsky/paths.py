"""Where deepsky looks for optional real data sets on disk (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir(name: str) -> Path | None:
    """The folder ``name`` of real data, or None when it is not on this machine.

    Looked up in ``$DEEPSKY_DATA`` and then in ``../shared/data`` beside the
    source checkout (the development and CI layout).
    """
    roots = []
    if os.environ.get("DEEPSKY_DATA"):
        roots.append(Path(os.environ["DEEPSKY_DATA"]))
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for root in roots:
        if (root / name).is_dir():
            return root / name
    return None
