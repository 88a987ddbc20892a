"""Attach sessions that may begin before the container's process exists.

`docker run` attaches to a *created* container and only then calls `/start`: the session waits
until the engine connects it to conmon's attach socket, between `runtime create` and `runtime
start`, so not a byte of output is lost. Stdin the client sends meanwhile stays in the client
connection (the stdin pump blocks on `write` until the session is connected).

Detach keys (`detach_keys`, `EscapeScanner`): on a TTY, the client's input is watched for a key
sequence (ctrl-p ctrl-q unless the client names others) that ends its session and leaves the
process running, as dockerd's escape proxy does for attach and exec.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from berth.errors import InvalidArgument

# ctrl-p ctrl-q: what dockerd watches for on a TTY's stdin when no detach keys are given.
DEFAULT_DETACH_KEYS = b"\x10\x11"
# moby/term's key names: "ctrl-@" is 0, "ctrl-a" 1, ... "ctrl-z" 26, then "ctrl-[" ... "ctrl-_".
_CTRL_NAMES = ["ctrl-@", *(f"ctrl-{c}" for c in "abcdefghijklmnopqrstuvwxyz"),
               "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"]


def parse_keys(spec: str) -> bytes:
    """A detach-key setting ("ctrl-p,ctrl-q", "ctrl-a,a", "DEL") as the bytes it stands for,
    as moby/term's ToBytes reads it. Raises ValueError naming the unknown key."""
    codes = bytearray()
    for key in spec.split(","):
        raw = key.encode()
        if len(raw) == 1:  # one byte, as Go's len() counts it
            codes += raw
        elif key in _CTRL_NAMES:
            codes.append(_CTRL_NAMES.index(key))
        elif key == "DEL":
            codes.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(codes)


def detach_keys(spec: str, *, what: str = "detach") -> bytes:
    """The keys that end an attach to a TTY: `spec` parsed, or ctrl-p ctrl-q when it is empty.
    dockerd's wording for a bad setting: "Invalid detach keys (x) provided" on attach,
    "Invalid escape keys (x) provided" on exec create (`what="escape"`)."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    try:
        return parse_keys(spec)
    except ValueError as err:
        raise InvalidArgument(f"Invalid {what} keys ({spec}) provided") from err


class EscapeScanner:
    """Watches a client's keystrokes for the detach sequence, across reads of any size.

    `feed` returns the bytes to pass on to the container and whether the sequence is complete;
    bytes that could still begin the sequence are held back until the next read decides (as
    moby/term's escape proxy holds them), and the sequence itself never reaches the container.
    """

    def __init__(self, keys: bytes) -> None:
        if not keys:
            raise ValueError("empty detach key sequence")
        self._keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for i in range(len(data)):
            candidate = self._held + data[i : i + 1]
            while candidate and not self._keys.startswith(candidate):
                out += candidate[:1]
                candidate = candidate[1:]
            self._held = candidate
            if candidate == self._keys:
                self._held = b""
                return bytes(out), True
        return bytes(out), False

    def flush(self) -> bytes:
        """At end of input: the held bytes were typed, not a detach."""
        held, self._held = self._held, b""
        return held


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
