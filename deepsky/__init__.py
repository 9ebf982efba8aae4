"""deepsky: deep learning for astronomy on the Keras API.

Importing deepsky is cheap: no backend, simulator or Dask is loaded until it
is used.

>>> import deepsky
>>> "star-galaxy" in deepsky.tasks.names()
True
"""

from deepsky import models, tasks
from deepsky.errors import DeepskyError

__version__ = "0.1.0"
__all__ = ["DeepskyError", "models", "tasks", "__version__"]
