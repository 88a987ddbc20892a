"""Suite-wide guard: whatever the tests create on the host, they must also remove.

A session fixture records the host's links, network namespaces, iptables chains, overlay mounts and
berth/conmon processes before the first test and checks, after every other fixture has been torn
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


def _processes() -> frozenset[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"berth-test" in cmd and (cmd.startswith(b"conmon") or b"/conmon\0" in cmd or b"berth\0daemon" in cmd):
            pids.add(int(entry.name))
    return frozenset(pids)


def _snapshot() -> HostState:
    netns = frozenset(line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line.strip())
    return HostState(_links(), netns, _chains(), _mounts(), _processes())


@pytest.fixture(scope="session", autouse=True)
def host_left_clean() -> Iterator[None]:
    if os.geteuid() != 0:
        yield
        return
    before = _snapshot()
    if before.processes:
        # Another test session is running on this host; its objects would be counted as ours.
        yield
        return
    yield
    after = _snapshot()
    leftovers = {
        "links": sorted(after.links - before.links),
        "network namespaces": sorted(after.netns - before.netns),
        "iptables chains": sorted(after.chains - before.chains),
        "mounts": sorted(after.mounts - before.mounts),
        "processes": sorted(after.processes - before.processes),
    }
    leftovers = {kind: items for kind, items in leftovers.items() if items}
    assert not leftovers, f"the test suite left these behind: {leftovers}"
