"""Model and data files cannot run code: no pickle anywhere in the package, and crafted .keras files are refused."""

import json
import re
import zipfile

import pytest

from conftest import REPO, run_in_process

# what would let a file run code when read; each pattern with why it is banned
BANNED = {
    r"\bimport pickle\b|\bpickle\.load": "pickle runs code from the file it reads",
    r"allow_pickle\s*=\s*True": "numpy's pickled object arrays run code",
    r"torch\.load\(": "torch.load unpickles (use .keras files and HDF5)",
    r"safe_mode\s*=\s*False": "Keras' unsafe mode deserialises Lambda bytecode",
    r"\byaml\.load\(|\bjoblib\.load\(|\bdill\b|\bcloudpickle\b": "these deserialise code",
    r"(?<![\w.])eval\(|(?<![\w.])exec\(": "no text from a file may be evaluated",
}


def test_the_package_never_unpickles_or_evaluates_what_it_reads():
    found = []
    for path in sorted((REPO / "deepsky").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            for pattern, why in BANNED.items():
                if re.search(pattern, code) and '"""' not in line and "``" not in line:
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()} ({why})")
    assert not found, "\n".join(found)


def _crafted(path, layer: dict):
    """A .keras archive whose one layer is ``layer`` (a config written by hand, as an attacker would)."""
    config = {
        "module": "keras", "class_name": "Sequential", "registered_name": None,
        "config": {"name": "crafted", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
             "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "input"}},
            layer]},
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0", "date_saved": "2026-01-01"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"")


CRAFTED = {
    "lambda": {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
               "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {
                   "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA", "defaults": None, "closure": None}}}},
    "os-system": {"module": "os", "class_name": "system", "registered_name": None, "config": {"command": "touch {marker}"}},
    "builtins-eval": {"module": "builtins", "class_name": "eval", "registered_name": None,
                      "config": {"source": "open('{marker}', 'w')"}},
    "unknown-custom": {"module": None, "class_name": "EvilLayer", "registered_name": "evil>EvilLayer", "config": {}},
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_a_crafted_model_is_refused_and_runs_nothing(kind, trained_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text((trained_run / "config.json").read_text())
    marker = tmp_path / "pwned"
    layer = json.loads(json.dumps(CRAFTED[kind]).replace("{marker}", str(marker)))
    _crafted(run / "model.keras", layer)
    stack = tmp_path / "stack.npy"
    import numpy as np

    np.save(stack, np.zeros((2, 48, 48, 5), np.float32))
    result = run_in_process("predict", run, stack, "-o", tmp_path / "out.csv", check=False)
    assert result.returncode == 2 and "model.keras" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists() and not (tmp_path / "out.csv").exists()
