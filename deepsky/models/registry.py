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


def _load_builtin_models() -> None:
    # Importing the modules runs their @register_model decorators; keras is
    # only imported when a builder runs, so this stays cheap.
    from deepsky.models import kim_brunner  # noqa: F401


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
