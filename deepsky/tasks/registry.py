"""Tasks registered by name: ``register_task``, ``get``, ``names``."""

from __future__ import annotations

from deepsky.errors import DeepskyError

_REGISTRY: dict[str, type] = {}


def register_task(cls):
    """Class decorator: register a Task subclass under its ``name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"task name {cls.name!r} is registered twice")
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


def names() -> list[str]:
    """Names of all registered tasks, sorted."""
    _load_builtin_tasks()
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """``{name: one-line description}`` for every task."""
    _load_builtin_tasks()
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def get(name: str, **options):
    """The task ``name`` (an instance), e.g. ``get("star-galaxy", survey="cfhtls")``.

    ``options`` are the task's own settings (``survey`` for simulated cutout
    tasks); a run directory records them, so its task comes back the same.
    """
    _load_builtin_tasks()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise DeepskyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}") from None
    return cls(**{k: v for k, v in options.items() if v is not None})
