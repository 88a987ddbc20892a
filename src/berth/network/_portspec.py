"""Parse the docker CLI's `-p` syntax: `[ip:][hostPort:]containerPort[/protocol]`.

Ranges map one to one (`8000-8001:80-81`); a container range without host ports allocates a host
port for each. Error texts follow docker's go-connections `nat.ParsePortSpec`.
"""

from __future__ import annotations

import ipaddress

from berth.errors import InvalidArgument
from berth.network._types import PROTOCOLS, PortMapping


def parse_port_spec(spec: str) -> list[PortMapping]:
    """Expand one `-p` value into port mappings (host_port 0 = allocate).

    Raises:
        InvalidArgument: malformed address, port, range or protocol.
    """
    ip, host, container = _split_parts(spec)
    proto, container = _split_proto(container)
    ip = _parse_ip(ip)
    if not container:
        raise InvalidArgument(f"No port specified: {spec}<empty>")
    c_start, c_end = _parse_range(container, "containerPort")
    h_start, h_end = _parse_range(host, "hostPort") if host else (0, 0)
    if host and (c_end - c_start) != (h_end - h_start):
        if c_end != c_start:
            raise InvalidArgument(
                f"Invalid ranges specified for container and host Ports: {container} and {host}"
            )
        # Docker would pick any free port of the host range; we cannot express a range in
        # PortMapping, so refuse rather than silently choosing one.
        raise InvalidArgument(
            f"host port range {host} for a single container port is not supported"
        )
    if proto.lower() not in PROTOCOLS:
        raise InvalidArgument(f"Invalid proto: {proto}")
    return [
        PortMapping(
            container_port=c_start + i,
            protocol=proto.lower(),
            host_ip=ip,
            host_port=(h_start + i) if host else 0,
        )
        for i in range(c_end - c_start + 1)
    ]


def _split_parts(raw: str) -> tuple[str, str, str]:
    """Split into (ip, host port, container port) the way docker does (IPv6 keeps its colons)."""
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _split_proto(raw: str) -> tuple[str, str]:
    port, _, proto = raw.partition("/")
    return (proto or "tcp"), port


def _parse_ip(ip: str) -> str:
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not ip:
        return ""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise InvalidArgument(f"Invalid ip address: {ip}") from None


def _parse_range(text: str, what: str) -> tuple[int, int]:
    """`80` or `80-81` -> (start, end), each in 1..65535 (0 allowed only for a host port)."""
    start_s, sep, end_s = text.partition("-")
    try:
        start = int(start_s, 10)
        end = int(end_s, 10) if sep else start
    except ValueError:
        raise InvalidArgument(f"Invalid {what}: {text}") from None
    low = 0 if what == "hostPort" else 1
    if not (low <= start <= end <= 65535):
        raise InvalidArgument(f"Invalid {what}: {text}")
    return start, end
