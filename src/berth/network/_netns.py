"""Network namespaces kept as bind-mounted files under the daemon's run dir.

    <run_dir>/netns/<container id>   <- bind mount of the namespace's nsfs inode

A short-lived thread unshares its network namespace, brings `lo` up inside it and bind-mounts
/proc/thread-self/ns/net onto the file; then the thread ends, so no thread of the daemon ever
stays in the wrong namespace. This keeps `ip netns list` clean, costs no subprocess, and lets
cleanup find exactly this daemon's namespaces by listing one directory.

Bringing `lo` up here does what the CNI loopback plugin does (`ip link set lo up`) without the
≈ 4 ms ADD and DEL subprocesses; the namespace dies with its last reference, lo included.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from pathlib import Path
from typing import Protocol

from berth.errors import Unavailable

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsOps(Protocol):
    """Create / remove / inspect namespace files (a seam so tests need not be root)."""

    def create(self, path: Path) -> None: ...

    def remove(self, path: Path) -> None: ...

    def is_mounted(self, path: Path) -> bool: ...


class BindMountedNetns:
    """The real implementation described in the module docstring."""

    def create(self, path: Path) -> None:
        """Create a fresh namespace with lo up, pinned at `path` (which must not exist).

        Raises:
            Unavailable: unshare, ioctl or mount failed (nothing is left behind).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY | os.O_CLOEXEC, 0o444))
        failure: list[Exception] = []
        worker = threading.Thread(target=_pin_new_netns, args=(path, failure), name="berth-netns")
        worker.start()
        worker.join()
        if failure:
            _unlink(path)
            raise Unavailable(f"create network namespace {path}: {failure[0]}") from failure[0]

    def remove(self, path: Path) -> None:
        """Unmount and delete `path`; a missing or unmounted file is fine (idempotent)."""
        if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err not in (errno.EINVAL, errno.ENOENT):
                raise Unavailable(f"unmount network namespace {path}: {os.strerror(err)}")
        _unlink(path)

    def is_mounted(self, path: Path) -> bool:
        """True when `path` is a live namespace (an nsfs mount, not the plain placeholder file)."""
        try:
            return os.stat(path).st_dev != os.stat(path.parent).st_dev
        except FileNotFoundError:
            return False


def list_netns(directory: Path) -> list[str]:
    """Container ids that have a namespace file in `directory`."""
    try:
        return sorted(entry.name for entry in directory.iterdir())
    except FileNotFoundError:
        return []


def _pin_new_netns(path: Path, failure: list[Exception]) -> None:
    """Thread body: this thread alone moves to a new netns, which it pins at `path`."""
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare")
        _loopback_up()
        _no_ipv6_on_new_links()
        source = f"/proc/self/task/{threading.get_native_id()}/ns/net"
        _check(_libc.mount(os.fsencode(source), os.fsencode(path), None, MS_BIND, None), "mount")
    except Exception as err:  # noqa: BLE001 (handed to the creating thread, raised there)
        failure.append(err)


def _no_ipv6_on_new_links() -> None:
    """Interfaces made in this netns from now on (eth0 by CNI) start with IPv6 off; lo keeps ::1.

    berth's networks are IPv4 only (as moby does for an IPv4-only network, its
    interface gets disable_ipv6). Left on, every new interface sends DAD and MLD packets that
    the bridge floods to every other member's namespace: with 50 replicas on one bridge that was
    ≈ 2.7 s of kernel time (the `mld` workqueue) for one `compose up`. The sysctl file resolves
    to this thread's netns, which is the new one."""
    try:
        with open("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") as f:
            f.write("1\n")
    except FileNotFoundError:  # IPv6 off in this kernel: nothing to disable
        pass


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
