"""What the benchmark scripts share: the best of a few timed calls."""

from __future__ import annotations

import time


def best_of(function, repeat: int = 2) -> float:
    """The shortest of ``repeat`` wall-clock times of ``function()`` (seconds): the least disturbed by other work."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
