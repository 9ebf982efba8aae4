"""Astronomy tasks: each binds a simulator or reader, a model, metrics and the paper's figure."""

from deepsky.tasks.registry import describe, get, names, register_task

__all__ = ["describe", "get", "names", "register_task"]
