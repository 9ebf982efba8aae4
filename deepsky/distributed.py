"""Data-parallel training past one process: torch DistributedDataParallel, gloo on CPUs, NCCL on GPUs.

Every process (a *rank*) holds the whole model; each training batch is split between the
ranks, and DistributedDataParallel averages their gradients before every optimizer step, so
``N`` processes train as one with the same batch size, ``N`` times the arithmetic at once.
Rank 0 alone writes the run directory (checkpoints, model, history).

The ranks meet through torch's environment variables (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``), so the same command runs under ``torchrun`` or Slurm's
``srun`` on a cluster, and ``deepsky train --processes N`` starts N ranks on this machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from deepsky.errors import DeepskyError


def world() -> tuple[int, int]:
    """``(rank, number of ranks)``: ``(0, 1)`` outside data-parallel training."""
    try:
        import torch.distributed as dist
    except ImportError:
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_writer() -> bool:
    """True in the one process that writes the run directory (rank 0, or the only process)."""
    return world()[0] == 0


def join_from_environment() -> bool:
    """Join the process group that ``WORLD_SIZE`` > 1 in the environment describes; True when this is data-parallel."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        from datetime import timedelta

        backend = "nccl" if torch.cuda.is_available() and os.environ.get("DEEPSKY_DEVICE", "auto") != "cpu" else "gloo"
        dist.init_process_group(backend, init_method="env://", timeout=timedelta(minutes=10))
    return True


def leave() -> None:
    """Leave the process group (end of training)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_rows(index, rank: int, size: int):
    """This rank's share of a batch's rows: every ``size``-th, from ``rank``."""
    return index[rank::size]


def launch_local(processes: int, argv: list[str]) -> list[subprocess.Popen]:
    """Start ranks 1..processes-1 of ``deepsky`` ``argv`` beside this process (rank 0); set this process's environment.

    Each rank gets an equal share of the cores as torch threads. The ranks die with this process.
    """
    from deepsky.config import THREADS_ENV, available_cores

    if processes < 2:
        raise DeepskyError(f"--processes must be at least 2 to train data-parallel; received {processes}")
    threads = max(1, available_cores() // processes)
    with socket.socket() as s:  # a free port on this machine for the ranks to meet at
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shared = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(processes),
              THREADS_ENV: str(threads), "OMP_NUM_THREADS": str(threads)}
    children = []
    for rank in range(1, processes):
        env = {**os.environ, **shared, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        children.append(subprocess.Popen([sys.executable, "-m", "deepsky.cli", *argv], env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                         preexec_fn=_die_with_parent))
    os.environ.update({**shared, "RANK": "0", "LOCAL_RANK": "0"})
    return children


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def wait_for(children: list[subprocess.Popen]) -> None:
    """Wait for the other ranks; one that failed is reported with its last line."""
    for child in children:
        _, err = child.communicate()
        if child.returncode != 0:
            last = (err or "").strip().splitlines()[-1:] or ["no message"]
            raise DeepskyError(f"a training rank failed (exit status {child.returncode}): {last[0]}")
