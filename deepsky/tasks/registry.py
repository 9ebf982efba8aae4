"""Tasks registered by name: ``register_task``, ``get``, ``names``.

Tasks come from the modules of :mod:`deepsky.tasks` and from other installed
packages, which declare a module in the ``deepsky.tasks`` entry point group;
importing that module runs its ``@register_task``::

    [project.entry-points."deepsky.tasks"]
    my-task = "my_package.tasks"
"""

from __future__ import annotations

from deepsky.errors import DeepskyError
from deepsky.models.registry import RegistrationConflict, load_plugins

_REGISTRY: dict[str, type] = {}
ENTRY_POINT_GROUP = "deepsky.tasks"
_loaded = False
# entry point name -> one-line reason, for plug-ins that failed to import
_plugin_failures: dict[str, str] = {}


def register_task(cls):
    """Class decorator: register a Task subclass under its ``name``."""
    if cls.name in _REGISTRY:
        other = _REGISTRY[cls.name]
        raise RegistrationConflict(
            f"task name {cls.name!r} is registered twice: by {cls.__module__}.{cls.__qualname__} and by "
            f"{other.__module__}.{other.__qualname__}; rename one"
        )
    _REGISTRY[cls.name] = cls
    return cls


_NOT_TASK_MODULES = {"registry", "base", "tabular"}


def _load_builtin_tasks() -> None:
    """Import every task module of ``deepsky.tasks``: a new task is a new module and nothing else."""
    import importlib
    import pkgutil

    import deepsky.tasks as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_TASK_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"deepsky.tasks.{info.name}")


def _load_tasks() -> None:
    """Built-ins, then plug-ins, once per process."""
    global _loaded
    if _loaded:
        return
    _load_builtin_tasks()
    _plugin_failures.clear()
    _plugin_failures.update(load_plugins(ENTRY_POINT_GROUP, _REGISTRY))
    _loaded = True


def names() -> list[str]:
    """Names of all registered tasks, sorted."""
    _load_tasks()
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """``{name: one-line description}`` for every task."""
    _load_tasks()
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def get(name: str, **options):
    """The task ``name`` (an instance), e.g. ``get("star-galaxy", survey="cfhtls")``.

    ``options`` are the task's own settings (``survey`` for simulated cutout
    tasks); a run directory records them, so its task comes back the same.

    Raises
    ------
    DeepskyError
        For an unknown name; for the name of a plug-in that failed to
        import, with the reason.
    """
    _load_tasks()
    cls = _REGISTRY.get(name)
    if cls is None:
        if name in _plugin_failures:
            raise DeepskyError(f"task {name!r} is unavailable: {_plugin_failures[name]}")
        broken = f"; plug-ins that failed: {' | '.join(_plugin_failures.values())}" if _plugin_failures else ""
        raise DeepskyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}{broken}")
    return cls(**{k: v for k, v in options.items() if v is not None})
