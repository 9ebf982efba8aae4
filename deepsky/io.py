"""Saving and loading Keras models the safe way (``.keras`` files, safe mode, no pickle)."""

from __future__ import annotations

from pathlib import Path

from deepsky.errors import DeepskyError, first_line


def load_model(path):
    """Load a ``.keras`` model in safe mode, with deepsky's custom objects registered."""
    from deepsky.config import ensure_backend

    ensure_backend()
    import keras

    import deepsky.activations  # noqa: F401  (registers custom activations and layers for deserialisation)
    import deepsky.layers  # noqa: F401

    path = Path(path)
    if not path.exists():
        raise DeepskyError(f"{path}: no such model file")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise DeepskyError(f"{path}: cannot load the model ({first_line(exc)[:200]})") from None
