"""Threads from the cores a process may use, OpenMP environment defaults, and the device choice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deepsky import config
from deepsky.errors import DeepskyError


@pytest.fixture
def eight_cpus(monkeypatch):
    """Pretend the affinity mask holds 8 CPUs, so that a smaller quota is what binds."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)


def write_v2(root, text):
    (root / "cpu.max").write_text(text + "\n")
    return root


def write_v1(root, quota, period):
    folder = root / "cpu,cpuacct"
    folder.mkdir()
    (folder / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (folder / "cpu.cfs_period_us").write_text(f"{period}\n")
    return root


@pytest.mark.parametrize(
    "text, expected",
    [("150000 100000", 2), ("200000 100000", 2), ("50000 100000", 1), ("max 100000", 8), ("1600000 100000", 8)],
)
def test_cgroup_v2_quota_caps_the_affinity(tmp_path, eight_cpus, text, expected):
    assert config.available_cores(cgroup_root=write_v2(tmp_path, text)) == expected


@pytest.mark.parametrize("quota, period, expected", [(250000, 100000, 3), (-1, 100000, 8), (10000, 100000, 1)])
def test_cgroup_v1_quota_caps_the_affinity(tmp_path, eight_cpus, quota, period, expected):
    assert config.available_cores(cgroup_root=write_v1(tmp_path, quota, period)) == expected


def test_no_cgroup_files_means_the_affinity(tmp_path, eight_cpus):
    assert config.cgroup_cpu_limit(tmp_path) is None
    assert config.available_cores(cgroup_root=tmp_path) == 8


def test_a_smaller_affinity_wins_over_the_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert config.available_cores(cgroup_root=write_v2(tmp_path, "400000 100000")) == 1


def test_garbled_cgroup_files_are_ignored(tmp_path, eight_cpus):
    assert config.available_cores(cgroup_root=write_v2(tmp_path, "lots of cpus")) == 8


@pytest.fixture
def torch_threads(monkeypatch):
    """Leave torch's thread count and $DEEPSKY_THREADS as they were."""
    torch = pytest.importorskip("torch")
    monkeypatch.delenv(config.THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    yield torch
    torch.set_num_threads(before)


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(config, "available_cores", lambda cgroup_root=config.CGROUP_ROOT: 4)


def test_configure_threads_applies_an_explicit_count(torch_threads, four_cores):
    assert config.configure_threads(1) == 1
    assert torch_threads.get_num_threads() == 1
    assert config.configure_threads(3) == 3
    assert torch_threads.get_num_threads() == 3


def test_configure_threads_defaults_to_the_available_cores(torch_threads, four_cores):
    torch_threads.set_num_threads(1)
    assert config.configure_threads() == 4
    assert torch_threads.get_num_threads() == 4


def test_configure_threads_reads_the_environment(torch_threads, four_cores, monkeypatch):
    monkeypatch.setenv(config.THREADS_ENV, "2")
    assert config.configure_threads() == 2
    assert torch_threads.get_num_threads() == 2
    # an explicit count beats the environment
    assert config.configure_threads(1) == 1


@pytest.mark.parametrize("bad", [0, -2, 17, 1.5, True, "two"])
def test_configure_threads_rejects_bad_counts(torch_threads, four_cores, bad):
    torch_threads.set_num_threads(1)
    with pytest.raises(DeepskyError, match=f"received {bad!r}"):
        config.configure_threads(bad)
    assert torch_threads.get_num_threads() == 1


@pytest.mark.parametrize("bad", ["0", "-1", "17", "many"])
def test_a_bad_environment_value_names_the_variable(torch_threads, four_cores, monkeypatch, bad):
    monkeypatch.setenv(config.THREADS_ENV, bad)
    with pytest.raises(DeepskyError, match=rf"\$DEEPSKY_THREADS .*received '{bad}'"):
        config.configure_threads()


def test_the_thread_environment_is_a_default(monkeypatch, four_cores):
    monkeypatch.delenv(config.THREADS_ENV, raising=False)
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    applied = config.set_thread_environment(environ)
    assert environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays
    assert "OMP_WAIT_POLICY" not in applied
    assert environ["KMP_BLOCKTIME"] == "0" and environ["OMP_NUM_THREADS"] == "4"
    assert applied == {"KMP_BLOCKTIME": "0", "OMP_NUM_THREADS": "4"}  # no spin count: it would override ACTIVE

    monkeypatch.setenv(config.THREADS_ENV, "1")
    environ = {}
    config.set_thread_environment(environ)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "0",
                       "OMP_NUM_THREADS": "1"}


def test_the_thread_environment_reaches_torch_when_set_before_import():
    """In a fresh process: set before ``import torch``, torch's OpenMP starts with it."""
    code = (
        "import sys, os; from deepsky import config\n"
        "assert 'torch' not in sys.modules and 'keras' not in sys.modules, 'deepsky.config imported a backend'\n"
        "config.set_thread_environment()\n"
        "import torch\n"
        "print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "KMP_BLOCKTIME", "GOMP_SPINCOUNT")}
    env[config.THREADS_ENV] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["PASSIVE", "1"]


def test_device_cpu():
    assert config.device("cpu") == "cpu"
    assert config.device("CPU") == "cpu"


def test_device_auto_follows_torch():
    torch = pytest.importorskip("torch")
    assert config.device() == ("cuda" if torch.cuda.is_available() else "cpu")


def test_device_rejects_unknown_names():
    with pytest.raises(DeepskyError, match="received 'gpu'"):
        config.device("gpu")


def test_cuda_without_a_gpu_is_an_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(DeepskyError, match="sees no CUDA device"):
        config.device("cuda")


def test_autocast_device_type():
    assert config.autocast_device_type("cuda:1") == "cuda"
    assert config.autocast_device_type("cpu") == "cpu"


def _fake_proc(root, busy_ticks, own_ticks, idle_ticks=0, children_ticks=0):
    """/proc/stat with cpu0 and cpu1 (busy and idle user ticks); /proc/self/stat with our and our children's utime."""
    (root / "self").mkdir(parents=True, exist_ok=True)
    lines = ["cpu  0 0 0 0 0 0 0 0"] + [f"cpu{i} {busy_ticks} 0 0 {idle_ticks} 0 0 0 0" for i in range(2)]
    (root / "stat").write_text("\n".join(lines) + "\n")
    fields = ["S"] + ["0"] * 10 + [str(own_ticks), "0", str(children_ticks), "0"] + ["0"] * 28
    (root / "self" / "stat").write_text("123 (python (x)) " + " ".join(fields) + "\n")


@pytest.mark.parametrize("others, expected", [(0, 2), (100, 1), (120, 1), (30, 2)],
                         ids=["alone", "one-core-busy", "both-busy", "a-little-busy"])
def test_the_governor_leaves_the_cores_other_processes_use(tmp_path, monkeypatch, others, expected):
    from deepsky.config import ThreadGovernor

    monkeypatch.delenv("DEEPSKY_THREADS", raising=False)
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(config, "available_cores", lambda *a: 2)
    _fake_proc(tmp_path, busy_ticks=0, own_ticks=0)
    governor = ThreadGovernor(proc=tmp_path)
    governor.min_window_s = 0.0  # the fake clock ticks below stand for the time passed
    # 100 ticks elapse on each core; we used 80 of the 200, others ``others``, the rest idle
    _fake_proc(tmp_path, busy_ticks=(80 + others) // 2, own_ticks=80, idle_ticks=100 - (80 + others) // 2)
    assert governor.check(force=True) == expected


def test_the_governor_counts_our_own_finished_workers_as_ours(tmp_path, monkeypatch):
    from deepsky.config import ThreadGovernor

    monkeypatch.delenv("DEEPSKY_THREADS", raising=False)
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(config, "available_cores", lambda *a: 2)
    _fake_proc(tmp_path, busy_ticks=0, own_ticks=0)
    governor = ThreadGovernor(proc=tmp_path)
    governor.min_window_s = 0.0
    # both cores busy the whole window, all of it forked simulation workers this process waited for
    _fake_proc(tmp_path, busy_ticks=100, own_ticks=20, idle_ticks=0, children_ticks=180)
    assert governor.check(force=True) == 2


def test_the_governor_keeps_a_count_the_user_chose(tmp_path, monkeypatch):
    from deepsky.config import ThreadGovernor

    monkeypatch.setenv("DEEPSKY_THREADS", "2")
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(config, "available_cores", lambda *a: 2)
    _fake_proc(tmp_path, busy_ticks=0, own_ticks=0)
    governor = ThreadGovernor(proc=tmp_path)
    governor.min_window_s = 0.0  # the fake clock ticks below stand for the time passed
    _fake_proc(tmp_path, busy_ticks=100, own_ticks=0)
    assert governor.check(force=True) == 2


FAULTS_SCRIPT = """
import resource
import numpy as np
from deepsky import config
print(config.keep_freed_memory())
x = np.ones(400_000, np.float32)  # 1.6 MB: each temporary below is a block of that size
def chain():
    a = x * 2; b = a + x; c = np.sqrt(b); return float((c * a)[0])
for _ in range(5):
    chain()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    chain()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator settings are Linux's")
def test_freed_megabyte_temporaries_are_reused_without_page_faults():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, env=env, check=True)
    applied, faults = out.stdout.split()
    # untuned, glibc mmaps and returns each such block: about 1,600 page faults per chain
    assert applied == "True" and int(faults) < 500, out.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator settings are Linux's")
def test_the_users_own_malloc_settings_are_left_alone():
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split()[0] == "False"
