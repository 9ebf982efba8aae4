"""deepsky: deep learning for astronomy on the Keras API.

Importing deepsky is cheap: no registry, backend, simulator or Dask is
loaded until it is used (``deepsky.tasks`` and ``deepsky.models`` load on
first access).

>>> import deepsky
>>> "star-galaxy" in deepsky.tasks.names()
True
"""

from deepsky.errors import DeepskyError

__version__ = "0.1.0"
__all__ = ["DeepskyError", "models", "tasks", "__version__"]


def __getattr__(name):
    if name in ("models", "tasks"):
        import importlib

        return importlib.import_module(f"deepsky.{name}")
    raise AttributeError(f"module 'deepsky' has no attribute {name!r}")
