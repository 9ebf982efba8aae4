"""Tasks and models from other installed packages, found through entry points.

Each test builds a real (tiny) distribution in ``tmp_path``: a package plus a
``*.dist-info`` folder with ``METADATA`` and ``entry_points.txt``, which
``importlib.metadata`` finds on ``sys.path`` exactly as it finds an installed one.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import deepsky.models
import deepsky.tasks
from deepsky.errors import DeepskyError
from deepsky.models import registry as model_registry
from deepsky.models.registry import RegistrationConflict
from deepsky.tasks import registry as task_registry

TASK_MODULE = '''
from deepsky.tasks.base import Task
from deepsky.tasks.registry import register_task


@register_task
class PluginTask(Task):
    name = "{task}"
    description = "a task from a plug-in"
'''

MODEL_MODULE = '''
from deepsky.models.registry import register_model


@register_model("{model}", description="a model from a plug-in")
def build(input_shape=(8, 8, 1), num_classes=2):
    import keras

    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="plugin_net")
'''


def make_distribution(root: Path, dist: str, package: str, modules: dict[str, str], entry_points: str) -> None:
    """Write package ``package`` with ``modules`` and a dist-info folder declaring ``entry_points``."""
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    for module, text in modules.items():
        (root / package / f"{module}.py").write_text(textwrap.dedent(text))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def clean_registries(monkeypatch, tmp_path):
    """Built-ins loaded, plug-ins not yet; afterwards the registries and ``sys.modules`` as they were.

    The registries are module-level dicts that other modules hold, so they are
    restored in place rather than replaced.
    """
    task_registry._load_builtin_tasks()
    model_registry._load_builtin_models()
    saved = [
        (registry, dict(registry._REGISTRY), registry._loaded, dict(registry._plugin_failures))
        for registry in (task_registry, model_registry)
    ]
    modules = set(sys.modules)
    for registry in (task_registry, model_registry):
        monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for registry, entries, loaded, failures in saved:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(entries)
        registry._loaded = loaded
        registry._plugin_failures.clear()
        registry._plugin_failures.update(failures)
    for name in set(sys.modules) - modules:
        if name.startswith("dsplugin_"):
            del sys.modules[name]


@pytest.fixture
def good_plugin(clean_registries):
    make_distribution(
        clean_registries, "dsplugin-good", "dsplugin_good",
        {"tasks": TASK_MODULE.format(task="plugin-task"), "models": MODEL_MODULE.format(model="plugin-net")},
        """
        [deepsky.tasks]
        plugin-task = dsplugin_good.tasks

        [deepsky.models]
        plugin-net = dsplugin_good.models
        """,
    )
    importlib.invalidate_caches()
    return clean_registries


def test_plugin_task_and_model_are_found(good_plugin):
    builtin_tasks = set(task_registry._REGISTRY)
    builtin_models = set(model_registry._REGISTRY)
    assert "plugin-task" not in builtin_tasks and "plugin-net" not in builtin_models

    assert set(deepsky.tasks.names()) == builtin_tasks | {"plugin-task"}
    assert set(deepsky.models.names()) == builtin_models | {"plugin-net"}
    assert deepsky.tasks.describe()["plugin-task"] == "a task from a plug-in"
    assert deepsky.models.describe()["plugin-net"] == "a model from a plug-in"
    assert type(deepsky.tasks.get("plugin-task")).__module__ == "dsplugin_good.tasks"

    model = deepsky.models.create("plugin-net", input_shape=(8, 8, 1), num_classes=3)
    assert model.name == "plugin_net"
    assert tuple(model.output.shape) == (None, 3)


def test_plugins_are_loaded_once(good_plugin, monkeypatch):
    assert "plugin-task" in deepsky.tasks.names()
    assert "plugin-net" in deepsky.models.names()

    def no_second_scan(**kwargs):
        raise AssertionError(f"entry points scanned again: {kwargs}")

    monkeypatch.setattr(importlib.metadata, "entry_points", no_second_scan)
    assert "plugin-task" in deepsky.tasks.names()
    assert "plugin-net" in deepsky.models.names()
    deepsky.tasks.get("plugin-task")
    deepsky.models.describe()


def test_the_cli_lists_plugins(good_plugin):
    deepsky_command = Path(sys.executable).parent / "deepsky"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(good_plugin), env.get("PYTHONPATH", "")) if p)
    tasks = subprocess.run([deepsky_command, "tasks"], env=env, capture_output=True, text=True, timeout=120)
    assert tasks.returncode == 0, tasks.stderr
    assert "plugin-task\ta task from a plug-in" in tasks.stdout.splitlines()
    models = subprocess.run([deepsky_command, "models"], env=env, capture_output=True, text=True, timeout=120)
    assert models.returncode == 0, models.stderr
    assert any(line.startswith("plugin-net") for line in models.stdout.splitlines())


def test_a_broken_plugin_leaves_the_builtins_working(clean_registries):
    make_distribution(
        clean_registries, "dsplugin-broken", "dsplugin_broken",
        {
            # registers one name, then fails: that half-registration must not stay
            "tasks": TASK_MODULE.format(task="broken-task") + "\nimport dsplugin_missing_dependency\n",
            "models": "raise RuntimeError('the plug-in cannot start\\nsecond line')\n",
        },
        """
        [deepsky.tasks]
        broken-task = dsplugin_broken.tasks

        [deepsky.models]
        broken-net = dsplugin_broken.models
        """,
    )
    importlib.invalidate_caches()
    builtin_tasks = sorted(task_registry._REGISTRY)
    builtin_models = sorted(model_registry._REGISTRY)

    assert deepsky.tasks.names() == builtin_tasks
    assert deepsky.models.names() == builtin_models

    with pytest.raises(DeepskyError) as task_error:
        deepsky.tasks.get("broken-task")
    message = str(task_error.value)
    assert "\n" not in message
    for part in ("broken-task = dsplugin_broken.tasks", "dsplugin-broken 0.1", "ModuleNotFoundError",
                 "dsplugin_missing_dependency"):
        assert part in message

    with pytest.raises(DeepskyError) as model_error:
        deepsky.models.create("broken-net")
    message = str(model_error.value)
    assert "\n" not in message
    for part in ("broken-net = dsplugin_broken.models", "dsplugin-broken 0.1", "RuntimeError: the plug-in cannot start"):
        assert part in message

    # an unknown name still says which plug-in failed, in case it was meant to provide it
    with pytest.raises(DeepskyError, match="unknown task 'no-such-task'.*dsplugin-broken 0.1"):
        deepsky.tasks.get("no-such-task")


def test_a_plugin_taking_a_builtin_name_is_an_error(clean_registries):
    builtin_task = sorted(task_registry._REGISTRY)[0]
    builtin_model = sorted(model_registry._REGISTRY)[0]
    make_distribution(
        clean_registries, "dsplugin-clash", "dsplugin_clash",
        {"tasks": TASK_MODULE.format(task=builtin_task), "models": MODEL_MODULE.format(model=builtin_model)},
        """
        [deepsky.tasks]
        clash = dsplugin_clash.tasks

        [deepsky.models]
        clash = dsplugin_clash.models
        """,
    )
    importlib.invalidate_caches()
    builtin_task_module = task_registry._REGISTRY[builtin_task].__module__
    builtin_model_module = model_registry._REGISTRY[builtin_model].builder.__module__

    with pytest.raises(RegistrationConflict) as task_error:
        deepsky.tasks.names()
    message = str(task_error.value)
    for part in (repr(builtin_task), "dsplugin_clash.tasks.PluginTask", builtin_task_module, "dsplugin-clash 0.1"):
        assert part in message

    with pytest.raises(RegistrationConflict) as model_error:
        model_registry.get_entry(builtin_model)
    message = str(model_error.value)
    for part in (repr(builtin_model), "dsplugin_clash.models.build", builtin_model_module, "dsplugin-clash 0.1"):
        assert part in message

    # the built-in keeps its name
    assert task_registry._REGISTRY[builtin_task].__module__ == builtin_task_module
    assert model_registry._REGISTRY[builtin_model].builder.__module__ == builtin_model_module
