"""Host port reservations: one bound socket per published port while its container lives.

Like docker-proxy / podman, holding the socket makes the kernel refuse the port to anyone else
(another container, another daemon, any host process), and binding port 0 lets the kernel pick a
free ephemeral port atomically. The sockets never carry traffic: portmap's DNAT in PREROUTING
and OUTPUT rewrites packets before they could reach them. Python sockets are close-on-exec, so
plugins and container monitors never inherit them.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from collections.abc import Iterable
from dataclasses import replace

from berth.errors import Conflict, InvalidArgument
from berth.network._types import PortMapping


def conflict_message(name: str, endpoint_id: str, mapping: PortMapping) -> str:
    """Docker's wording for a published port that is taken."""
    host_ip = mapping.host_ip or "0.0.0.0"
    return (
        f"driver failed programming external connectivity on endpoint {name} ({endpoint_id}): "
        f"Bind for {host_ip}:{mapping.host_port} failed: port is already allocated"
    )


class PortConflict(Conflict):
    """A host port is taken; `mapping` names which one."""

    def __init__(self, message: str, mapping: PortMapping) -> None:
        super().__init__(message)
        self.mapping = mapping


class PortReservations:
    """Which container holds which host ports; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, list[tuple[PortMapping, socket.socket]]] = {}

    def reserve(
        self, owner: str, name: str, ports: Iterable[PortMapping]
    ) -> tuple[PortMapping, ...]:
        """Bind every port for `owner` (all or nothing); returns the mappings with ports resolved.

        Raises:
            PortConflict: a host port is taken (Docker's message, naming endpoint `name`).
            InvalidArgument: the host address is not one of this host's.
        """
        taken: list[tuple[PortMapping, socket.socket]] = []
        try:
            for mapping in ports:
                taken.append(_bind(mapping, name, owner))
        except BaseException:
            for _, sock in taken:
                sock.close()
            raise
        with self._lock:
            self._held.setdefault(owner, []).extend(taken)
        return tuple(mapping for mapping, _ in taken)

    def holders(self, mapping: PortMapping) -> set[str]:
        """Owners holding `mapping`'s host port for its protocol (any address)."""
        with self._lock:
            return {
                owner
                for owner, held in self._held.items()
                for m, _ in held
                if m.host_port == mapping.host_port and m.protocol == mapping.protocol
            }

    def held_by(self, owner: str) -> tuple[PortMapping, ...]:
        with self._lock:
            return tuple(m for m, _ in self._held.get(owner, []))

    def release(self, owner: str) -> None:
        """Close `owner`'s sockets; idempotent."""
        with self._lock:
            held = self._held.pop(owner, [])
        for _, sock in held:
            sock.close()

    def release_all(self) -> None:
        with self._lock:
            owners = list(self._held)
        for owner in owners:
            self.release(owner)


def _bind(mapping: PortMapping, name: str, owner: str) -> tuple[PortMapping, socket.socket]:
    address = mapping.host_ip or "0.0.0.0"
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError:
        raise InvalidArgument(f"Invalid ip address: {mapping.host_ip}") from None
    kind = socket.SOCK_STREAM if mapping.protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            # TIME_WAIT leftovers must not block us; a LISTENing socket still excludes others.
            # (Not for UDP: there SO_REUSEADDR would let a second socket share the port.)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, mapping.host_port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise PortConflict(conflict_message(name or owner, owner, mapping), mapping) from err
        raise InvalidArgument(
            f"cannot publish {address}:{mapping.host_port}: {err.strerror}"
        ) from err
    return replace(mapping, host_port=sock.getsockname()[1]), sock
