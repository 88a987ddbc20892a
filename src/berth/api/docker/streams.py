"""Moving bytes between a hijacked client connection and a container's stdio."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Protocol


class Stdio(Protocol):
    async def read(self) -> tuple[int, bytes] | None: ...
    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...


def frame(stream: int, data: bytes) -> bytes:
    """stdcopy framing: stream byte, 3 zero bytes, big-endian length, payload."""
    return struct.pack(">BxxxI", stream, len(data)) + data


async def _client_to_container(reader: asyncio.StreamReader, stdio: Stdio, stdin: bool, close_on_eof: bool) -> None:
    while True:
        data = await reader.read(65536)
        if not data:
            break
        if stdin:
            await stdio.write(data)
    if stdin and close_on_eof:
        await stdio.close_stdin()


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stdio: Stdio, *,
               tty: bool, stdin: bool, close_stdin_on_eof: bool) -> None:
    """Copy both ways until the container's output ends, then close the client connection."""
    inbound = asyncio.create_task(_client_to_container(reader, stdio, stdin, close_stdin_on_eof))
    try:
        while True:
            item = await stdio.read()
            if item is None:
                break
            stream, data = item
            writer.write(data if tty else frame(stream, data))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        inbound.cancel()
        with contextlib.suppress(BaseException):
            await inbound
        with contextlib.suppress(Exception):
            writer.close()
