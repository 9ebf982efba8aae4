"""Custom Keras layers that astronomy inputs need and Keras lacks.

Importing this package registers them for ``.keras`` loading in safe mode.
"""

from deepsky.layers.asinh import AsinhStretch

__all__ = ["AsinhStretch"]
