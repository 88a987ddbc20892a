"""Suite-wide guard: whatever the tests create on the host, they must also remove.

A session fixture records the host's links, network namespaces, iptables chains, overlay mounts and
berth/conmon/crun/runc processes before the first test and checks, after every other fixture has been torn
down, that nothing new of berth's kinds is left (the engine-core issue's acceptance criterion).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Links, chains and processes that berth or its tests create.
_LINK = re.compile(r"^(bt[0-9a-f]{6}|br-[0-9a-f]{12}|veth[0-9a-f]+|berth\S*|btest\S*|bt-\S+)$")
_CHAIN = re.compile(r"^(CNI-|BERTH)")


@dataclass(frozen=True)
class HostState:
    links: frozenset[str]
    netns: frozenset[str]
    chains: frozenset[str]
    mounts: frozenset[str]
    processes: frozenset[int]
    runtime_processes: frozenset[int]


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def _links() -> frozenset[str]:
    names = (line.split(": ", 2)[1].split("@", 1)[0] for line in _run("ip", "-o", "link").splitlines())
    return frozenset(n for n in names if _LINK.match(n))


def _chains() -> frozenset[str]:
    """berth's chains and every rule in or jumping to them (shared chains keep per-container rules)."""
    found = set()
    for table in ("nat", "filter", "mangle"):
        for line in _run("iptables", "-t", table, "-S").splitlines():
            words = line.split()
            if len(words) < 2:
                continue
            if words[0] == "-N" and _CHAIN.match(words[1]):
                found.add(f"{table}/{words[1]}")
            elif words[0] == "-A" and (_CHAIN.match(words[1]) or "-j CNI-" in line or "-j BERTH" in line):
                found.add(f"{table}: {line}")
    return frozenset(found)


def _mounts() -> frozenset[str]:
    with open("/proc/self/mounts") as f:
        return frozenset(line.split()[1] for line in f
                         if "berth-test" in line.split()[1] or line.split()[0] == "overlay")


_RUNTIMES = (b"crun", b"runc", b"crun-cgroup-mask")


def _processes() -> frozenset[int]:
    """Daemons and conmons of test daemons: their presence means a test session is running."""
    pids = set()
    for pid, argv in _test_cmdlines():
        cmd = b"\0".join(argv)
        if cmd.startswith(b"conmon") or b"/conmon\0" in cmd or b"berth\0daemon" in cmd:
            pids.add(pid)
    return frozenset(pids)


def _runtime_processes() -> frozenset[int]:
    """`crun`/`runc` processes of test daemons, e.g. the init of a container made by `crun create`
    (it keeps that argv until a `start`): once its conmon is gone, nothing else would end it."""
    return frozenset(pid for pid, argv in _test_cmdlines() if os.path.basename(argv[0]) in _RUNTIMES)


def _test_cmdlines() -> list[tuple[int, list[bytes]]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"berth-test" in cmd:
            found.append((int(entry.name), cmd.split(b"\0")))
    return found


def _survivors_of_destroy() -> list[str]:
    """Processes of a daemon BerthDaemon.destroy() cleaned in this session: none may be left
    (attributed by base dir and container cgroup, so other sessions' processes never count)."""
    from tests.helpers import DESTROYED_BASES, DESTROYED_CGROUPS, processes_of

    found: dict[int, str] = {}
    for base in DESTROYED_BASES:
        found.update(processes_of(base, set()))
    if DESTROYED_BASES:
        found.update(processes_of(DESTROYED_BASES[0], set(DESTROYED_CGROUPS)))
    return [f"{pid}: {why}" for pid, why in sorted(found.items())]


def _snapshot() -> HostState:
    netns = frozenset(line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line.strip())
    return HostState(_links(), netns, _chains(), _mounts(), _processes(), _runtime_processes())


@pytest.fixture(scope="session", autouse=True)
def host_left_clean() -> Iterator[None]:
    if os.geteuid() != 0:
        yield
        return
    before = _snapshot()
    if before.processes:
        # Another test session is running on this host; its objects would be counted as ours.
        yield
        assert not (survivors := _survivors_of_destroy()), f"processes survived BerthDaemon.destroy(): {survivors}"
        return
    yield
    after = _snapshot()
    leftovers = {
        "links": sorted(after.links - before.links),
        "network namespaces": sorted(after.netns - before.netns),
        "iptables chains": sorted(after.chains - before.chains),
        "mounts": sorted(after.mounts - before.mounts),
        "processes": sorted(after.processes - before.processes),
        "container runtime processes": sorted(after.runtime_processes - before.runtime_processes),
        "processes that survived BerthDaemon.destroy()": _survivors_of_destroy(),
    }
    leftovers = {kind: items for kind, items in leftovers.items() if items}
    assert not leftovers, f"the test suite left these behind: {leftovers}"
