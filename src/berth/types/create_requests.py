"""Typed `POST /networks/create` and `POST /volumes/create` requests.

Docker's bodies are converted into these once, at the API edge (api/docker/create_requests.py),
so the engine reads attributes, not the wire's CamelCase keys. They live in `types` because the
API layer builds them and the engine takes them, and neither may import the other's modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class IpamPool:
    """One IPAM.Config entry: a subnet, the range to allocate from, the gateway ("" = chosen)."""
    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""


@dataclass(frozen=True)
class NetworkCreate:
    name: str = ""
    driver: str = ""                   # "" = bridge
    internal: bool = False
    attachable: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    ipam_pools: tuple[IpamPool, ...] = ()
    ipam_options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeCreate:
    name: str = ""                     # "" = a generated name (an anonymous volume)
    driver: str = ""                   # "" = local
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
