"""Attach sessions that may begin before the container's process exists.

`docker run` attaches to a *created* container and only then calls `/start`: the session waits
until the engine connects it to conmon's attach socket, between `runtime create` and `runtime
start`, so not a byte of output is lost. Stdin the client sends meanwhile stays in the client
connection (the stdin pump blocks on `write` until the session is connected).
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class StdioStream(Protocol):
    """What conmon's attach socket and an exec process both offer."""

    async def read(self) -> tuple[int, bytes] | None: ...
    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...


class AttachSession:
    """One client's view of a container's stdio; connected later or right away."""

    def __init__(self, *, stdin: bool, stdout: bool, stderr: bool) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._stream: asyncio.Future[StdioStream | None] = asyncio.get_running_loop().create_future()

    @property
    def connected(self) -> bool:
        return self._stream.done()

    def connect(self, stream: StdioStream | None) -> None:
        """Hand over the live stream; None ends the session (the container will not run)."""
        if not self._stream.done():
            self._stream.set_result(stream)

    async def read(self) -> tuple[int, bytes] | None:
        """Next (stream, data) the client asked for; None when the container's output ended."""
        stream = await self._stream
        while stream is not None:
            item = await stream.read()
            if item is None:
                return None
            if (item[0] == 1 and self.stdout) or (item[0] == 2 and self.stderr):
                return item
        return None

    async def write(self, data: bytes) -> None:
        stream = await self._stream
        if stream is not None and self.stdin:
            await stream.write(data)

    async def close_stdin(self) -> None:
        stream = await self._stream
        if stream is not None and self.stdin:
            await stream.close_stdin()

    async def close(self) -> None:
        if not self._stream.done():
            self._stream.set_result(None)
            return
        stream = self._stream.result()
        closer = getattr(stream, "close", None)
        if closer is not None:
            await closer()
