"""Read host-local's lease directory to find leases of containers that no longer exist.

<ipam dir>/<network name>/
    10.88.0.2            "<container id>\r\n<ifname>"   one file per leased address
    last_reserved_ip.0
    lock
"""

from __future__ import annotations

import ipaddress
from pathlib import Path


def lease_owners(network_dir: Path) -> dict[str, list[Path]]:
    """Container id -> its lease files."""
    owners: dict[str, list[Path]] = {}
    try:
        entries = list(network_dir.iterdir())
    except FileNotFoundError:
        return owners
    for entry in entries:
        if not _is_address(entry.name):
            continue
        try:
            owner = entry.read_text().splitlines()[0].strip()
        except (OSError, IndexError):
            continue
        owners.setdefault(owner, []).append(entry)
    return owners


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
