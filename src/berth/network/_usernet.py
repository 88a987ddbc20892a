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
    """Validate a user-given subnet (and gateway, range) as dockerd does; returns (subnet, gateway).

    Like moby's ValidateIPAM, every malformed value is reported at once under "invalid network
    config:" (a subnet or range with host bits set included). Then, like its default IPAM
    allocator, the subnet may not overlap `taken`, the pools of this daemon's own networks
    (the default bridge's among them): a user-given subnet is never compared with the host's
    routes, which only steer the automatic choice (`pick_subnet`).

    Raises:
        InvalidArgument: malformed values, or a gateway/range outside the subnet.
        Conflict: the subnet overlaps another network ("Pool overlaps ...", Docker's wording).
    """
    net = _parse_network(subnet)
    if net is None:
        raise InvalidArgument(f"invalid network config:\ninvalid subnet {subnet}: invalid CIDR block notation")
    if net.version != 4:
        raise InvalidArgument("only IPv4 subnets are supported")
    errors: list[str] = []
    masked = ipaddress.ip_network(subnet, strict=False)
    if str(masked) != subnet:
        errors.append(f"invalid subnet {subnet}: it should be {masked}")
    errors += _range_errors(ip_range, masked)
    if gateway:
        try:
            gw_addr = ipaddress.ip_address(gateway)
        except ValueError:
            errors.append(f"invalid gateway {gateway}: invalid address")
        else:
            if gw_addr.version != 4:
                errors.append(f"invalid gateway {gateway}: parent subnet is an IPv4 block")
            elif gw_addr not in masked:
                errors.append(f"invalid gateway {gateway}: parent subnet {masked} doesn't contain this address")
    if errors:
        raise InvalidArgument("invalid network config:\n" + _join(errors))
    if masked.prefixlen > 30:
        raise InvalidArgument(f"subnet {subnet} is too small")
    for other in taken:
        if masked.overlaps(ipaddress.ip_network(other, strict=False)):
            raise Conflict("invalid pool request: Pool overlaps with other one on this address space")
    return str(masked), gateway or str(next(masked.hosts()))


def _parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """`a.b.c.d/n` with host bits allowed (checked apart); None unless it is CIDR notation."""
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _range_errors(ip_range: str, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """moby's validateIPRange, message for message."""
    if not ip_range:
        return []
    rng = _parse_network(ip_range)
    if rng is None:
        return [f"invalid ip-range {ip_range}: invalid CIDR block notation"]
    if rng.version != subnet.version:
        return [f"invalid ip-range {ip_range}: parent subnet is an IPv{subnet.version} block"]
    errors = []
    if rng.prefixlen < subnet.prefixlen:
        errors.append(f"invalid ip-range {ip_range}: CIDR block is bigger than its parent subnet {subnet}")
    if str(rng) != ip_range:
        errors.append(f"invalid ip-range {ip_range}: it should be {rng}")
    if not subnet.overlaps(rng):
        errors.append(f"invalid ip-range {ip_range}: parent subnet {subnet} doesn't contain ip-range")
    return errors


def _join(errors: list[str]) -> str:
    """moby's multierror.Join: one error as is, several as a `* ` list."""
    if len(errors) == 1:
        return errors[0]
    return "* " + "\n* ".join(errors)


def user_conflist(net: UserNetwork, ipam_dir: Path, *, primary: bool, with_ports: bool,
                  batch_rules: bool = False) -> JSON:
    """The CNI list for one container interface on `net`.

    `batch_rules`: bridge alone, without its ipMasq rules: _iptrules.py writes those, the
    firewall's and portmap's in one iptables-restore instead (as for the default bridge)."""
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
    if batch_rules:
        plugins[0]["ipMasq"] = False
        return {"cniVersion": CNI_VERSION, "name": net.cni_name, "plugins": plugins}
    if with_ports and not net.internal:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True})
    plugins.append({"type": "firewall", "backend": "iptables"})
    return {"cniVersion": CNI_VERSION, "name": net.cni_name, "plugins": plugins}
