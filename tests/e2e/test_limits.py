"""Resource limits through the docker CLI: memory/OOM, pids, CPU, ulimits, `docker update`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root

MB = 1024 * 1024
CGROUP = Path("/sys/fs/cgroup")


def inspect(daemon: BerthDaemon, ref: str) -> dict:
    return json.loads(daemon.docker("inspect", ref, check=True).stdout)[0]


def cgroup_file(controller: str, cid: str, name: str) -> str:
    return (CGROUP / controller / "berth" / cid / name).read_text().strip()


def test_memory_limit_oom_kills(daemon: BerthDaemon) -> None:
    name = "limits-oom"
    try:
        result = daemon.docker("run", "--name", name, "-m", "64m", "busybox", "sh", "-c",
                               'x=$(head -c 150000000 /dev/zero | tr "\\0" x); echo survived', timeout=60)
        assert result.returncode == 137, result.stderr
        assert "survived" not in result.stdout
        state = inspect(daemon, name)["State"]
        assert state["OOMKilled"] is True and state["ExitCode"] == 137
        host_config = inspect(daemon, name)["HostConfig"]
        assert host_config["Memory"] == 64 * MB and host_config["MemorySwap"] == 128 * MB
    finally:
        daemon.docker("rm", "-f", name)


def test_memory_limit_inside(daemon: BerthDaemon) -> None:
    result = daemon.docker("run", "--rm", "-m", "32m", "--memory-swap", "64m", "busybox", "cat",
                           "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                           "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", check=True)
    assert result.stdout.split() == [str(32 * MB), str(64 * MB)]


def refused_forks(cid: str) -> int:
    """pids.events reads `max N`: N forks failed because of the limit."""
    return int(cgroup_file("pids", cid, "pids.events").split()[-1])


def test_pids_limit_stops_a_fork_bomb(daemon: BerthDaemon) -> None:
    name = "limits-bomb"
    cid = daemon.docker("run", "-d", "--name", name, "--pids-limit", "20", "busybox", "sleep", "300",
                        check=True).stdout.strip()
    try:
        assert cgroup_file("pids", cid, "pids.max") == "20"
        daemon.docker("exec", "-d", name, "sh", "-c", "bomb() { bomb | bomb & }; bomb", check=True)
        deadline = time.monotonic() + 10
        while refused_forks(cid) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert refused_forks(cid) > 0
        assert int(cgroup_file("pids", cid, "pids.current")) <= 20
        assert inspect(daemon, name)["State"]["Running"] is True
    finally:
        assert daemon.docker("rm", "-f", name).returncode == 0
    assert not (CGROUP / "pids" / "berth" / cid).exists()


def test_cpu_limits(daemon: BerthDaemon) -> None:
    result = daemon.docker("run", "--rm", "--cpus", "0.5", "--cpu-shares", "256", "--cpuset-cpus", "0",
                           "busybox", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                           "/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu/cpu.shares",
                           "/sys/fs/cgroup/cpuset/cpuset.cpus", check=True)
    assert result.stdout.split() == ["50000", "100000", "256", "0"]


@pytest.mark.parametrize(("flags", "message"), [
    (("--cpus", "64"), "Range of CPUs is from 0.01 to"),
    (("--cpuset-cpus", "63"), "Requested CPUs are not available - requested 63"),
    (("-m", "1m"), "Minimum memory limit allowed is 6MB"),
])
def test_limits_beyond_the_host_are_refused(daemon: BerthDaemon, flags: tuple[str, ...], message: str) -> None:
    result = daemon.docker("run", "--rm", *flags, "busybox", "true")
    assert result.returncode == 125 and message in result.stderr


def test_ulimit_applies(daemon: BerthDaemon) -> None:
    result = daemon.docker("run", "--rm", "--ulimit", "nofile=1024:2048", "busybox", "sh", "-c",
                           "ulimit -n; ulimit -Hn", check=True)
    assert result.stdout.split() == ["1024", "2048"]


def test_ulimit_above_host_limit_is_a_clear_error(daemon: BerthDaemon) -> None:
    before = daemon.docker("ps", "-aq").stdout
    result = daemon.docker("run", "--rm", "--ulimit", "nofile=999999:999999", "busybox", "true")
    assert result.returncode == 125
    assert "nofile=999999:999999 is above this host's hard limit for nofile" in result.stderr
    assert "Traceback" not in result.stderr
    assert daemon.docker("ps", "-aq").stdout == before


def test_update_running_container(daemon: BerthDaemon) -> None:
    name = "limits-update"
    cid = daemon.docker("run", "-d", "--name", name, "-m", "64m", "busybox", "sleep", "300",
                        check=True).stdout.strip()
    try:
        assert cgroup_file("memory", cid, "memory.limit_in_bytes") == str(64 * MB)
        result = daemon.docker("update", "-m", "128m", "--pids-limit", "50", "--cpus", "0.5", name)
        assert result.returncode == 0, result.stderr
        assert cgroup_file("memory", cid, "memory.limit_in_bytes") == str(128 * MB)
        assert cgroup_file("pids", cid, "pids.max") == "50"
        assert cgroup_file("cpu", cid, "cpu.cfs_quota_us") == "50000"
        inside = daemon.docker("exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", check=True)
        assert inside.stdout.strip() == str(128 * MB)
        hc = inspect(daemon, name)["HostConfig"]
        assert (hc["Memory"], hc["PidsLimit"], hc["NanoCpus"]) == (128 * MB, 50, 500_000_000)
        refused = daemon.docker("update", "-m", "512m", name)
        assert refused.returncode != 0 and "update the memoryswap at the same time" in refused.stderr
        memory_only = daemon.docker("update", "-m", "256m", "--memory-swap", "512m", name)
        assert memory_only.returncode == 0, memory_only.stderr
        assert cgroup_file("pids", cid, "pids.max") == "50"  # untouched
        lifted = daemon.docker("update", "--pids-limit", "-1", name)
        assert lifted.returncode == 0, lifted.stderr
        assert int(cgroup_file("pids", cid, "pids.max")) >= 4 * 1024 * 1024  # the kernel's ceiling
    finally:
        daemon.docker("rm", "-f", name)


def test_update_memory_of_a_container_without_a_pids_limit(daemon: BerthDaemon) -> None:
    name = "limits-update-nopids"
    cid = daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300", check=True).stdout.strip()
    try:
        result = daemon.docker("update", "--memory", "64m", "--memory-swap", "128m", name)
        assert result.returncode == 0, result.stderr
        assert cgroup_file("memory", cid, "memory.limit_in_bytes") == str(64 * MB)
        assert cgroup_file("pids", cid, "pids.max") == "max"
    finally:
        daemon.docker("rm", "-f", name)


def test_update_stopped_container_applies_at_next_start(daemon: BerthDaemon) -> None:
    name = "limits-update-stopped"
    daemon.docker("create", "--name", name, "busybox", "cat", "/sys/fs/cgroup/pids/pids.max", check=True)
    try:
        assert daemon.docker("update", "--pids-limit", "30", name).returncode == 0
        assert daemon.docker("start", "-a", name, check=True).stdout.strip() == "30"
    finally:
        daemon.docker("rm", "-f", name)
