"""Host device nodes for `--device` and `--privileged`: stat them, describe them in OCI terms.

The runtime creates each node inside the container's /dev (`linux.devices`) and the device
cgroup must allow it (`linux.resources.devices`); both come from the same `DeviceNode`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.errors import InvalidArgument

# Never copied into a privileged container: the runtime mounts its own pts/shm/mqueue, and
# /dev/console belongs to the container's terminal (as in runc's HostDevices).
_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
_SKIP_FILES = frozenset({"console"})


@dataclass(frozen=True)
class DeviceNode:
    """A device node as it will appear inside the container."""

    path: str  # inside the container
    kind: str  # "c" or "b"
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int
    permissions: str = "rwm"  # cgroup access

    def oci_device(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.kind, "major": self.major, "minor": self.minor,
                "fileMode": self.file_mode, "uid": self.uid, "gid": self.gid}

    def cgroup_rule(self) -> dict[str, Any]:
        return {"allow": True, "type": self.kind, "major": self.major, "minor": self.minor,
                "access": self.permissions}


def _node(st: os.stat_result, path: str, permissions: str) -> DeviceNode | None:
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return DeviceNode(path=path, kind=kind, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                      file_mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                      permissions=permissions)


def device_nodes(on_host: str, in_container: str, permissions: str = "rwm") -> list[DeviceNode]:
    """`--device on_host:in_container:perms`; a directory maps every device below it (moby).

    Raises InvalidArgument with moby's wording when the path is missing or not a device.
    """
    def fail(reason: str) -> InvalidArgument:
        return InvalidArgument(
            f'error gathering device information while adding custom device "{on_host}": {reason}')

    try:
        st = os.stat(on_host)
    except OSError as err:
        raise fail(err.strerror.lower() if err.strerror else str(err)) from err
    if stat.S_ISDIR(st.st_mode):
        found = []
        for path in sorted(Path(on_host).rglob("*")):
            node = _node_at(path, in_container + str(path)[len(on_host.rstrip("/")):], permissions)
            if node is not None:
                found.append(node)
        return found
    node = _node(st, in_container, permissions)
    if node is None:
        raise fail("not a device node")
    return [node]


def _node_at(path: Path, in_container: str, permissions: str) -> DeviceNode | None:
    try:
        return _node(path.stat(), in_container, permissions)
    except OSError:
        return None


def host_devices(root: Path = Path("/dev")) -> list[DeviceNode]:
    """Every device node under the host's /dev, as `--privileged` gives them."""
    found: list[DeviceNode] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            if dirpath == str(root) and name in _SKIP_FILES:
                continue
            path = Path(dirpath) / name
            try:
                st = path.lstat()  # symlinks (/dev/stdin, /dev/fd ...) are not devices
            except OSError:
                continue
            node = _node(st, "/dev" + str(path)[len(str(root)):], "rwm")
            if node is not None:
                found.append(node)
    return found
