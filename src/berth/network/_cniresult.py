"""Read what a CNI ADD returned (result format 1.0.0); pure functions."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from berth.errors import Unavailable


@dataclass(frozen=True)
class Address:
    """The container's IPv4 address on the bridge."""

    ip: str
    prefix_len: int
    gateway: str
    mac: str


def container_address(result: dict[str, Any], ifname: str = "eth0") -> Address:
    """The first IPv4 address assigned to the container-side interface `ifname`.

    Raises:
        Unavailable: the result has no usable IPv4 address (a plugin misbehaved).
    """
    interfaces = result.get("interfaces") or []
    for entry in result.get("ips") or []:
        iface = _interface(interfaces, entry.get("interface"))
        if iface is not None and iface.get("name") != ifname:
            continue
        net = ipaddress.ip_interface(entry["address"])
        if net.version != 4:
            continue
        mac = iface.get("mac", "") if iface else ""
        return Address(str(net.ip), net.network.prefixlen, entry.get("gateway", ""), mac)
    raise Unavailable(f"CNI result has no IPv4 address for {ifname}")


def _interface(interfaces: list[dict[str, Any]], index: object) -> dict[str, Any] | None:
    if isinstance(index, int) and 0 <= index < len(interfaces):
        return interfaces[index]
    return None
