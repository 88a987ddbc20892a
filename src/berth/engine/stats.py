"""`docker stats` samples read from the container's cgroup v1 files and its network namespace.

Layout (cgroupfs, explicit cgroupsPath `/<parent>/<id>`):

    /sys/fs/cgroup/memory/<parent>/<id>/memory.usage_in_bytes, memory.limit_in_bytes, memory.stat
    /sys/fs/cgroup/cpuacct/<parent>/<id>/cpuacct.usage, cpuacct.usage_percpu
    /sys/fs/cgroup/pids/<parent>/<id>/pids.current, pids.max
    /proc/<pid>/net/dev                        (the container's interfaces)
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read_int(path: Path, default: int = 0) -> int:
    try:
        text = path.read_text().strip()
        return int(text) if text.lstrip("-").isdigit() else default
    except OSError:
        return default


def _memory_stat(path: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}
    except (OSError, ValueError):
        return {}


def system_cpu_usage(proc_stat: Path = Path("/proc/stat")) -> int:
    """Host CPU time in nanoseconds (what moby reports as system_cpu_usage)."""
    try:
        first = proc_stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return 0
    ticks = sum(int(v) for v in first[1:8])
    return ticks * 1_000_000_000 // _CLK_TCK


def network_stats(pid: int) -> dict[str, dict[str, int]]:
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return {}
    result = {}
    for line in lines:
        name, _, data = line.partition(":")
        name = name.strip()
        if name == "lo":
            continue
        v = [int(x) for x in data.split()]
        result[name] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                        "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}
    return result


def sample(container_id: str, name: str, pid: int, parent: str = "berth",
           root: Path = CGROUP_ROOT) -> dict[str, Any]:
    leaf = f"{parent}/{container_id}"
    mem = root / "memory" / leaf
    cpu = root / "cpuacct" / leaf
    percpu_text = ""
    try:
        percpu_text = (cpu / "cpuacct.usage_percpu").read_text()
    except OSError:
        pass
    percpu = [int(x) for x in percpu_text.split()]
    limit = _read_int(mem / "memory.limit_in_bytes")
    return {
        "read": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "preread": "0001-01-01T00:00:00Z",
        "id": container_id, "name": f"/{name}",
        "pids_stats": {"current": _read_int(root / "pids" / leaf / "pids.current")},
        "cpu_stats": {
            "cpu_usage": {"total_usage": _read_int(cpu / "cpuacct.usage"), "percpu_usage": percpu,
                          "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": system_cpu_usage(), "online_cpus": len(percpu) or os.cpu_count() or 1,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {"usage": _read_int(mem / "memory.usage_in_bytes"),
                         "max_usage": _read_int(mem / "memory.max_usage_in_bytes"),
                         "limit": min(limit, host_memory()) if limit else host_memory(),
                         "stats": _memory_stat(mem / "memory.stat")},
        "blkio_stats": {"io_service_bytes_recursive": None},
        "networks": network_stats(pid) if pid else {},
    }


def with_previous(current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Attach the previous sample as precpu_stats (the CLI computes CPU % from the difference)."""
    if previous is None:
        current["precpu_stats"] = {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0,
                                   "online_cpus": current["cpu_stats"]["online_cpus"]}
    else:
        current["precpu_stats"] = previous["cpu_stats"]
        current["preread"] = previous["read"]
    return current


def host_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
