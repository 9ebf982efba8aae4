"""Simulators: one module per physical source; survey presets in ``surveys``."""
