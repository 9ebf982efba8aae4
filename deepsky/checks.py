"""Options and paths checked before any work starts: one line naming the option, the value and what is allowed.

The command line calls these before a run directory, a temporary file or a
heavy import exists, so that a corrected command is never refused because
the wrong one left something behind.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from deepsky.errors import DeepskyError


def at_least(option: str, value, minimum: int = 1) -> None:
    """Refuse a count or index below ``minimum`` (None means the default and passes)."""
    if value is not None and value < minimum:
        raise DeepskyError(f"{option} must be at least {minimum}; received {value}")


def positive_number(option: str, value) -> None:
    """Refuse zero, negative, infinite and NaN values (None passes)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise DeepskyError(f"{option} must be a positive finite number; received {value}")


def one_of(option: str, value, allowed) -> None:
    """Refuse a value outside ``allowed`` (None passes)."""
    if value is not None and value not in allowed:
        raise DeepskyError(f"{option} must be one of {', '.join(map(str, allowed))}; received {value}")


def suffix_in(option: str, path, suffixes) -> None:
    """Refuse a file name whose extension is not one of ``suffixes`` (``.h5``...)."""
    if Path(path).suffix.lower() not in suffixes:
        raise DeepskyError(f"{path}: {option} must end in {' or '.join(suffixes)}")


def output_apart(output, inputs, option: str = "-o") -> None:
    """Refuse an output that is one of the inputs (or a link to one), so that no input is overwritten."""
    out = Path(output)
    for given in inputs:
        if given is None:
            continue
        path = Path(given)
        same = out.resolve() == path.resolve()
        if not same and out.exists() and path.exists():
            same = os.path.samefile(out, path)
        if same:
            raise DeepskyError(f"{output}: {option} names an input; choose another output so the input is kept")


def new_folder(output, option: str = "-o") -> None:
    """Refuse an output folder that is an existing file."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise DeepskyError(f"{path}: is a file; {option} names a folder to create")


def writable_file(output, option: str = "-o") -> None:
    """Refuse an output file whose folder cannot be made (a parent that is a file) or that is a folder."""
    path = Path(output)
    if path.is_dir():
        raise DeepskyError(f"{path}: is a folder; {option} names a file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DeepskyError(f"{path}: {parent} is a file, not a folder; choose another {option}")
            break
