"""Model builders registered by name: ``register_model``, ``create``, ``names``.

Builders come from the modules of :mod:`deepsky.models` and from other
installed packages, which declare a module in the ``deepsky.models`` entry
point group; importing that module runs its ``@register_model``::

    [project.entry-points."deepsky.models"]
    my-net = "my_package.models"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from deepsky.errors import DeepskyError, first_line


class RegistrationConflict(DeepskyError, ValueError):
    """Two modules register the same name; a ValueError too, as a duplicate name always was."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable
    description: str


_REGISTRY: dict[str, ModelEntry] = {}
ENTRY_POINT_GROUP = "deepsky.models"
_loaded = False
# entry point name -> one-line reason, for plug-ins that failed to import
_plugin_failures: dict[str, str] = {}


def _origin(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def register_model(name: str, description: str = ""):
    """Register a Keras model builder under ``name``.

    The builder takes ``input_shape`` and ``num_classes`` keywords (plus its
    own) and returns a ``keras.Model``.
    """

    def decorate(builder: Callable) -> Callable:
        if name in _REGISTRY:
            raise RegistrationConflict(
                f"model name {name!r} is registered twice: by {_origin(builder)} and by "
                f"{_origin(_REGISTRY[name].builder)}; rename one"
            )
        doc = description or (builder.__doc__ or "").strip().splitlines()[0]
        _REGISTRY[name] = ModelEntry(name, builder, doc)
        return builder

    return decorate


def _entry_point_label(entry_point) -> str:
    dist = getattr(entry_point, "dist", None)
    source = f"distribution {dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return f"entry point '{entry_point.name} = {entry_point.value}' (group {entry_point.group}) of {source}"


def load_plugins(group: str, registry: dict) -> dict[str, str]:
    """Import what each entry point of ``group`` names, so that it registers into ``registry``.

    Shared by the model and task registries.

    Returns
    -------
    dict
        ``{entry point name: one-line reason}`` for plug-ins that failed to
        import; their partial registrations are removed, so a broken
        plug-in leaves the built-ins as they were.

    Raises
    ------
    RegistrationConflict
        When a plug-in registers a name that is already taken: silently
        shadowing a built-in (or another plug-in) would train the wrong model.
    """
    from importlib.metadata import entry_points

    failures = {}
    for entry_point in entry_points(group=group):
        before = set(registry)
        try:
            entry_point.load()
        except Exception as exc:
            for key in set(registry) - before:
                del registry[key]
            if isinstance(exc, RegistrationConflict):
                raise RegistrationConflict(f"plug-in {_entry_point_label(entry_point)}: {exc}") from exc
            failures[entry_point.name] = (
                f"plug-in {_entry_point_label(entry_point)} failed to import: "
                f"{type(exc).__name__}: {first_line(exc)}; fix or uninstall that distribution"
            )
    return failures


_NOT_MODEL_MODULES = {"registry", "compose"}


def _load_builtin_models() -> None:
    """Import every module of ``deepsky.models``, which runs their ``@register_model``.

    Model modules import keras inside their builders only, so listing the
    models stays cheap; a new architecture is a new module and nothing else.
    """
    import importlib
    import pkgutil

    import deepsky.models as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_MODEL_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"deepsky.models.{info.name}")


def _load_models() -> None:
    """Built-ins, then plug-ins, once per process."""
    global _loaded
    if _loaded:
        return
    _load_builtin_models()
    _plugin_failures.clear()
    _plugin_failures.update(load_plugins(ENTRY_POINT_GROUP, _REGISTRY))
    _loaded = True


def names() -> list[str]:
    """Names of all registered models, sorted."""
    _load_models()
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """``{name: one-line description}`` for every registered model."""
    _load_models()
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def get_entry(name: str) -> ModelEntry:
    """The registry entry of model ``name``.

    Raises
    ------
    DeepskyError
        For an unknown name; for the name of a plug-in that failed to
        import, with the reason.
    """
    _load_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    if name in _plugin_failures:
        raise DeepskyError(f"model {name!r} is unavailable: {_plugin_failures[name]}")
    broken = f"; plug-ins that failed: {' | '.join(_plugin_failures.values())}" if _plugin_failures else ""
    raise DeepskyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}{broken}")


def create(name: str, **kwargs):
    """Build the registered model ``name`` and return a ``keras.Model``.

    Parameters
    ----------
    name : str
        A name from ``deepsky.models.names()``.
    **kwargs
        Passed to the builder, usually ``input_shape`` (height, width, bands)
        and ``num_classes``.
    """
    from deepsky.config import ensure_backend

    ensure_backend()
    return get_entry(name).builder(**kwargs)
