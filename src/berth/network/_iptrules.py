"""A container's iptables rules written in one `iptables-restore --noflush` batch.

The CNI plugins write these rules with one `iptables` execution per rule and per check: on the
nft backend that is ≈ 50 ms per ADD and ≈ 100 ms per DEL (≈ 200 ms with a published port,
host-notes §6.5), and most of it is CPU the next container start competes with. With
`iptables_rules="batch"` the manager runs only the bridge plugin (veth, IPAM, routes; its
`ipMasq` off) and this module writes what bridge's ipMasq, firewall and portmap would write, in
their exact form, chain names and positions, so plugin-made and batch-made containers can live on
one host and share the same shared chains:

    nat     POSTROUTING -s <ip>/32 (comment) -j CNI-<hash>          bridge ipMasq
            CNI-<hash>: -d <subnet> ACCEPT; ! -d 224.0.0.0/4 MASQUERADE
    filter  CNI-FORWARD -d <ip>/32 RELATED,ESTABLISHED ACCEPT;       firewall
                        -s <ip>/32 ACCEPT
    nat     CNI-HOSTPORT-DNAT -p tcp --dports <ports> -j CNI-DN-<hash>   portmap (snat)
            CNI-DN-<hash>: per port SETMARK from the subnet (hairpin) and from 127.0.0.1,
                           then DNAT to <ip>:<container port>

plus, with published ports, net.ipv4.conf.<bridge>.route_localnet=1 (127.0.0.1:<host port>
reaches the container without a userland proxy, host-notes §6.3). Shared chains and hooks:

    nat     PREROUTING, OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT   (appended)
            POSTROUTING -j CNI-HOSTPORT-MASQ (inserted first, else the per-container ACCEPT of
            the subnet wins and hairpin replies bypass the NAT); CNI-HOSTPORT-MASQ MASQUERADEs
            packets CNI-HOSTPORT-SETMARK marked 0x2000
    filter  FORWARD -j CNI-FORWARD (inserted first); CNI-FORWARD first jumps to CNI-ADMIN

ADD is one exec; DEL is one exec (plus an `iptables-save` and a second restore only when the
first fails because something is gone already). The shared chains are made on the retry path,
so normally never. Not done (portmap 1.1.1 does): the conntrack flush of UDP host ports at ADD;
IPv6 host addresses are skipped (containers here are IPv4 only; portmap skips mismatches too).
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from berth.errors import Unavailable
from berth.network._cniconfig import chain_name
from berth.network._types import PortMapping

log = logging.getLogger(__name__)

DNAT = "CNI-HOSTPORT-DNAT"
SETMARK = "CNI-HOSTPORT-SETMARK"
MASQ = "CNI-HOSTPORT-MASQ"
FORWARD = "CNI-FORWARD"
ADMIN = "CNI-ADMIN"
MARK = "0x2000/0x2000"
MULTIPORT_MAX = 15  # the multiport match takes at most 15 ports


@dataclass(frozen=True)
class SharedRule:
    table: str
    saved: str  # the rule as iptables-save prints it
    insert_first: bool = False  # "-I <chain> 1" instead of "-A"

    @property
    def chain(self) -> str:
        return self.saved.split()[1]

    def add_form(self) -> str:
        if not self.insert_first:
            return self.saved
        return self.saved.replace(f"-A {self.chain} ", f"-I {self.chain} 1 ", 1)


SHARED_CHAINS = {"nat": (SETMARK, MASQ, DNAT), "filter": (FORWARD, ADMIN)}
SHARED_RULES: tuple[SharedRule, ...] = (
    SharedRule("nat", f'-A {SETMARK} -m comment --comment "CNI portfwd masquerade mark" '
                      f"-j MARK --set-xmark {MARK}"),
    SharedRule("nat", f"-A {MASQ} -m mark --mark {MARK} -j MASQUERADE"),
    SharedRule("nat", f'-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" '
                      f"-j {MASQ}", insert_first=True),
    SharedRule("nat", f"-A PREROUTING -m addrtype --dst-type LOCAL -j {DNAT}"),
    SharedRule("nat", f"-A OUTPUT -m addrtype --dst-type LOCAL -j {DNAT}"),
    SharedRule("filter", f'-A FORWARD -m comment --comment "CNI firewall plugin rules" -j {FORWARD}',
               insert_first=True),
    SharedRule("filter", f'-A {FORWARD} -m comment --comment "CNI firewall plugin admin overrides" '
                         f"-j {ADMIN}", insert_first=True),
)  # fmt: skip

Runner = Callable[[Sequence[str], str], subprocess.CompletedProcess[str]]


def run(argv: Sequence[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real runner: one exec, stdin in, output captured."""
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(list(argv), 1, "", str(err))


# -- pure rule generation ----------------------------------------------------------------------


def masq_chain(network: str, cni_id: str) -> str:
    """bridge ipMasq's per-container chain name."""
    return chain_name("CNI-", network, cni_id)


def dnat_chain(network: str, cni_id: str) -> str:
    """portmap's per-container chain name."""
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


def _quote(text: str) -> str:
    """Quote a comment the way iptables-save prints it (and iptables-restore reads it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class ContainerRuleSet:
    """Every per-container rule, in iptables-save form, per table; plus the chains it owns."""

    network: str
    cni_id: str
    ip_cidr: str  # e.g. 10.88.0.2/16
    ports: tuple[PortMapping, ...]
    masquerade: bool = True  # bridge's ipMasq (off on an --internal user network)

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.ip_cidr).ip)

    @property
    def subnet(self) -> str:
        return str(ipaddress.ip_interface(self.ip_cidr).network)

    def chains(self) -> list[str]:
        """nat chains this container owns (declared, i.e. created or reset, on ADD)."""
        owned = [masq_chain(self.network, self.cni_id)] if self.masquerade else []
        if self.ports:
            owned.append(dnat_chain(self.network, self.cni_id))
        return owned

    def chain_rules(self) -> list[str]:
        """Rules inside the owned chains (they go with their chain)."""
        masq = masq_chain(self.network, self.cni_id)
        tag = _quote(f'name: "{self.network}" id: "{self.cni_id}"')
        rules = [
            f"-A {masq} -d {self.subnet} -m comment --comment {tag} -j ACCEPT",
            f"-A {masq} ! -d 224.0.0.0/4 -m comment --comment {tag} -j MASQUERADE",
        ] if self.masquerade else []
        chain = dnat_chain(self.network, self.cni_id)
        for p in self.ports:
            dst = f"-d {p.host_ip}/32 " if p.host_ip else ""
            match = f"-p {p.protocol} -m {p.protocol} --dport {p.host_port}"
            rules += [
                f"-A {chain} -s {self.subnet} {dst}{match} -j {SETMARK}",  # hairpin
                f"-A {chain} -s 127.0.0.1/32 {dst}{match} -j {SETMARK}",  # localhost
                f"-A {chain} {dst}{match} -j DNAT --to-destination {self.ip}:{p.container_port}",
            ]
        return rules

    def hook_rules(self) -> dict[str, list[str]]:
        """Rules in shared or built-in chains pointing at this container (deleted one by one)."""
        tag = _quote(f'name: "{self.network}" id: "{self.cni_id}"')
        nat = [f"-A POSTROUTING -s {self.ip}/32 -m comment --comment {tag} -j {masq_chain(self.network, self.cni_id)}"
               ] if self.masquerade else []
        dnat_tag = _quote(f'dnat name: "{self.network}" id: "{self.cni_id}"')
        for proto in ("tcp", "udp"):
            dports = list(dict.fromkeys(p.host_port for p in self.ports if p.protocol == proto))
            for i in range(0, len(dports), MULTIPORT_MAX):
                chunk = ",".join(str(port) for port in dports[i : i + MULTIPORT_MAX])
                nat.append(f"-A {DNAT} -p {proto} -m comment --comment {dnat_tag} "
                           f"-m multiport --dports {chunk} -j {dnat_chain(self.network, self.cni_id)}")  # fmt: skip
        forward = [
            f"-A {FORWARD} -d {self.ip}/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A {FORWARD} -s {self.ip}/32 -j ACCEPT",
        ]
        return {"nat": nat, "filter": forward}


def add_batch(rules: ContainerRuleSet, *, ports_only: bool = False) -> str:
    """iptables-restore input adding the container's rules (its own chains are reset first).

    `ports_only`: just the port chain and its jumps (a claimed spare has the rest already)."""
    hooks = rules.hook_rules()
    chains, body, nat_hooks = rules.chains(), rules.chain_rules(), hooks["nat"]
    if ports_only:
        dn = dnat_chain(rules.network, rules.cni_id)
        chains = [dn] if rules.ports else []
        body = [r for r in body if r.startswith(f"-A {dn} ")]
        nat_hooks = [r for r in nat_hooks if r.endswith(f" -j {dn}")]
    nat = ["*nat", *(f":{c} - [0:0]" for c in chains), *body, *nat_hooks, "COMMIT"]
    if ports_only:
        return "\n".join([*nat, ""])
    return "\n".join([*nat, "*filter", *hooks["filter"], "COMMIT", ""])


def delete_batch(hooks: Mapping[str, Sequence[str]], chains: Sequence[str]) -> str:
    """iptables-restore input deleting `hooks` (rules in -A form, per table), then the nat
    `chains` (declared first: a declaration resets a chain, or creates it, so -X never fails)."""
    nat = ["*nat", *("-D" + r[2:] for r in hooks.get("nat", ())),
           *(f":{c} - [0:0]" for c in chains), *(f"-X {c}" for c in chains), "COMMIT"]  # fmt: skip
    lines = nat + ["*filter", *("-D" + r[2:] for r in hooks.get("filter", ())), "COMMIT"]
    return "\n".join([*lines, ""])


def present(saved: str, rules: ContainerRuleSet) -> tuple[dict[str, list[str]], list[str]]:
    """From `iptables-save` output (both tables): the container's hook rules and chains that
    exist now. Hooks are found by what they jump to (nat) or by exact text (filter)."""
    table = ""
    lines: dict[str, set[str]] = {"nat": set(), "filter": set()}
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif table in lines:
            lines[table].add(line)
    owned = rules.chains()
    declared = [c for c in owned if any(line.startswith(f":{c} ") for line in lines["nat"])]
    nat_hooks = [
        line for line in sorted(lines["nat"])
        if line.startswith("-A ") and line.split()[1] not in owned
        and any(line.endswith(f" -j {c}") for c in owned)
    ]  # fmt: skip
    forward = [rule for rule in rules.hook_rules()["filter"] if rule in lines["filter"]]
    return {"nat": nat_hooks, "filter": forward}, declared


def missing_shared(saved: str, *, with_ports: bool) -> tuple[list[tuple[str, str]], list[SharedRule]]:
    """([(table, chain) to create], [shared rules to add]) from `iptables-save` output."""
    table = ""
    lines: dict[str, set[str]] = {"nat": set(), "filter": set()}
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif table in lines:
            lines[table].add(line)
    tables = ("nat", "filter") if with_ports else ("filter",)
    chains = [
        (t, c) for t in tables for c in SHARED_CHAINS[t]
        if not any(line.startswith(f":{c} ") for line in lines[t])
    ]  # fmt: skip
    rules = [r for r in SHARED_RULES if r.table in tables and r.saved not in lines[r.table]]
    return chains, rules


# -- effects -------------------------------------------------------------------------------------


class ContainerRules:
    """Adds and removes one container's rules; thread-safe (iptables-restore is atomic)."""

    def __init__(self, network: str, bridge: str, runner: Runner = run,
                 sysctl_dir: Path = Path("/proc/sys/net/ipv4/conf")) -> None:  # fmt: skip
        self._network = network
        self._bridge = bridge
        self._run = runner
        self._sysctl_dir = sysctl_dir

    def rule_set(self, cni_id: str, ip_cidr: str, ports: Sequence[PortMapping],
                 masquerade: bool = True) -> ContainerRuleSet:
        return ContainerRuleSet(self._network, cni_id, ip_cidr, tuple(publishable(ports)), masquerade)

    def add(
        self, cni_id: str, ip_cidr: str, ports: Sequence[PortMapping], *, ports_only: bool = False,
        masquerade: bool = True,
    ) -> None:
        """Install the container's masquerade, forward and port rules (`ports_only`: the port
        rules alone, for a spare that got the rest when it was made).

        Raises:
            Unavailable: iptables refused them (nothing is left: a restore is all or nothing).
        """
        rules = self.rule_set(cni_id, ip_cidr, ports, masquerade)
        if ports_only and not rules.ports:
            return
        if rules.ports:
            self._route_localnet()
        batch = add_batch(rules, ports_only=ports_only)
        result = self._restore(batch)
        if result.returncode != 0:
            # Usually shared chains are missing (first container on this host, or they were
            # removed by remove_shared_chains meanwhile): create them and retry once.
            self._ensure_shared(with_ports=bool(rules.ports))
            result = self._restore(batch)
        if result.returncode != 0:
            raise Unavailable(f"iptables-restore of container rules: {result.stderr.strip()}")

    def remove(self, cni_id: str, ip_cidr: str, ports: Sequence[PortMapping], masquerade: bool = True) -> None:
        """Remove every rule and chain of the container; idempotent.

        Raises:
            Unavailable: iptables failed to remove rules that exist.
        """
        rules = self.rule_set(cni_id, ip_cidr, ports, masquerade)
        if self._restore(delete_batch(rules.hook_rules(), rules.chains())).returncode == 0:
            return
        # Remove what is really there: first the hooks, repeatedly, since one can exist twice
        # (iptables-save shows it twice, `present` once) and a chain still referenced cannot
        # go; then the chains. Each batch is atomic, so a failing one changes nothing.
        error = ""
        for _ in range(4):
            hooks, chains = present(self._save(), rules)
            if not hooks["nat"] and not hooks["filter"]:
                break
            error = self._restore(delete_batch(hooks, [])).stderr.strip()
        else:
            raise Unavailable(f"iptables-restore removing container rules: {error}")
        if chains:
            result = self._restore(delete_batch({}, chains))
            if result.returncode != 0:
                raise Unavailable(f"iptables-restore removing container chains: {result.stderr.strip()}")

    def _ensure_shared(self, *, with_ports: bool) -> None:
        chains, rules = missing_shared(self._save(), with_ports=with_ports)
        for table, chain in chains:
            # Never declared in a restore: that would flush a chain another process just made.
            result = self._run(["iptables", "-w", "-t", table, "-N", chain], "")
            if result.returncode != 0 and "exists" not in result.stderr:
                log.warning("iptables -t %s -N %s: %s", table, chain, result.stderr.strip())
        if rules:
            lines = []
            for table in ("nat", "filter"):
                mine = [r.add_form() for r in rules if r.table == table]
                if mine:
                    lines += [f"*{table}", *mine, "COMMIT"]
            # A concurrent creator at worst leaves a duplicate hook, which is harmless.
            result = self._restore("\n".join([*lines, ""]))
            if result.returncode != 0:
                log.warning("adding the shared CNI chains: %s", result.stderr.strip())

    def _route_localnet(self) -> None:
        try:
            (self._sysctl_dir / self._bridge / "route_localnet").write_text("1\n")
        except OSError as err:
            log.warning("cannot set route_localnet on %s: %s", self._bridge, err)

    def _restore(self, batch: str) -> subprocess.CompletedProcess[str]:
        return self._run(["iptables-restore", "--noflush", "-w"], batch)

    def _save(self) -> str:
        result = self._run(["iptables-save"], "")
        if result.returncode != 0:
            raise Unavailable(f"iptables-save: {result.stderr.strip()}")
        return result.stdout
