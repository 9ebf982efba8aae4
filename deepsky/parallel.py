"""Run independent chunks of work on all cores: the one process pool the simulators and fitters share."""

from __future__ import annotations

import os
from typing import Callable, Iterable, Iterator


def map_in_processes(function: Callable, jobs: Iterable, workers: int | None = None,
                     chunksize: int = 1) -> Iterator:
    """Yield ``function(job)`` for every job, in the jobs' order.

    With more than one worker (default: one per core, at most one per job)
    the jobs run in forked processes: fork needs no ``if __name__ ==
    "__main__"`` guard in users' scripts, and the children inherit tables the
    parent has warmed (GalSim's). The functions given here touch only numpy,
    scipy and GalSim, never the parent's torch threads. One worker runs the
    jobs in this process, which gives the same results.

    Parameters
    ----------
    function : callable
        A module-level function of one argument (it is pickled by reference).
    jobs : iterable
        The arguments, one per call.
    workers : int, optional
        Processes to use.
    chunksize : int
        Jobs handed to a worker at a time (neighbouring jobs stay together).
    """
    import multiprocessing

    jobs = list(jobs)
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    # a daemonic process (a Dask worker) may not have children: it is one of the parallel workers already
    if workers <= 1 or multiprocessing.current_process().daemon:
        for job in jobs:
            yield function(job)
        return
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        yield from pool.map(function, jobs, chunksize=chunksize)


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this worker when its parent dies (kill -9 included), so none simulates on as an orphan."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def simulate_in_chunks(make_chunk: Callable, n: int, seed: int, chunk_size: int, *settings, progress=None,
                       workers: int | None = None):
    """A simulated Dataset of ``n`` objects made ``chunk_size`` at a time on ``workers`` processes.

    ``make_chunk((size, seed, chunk_index, *settings))`` returns one chunk's
    Dataset and seeds itself from ``seed`` and its index, so the same seed
    gives the same bytes whatever the number of workers; ``progress(k)``
    after each chunk.
    """
    from deepsky.data.store import concatenate

    sizes = [min(chunk_size, n - start) for start in range(0, n, chunk_size)]
    jobs = [(size, seed, k, *settings) for k, size in enumerate(sizes)]
    parts = []
    for part in map_in_processes(make_chunk, jobs, workers if len(jobs) > 1 else 1):
        parts.append(part)
        if progress is not None:
            progress(len(part))
    data = concatenate(parts) if len(parts) > 1 else parts[0]
    data.meta["seed"] = seed
    return data
