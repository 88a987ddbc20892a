"""`POST /networks/create` and `POST /volumes/create` bodies → their typed requests, once, here.

The bodies have passed `check` against wire.NETWORK_CREATE / wire.VOLUME_CREATE, so every field
holds the JSON type Go would decode; this only gives the values their typed form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.types.create_requests import IpamPool, NetworkCreate, VolumeCreate


def network_create_from_wire(body: Mapping[str, Any] | None) -> NetworkCreate:
    body = body or {}
    ipam = body.get("IPAM") or {}
    return NetworkCreate(
        name=body.get("Name") or "", driver=body.get("Driver") or "", internal=bool(body.get("Internal")),
        attachable=bool(body.get("Attachable")), labels=dict(body.get("Labels") or {}),
        options=dict(body.get("Options") or {}),
        ipam_pools=tuple(IpamPool(subnet=pool.get("Subnet") or "", ip_range=pool.get("IPRange") or "",
                                  gateway=pool.get("Gateway") or "") for pool in ipam.get("Config") or ()),
        ipam_options=dict(ipam.get("Options") or {}),
    )


def volume_create_from_wire(body: Mapping[str, Any] | None) -> VolumeCreate:
    body = body or {}
    return VolumeCreate(name=body.get("Name") or "", driver=body.get("Driver") or "",
                        driver_opts=dict(body.get("DriverOpts") or {}), labels=dict(body.get("Labels") or {}))
