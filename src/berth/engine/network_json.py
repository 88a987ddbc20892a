"""Docker JSON shapes for networks (`GET /networks`), and the endpoint a container record keeps. Pure.

A container's own `NetworkSettings.Networks` is rendered at the API edge from its typed view
(berth.engine.containers.ContainerView, berth.api.docker.container_json)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from berth.network import Endpoint, UserNetwork

BUILTIN_DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}


def endpoint_record(e: Endpoint) -> dict[str, Any]:
    """What the container record keeps of an endpoint (container.network["endpoints"][name])."""
    return {"network_id": e.network_id, "ip_address": e.ip_address, "prefix_len": e.prefix_len,
            "gateway": e.gateway, "mac_address": e.mac_address, "aliases": list(e.aliases),
            "ifname": e.ifname}


def network_json(net: UserNetwork, members: Iterable[Endpoint]) -> dict[str, Any]:
    """`GET /networks/{id}` for a user network."""
    ipam_config: dict[str, Any] = {"Subnet": net.subnet, "Gateway": net.gateway}
    if net.ip_range:
        ipam_config["IPRange"] = net.ip_range
    return {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local", "Driver": "bridge",
        "EnableIPv4": True, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": net.ipam_options or None, "Config": [ipam_config]},
        "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": {e.container_id: _member(e) for e in members},
        "Options": dict(net.options), "Labels": dict(net.labels),
    }


def builtin_json(name: str, network_id: str, created: str, *, subnet: str = "", gateway: str = "",
                 bridge: str = "", members: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """`bridge`, `host` and `none`, as Docker shows its predefined networks."""
    config = [{"Subnet": subnet, "Gateway": gateway}] if subnet else []
    options = {}
    if name == "bridge":
        options = {"com.docker.network.bridge.default_bridge": "true",
                   "com.docker.network.bridge.enable_icc": "true",
                   "com.docker.network.bridge.enable_ip_masquerade": "true",
                   "com.docker.network.bridge.name": bridge, "com.docker.network.driver.mtu": "1500"}
    return {
        "Name": name, "Id": network_id, "Created": created, "Scope": "local",
        "Driver": BUILTIN_DRIVERS[name], "EnableIPv4": True, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Containers": dict(members or {}), "Options": options, "Labels": {},
    }


def member_json(name: str, endpoint_id: str, mac: str, ip: str, prefix_len: int) -> dict[str, Any]:
    return {"Name": name, "EndpointID": endpoint_id, "MacAddress": mac,
            "IPv4Address": f"{ip}/{prefix_len}" if ip else "", "IPv6Address": ""}


def _member(e: Endpoint) -> dict[str, Any]:
    return member_json(e.name, e.container_id, e.mac_address, e.ip_address, e.prefix_len)
