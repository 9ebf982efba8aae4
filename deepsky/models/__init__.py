"""Keras model builders, created by name.

>>> from deepsky import models
>>> "kim-brunner" in models.names()
True
"""

from deepsky.models.registry import create, describe, names, register_model

__all__ = ["create", "describe", "names", "register_model"]
