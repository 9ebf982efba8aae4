"""Model builders registered by name: ``register_model``, ``create``, ``names``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from deepsky.errors import DeepskyError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, description: str = ""):
    """Register a Keras model builder under ``name``.

    The builder takes ``input_shape`` and ``num_classes`` keywords (plus its
    own) and returns a ``keras.Model``.
    """

    def decorate(builder: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        doc = description or (builder.__doc__ or "").strip().splitlines()[0]
        _REGISTRY[name] = ModelEntry(name, builder, doc)
        return builder

    return decorate


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


def names() -> list[str]:
    """Names of all registered models, sorted."""
    _load_builtin_models()
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """``{name: one-line description}`` for every registered model."""
    _load_builtin_models()
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def get_entry(name: str) -> ModelEntry:
    _load_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DeepskyError(
            f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}"
        ) from None


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
