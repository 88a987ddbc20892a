"""Moving bytes between a client connection and a container's (or an exec's) stdio.

The client end is a hijacked socket (`RawPeer`) or a websocket (`api.websocket.WebSocketPeer`).
Output goes out raw, or in stdcopy frames when the caller multiplexes (docker-engine-api.md §4.2:
the framing follows the `Tty` the client asked for). Input from the client may carry the detach
keys; they end the session and leave the process running, as dockerd's escape proxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Protocol

from berth.engine.attach import EscapeScanner

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


def api_at_least(api_version: str, version: tuple[int, int]) -> bool:
    """The request's API version (empty: none in the path, the latest) is `version` or later;
    framing details (Content-Type, websocket frames, streams) changed with API versions."""
    if not api_version:
        return True
    major, _, minor = api_version.partition(".")
    return (int(major), int(minor or 0)) >= version


def hijack_content_type(multiplexed: bool, api_1_42: bool) -> str:
    """The 101's Content-Type: multiplexed-stream names the framing from API 1.42 on."""
    return MULTIPLEXED if multiplexed and api_1_42 else RAW


class Stdio(Protocol):
    async def read(self) -> tuple[int, bytes] | None: ...
    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...


class Peer(Protocol):
    """The client's end: `recv` returns b"" once the client has finished sending."""

    async def recv(self) -> bytes: ...
    async def send(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


class RawPeer:
    """A hijacked HTTP connection: bytes both ways."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def recv(self) -> bytes:
        return await self._reader.read(65536)

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


def frame(stream: int, data: bytes) -> bytes:
    """stdcopy framing: stream byte, 3 zero bytes, big-endian length, payload."""
    return struct.pack(">BxxxI", stream, len(data)) + data


async def _client_to_container(peer: Peer, stdio: Stdio, *, stdin: bool, close_on_eof: bool,
                               scanner: EscapeScanner | None, detached: asyncio.Event) -> None:
    while data := await peer.recv():
        done = False
        if scanner is not None:
            data, done = scanner.feed(data)
        if stdin and data:
            await stdio.write(data)
        if done:
            detached.set()
            return
    if scanner is not None and stdin and (held := scanner.flush()):
        await stdio.write(held)
    if stdin and close_on_eof:
        await stdio.close_stdin()


async def _container_to_client(peer: Peer, stdio: Stdio, multiplexed: bool) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while (item := await stdio.read()) is not None:
            stream, data = item
            await peer.send(frame(stream, data) if multiplexed else data)


async def pump(peer: Peer, stdio: Stdio, *, multiplexed: bool, stdin: bool, close_stdin_on_eof: bool,
               detach_keys: bytes = b"") -> bool:
    """Copy both ways until the output ends or the client types `detach_keys` (only watched
    when non-empty and stdin is attached), then close the client connection. True when the
    client detached: the process runs on."""
    detached = asyncio.Event()
    scanner = EscapeScanner(detach_keys) if detach_keys and stdin else None
    inbound = asyncio.create_task(_client_to_container(
        peer, stdio, stdin=stdin, close_on_eof=close_stdin_on_eof, scanner=scanner, detached=detached))
    outbound = asyncio.create_task(_container_to_client(peer, stdio, multiplexed))
    detaching = asyncio.create_task(detached.wait())
    try:
        await asyncio.wait({outbound, detaching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (inbound, outbound, detaching):
            task.cancel()
        for task in (inbound, outbound, detaching):
            with contextlib.suppress(BaseException):
                await task
        await peer.close()
    return detached.is_set()
