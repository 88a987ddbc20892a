"""EmbeddedDns: Docker's 127.0.0.11 resolver, served by the daemon inside each container's netns.

For every container on a user network the daemon holds two sockets on 127.0.0.11 (UDP and TCP)
*inside the container's network namespace*: a short-lived thread setns()es into the namespace
file, creates and binds them, and ends; a socket stays in the namespace it was made in. lo is up
in every namespace berth makes, and 127.0.0.0/8 on lo covers 127.0.0.11. The container's
/etc/resolv.conf names 127.0.0.11.

As Docker does, the sockets take a random port and a DNAT rule in the container's own nat table
sends 127.0.0.11:53 there, so port 53 stays free for the container (a DNS server in a container
binds 0.0.0.0:53, which a socket of ours on 127.0.0.11:53 would refuse it):

    nat OUTPUT -d 127.0.0.11/32 -j BERTH-DNS
        BERTH-DNS -d 127.0.0.11/32 -p udp --dport 53 -j DNAT --to-destination 127.0.0.11:<port>
                  ... the same for tcp
    (replies are un-NATed by conntrack)

The rules are written by `iptables-restore` forked from the thread inside the namespace (a child
inherits its thread's netns). After a daemon restart the sockets are bound again on the same
port, so the rules stay as they are and no exec is needed.

The sockets are served by one asyncio loop on a thread of its own: the engine calls this class
from worker threads (it is blocking, like the rest of berth.network), and DNS answers then do
not queue behind API work on the main loop. Each container's answers come from its own
`NameTable` (berth.network._dnsnames), which the engine replaces whenever a peer joins or
leaves; no query is ever sent anywhere.

Lifecycle of one container:
    open(cid, netns, table)    sockets made and served (again after a daemon restart: restore)
    update(cid, table)         new peers (join / leave / connect / disconnect)
    close(cid)                 sockets closed: before the netns goes (a socket pins its netns)
shutdown() closes everything and stops the loop (daemon exit; containers keep running and
get their resolver back when the next daemon adopts them).

Not done (Docker does): forwarding unknown names to the host's servers.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from berth.errors import Unavailable
from berth.network._dnsnames import NameTable, respond
from berth.network._dnswire import UDP_MAX

log = logging.getLogger(__name__)

ADDRESS = "127.0.0.11"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

CHAIN = "BERTH-DNS"

# (netns path, address, port clients use, port to bind again or 0) ->
#     (bound UDP socket, listening TCP socket), both non-blocking, on one port
SocketFactory = Callable[[str, str, int, int], tuple[socket.socket, socket.socket]]


def netns_sockets(netns: str, address: str, port: int, again: int = 0) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets inside the namespace at `netns` that clients reach at address:port.

    They are bound to a random port behind a DNAT rule (module docstring); with `again`, to
    that port first (a daemon restart: its rules are in place already).

    Raises:
        Unavailable: setns, bind or iptables-restore failed (nothing is left open).
    """
    made: list[socket.socket] = []
    failure: list[BaseException] = []
    worker = threading.Thread(target=_make_in_netns, args=(netns, address, port, again, made, failure),
                              name="berth-dns-netns")
    worker.start()
    worker.join()
    if failure:
        raise Unavailable(f"embedded DNS in {netns}: {failure[0]}") from failure[0]
    return made[0], made[1]


def _make_in_netns(netns: str, address: str, port: int, again: int, made: list[socket.socket],
                   failure: list[BaseException]) -> None:
    """Thread body: this thread alone enters the netns and ends there (never used again)."""
    try:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns: {os.strerror(err)}")
        finally:
            os.close(fd)
        if again:
            try:
                made.extend(bound_sockets(address, again))
                return
            except OSError as err:
                log.info("embedded DNS port %d taken in %s (%s); new port and rules", again, netns, err)
        pair = bound_sockets(address, 0)
        try:
            _install_dnat(address, port, pair[0].getsockname()[1], hook=not again)
        except BaseException:
            for sock in pair:
                sock.close()
            raise
        made.extend(pair)
    except Exception as err:  # noqa: BLE001 (handed to the calling thread, raised there)
        failure.append(err)


def dnat_rules(address: str, port: int, bound: int, *, hook: bool) -> str:
    """The restore batch for the namespace's nat table (declaring the chain empties it)."""
    lines = ["*nat", f":{CHAIN} - [0:0]"]
    for proto in ("udp", "tcp"):
        lines.append(f"-A {CHAIN} -d {address}/32 -p {proto} -m {proto} --dport {port} "
                     f"-j DNAT --to-destination {address}:{bound}")
    if hook:
        lines.append(f"-A OUTPUT -d {address}/32 -j {CHAIN}")
    return "\n".join([*lines, "COMMIT", ""])


def _install_dnat(address: str, port: int, bound: int, *, hook: bool) -> None:
    """Runs in the thread that is inside the container's netns; so does the child it forks."""
    proc = subprocess.run(["iptables-restore", "-w", "--noflush"], input=dnat_rules(address, port, bound, hook=hook),
                          capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise OSError(f"iptables-restore (DNAT {address}:{port}): {proc.stderr.strip()}")


def bound_sockets(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """UDP and listening TCP sockets on address:port of the calling thread's netns.

    Port 0 (tests) means one free port for both; the kernel picks UDP's, which TCP may hold
    already, so that case tries a few times.
    """
    for _ in range(9 if port == 0 else 0):
        try:
            return _bind_pair(address, port)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
    return _bind_pair(address, port)


def _bind_pair(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((address, port))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((address, udp.getsockname()[1]))
        tcp.listen(64)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    udp.setblocking(False)
    tcp.setblocking(False)
    return udp, tcp


@dataclass
class _Served:
    """One container's resolver: its table, its round-robin counters, what to close."""

    table: NameTable
    turns: dict[str, int] = field(default_factory=dict)
    closers: list[Any] = field(default_factory=list)  # transports and the TCP server

    def turn(self, name: str) -> int:
        count = self.turns.get(name, 0)
        self.turns[name] = count + 1
        return count

    def answer(self, packet: bytes, max_size: int) -> bytes | None:
        return respond(packet, self.table, turn=self.turn, max_size=max_size)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, served: _Served) -> None:
        self._served = served
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self._served.answer(data, UDP_MAX)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("embedded DNS (udp): %s", exc)


class _Tcp(asyncio.Protocol):
    """DNS over TCP: each message has a 2-byte length prefix, both ways (RFC 1035 §4.2.2)."""

    def __init__(self, served: _Served) -> None:
        self._served = served
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._served.closers.append(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport in self._served.closers:
            self._served.closers.remove(self._transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 2 and self._transport is not None:
            (length,) = struct.unpack_from("!H", self._buffer)
            if len(self._buffer) < 2 + length:
                return
            message, self._buffer = self._buffer[2:2 + length], self._buffer[2 + length:]
            reply = self._served.answer(message, 0)
            if reply is None:
                self._transport.close()
                return
            self._transport.write(struct.pack("!H", len(reply)) + reply)


class EmbeddedDns:
    """The per-container resolvers of one daemon (blocking methods, thread-safe).

    See the module docstring for the lifecycle.
    """

    def __init__(self, *, address: str = ADDRESS, port: int = 53, sockets: SocketFactory = netns_sockets) -> None:
        self._address = address
        self._port = port
        self._sockets = sockets
        self._served: dict[str, _Served] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def open(self, container_id: str, netns: str, table: NameTable, *, again: int = 0) -> int:
        """Serve `table` at 127.0.0.11:53 in `netns`; replaces an earlier open of this container.

        Returns the port the sockets are bound to; pass it as `again` when the daemon restarts.

        Raises:
            Unavailable: the sockets could not be made or served.
        """
        self.close(container_id)
        udp, tcp = self._sockets(netns, self._address, self._port, again)
        served = _Served(table)
        try:
            asyncio.run_coroutine_threadsafe(_serve(served, udp, tcp), self._ensure_loop()).result(timeout=10)
        except Exception as err:
            udp.close()
            tcp.close()
            self._close_served(served)
            raise Unavailable(f"embedded DNS for {container_id[:12]}: {err}") from err
        with self._lock:
            self._served[container_id] = served
        return int(udp.getsockname()[1])

    def update(self, container_id: str, table: NameTable) -> None:
        """Answer from `table` from now on (no-op for a container without a resolver)."""
        with self._lock:
            served = self._served.get(container_id)
        if served is not None:
            served.table = table  # one reference swap: the loop sees the old or the new table

    def serves(self, container_id: str) -> bool:
        with self._lock:
            return container_id in self._served

    def table(self, container_id: str) -> NameTable | None:
        with self._lock:
            served = self._served.get(container_id)
        return served.table if served is not None else None

    def close(self, container_id: str) -> None:
        """Close this container's sockets; idempotent."""
        with self._lock:
            served = self._served.pop(container_id, None)
        if served is not None:
            self._close_served(served)

    def shutdown(self) -> None:
        """Close every resolver and stop the loop thread."""
        with self._lock:
            served, self._served = list(self._served.values()), {}
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        for one in served:
            loop.call_soon_threadsafe(_close_all, one)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        loop.close()

    def _close_served(self, served: _Served) -> None:
        """Closed when this returns: a query sent afterwards meets a closed port."""
        loop = self._loop
        if loop is not None and loop.is_running():
            done = asyncio.run_coroutine_threadsafe(_close_now(served), loop)
            try:
                done.result(timeout=5)
            except Exception as err:  # noqa: BLE001 - closing is best effort; the loop may be stopping
                log.warning("closing an embedded DNS resolver: %s", err)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="berth-dns", daemon=True)
                self._thread.start()
            return self._loop


async def _serve(served: _Served, udp: socket.socket, tcp: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(served), sock=udp)
    served.closers.append(transport)
    server = await loop.create_server(lambda: _Tcp(served), sock=tcp)
    served.closers.insert(0, server)


async def _close_now(served: _Served) -> None:
    _close_all(served)
    await asyncio.sleep(0)  # transports close their sockets on the next loop iteration


def _close_all(served: _Served) -> None:
    """On the loop: stop listening, then close the datagram transport and open connections."""
    for closer in list(served.closers):
        closer.close()
    served.closers.clear()
