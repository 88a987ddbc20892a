"""Docker JSON shapes for networks and for a container's `NetworkSettings.Networks`. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from berth.network import Endpoint, UserNetwork
from berth.types.container import EndpointIPAMConfig, EndpointSettings

if TYPE_CHECKING:  # the containers package imports this module
    from berth.engine.containers import Container

BUILTIN_DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}


def endpoint_record(e: Endpoint) -> dict[str, Any]:
    """What the container record keeps of an endpoint (container.network["endpoints"][name])."""
    return {"network_id": e.network_id, "ip_address": e.ip_address, "prefix_len": e.prefix_len,
            "gateway": e.gateway, "mac_address": e.mac_address, "aliases": list(e.aliases),
            "ifname": e.ifname}


def ipam_json(ipam: EndpointIPAMConfig | None) -> dict[str, Any] | None:
    """An endpoint's IPAMConfig as given; empty fields left out (Go's omitempty)."""
    if ipam is None:
        return None
    fields = {"IPv4Address": ipam.ipv4_address, "IPv6Address": ipam.ipv6_address,
              "LinkLocalIPs": list(ipam.link_local_ips)}
    return {key: value for key, value in fields.items() if value}


def endpoint_settings(*, network_id: str, aliases: list[str] | None, dns_names: list[str] | None,
                      ep: Mapping[str, Any] | None, container_id: str,
                      config: EndpointSettings | None = None) -> dict[str, Any]:
    """One `NetworkSettings.Networks` entry (empty addresses while not running)."""
    ep = ep or {}
    config = config or EndpointSettings()
    return {
        "IPAMConfig": ipam_json(config.ipam_config), "Links": None if config.links is None else list(config.links),
        "Aliases": aliases or None, "MacAddress": ep.get("mac_address", ""),
        "DriverOpts": None if config.driver_opts is None else dict(config.driver_opts), "GwPriority": 0,
        "NetworkID": network_id, "EndpointID": (container_id if ep.get("ip_address") else ""),
        "Gateway": ep.get("gateway", ""), "IPAddress": ep.get("ip_address", ""),
        "IPPrefixLen": ep.get("prefix_len", 0), "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DNSNames": dns_names or None,
    }


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


def container_networks(c: Container) -> dict[str, Any]:
    """`NetworkSettings.Networks` of a container record.

    Running: the endpoints recorded at start. Otherwise: the configured networks with empty
    addresses (compose reads the aliases of a created container). User networks list the short
    id among the aliases, as Docker did before API 1.45 (compose 1.x looks for it).
    """
    mode = c.host_config.network_mode or "bridge"
    mode = "bridge" if mode == "default" else mode
    if mode.startswith("container:"):
        return {}  # on the joined container's networks, not on any of its own (as moby)
    net = c.network if c.state.running else {}
    configs = c.endpoints
    out: dict[str, Any] = {}
    if mode in BUILTIN_DRIVERS:
        out[mode] = endpoint_settings(network_id=mode, aliases=None, dns_names=None, ep=net or None,
                                      container_id=c.id, config=configs.get(mode))
        if mode in ("host", "none"):
            return out
    recorded = net.get("endpoints") or {}
    names = ([mode] if mode not in BUILTIN_DRIVERS else []) + [
        n for n in configs if n not in BUILTIN_DRIVERS and n != "default"]
    for name in dict.fromkeys(names):
        conf = configs.get(name) or EndpointSettings()
        ep = recorded.get(name)
        aliases = list(dict.fromkeys([*(conf.aliases or ()), c.id[:12]]))
        out[name] = endpoint_settings(
            network_id=(ep or {}).get("network_id") or conf.network_id, aliases=aliases,
            dns_names=list(dict.fromkeys([c.name, *aliases])), ep=ep, container_id=c.id, config=conf)
    return out
