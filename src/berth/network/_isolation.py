"""Isolation between networks, like Docker's DOCKER-ISOLATION-STAGE-1/2 chains.

Containers on one bridge reach each other; a packet routed from one berth bridge out of another
is dropped; an `--internal` network's packets never leave its subnet, in or out. Every bridge
(each daemon's default bridge and every user network) has its own rules in two chains shared by
all berth daemons on the host, so one daemon adding or removing its bridges leaves the others'
rules alone:

    mangle  FORWARD -m comment --comment "berth network isolation" -j BERTH-ISOLATION-1  (inserted first)
            BERTH-ISOLATION-1:
              ! -d <subnet> -i <internal br> -j DROP        internal: nothing out   (inserted first)
              ! -s <subnet> -o <internal br> -j DROP        internal: nothing in    (inserted first)
              -m conntrack --ctstate DNAT -j RETURN         published ports stay reachable from
                                                            every network (both directions)
              -i <br> ! -o <br> -j BERTH-ISOLATION-2        leaving a bridge for elsewhere...
            BERTH-ISOLATION-2:
              -o <br> -j DROP                               ...into another berth bridge: dropped

Why mangle and not filter like Docker: CNI's firewall plugin inserts `FORWARD -j CNI-FORWARD`
at the top of filter FORWARD whenever that jump is missing (after the shared chains were
removed, say), and CNI-FORWARD ACCEPTs every packet from a container's address; in filter our
rules would then be skipped. mangle FORWARD is traversed before filter FORWARD whatever the
order of the filter rules, so the isolation holds however the CNI chains come and go.

Changes go in one `iptables-restore -w --noflush` batch built from the rules read just before
(`iptables -S`). Chains are made with `-N`, which fails when another daemon made them in the
meantime; a failed batch changes nothing, so it is re-read and retried. The shared chains go
once the last bridge's rules are removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from berth.errors import Unavailable
from berth.network._iptrules import Runner, run

log = logging.getLogger(__name__)

TABLE = "mangle"
STAGE_1 = "BERTH-ISOLATION-1"
STAGE_2 = "BERTH-ISOLATION-2"
HOOK = f'-A FORWARD -m comment --comment "berth network isolation" -j {STAGE_1}'
DNAT_RETURN = f"-A {STAGE_1} -m conntrack --ctstate DNAT -j RETURN"
_ATTEMPTS = 3


@dataclass(frozen=True)
class IsolatedBridge:
    name: str  # the Linux bridge
    subnet: str
    internal: bool = False


def bridge_rules(bridge: IsolatedBridge) -> list[tuple[str, bool]]:
    """The bridge's rules as `iptables -S` prints them, each with "insert first" or not."""
    br, subnet = bridge.name, bridge.subnet
    rules = []
    if bridge.internal:
        rules += [(f"-A {STAGE_1} ! -d {subnet} -i {br} -j DROP", True),
                  (f"-A {STAGE_1} ! -s {subnet} -o {br} -j DROP", True)]
    rules += [(f"-A {STAGE_1} -i {br} ! -o {br} -j {STAGE_2}", False),
              (f"-A {STAGE_2} -o {br} -j DROP", False)]
    return rules


def add_plan(current: Sequence[str], bridges: Sequence[IsolatedBridge]) -> list[str]:
    """Restore lines adding what is missing for `bridges` (chains, hook, their rules); [] if none."""
    present = set(current)
    lines = []
    if f"-N {STAGE_1}" not in present:
        lines += [f"-N {STAGE_1}", DNAT_RETURN]
    if f"-N {STAGE_2}" not in present:
        lines.append(f"-N {STAGE_2}")
    for bridge in bridges:
        for rule, first in bridge_rules(bridge):
            if rule not in present and rule not in lines:
                lines.append(_insert_first(rule) if first else rule)
    if HOOK not in present:
        lines.append(_insert_first(HOOK))
    return lines


def remove_plan(current: Sequence[str], bridges: Sequence[IsolatedBridge]) -> list[str]:
    """Restore lines deleting the rules of `bridges`, and the chains once no bridge is left."""
    present = set(current)
    going = {rule for bridge in bridges for rule, _ in bridge_rules(bridge) if rule in present}
    lines = ["-D " + rule[3:] for rule in sorted(going)]
    kept = [r for r in current if r.startswith((f"-A {STAGE_1} ", f"-A {STAGE_2} "))
            and r not in going and r != DNAT_RETURN]
    if kept:
        return lines
    if HOOK in present:
        lines.append("-D " + HOOK[3:])
    for chain in (STAGE_1, STAGE_2):
        if f"-N {chain}" in present:
            lines.append(f"-F {chain}")
    for chain in (STAGE_1, STAGE_2):
        if f"-N {chain}" in present:
            lines.append(f"-X {chain}")
    return lines


def _insert_first(rule: str) -> str:
    chain = rule.split()[1]
    return rule.replace(f"-A {chain} ", f"-I {chain} 1 ", 1)


class NetworkIsolation:
    """Add and remove bridges' isolation rules (blocking, thread-safe, idempotent).

    Lifecycle: ensure([bridges]) at daemon start and network create; remove([bridge]) when a
    network is removed; remove(every bridge of the daemon) at destroy.
    """

    def __init__(self, *, runner: Runner = run) -> None:
        self._run = runner
        self._lock = threading.Lock()

    def ensure(self, bridges: Sequence[IsolatedBridge]) -> None:
        """Raises Unavailable when iptables keeps failing."""
        self._apply(lambda current: add_plan(current, bridges), "add")

    def remove(self, bridges: Sequence[IsolatedBridge]) -> None:
        """Raises Unavailable when iptables keeps failing."""
        self._apply(lambda current: remove_plan(current, bridges), "remove")

    def _apply(self, plan: Callable[[list[str]], list[str]], what: str) -> None:
        error = ""
        with self._lock:
            for _ in range(_ATTEMPTS):
                lines = plan(self._current())
                if not lines:
                    return
                batch = "\n".join([f"*{TABLE}", *lines, "COMMIT", ""])
                proc = self._run(["iptables-restore", "-w", "--noflush"], batch)
                if proc.returncode == 0:
                    return
                error = (proc.stderr or proc.stdout).strip()
                log.debug("isolation %s batch failed (%s), re-reading the rules", what, error)
        raise Unavailable(f"network isolation rules ({what}): {error}")

    def _current(self) -> list[str]:
        proc = self._run(["iptables", "-w", "-t", TABLE, "-S"], "")
        if proc.returncode != 0:
            raise Unavailable(f"iptables -t {TABLE} -S: {proc.stderr.strip()}")
        return proc.stdout.splitlines()
