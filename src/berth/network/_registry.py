"""NetworkRegistry: the named user networks of one daemon, kept as files.

    <state_dir>/networks/<id>.json     one UserNetwork each (atomic writes)
    <state_dir>/ipam/<br-id12>/        host-local leases of that network (shared with the
                                       NetworkManager's ipam dir, one subdirectory per network)

`create` makes the bridge right away with the gateway address, as Docker does: its route then
shows the subnet as taken to every other daemon on the host choosing a subnet.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from berth.errors import AlreadyExists, InvalidArgument, NotFound, Unavailable
from berth.network import _hostnet
from berth.network._usernet import UserNetwork, check_subnet, pick_subnet

log = logging.getLogger(__name__)

BUILTIN = ("bridge", "host", "none")


class NetworkRegistry:
    """Create, find, list and remove user networks (blocking, thread-safe).

    Lifecycle: create(name, ...) -> UserNetwork (bridge up, subnet reserved);
    containers join through EndpointManager; remove(id) once no endpoint is left (the engine
    checks) deletes the bridge and the leases.
    """

    def __init__(self, *, state_dir: Path, reserved: tuple[str, ...] = ()) -> None:
        """`reserved`: subnets never handed out (the default bridge's)."""
        self._dir = Path(state_dir) / "networks"
        self._ipam_dir = Path(state_dir) / "ipam"
        self._reserved = reserved
        self._lock = threading.Lock()

    @property
    def ipam_dir(self) -> Path:
        return self._ipam_dir

    def create(self, name: str, *, subnet: str = "", gateway: str = "", ip_range: str = "",
               internal: bool = False, attachable: bool = False, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, ipam_options: dict[str, str] | None = None,
               ) -> UserNetwork:
        """Raises AlreadyExists (name taken), InvalidArgument, Conflict (subnet overlap)."""
        if not name.strip():  # libnetwork's only rule (config.IsValidName): spaces are fine
            raise InvalidArgument(f"invalid name: {name}")
        if name in BUILTIN:
            raise InvalidArgument(f"{name} is a pre-defined network and cannot be created")
        given = bool(subnet)
        with self._lock:
            if any(n.name == name for n in self.list()):
                raise AlreadyExists(f"network with name {name} already exists")
            # dockerd's IPAM compares a user-given subnet with its own pools only; the host's
            # routes (other daemons' bridges, the LAN) just steer the automatic choice.
            taken = [n.subnet for n in self.list()] + list(self._reserved)
            if subnet:
                subnet, gateway = check_subnet(subnet, gateway, ip_range, taken)
            else:
                subnet = pick_subnet(taken + host_routes())
                gateway = str(next(ipaddress.ip_network(subnet).hosts()))
            net = UserNetwork(id=secrets.token_hex(32), name=name, subnet=subnet, gateway=gateway,
                              created=_now(), internal=internal, attachable=attachable,
                              ip_range=ip_range, labels=dict(labels or {}), options=dict(options or {}),
                              ipam_options=dict(ipam_options or {}), ipam_config_given=given)
            self._save(net)
        try:
            make_bridge(net)
        except BaseException:
            self._path(net.id).unlink(missing_ok=True)
            raise
        return net

    def get(self, ref: str) -> UserNetwork:
        """By exact id, exact name, then unique id prefix; NotFound in Docker's wording."""
        nets = self.list()
        for net in nets:
            if ref in (net.id, net.name):
                return net
        matches = [n for n in nets if len(ref) >= 1 and n.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"network {ref} is ambiguous ({len(matches)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def list(self) -> list[UserNetwork]:
        try:
            paths = sorted(self._dir.glob("*.json"))
        except FileNotFoundError:
            return []
        nets = []
        for path in paths:
            try:
                nets.append(UserNetwork(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError) as err:
                log.warning("unreadable network record %s: %s", path, err)
        return nets

    def remove(self, net: UserNetwork) -> None:
        """Delete the bridge, the leases and the record (the engine checks for endpoints)."""
        _hostnet.delete_link(net.bridge)
        shutil.rmtree(self._ipam_dir / net.cni_name, ignore_errors=True)
        self._path(net.id).unlink(missing_ok=True)

    def destroy(self) -> None:
        """Remove every network (tests, uninstall)."""
        for net in self.list():
            self.remove(net)

    def _save(self, net: UserNetwork) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(net), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(net.id))

    def _path(self, network_id: str) -> Path:
        return self._dir / f"{network_id}.json"


def make_bridge(net: UserNetwork) -> None:
    """The bridge with the gateway address, up (the bridge plugin would make it on first ADD)."""
    prefix = ipaddress.ip_network(net.subnet).prefixlen
    for argv in (["ip", "link", "add", "name", net.bridge, "type", "bridge"],
                 ["ip", "addr", "add", f"{net.gateway}/{prefix}", "dev", net.bridge],
                 ["ip", "link", "set", net.bridge, "up"]):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0 and "File exists" not in proc.stderr:
            _hostnet.delete_link(net.bridge)
            raise Unavailable(f"{' '.join(argv)}: {proc.stderr.strip()}")


def host_routes() -> list[str]:
    """IPv4 destinations of the host's main routing table (other bridges, eth0's subnet)."""
    routes = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[1] == "00000000":
            continue
        dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        routes.append(str(ipaddress.ip_network(f"{dest}/{mask}", strict=False)))
    return routes


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
