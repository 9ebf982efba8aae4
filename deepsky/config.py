"""Backend, threads and seeds: the process-wide settings deepsky relies on."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from deepsky.errors import DeepskyError

DEFAULT_BACKEND = "torch"


def ensure_backend() -> str:
    """Choose the Keras backend before Keras is first imported; return its name.

    ``KERAS_BACKEND`` from the environment wins; otherwise PyTorch, which
    trains about 2x faster than JAX on a CPU.
    """
    if "keras" not in sys.modules:
        set_thread_environment()  # no effect once torch is loaded; else threads from this process's cores
        keep_freed_memory()
        os.environ.setdefault("KERAS_BACKEND", DEFAULT_BACKEND)
        if os.environ["KERAS_BACKEND"] == "torch" and os.environ.get(DEVICE_ENV):
            # Keras places its torch variables on this device when it is first imported
            os.environ.setdefault("KERAS_TORCH_DEVICE", device(os.environ[DEVICE_ENV]))
    import keras

    return keras.backend.backend()


def backend_name() -> str:
    """The backend Keras uses or will use, without importing Keras."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)


def set_seed(seed: int) -> None:
    """Seed numpy, Python and the Keras backend for a reproducible run."""
    ensure_backend()
    import keras

    keras.utils.set_random_seed(int(seed))


def bf16_supported() -> bool:
    """True when the device torch runs on has native bfloat16 arithmetic (a recent GPU, or AVX-512 BF16 or AMX)."""
    try:
        import torch

        if torch_device() != "cpu":
            return bool(torch.cuda.is_bf16_supported())
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # an older torch without the probe: assume no
        return False


# --- memory -----------------------------------------------------------------

# glibc gives a freed block above its mmap threshold straight back to the system, and the threshold starts at
# 128 KiB, rising only after such a block is freed: whether a process's megabyte temporaries (a chunk of cutouts
# through an asinh stretch, an activation map) came from the heap or from fresh, page-faulted mmaps depended on its
# history, and the same asinh stretch took 9 or 90 microseconds a cutout in otherwise identical processes
# (2026-12-07). Fixed thresholds keep blocks below 32 MiB in the heap and up to 128 MiB of free heap unreturned.
MALLOC_SETTINGS = {-3: 32 << 20, -1: 128 << 20}  # mallopt's M_MMAP_THRESHOLD, M_TRIM_THRESHOLD: bytes
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_MALLOC_KEPT = None


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds (:data:`MALLOC_SETTINGS`) for this process; True when applied.

    Left alone where the user set glibc's own ``MALLOC_*`` variables, and
    outside Linux with glibc. Once per process; forked workers inherit it.
    """
    global _MALLOC_KEPT
    if _MALLOC_KEPT is not None:
        return _MALLOC_KEPT
    _MALLOC_KEPT = False
    if not sys.platform.startswith("linux") or any(key in os.environ for key in MALLOC_ENV):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    _MALLOC_KEPT = all(mallopt(option, value) == 1 for option, value in MALLOC_SETTINGS.items())
    return _MALLOC_KEPT


# --- threads -----------------------------------------------------------------

THREADS_ENV = "DEEPSKY_THREADS"
CGROUP_ROOT = "/sys/fs/cgroup"

# libgomp (torch's OpenMP on Linux) spins ~300,000 iterations at each barrier
# by default; beside another CPU-bound process on the same cores the spinning
# thread steals the core its partner needs, and a 30 s epoch took 283-324 s.
# Sleeping at once instead costs nothing measurable alone (100 conv-net steps:
# 7.4-8.5 s vs 7.8-8.6 s) and keeps the slowdown beside a CPU-bound neighbour
# near the fair share of 2: 1.5-2.2x, against 2.1-7.3x spinning (2 cores,
# 2026-12-05). KMP_BLOCKTIME is the same switch for Intel's OpenMP.
# Sleeping at once did cost inference, whose layers are many short parallel
# regions: the lens-parameters AlexNet took 511 microseconds a lens with no
# spinning and 351 spinning 1,000 iterations first (347-358 for 10,000 to
# 300,000; 563 for 100), training epochs unchanged. Beside a CPU-bound
# neighbour the short spin cost 800 against 640 microseconds (1,380 at the
# default), and training and long predictions drop to one thread there
# (ThreadGovernor). GOMP_SPINCOUNT is set only where the user left
# OMP_WAIT_POLICY alone: libgomp lets it override the policy.
THREAD_ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
GOMP_SPIN_DEFAULT = "1000"


def _cgroup_v2_dirs(root: Path) -> list[Path]:
    """The process's own cgroup v2 folder and its parents up to ``root``; a quota on any of them binds."""
    dirs = [root]
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return dirs
    for line in text.splitlines():
        if line.startswith("0::"):
            own = root / line[3:].strip().lstrip("/")
            while own != root and root in own.parents:
                dirs.append(own)
                own = own.parent
    return dirs


def _read_quota(quota_text: str, period_text: str) -> float | None:
    """``quota / period`` in cores, or None for no limit ("max", -1) or unreadable values."""
    try:
        quota, period = int(quota_text), int(period_text)
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def cgroup_cpu_limit(cgroup_root: str | os.PathLike = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5), or None when there is none.

    Reads cgroup v2 ``cpu.max`` ("quota period" or "max period") and cgroup v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; the smallest quota found wins.

    Parameters
    ----------
    cgroup_root : path
        Where the cgroup file system is mounted; tests point it at fake files.
    """
    root = Path(cgroup_root)
    limits = []
    for folder in _cgroup_v2_dirs(root):
        try:
            parts = (folder / "cpu.max").read_text().split()
        except OSError:
            continue
        if len(parts) == 2:
            limits.append(_read_quota(*parts))
    # cgroup v1 mounts the cpu controller under one of these names
    for folder in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu", root):
        try:
            quota = (folder / "cpu.cfs_quota_us").read_text().strip()
            period = (folder / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            continue
        limits.append(_read_quota(quota, period))
    limits = [limit for limit in limits if limit is not None]
    return min(limits) if limits else None


def available_cores(cgroup_root: str | os.PathLike = CGROUP_ROOT) -> int:
    """The number of cores this process may use: its CPU affinity, capped by a cgroup CPU quota.

    ``os.cpu_count()`` counts the whole machine; on a shared node (Slurm's
    cpusets, a container's quota) that over-subscribes the cores we were given.

    Parameters
    ----------
    cgroup_root : path
        Where the cgroup file system is mounted; tests point it at fake files.

    Returns
    -------
    int
        At least 1; a fractional quota (1.5 cores) rounds up.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def _check_threads(value, source: str) -> int:
    cores = available_cores()
    try:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError
        threads = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise DeepskyError(
            f"{source} must be a whole number of threads between 1 and {4 * cores}; received {value!r}"
        ) from None
    if not 1 <= threads <= 4 * cores:
        raise DeepskyError(
            f"{source} must be between 1 and {4 * cores} (4x the {cores} cores this process may use); "
            f"received {value!r}"
        )
    return threads


def requested_threads(threads: int | None = None) -> int:
    """The thread count to use: ``threads``, else ``$DEEPSKY_THREADS``, else :func:`available_cores`.

    Raises
    ------
    DeepskyError
        For 0, a negative count, more than 4x the available cores, or a value that is not a whole number.
    """
    if threads is not None:
        return _check_threads(threads, "threads")
    if os.environ.get(THREADS_ENV, "").strip():
        return _check_threads(os.environ[THREADS_ENV], f"${THREADS_ENV}")
    return available_cores()


def set_thread_environment(environ: dict | None = None) -> dict[str, str]:
    """Set the OpenMP environment defaults that only work before torch is first imported.

    Call it first thing in a program (``deepsky.cli.main`` does). Values the
    user already set are kept. ``OMP_NUM_THREADS`` defaults to
    :func:`requested_threads`, so the BLAS libraries numpy and torch load
    start with the cores this process may use rather than the whole node.
    Threads wait passively after a short spin (``GOMP_SPINCOUNT``) unless the
    user chose ``OMP_WAIT_POLICY``.

    Parameters
    ----------
    environ : dict, optional
        The environment to change; ``os.environ`` by default.

    Returns
    -------
    dict
        The variables this call set (those not already set).
    """
    environ = os.environ if environ is None else environ
    wanted = dict(THREAD_ENV_DEFAULTS)
    if "OMP_WAIT_POLICY" not in environ:
        wanted["GOMP_SPINCOUNT"] = GOMP_SPIN_DEFAULT
    try:
        wanted["OMP_NUM_THREADS"] = str(requested_threads())
    except DeepskyError:
        pass  # configure_threads reports the bad $DEEPSKY_THREADS where an error can be shown
    applied = {}
    for key, value in wanted.items():
        if key not in environ:
            environ[key] = value
            applied[key] = value
    return applied


def configure_threads(threads: int | None = None) -> int:
    """Choose and apply the number of CPU threads torch uses; return it.

    Parameters
    ----------
    threads : int, optional
        Intra-op threads. By default ``$DEEPSKY_THREADS`` if set, else
        :func:`available_cores`.

    Returns
    -------
    int
        The number applied.

    Raises
    ------
    DeepskyError
        For 0, a negative count or more than 4x the available cores.

    Notes
    -----
    Inter-op threads are set to 1 when torch still allows it (before any
    parallel work): Keras runs one op at a time, so more would only wait.
    The spin-wait setting (:func:`set_thread_environment`) has to be in the
    environment before torch is imported to take effect.
    """
    count = requested_threads(threads)
    if backend_name() == "torch" or "torch" in sys.modules:
        import torch

        torch.set_num_threads(count)
        if torch.get_num_interop_threads() != 1:
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:  # parallel work already started; harmless, the pool just stays
                pass
    return count


class ThreadGovernor:
    """Gives torch the cores that other processes leave free, re-checked as training goes.

    On a shared node another CPU-bound job on the same cores makes every
    thread of ours wait for it at each parallel region: beside one, a
    2-thread epoch on 2 cores measured 2.4-3.5x slower, a 1-thread one
    1.5x. Every ``interval_s`` (and when asked) the governor reads how busy
    this process's cores were since its last look (``/proc/stat``, less our
    own use from ``/proc/self/stat``) and sets ``torch.set_num_threads`` to
    the cores left, between 1 and :func:`requested_threads`. A count the
    user chose (``--threads``, ``$DEEPSKY_THREADS``) is kept as it is, and
    where ``/proc`` is missing nothing changes. Sums over another number of
    threads round differently (weights differ by about 1e-4 after an epoch): fix the
    count for runs that must repeat bit for bit.
    """

    min_window_s = 0.5
    max_window_s = 30.0

    def __init__(self, interval_s: float = 2.0, proc: str | os.PathLike = "/proc"):
        self.interval_s = interval_s
        self.proc = Path(proc)
        self.cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        self.threads = self.maximum = requested_threads()
        self._last = self._snapshot()

    @property
    def fixed(self) -> bool:
        """True when the user chose the thread count."""
        return bool(os.environ.get(THREADS_ENV, "").strip())

    def _snapshot(self):
        """(monotonic seconds, busy and total ticks of our cores, our own ticks), or None without /proc."""
        if self.fixed or self.cpus is None:
            return None
        try:
            lines = (self.proc / "stat").read_text().splitlines()
            own = (self.proc / "self" / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        busy = total = found = 0
        wanted = {f"cpu{i}" for i in self.cpus}
        for line in lines:
            fields = line.split()
            if fields and fields[0] in wanted:
                found += 1
                ticks = [int(v) for v in fields[1:9]]
                idle = ticks[3] + ticks[4]  # idle and iowait
                busy += sum(ticks) - idle
                total += sum(ticks)
        if not found:
            return None
        # utime + stime, and cutime + cstime of children we waited for: a simulator's or a fit's forked workers
        # were ours, not another job's
        return time.monotonic(), busy, total, sum(int(v) for v in own[11:15])

    def others_busy(self) -> float | None:
        """Cores' worth of CPU that other processes used on our cores since the last look (None: unknown)."""
        now = self._snapshot()
        last, self._last = self._last, now
        if now is None or last is None or now[2] <= last[2]:
            return None
        others = (now[1] - last[1]) - (now[3] - last[3])
        return max(0.0, others / (now[2] - last[2]) * len(self.cpus))

    def check(self, force: bool = False) -> int:
        """Re-read the load when ``interval_s`` has passed (or ``force``); apply and return the thread count.

        The load is judged over the time since the last look, from half a
        second (shorter is too few clock ticks) to ``max_window_s`` (longer says
        little about now: the look starts afresh and decides at the next).
        """
        if self.fixed or self._last is None:
            return self.threads
        window = time.monotonic() - self._last[0]
        if window < (self.min_window_s if force else self.interval_s):
            return self.threads
        if window > self.max_window_s:
            self._last = self._snapshot()
            return self.threads
        busy = self.others_busy()
        if busy is None:
            return self.threads
        self.maximum = requested_threads()
        threads = max(1, min(self.maximum, int(len(self.cpus) - busy + 0.5)))
        if threads != self.threads and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.threads = threads
        return threads


_GOVERNOR: list = []


def thread_governor() -> ThreadGovernor:
    """The process's one :class:`ThreadGovernor`: its last look at the load carries over from one training to the next."""
    if not _GOVERNOR:
        _GOVERNOR.append(ThreadGovernor())
    return _GOVERNOR[0]


# --- devices -----------------------------------------------------------------

DEVICES = ("auto", "cpu", "cuda")
DEVICE_ENV = "DEEPSKY_DEVICE"


def device(name: str = "auto") -> str:
    """The torch device to run on: ``"cpu"`` or ``"cuda"``.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda"}
        ``"auto"`` picks CUDA when torch sees a GPU, else the CPU.

    Raises
    ------
    DeepskyError
        For an unknown name, or ``"cuda"`` on a machine without a CUDA device.
    """
    key = str(name).strip().lower()
    if key not in DEVICES:
        raise DeepskyError(f"device must be one of {', '.join(DEVICES)}; received {name!r}")
    if key == "cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if key == "cuda" and not has_cuda:
        raise DeepskyError(
            f"device 'cuda' was asked for but torch {torch.__version__} sees no CUDA device; "
            "ask for device 'cpu' or 'auto', or run where a CUDA build of torch sees a GPU"
        )
    return "cuda" if has_cuda else "cpu"


def autocast_device_type(device_name: str) -> str:
    """The ``device_type`` ``torch.autocast`` wants for a device string ("cuda:1" -> "cuda").

    >>> autocast_device_type("cuda:1"), autocast_device_type("cpu")
    ('cuda', 'cpu')
    """
    return str(device_name).split(":", 1)[0]


def torch_device() -> str:
    """The device Keras keeps its torch variables on (``"cpu"``, ``"cuda"``...); ``"cpu"`` on other backends."""
    if backend_name() != "torch":
        return "cpu"
    ensure_backend()
    from keras.src.backend.torch.core import get_device

    return str(get_device())


def choose_device(name: str) -> str:
    """Run on ``name`` (auto, cpu or cuda) from now on; must come before Keras is imported. Returns the device."""
    chosen = device(name)
    if "keras" in sys.modules:
        current = torch_device()
        if autocast_device_type(current) != chosen:
            raise DeepskyError(f"device {name!r} must be chosen before Keras is imported (it runs on {current})")
    os.environ[DEVICE_ENV] = chosen
    os.environ["KERAS_TORCH_DEVICE"] = chosen
    return chosen


def hardware_summary() -> str:
    """Where work runs, for progress lines: ``"cpu, 2 threads"`` or ``"cuda (NVIDIA H100)"``."""
    where = torch_device()
    if backend_name() != "torch":
        return f"{where} ({backend_name()} backend)"
    import torch

    if where == "cpu":
        count = torch.get_num_threads()
        return f"cpu, {count} thread{'' if count == 1 else 's'}"
    return f"{where} ({torch.cuda.get_device_name(torch.device(where))})"
