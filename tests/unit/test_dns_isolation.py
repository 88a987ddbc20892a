"""Isolation rules between networks (berth.network._isolation): plans and the retrying applier."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from berth.errors import Unavailable
from berth.network._isolation import (
    DNAT_RETURN, HOOK, STAGE_1, STAGE_2, IsolatedBridge, NetworkIsolation, add_plan, bridge_rules, remove_plan,
)

A = IsolatedBridge("br-a", "172.18.0.0/16")
B = IsolatedBridge("br-b", "172.19.0.0/16", internal=True)
BASE = ["-P PREROUTING ACCEPT", "-P FORWARD ACCEPT"]


def _installed(*bridges: IsolatedBridge) -> list[str]:
    """What `iptables -t mangle -S` prints once `bridges` are installed."""
    rules = [r for b in bridges for r, first in bridge_rules(b) if first]
    rules += [DNAT_RETURN] + [r for b in bridges for r, first in bridge_rules(b) if not first]
    return [*BASE, f"-N {STAGE_1}", f"-N {STAGE_2}", HOOK, *rules]


def test_first_add_makes_chains_hook_and_rules() -> None:
    lines = add_plan(BASE, [A, B])
    assert lines[:3] == [f"-N {STAGE_1}", DNAT_RETURN, f"-N {STAGE_2}"]
    assert f"-A {STAGE_1} -i br-a ! -o br-a -j {STAGE_2}" in lines
    assert f"-A {STAGE_2} -o br-a -j DROP" in lines
    assert f"-I {STAGE_1} 1 ! -d 172.19.0.0/16 -i br-b -j DROP" in lines  # internal: before the DNAT return
    assert lines[-1] == HOOK.replace("-A FORWARD", "-I FORWARD 1")


def test_add_is_idempotent_and_adds_only_what_is_missing() -> None:
    assert add_plan(_installed(A, B), [A, B]) == []
    assert add_plan(_installed(A), [A, B]) == [
        f"-I {STAGE_1} 1 ! -d 172.19.0.0/16 -i br-b -j DROP", f"-I {STAGE_1} 1 ! -s 172.19.0.0/16 -o br-b -j DROP",
        f"-A {STAGE_1} -i br-b ! -o br-b -j {STAGE_2}", f"-A {STAGE_2} -o br-b -j DROP"]


def test_remove_keeps_chains_while_another_bridge_uses_them() -> None:
    lines = remove_plan(_installed(A, B), [B])
    assert len(lines) == 4 and all(line.startswith("-D ") for line in lines)
    assert f"-D {STAGE_2} -o br-b -j DROP" in lines


def test_removing_the_last_bridge_removes_chains_and_hook() -> None:
    lines = remove_plan(_installed(A), [A])
    assert lines[-5:] == ["-D " + HOOK[3:], f"-F {STAGE_1}", f"-F {STAGE_2}", f"-X {STAGE_1}", f"-X {STAGE_2}"]
    assert remove_plan(BASE, [A]) == []


class FakeIptables:
    """A Runner recording restore batches; answers `-S` from `rules` and fails the first N restores."""

    def __init__(self, rules: list[str], failures: int = 0) -> None:
        self.rules = rules
        self.failures = failures
        self.batches: list[str] = []

    def __call__(self, argv: Sequence[str], stdin: str) -> subprocess.CompletedProcess[str]:
        if argv[0] == "iptables":
            return subprocess.CompletedProcess(list(argv), 0, "\n".join(self.rules) + "\n", "")
        self.batches.append(stdin)
        if self.failures:
            self.failures -= 1
            return subprocess.CompletedProcess(list(argv), 1, "", "Chain already exists.")
        return subprocess.CompletedProcess(list(argv), 0, "", "")


def test_applier_batches_once_and_retries_after_a_race() -> None:
    fake = FakeIptables(list(BASE), failures=1)
    NetworkIsolation(runner=fake).ensure([A])
    assert len(fake.batches) == 2
    assert fake.batches[0].startswith("*mangle\n-N BERTH-ISOLATION-1\n") and fake.batches[0].endswith("COMMIT\n")
    quiet = FakeIptables(_installed(A))
    NetworkIsolation(runner=quiet).ensure([A])
    assert quiet.batches == []


def test_applier_gives_up_with_unavailable() -> None:
    fake = FakeIptables(list(BASE), failures=5)
    with pytest.raises(Unavailable, match="Chain already exists"):
        NetworkIsolation(runner=fake).ensure([A])
    assert len(fake.batches) == 3
