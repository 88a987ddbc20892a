"""Host-wide network objects outside any one container: the bridge link and shared CNI chains.

CNI DEL removes every per-container chain and rule, but by design leaves the chains the plugins
share between networks (host-notes §6.4):

    nat     PREROUTING/OUTPUT -> CNI-HOSTPORT-DNAT -> CNI-DN-<hash> (per container, portmap)
            POSTROUTING -> CNI-HOSTPORT-MASQ;  CNI-DN-* -> CNI-HOSTPORT-SETMARK
    filter  FORWARD -> CNI-FORWARD -> CNI-ADMIN (firewall)

`remove_shared_chains` removes them only once nothing on the host uses them any more.
"""

from __future__ import annotations

import logging
import shlex
import subprocess

log = logging.getLogger(__name__)

IPTABLES = "iptables"
NAT_SHARED = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ")
FILTER_SHARED = ("CNI-FORWARD", "CNI-ADMIN")


def delete_link(name: str) -> None:
    """Delete a network link; a missing link is fine."""
    proc = subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    if proc.returncode != 0 and b"Cannot find device" not in proc.stderr:
        log.warning("ip link del %s: %s", name, proc.stderr.decode(errors="replace").strip())


def remove_shared_chains() -> None:
    """Delete the shared CNI chains of both tables when no container rule uses them."""
    for table, plan in (
        ("nat", nat_removal_plan(_list_rules("nat"))),
        ("filter", filter_removal_plan(_list_rules("filter"))),
    ):
        for args in plan:
            _iptables(table, args)


def nat_removal_plan(rules: list[str]) -> list[list[str]]:
    """iptables argv (after `-t nat`) removing the portmap chains, or [] while any is in use.

    In use = CNI-HOSTPORT-DNAT still has rules, or any per-container CNI-DN-* chain exists.
    `rules` is the output of `iptables -t nat -S`, one line each.
    """
    chains = _chains(rules)
    if not any(c in chains for c in NAT_SHARED):
        return []
    if _rules_of(rules, "CNI-HOSTPORT-DNAT") or any(c.startswith("CNI-DN-") for c in chains):
        return []
    return _unhook_and_delete(rules, [c for c in NAT_SHARED if c in chains])


def filter_removal_plan(rules: list[str]) -> list[list[str]]:
    """Same for the firewall plugin's chains: CNI-FORWARD may only hold its jump to CNI-ADMIN,
    and CNI-ADMIN (the administrator's overrides) must be empty."""
    chains = _chains(rules)
    if not any(c in chains for c in FILTER_SHARED):
        return []
    forward = _rules_of(rules, "CNI-FORWARD")
    if any("-j CNI-ADMIN" not in rule for rule in forward) or _rules_of(rules, "CNI-ADMIN"):
        return []
    return _unhook_and_delete(rules, [c for c in FILTER_SHARED if c in chains])


def _unhook_and_delete(rules: list[str], doomed: list[str]) -> list[list[str]]:
    """Delete every rule jumping to a doomed chain, then flush and delete the chains."""
    plan = [
        ["-D", *shlex.split(rule)[1:]]
        for rule in rules
        if rule.startswith("-A ") and _jump_target(rule) in doomed
    ]
    plan += [["-F", chain] for chain in doomed]
    plan += [["-X", chain] for chain in doomed]
    return plan


def _chains(rules: list[str]) -> set[str]:
    return {line.split()[1] for line in rules if line.startswith("-N ")}


def _rules_of(rules: list[str], chain: str) -> list[str]:
    return [line for line in rules if line.startswith(f"-A {chain} ")]


def _jump_target(rule: str) -> str | None:
    words = shlex.split(rule)
    for flag in ("-j", "-g"):
        if flag in words[:-1]:
            return words[words.index(flag) + 1]
    return None


def _list_rules(table: str) -> list[str]:
    proc = subprocess.run(
        [IPTABLES, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        log.warning("iptables -t %s -S: %s", table, proc.stderr.strip())
        return []
    return proc.stdout.splitlines()


def _iptables(table: str, args: list[str]) -> None:
    proc = subprocess.run(
        [IPTABLES, "-w", "-t", table, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        log.warning("iptables -t %s %s: %s", table, shlex.join(args), proc.stderr.strip())
