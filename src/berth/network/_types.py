"""Plain data the network package exchanges with the engine; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class PortMapping:
    """One published port: host_ip:host_port/protocol -> container_port/protocol.

    host_ip "" (or "0.0.0.0") means every host address; host_port 0 asks attach() to pick a free
    ephemeral port, and the Attachment it returns carries the port it chose.
    """

    container_port: int
    protocol: str  # "tcp" | "udp"
    host_ip: str = ""
    host_port: int = 0


@dataclass(frozen=True)
class Attachment:
    """How one container is wired: its netns and, for bridge mode, its address on the bridge."""

    netns_path: str | None  # None for host networking
    mode: str  # "bridge" | "none" | "host"
    ip_address: str = ""
    prefix_len: int = 0
    gateway: str = ""
    mac_address: str = ""
    ports: tuple[PortMapping, ...] = ()  # host ports resolved


@dataclass(frozen=True)
class BridgeConfig:
    """The default bridge network. Every field is a parameter so daemons can run side by side."""

    network_name: str = "berth"  # CNI network name (also names host-local's lease directory)
    bridge: str = "berth0"
    subnet: str = "10.88.0.0/16"
    gateway: str = "10.88.0.1"
    cni_path: str = "/usr/lib/cni"
