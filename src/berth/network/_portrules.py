"""Published ports as iptables rules written in one `iptables-restore --noflush` batch.

The portmap plugin does the same job with one `iptables` execution per rule and check (≈ 30 ms
ADD, ≈ 100 ms DEL with one port on the nft backend, host-notes §6.5). This module writes the
same rules, in portmap 1.1.1's exact form and chain names, so both can coexist on a host and the
shared chains stay interchangeable:

    nat PREROUTING, OUTPUT  -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT      (shared)
    nat POSTROUTING         -j CNI-HOSTPORT-MASQ: MASQUERADE marked packets (first rule,
                            else bridge's per-container "-d <subnet> -j ACCEPT" wins and
                            hairpin replies bypass the NAT)                             (shared)
    CNI-HOSTPORT-SETMARK    MARK 0x2000 (hairpin and localhost traffic must be SNATed)  (shared)
    CNI-HOSTPORT-DNAT       -p tcp --dports <ports> (comment names network and id) -j CNI-DN-<hash>
    CNI-DN-<hash>           per port: SETMARK from the container's subnet and from 127.0.0.1,
                            then DNAT to <container ip>:<container port>

and sets net.ipv4.conf.<bridge>.route_localnet=1, which lets 127.0.0.1:<host port> reach the
container without a userland proxy (the portmap "snat" option, host-notes §6.3).

ADD is one exec; DEL is one exec too (a second, after an `iptables-save`, only when the first
fails because something is already gone). The shared chains are created on first use only
(portmap would re-check them on every ADD). Differences from portmap: no conntrack flush of UDP
host ports at ADD, and IPv6 host addresses are skipped (containers here are IPv4 only, and
portmap skips mismatched families too).
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from berth.errors import Unavailable
from berth.network._cniconfig import chain_name
from berth.network._types import PortMapping

log = logging.getLogger(__name__)

DNAT = "CNI-HOSTPORT-DNAT"
SETMARK = "CNI-HOSTPORT-SETMARK"
MASQ = "CNI-HOSTPORT-MASQ"
MARK = "0x2000/0x2000"
MULTIPORT_MAX = 15  # the multiport match takes at most 15 ports

# The rules portmap creates once per host, in iptables-save form. POSTROUTING's is inserted
# first (portmap's prependEntry), the others appended.
SHARED_RULES: tuple[tuple[str, str], ...] = (
    (SETMARK, f'-A {SETMARK} -m comment --comment "CNI portfwd masquerade mark" '
              f"-j MARK --set-xmark {MARK}"),
    (MASQ, f"-A {MASQ} -m mark --mark {MARK} -j MASQUERADE"),
    ("POSTROUTING", f'-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" '
                    f"-j {MASQ}"),
    ("PREROUTING", f"-A PREROUTING -m addrtype --dst-type LOCAL -j {DNAT}"),
    ("OUTPUT", f"-A OUTPUT -m addrtype --dst-type LOCAL -j {DNAT}"),
)  # fmt: skip
SHARED_CHAINS = (SETMARK, MASQ, DNAT)

Runner = Callable[[Sequence[str], str], subprocess.CompletedProcess[str]]


def run(argv: Sequence[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real runner: one exec, stdin in, output captured."""
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(list(argv), 1, "", str(err))


# -- pure rule generation ----------------------------------------------------------------------


def dnat_chain(network: str, cni_id: str) -> str:
    """The per-container chain, named exactly as portmap names it."""
    return chain_name("CNI-DN-", network, cni_id)


def publishable(ports: Sequence[PortMapping]) -> list[PortMapping]:
    """The mappings that get rules: IPv4 (or any-address) host IPs with a host port."""
    kept = []
    for p in ports:
        if p.host_port <= 0:
            continue
        if p.host_ip and ipaddress.ip_address(p.host_ip).version != 4:
            continue
        kept.append(p)
    return kept


def jump_rules(network: str, cni_id: str, ports: Sequence[PortMapping]) -> list[str]:
    """The CNI-HOSTPORT-DNAT rules sending the container's host ports to its chain."""
    chain = dnat_chain(network, cni_id)
    comment = _quote(f'dnat name: "{network}" id: "{cni_id}"')
    rules = []
    for proto in ("tcp", "udp"):
        dports = list(dict.fromkeys(p.host_port for p in ports if p.protocol == proto))
        for i in range(0, len(dports), MULTIPORT_MAX):
            chunk = ",".join(str(port) for port in dports[i : i + MULTIPORT_MAX])
            rules.append(
                f"-A {DNAT} -p {proto} -m comment --comment {comment} "
                f"-m multiport --dports {chunk} -j {chain}"
            )
    return rules


def chain_rules(chain: str, container_ip: str, subnet: str, ports: Sequence[PortMapping]) -> list[str]:
    """The rules of the per-container chain (portmap's order and matches)."""
    rules = []
    for p in ports:
        dst = f"-d {p.host_ip}/32 " if p.host_ip else ""
        match = f"-p {p.protocol} -m {p.protocol} --dport {p.host_port}"
        rules += [
            f"-A {chain} -s {subnet} {dst}{match} -j {SETMARK}",  # hairpin
            f"-A {chain} -s 127.0.0.1/32 {dst}{match} -j {SETMARK}",  # localhost
            f"-A {chain} {dst}{match} -j DNAT --to-destination {container_ip}:{p.container_port}",
        ]
    return rules


def add_batch(network: str, cni_id: str, ip_cidr: str, ports: Sequence[PortMapping]) -> str:
    """iptables-restore input adding one container's rules (its chain is reset first)."""
    interface = ipaddress.ip_interface(ip_cidr)
    chain = dnat_chain(network, cni_id)
    lines = ["*nat", f":{chain} - [0:0]"]
    lines += chain_rules(chain, str(interface.ip), str(interface.network), ports)
    lines += jump_rules(network, cni_id, ports)
    return "\n".join([*lines, "COMMIT", ""])


def delete_batch(chain: str, jumps: Sequence[str]) -> str:
    """iptables-restore input removing `jumps` (rules in -A form) and then `chain`."""
    lines = ["*nat", *("-D" + rule[2:] for rule in jumps), f":{chain} - [0:0]", f"-X {chain}"]
    return "\n".join([*lines, "COMMIT", ""])


def existing_jumps(saved: str, chain: str) -> list[str]:
    """Rules in `iptables-save -t nat` output that jump to `chain` (from any chain)."""
    return [
        line for line in saved.splitlines()
        if line.startswith("-A ") and (line.endswith(f" -j {chain}") or f" -j {chain} " in line)
    ]  # fmt: skip


def missing_shared(saved: str) -> tuple[list[str], list[str]]:
    """(chains to create, rules to append) so the shared portmap chains are complete."""
    present = set(saved.splitlines())
    chains = {line.split()[0][1:] for line in present if line.startswith(":")}
    return (
        [c for c in SHARED_CHAINS if c not in chains],
        [_add_form(chain, rule) for chain, rule in SHARED_RULES if rule not in present],
    )


def _add_form(chain: str, rule: str) -> str:
    return rule.replace("-A POSTROUTING ", "-I POSTROUTING 1 ", 1) if chain == "POSTROUTING" else rule


def _quote(text: str) -> str:
    """Quote a comment the way iptables-save prints it (and iptables-restore reads it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- effects -------------------------------------------------------------------------------------


class PortRules:
    """Adds and removes one container's published-port rules; thread-safe (no shared state
    beyond the kernel's tables, which iptables-restore updates atomically)."""

    def __init__(self, network: str, bridge: str, runner: Runner = run,
                 sysctl_dir: Path = Path("/proc/sys/net/ipv4/conf")) -> None:  # fmt: skip
        self._network = network
        self._bridge = bridge
        self._run = runner
        self._sysctl_dir = sysctl_dir

    def add(self, cni_id: str, ip_cidr: str, ports: Sequence[PortMapping]) -> None:
        """Install the DNAT rules of `ports` for the container at `ip_cidr` (e.g. 10.88.0.2/16).

        Raises:
            Unavailable: iptables refused the rules (nothing of them is left: restore is atomic).
        """
        ports = publishable(ports)
        if not ports:
            return
        self._route_localnet()
        batch = add_batch(self._network, cni_id, ip_cidr, ports)
        result = self._restore(batch)
        if result.returncode != 0:
            # Usually the shared chains are missing (first publish on this host, or removed
            # by remove_shared_chains while no port was published): create them, retry once.
            self._ensure_shared()
            result = self._restore(batch)
        if result.returncode != 0:
            raise Unavailable(f"publishing ports: iptables-restore: {result.stderr.strip()}")

    def remove(self, cni_id: str, ports: Sequence[PortMapping]) -> None:
        """Remove the container's DNAT rules and chain; idempotent.

        Raises:
            Unavailable: iptables failed to remove rules that exist.
        """
        chain = dnat_chain(self._network, cni_id)
        ports = publishable(ports)
        if ports and self._restore(delete_batch(chain, jump_rules(self._network, cni_id, ports))).returncode == 0:
            return
        saved = self._save()
        jumps = existing_jumps(saved, chain)
        if not jumps and f":{chain} " not in saved:
            return  # gone already
        result = self._restore(delete_batch(chain, jumps))
        if result.returncode != 0:
            raise Unavailable(f"removing published ports: iptables-restore: {result.stderr.strip()}")

    def _ensure_shared(self) -> None:
        chains, rules = missing_shared(self._save())
        for chain in chains:
            result = self._run(["iptables", "-w", "-t", "nat", "-N", chain], "")
            if result.returncode != 0 and "exists" not in result.stderr:
                log.warning("iptables -t nat -N %s: %s", chain, result.stderr.strip())
        if rules:
            # Appending never flushes (chains are not declared here), so a concurrent creator
            # at worst leaves a duplicate hook, which is harmless.
            result = self._restore("\n".join(["*nat", *rules, "COMMIT", ""]))
            if result.returncode != 0:
                log.warning("adding the shared port chains: %s", result.stderr.strip())

    def _route_localnet(self) -> None:
        try:
            (self._sysctl_dir / self._bridge / "route_localnet").write_text("1\n")
        except OSError as err:
            log.warning("cannot set route_localnet on %s: %s", self._bridge, err)

    def _restore(self, batch: str) -> subprocess.CompletedProcess[str]:
        return self._run(["iptables-restore", "--noflush", "-w"], batch)

    def _save(self) -> str:
        result = self._run(["iptables-save", "-t", "nat"], "")
        if result.returncode != 0:
            raise Unavailable(f"iptables-save: {result.stderr.strip()}")
        return result.stdout
