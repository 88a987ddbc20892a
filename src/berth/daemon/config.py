"""Daemon configuration: one frozen value built from the command line."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from berth.errors import InvalidArgument


@dataclass(frozen=True)
class DaemonConfig:
    root: Path = Path("/var/lib/berth")
    run_root: Path = Path("/run/berth")
    docker_hosts: tuple[str, ...] = ("unix:///run/berth/docker.sock",)
    runtime: str = "auto"
    bridge_name: str = "berth0"
    bridge_subnet: str = "10.88.0.0/16"
    network_name: str = "berth"
    cgroup_parent: str = "berth"
    log_level: str = "info"

    @property
    def bridge_gateway(self) -> str:
        network = ipaddress.ip_network(self.bridge_subnet, strict=False)
        return str(next(network.hosts()))


def parse_host(spec: str) -> tuple[str, str | int]:
    """`unix:///path` → ("unix", path); `tcp://127.0.0.1:2375` → ("tcp", "127.0.0.1", port)."""
    if spec.startswith("unix://"):
        return ("unix", spec[len("unix://"):])
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://"):].rpartition(":")
        if not port.isdigit():
            raise InvalidArgument(f"invalid docker host {spec!r}: missing port")
        return ("tcp:" + (host or "127.0.0.1"), int(port))
    if spec.startswith("/"):
        return ("unix", spec)
    raise InvalidArgument(f"invalid docker host {spec!r}: use unix:///path or tcp://host:port")
