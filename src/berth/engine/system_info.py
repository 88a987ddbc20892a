"""The host facts of `GET /info` that dockerd reports beside the engine's own counts.

dockerd's Info carries kernel capabilities (which cgroup controllers exist), live process figures
(open fds, goroutines, event listeners), the daemon's proxy environment and the local time. berth
reports the same keys with values read from this host and this process: a Python daemon has no
goroutines, so `NGoroutines` counts what plays their part here (threads and asyncio tasks).

`probe_host` reads /proc and /sys (the effects); `info_fields` is pure over what it found.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class HostFacts:
    """What the kernel offers containers, as dockerd's sysinfo package finds it."""

    memory_limit: bool = False
    swap_limit: bool = False
    oom_kill_disable: bool = False
    cpu_cfs: bool = False
    cpu_shares: bool = False
    cpuset: bool = False
    pids_limit: bool = False
    ipv4_forwarding: bool = False
    bridge_nf_iptables: bool = False
    bridge_nf_ip6tables: bool = False
    os_version: str = ""


def probe_host(cgroup_root: Path = _CGROUP_ROOT, proc: Path = Path("/proc"),
               os_release: Path = Path("/etc/os-release")) -> HostFacts:
    """Read the host's cgroup controllers (v1 or v2), forwarding sysctls and OS version."""
    controllers = (cgroup_root / "cgroup.controllers")
    if controllers.exists():  # cgroup v2 (unified)
        have = set(_read(controllers).split())
        memory, cpu = "memory" in have, "cpu" in have
        swap = memory and any(cgroup_root.glob("*/memory.swap.max"))
        oom = False  # v2 has no memory.oom_control: dockerd reports false
        cpuset, pids = "cpuset" in have, "pids" in have
    else:
        memory = (cgroup_root / "memory" / "memory.limit_in_bytes").exists()
        swap = (cgroup_root / "memory" / "memory.memsw.limit_in_bytes").exists()
        oom = (cgroup_root / "memory" / "memory.oom_control").exists()
        cpu = (cgroup_root / "cpu" / "cpu.cfs_quota_us").exists()
        cpuset = (cgroup_root / "cpuset" / "cpuset.cpus").exists()
        pids = (cgroup_root / "pids").is_dir()
    shares = cpu if controllers.exists() else (cgroup_root / "cpu" / "cpu.shares").exists()
    sysctl = proc / "sys" / "net"
    return HostFacts(
        memory_limit=memory, swap_limit=swap, oom_kill_disable=oom, cpu_cfs=cpu, cpu_shares=shares,
        cpuset=cpuset, pids_limit=pids, ipv4_forwarding=_read(sysctl / "ipv4" / "ip_forward") == "1",
        bridge_nf_iptables=_read(sysctl / "bridge" / "bridge-nf-call-iptables") == "1",
        bridge_nf_ip6tables=_read(sysctl / "bridge" / "bridge-nf-call-ip6tables") == "1",
        os_version=_os_release_field(_read(os_release), "VERSION_ID"),
    )


@functools.cache
def cached_host_facts() -> HostFacts:
    """`probe_host()` once per daemon: controllers and the OS do not change while it runs."""
    return probe_host()


@functools.cache
def runtime_commit(runtime: str) -> str:
    """The `commit:` line of `<runtime> --version` (crun and runc both print one); "N/A" without."""
    try:
        out = subprocess.run([runtime, "--version"], capture_output=True, text=True, timeout=5,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return "N/A"
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "commit" and value.strip():
            return value.strip()
    return "N/A"


def info_fields(facts: HostFacts, *, debug: bool, open_fds: int, workers: int, listeners: int,
                now: datetime, environ: dict[str, str], runtime_commit_id: str) -> dict[str, Any]:
    """The Info keys dockerd has and the engine's own `info()` does not fill."""
    return {
        "MemoryLimit": facts.memory_limit, "SwapLimit": facts.swap_limit, "CpuCfsPeriod": facts.cpu_cfs,
        "CpuCfsQuota": facts.cpu_cfs, "CPUShares": facts.cpu_shares, "CPUSet": facts.cpuset,
        "PidsLimit": facts.pids_limit, "IPv4Forwarding": facts.ipv4_forwarding,
        "BridgeNfIptables": facts.bridge_nf_iptables, "BridgeNfIp6tables": facts.bridge_nf_ip6tables,
        "Debug": debug, "NFd": open_fds, "OomKillDisable": facts.oom_kill_disable, "NGoroutines": workers,
        "SystemTime": rfc3339_nano(now), "NEventsListener": listeners, "OSVersion": facts.os_version,
        "GenericResources": None, "HttpProxy": _masked(_proxy(environ, "HTTP_PROXY")),
        "HttpsProxy": _masked(_proxy(environ, "HTTPS_PROXY")), "NoProxy": _proxy(environ, "NO_PROXY"),
        "Isolation": "", "ContainerdCommit": {"ID": "N/A"}, "RuncCommit": {"ID": runtime_commit_id},
        "CDISpecDirs": [], "FirewallBackend": {"Driver": "iptables"},
    }


def live_fields(runtime: str, listeners: int) -> dict[str, Any]:
    """`info_fields` for this process now (call it on the event loop: it counts its tasks)."""
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:  # no running loop
        tasks = 0
    return info_fields(
        cached_host_facts(), debug=logging.getLogger().isEnabledFor(logging.DEBUG),
        open_fds=_count_fds(), workers=threading.active_count() + tasks, listeners=listeners,
        now=datetime.now().astimezone(), environ=dict(os.environ), runtime_commit_id=runtime_commit(runtime))


def rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano: fraction without trailing zeros, `Z` for UTC, else ±hh:mm."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    offset = moment.utcoffset()
    if offset is None or not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _proxy(environ: dict[str, str], name: str) -> str:
    return environ.get(name) or environ.get(name.lower()) or ""


def _masked(url: str) -> str:
    """dockerd hides a proxy URL's password: http://user:xxxxx@host."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':xxxxx' if colon else ''}@{host}"


def _count_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _os_release_field(text: str, key: str) -> str:
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name == key:
            return value.strip().strip('"')
    return ""
