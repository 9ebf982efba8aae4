"""Coverage-guided fuzzing of deepsky's file readers with atheris (libFuzzer for Python).

    .venv/bin/python fuzz/fuzz_readers.py -max_total_time=600      # ten minutes, every reader
    .venv/bin/python fuzz/fuzz_readers.py -max_total_time=60 -only=npy-stack fuzz/corpus

The first input byte picks the reader (FITS image and table, CSV, Parquet,
HDF5 dataset and stack, .npy, PNG, JPEG, light curve, TFRecord: the kinds of
``tests/test_fuzz_readers.py``), the rest is the file. The corpus starts
from one valid file of each kind. A reader may return or raise
DeepskyError (one line); anything else is a crash, which libFuzzer saves
as ``crash-*`` to become a test. Runs briefly in the default suite
(``tests/test_fuzz_readers.py``).
"""

import os
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("KERAS_BACKEND", "torch")

with atheris.instrument_imports(include=["deepsky"]):
    from deepsky.errors import DeepskyError
    import deepsky.data.fits_cutouts  # noqa: F401
    import deepsky.data.image_folders  # noqa: F401
    import deepsky.data.lightcurves  # noqa: F401
    import deepsky.data.stacks  # noqa: F401
    import deepsky.data.store  # noqa: F401
    import deepsky.data.tables  # noqa: F401
    import deepsky.data.tfrecords  # noqa: F401

from test_fuzz_readers import READERS  # noqa: E402

ONLY = next((arg.split("=", 1)[1] for arg in sys.argv if arg.startswith("-only=")), None)
KINDS = [kind for kind in sorted(READERS) if ONLY in (None, kind)]
FOLDER = Path(os.environ.get("DEEPSKY_FUZZ_FOLDER") or tempfile.mkdtemp(prefix="deepsky-fuzz-"))


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind = KINDS[data[0] % len(KINDS)]
    suffix, _, read = READERS[kind]
    path = FOLDER / f"input{suffix}"
    for stale in FOLDER.iterdir():
        stale.unlink()
    path.write_bytes(data[1:])
    try:
        read(path)
    except DeepskyError as exc:
        text = str(exc).strip()
        if not text or "\n" in text:
            raise AssertionError(f"{kind}: an error that is not one line: {text!r}") from None


def seed_corpus(corpus: Path) -> Path:
    """One valid file of each kind in ``corpus``, prefixed with the byte that picks its reader."""
    corpus.mkdir(parents=True, exist_ok=True)
    for index, kind in enumerate(KINDS):
        (corpus / kind).write_bytes(bytes([index]) + READERS[kind][1]())
    return corpus


if __name__ == "__main__":
    arguments = [arg for arg in sys.argv if not arg.startswith("-only=")]
    folders = [arg for arg in arguments[1:] if not arg.startswith("-")]
    if not folders:  # a corpus folder of one's own keeps what the fuzzer learns between runs
        folders.append(tempfile.mkdtemp(prefix="deepsky-corpus-"))
        arguments.append(folders[0])
    if not Path(folders[0]).is_file() and not any(Path(folders[0]).glob("*")):  # a file: rerun that one input
        seed_corpus(Path(folders[0]))
    atheris.Setup(arguments, test_one_input)
    atheris.Fuzz()
