"""Custom Keras layers that astronomy inputs need and Keras lacks.

Importing this package imports every module in it, which registers their
layers for ``.keras`` loading in safe mode; a new layer is a new module.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from deepsky.config import ensure_backend as _ensure_backend

_ensure_backend()  # Keras picks its backend on first import: ours (PyTorch) unless KERAS_BACKEND says otherwise

from deepsky.layers.asinh import AsinhStretch  # noqa: E402

for _info in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["AsinhStretch"]
