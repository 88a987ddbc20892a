"""User-defined networks: the record, subnet choice and the CNI list of each; pure functions.

Each user network is its own Linux bridge `br-<id[:12]>` (Docker's naming) with its own subnet,
wired by the same plugins as the default bridge. A container's first network gets the default
route; further networks (`docker network connect`) only their subnet's route. `--internal`
networks get neither a default route nor masquerading.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.errors import Conflict, InvalidArgument
from berth.network._cniconfig import CNI_VERSION, JSON

# Docker's default address pools, minus 172.17/16 (docker0's): first /16s, then /20s.
_POOLS = [f"172.{n}.0.0/16" for n in range(18, 32)] + [f"192.168.{n}.0/20" for n in range(0, 256, 16)]


@dataclass(frozen=True)
class UserNetwork:
    id: str  # 64 hex
    name: str
    subnet: str
    gateway: str
    created: str
    internal: bool = False
    attachable: bool = False
    ip_range: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam_options: dict[str, str] = field(default_factory=dict)
    ipam_config_given: bool = False  # the user passed --subnet (inspect shows what was asked)

    @property
    def bridge(self) -> str:
        return "br-" + self.id[:12]

    @property
    def cni_name(self) -> str:
        # Also names host-local's lease directory and seeds the plugins' chain names.
        return "br-" + self.id[:12]


def pick_subnet(taken: Iterable[str]) -> str:
    """The first pool that overlaps none of `taken` (other networks and host routes).

    Raises:
        Conflict: every pool is in use (Docker's wording).
    """
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    for pool in _POOLS:
        net = ipaddress.ip_network(pool)
        if not any(net.overlaps(u) for u in used):
            return pool
    raise Conflict("all predefined address pools have been fully subnetted")


def check_subnet(subnet: str, gateway: str, ip_range: str, taken: Iterable[str]) -> tuple[str, str]:
    """Validate a user-given subnet (and gateway); returns (subnet, gateway) normalised.

    Raises:
        InvalidArgument: malformed values, or a gateway/range outside the subnet.
        Conflict: the subnet overlaps another network ("Pool overlaps ...", Docker's wording).
    """
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError as err:
        raise InvalidArgument(f"invalid subnet {subnet}: {err}") from err
    if net.version != 4:
        raise InvalidArgument("only IPv4 subnets are supported")
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {subnet} is too small")
    for other in taken:
        if net.overlaps(ipaddress.ip_network(other, strict=False)):
            raise Conflict("invalid pool request: Pool overlaps with other one on this address space")
    gw = gateway or str(next(net.hosts()))
    try:
        if ipaddress.ip_address(gw) not in net:
            raise InvalidArgument(f"no matching subnet for gateway {gw}")
    except ValueError as err:
        raise InvalidArgument(f"invalid gateway address {gw}") from err
    if ip_range and not ipaddress.ip_network(ip_range, strict=False).subnet_of(net):  # type: ignore[arg-type]
        raise InvalidArgument(f"no matching subnet for range {ip_range}")
    return str(net), gw


def user_conflist(net: UserNetwork, ipam_dir: Path, *, primary: bool, with_ports: bool) -> JSON:
    """The CNI list for one container interface on `net`."""
    span: dict[str, Any] = {"subnet": net.subnet, "gateway": net.gateway}
    if net.ip_range:
        rng = ipaddress.ip_network(net.ip_range, strict=False)
        hosts = list(rng.hosts()) or [rng.network_address]
        span.update(rangeStart=str(hosts[0]), rangeEnd=str(hosts[-1]))
    default_route = primary and not net.internal
    plugins: list[JSON] = [{
        "type": "bridge", "bridge": net.bridge, "isGateway": True, "ipMasq": not net.internal,
        "hairpinMode": True, "capabilities": {"ips": True},  # --ip: host-local takes runtimeConfig.ips
        "ipam": {"type": "host-local", "dataDir": str(ipam_dir), "ranges": [[span]],
                 "routes": [{"dst": "0.0.0.0/0"}] if default_route else []},
    }]
    if with_ports and not net.internal:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True})
    plugins.append({"type": "firewall", "backend": "iptables"})
    return {"cniVersion": CNI_VERSION, "name": net.cni_name, "plugins": plugins}
