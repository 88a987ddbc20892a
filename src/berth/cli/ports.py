"""Published ports: `-p` specs to API fields, and the `PORTS` column of `ps`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass
class PortConfig:
    """`Config.ExposedPorts` and `HostConfig.PortBindings` as the create body carries them."""

    exposed: dict[str, dict[str, Any]] = field(default_factory=dict)
    bindings: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _split_spec(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    # An IPv6 host address has colons of its own: everything before the last two parts.
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _port_range(text: str, spec: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        start, end = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"invalid port format: {spec!r}") from None
    if not (0 < start <= end <= 65535) and not (start == 0 == end):
        raise ValueError(f"invalid port range: {text!r}")
    return start, end


def parse_port_spec(spec: str) -> list[tuple[str, dict[str, str]]]:
    """One `-p [ip:][hostPort:]containerPort[-end][/proto]` -> [(port key, binding)], as nat.ParsePortSpec.

    Raises:
        ValueError: with Docker's wording for bad formats and mismatched ranges.
    """
    ip, host_port, container = _split_spec(spec)
    container, _, proto = container.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in _PROTOCOLS:
        raise ValueError(f"invalid proto: {proto}")
    ip = ip.removeprefix("[").removesuffix("]")
    if not container:
        raise ValueError(f"no port specified: {spec}<empty>")
    start, end = _port_range(container, spec)
    host_start = host_end = 0
    if host_port:
        host_start, host_end = _port_range(host_port, spec)
        if (end - start) != (host_end - host_start) and end != start:
            raise ValueError(f"invalid ranges specified for container and host Ports: {container} and {host_port}")
    result = []
    for offset in range(end - start + 1):
        key = f"{start + offset}/{proto}"
        # A host range maps port by port; a single container port may take a whole host range.
        binding_port = str(host_start + offset) if host_port and end != start else host_port
        result.append((key, {"HostIp": ip, "HostPort": binding_port}))
    return result


def port_config(specs: Iterable[str], expose: Iterable[str] = ()) -> PortConfig:
    """All `-p` (and `--expose`) flags of one run -> ExposedPorts + PortBindings."""
    config = PortConfig()
    for spec in specs:
        for key, binding in parse_port_spec(spec):
            config.exposed[key] = {}
            config.bindings.setdefault(key, []).append(binding)
    for item in expose:
        port, _, proto = item.partition("/")
        start, end = _port_range(port, item)
        for number in range(start, end + 1):
            config.exposed[f"{number}/{(proto or 'tcp').lower()}"] = {}
    return config


def _join_host_port(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _port_sort_key(port: Mapping[str, Any]) -> tuple[int, str, int, str]:
    return (
        int(port.get("PrivatePort") or 0),
        str(port.get("IP") or ""),
        int(port.get("PublicPort") or 0),
        str(port.get("Type") or ""),
    )


def _form_group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{_join_host_port(ip, group)}->{group}"
    return f"{group}/{proto}"


def display_ports(ports: Iterable[Mapping[str, Any]]) -> str:
    """The `PORTS` column: `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp`; ports in a row become ranges.

    A port of docker-cli's DisplayablePorts, including its grouping rules.
    """
    groups: dict[str, list[int]] = {}
    result: list[str] = []
    mappings: list[str] = []
    for port in sorted(ports, key=_port_sort_key):
        private = int(port.get("PrivatePort") or 0)
        proto = str(port.get("Type") or "tcp")
        ip = str(port.get("IP") or "")
        key = proto
        if ip:
            public = int(port.get("PublicPort") or 0)
            if public != private:
                mappings.append(f"{_join_host_port(ip, str(public))}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_form_group(key, group[0], group[1]))
            groups[key] = [private, private]
    result.extend(_form_group(key, first, last) for key, (first, last) in groups.items())
    return ", ".join(result + mappings)
