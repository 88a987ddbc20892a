"""Read container logs written by conmon in the k8s-file format.

One record per line: `<RFC3339Nano with offset> <stdout|stderr> <F|P> <text>\\n`, e.g.
`2026-11-29T17:06:10.466481358+00:00 stdout F hi`. `P` marks a partial record (the text had no
newline yet); the following records of the same stream up to an `F` complete it.
Lines are yielded as (1=stdout | 2=stderr, bytes ending in "\\n").
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from berth.runtime._fdwait import readable

STDOUT, STDERR = 1, 2
_STREAMS = {b"stdout": STDOUT, b"stderr": STDERR}
_FOLLOW_RECHECK = 0.1  # s; how soon a follower notices stopped() without a file event


@dataclass(frozen=True)
class LogLine:
    ts_ns: int  # unix time in nanoseconds
    stream: int
    text: bytes  # complete line including "\n"


@dataclass(frozen=True)
class _Record:
    ts_ns: int
    stream: int
    partial: bool
    text: bytes


def parse_record(line: bytes) -> _Record | None:
    """Parse one k8s-file line (without its trailing newline); None if malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAMS:
        return None
    try:
        ts_ns = parse_timestamp(parts[0].decode("ascii"))
    except ValueError:
        return None
    text = parts[3] if len(parts) == 4 else b""
    return _Record(ts_ns, _STREAMS[parts[1]], parts[2] == b"P", text)


def parse_timestamp(text: str) -> int:
    """RFC3339 with up to nanosecond precision -> unix nanoseconds."""
    if len(text) < 20 or text[10] != "T":
        raise ValueError(f"bad timestamp {text!r}")
    seconds, rest = text[:19], text[19:]
    frac = ""
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        frac, rest = rest[1:end], rest[end:]
    nanos = int((frac + "000000000")[:9]) if frac else 0
    return _epoch_seconds(seconds, rest or "Z") * 1_000_000_000 + nanos


@lru_cache(maxsize=4096)
def _epoch_seconds(seconds: str, offset: str) -> int:
    offset = "+00:00" if offset in ("Z", "z") else offset
    return int(dt.datetime.fromisoformat(seconds + offset).timestamp())


def format_timestamp(ts_ns: int) -> str:
    """Docker's fixed-width RFC3339Nano in UTC: 2006-01-02T15:04:05.000000000Z."""
    secs, nanos = divmod(ts_ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


class _Joiner:
    """Joins partial records per stream into complete lines."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[int, list[bytes]]] = {}

    def feed(self, record: _Record) -> LogLine | None:
        ts, chunks = self._pending.pop(record.stream, (record.ts_ns, []))
        chunks.append(record.text)
        if record.partial:
            self._pending[record.stream] = (ts, chunks)
            return None
        return LogLine(ts, record.stream, b"".join(chunks) + b"\n")


def parse_lines(raw_lines: Iterable[bytes]) -> Iterator[LogLine]:
    joiner = _Joiner()
    for raw in raw_lines:
        record = parse_record(raw.rstrip(b"\n"))
        if record is not None:
            line = joiner.feed(record)
            if line is not None:
                yield line


def _selected(lines: Iterable[LogLine], since: float, until: float) -> Iterator[LogLine]:
    since_ns, until_ns = int(since * 1e9), int(until * 1e9)
    for line in lines:
        if since and line.ts_ns < since_ns:
            continue
        if until and line.ts_ns > until_ns:
            continue  # not `return`: a joined partial line is older than its neighbours
        yield line


def _tailed(lines: Iterable[LogLine], tail: int | None) -> Iterable[LogLine]:
    if tail is None or tail < 0:
        return lines
    return collections.deque(lines, maxlen=tail) if tail else ()


def _render(line: LogLine, timestamps: bool) -> tuple[int, bytes]:
    if timestamps:
        return line.stream, format_timestamp(line.ts_ns).encode() + b" " + line.text
    return line.stream, line.text


def read_logs(
    path: Path,
    *,
    since: float = 0,
    until: float = 0,
    tail: int | None = None,
    timestamps: bool = False,
) -> Iterator[tuple[int, bytes]]:
    """Yield (stream, line) for the log at `path`; since/until are inclusive unix times."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (the with below closes it)
    except FileNotFoundError:
        return
    with f:
        lines = _tailed(_selected(parse_lines(f), since, until), tail)
        for line in lines:
            yield _render(line, timestamps)


async def follow_logs(
    path: Path,
    *,
    since: float = 0,
    tail: int | None = None,
    timestamps: bool = False,
    stopped: Callable[[], bool],
) -> AsyncIterator[tuple[int, bytes]]:
    """Yield existing lines (since/tail applied), then new ones as conmon appends them.

    Ends once `stopped()` is true and everything written so far has been yielded.
    """
    follower = _Follower(path)
    try:
        # The backlog can be large: read and parse it off the event loop (later reads are small).
        backlog = await asyncio.to_thread(
            lambda: list(_tailed(_selected(follower.read_available(), since, 0), tail)))
        for line in backlog:
            yield _render(line, timestamps)
        while True:
            done = stopped()  # sample before reading, so the last write is never missed
            for line in _selected(follower.read_available(), since, 0):
                yield _render(line, timestamps)
            if done:
                return
            await follower.wait_change(_FOLLOW_RECHECK)
    finally:
        follower.close()


class _Follower:
    """Incremental reader of a growing log file, woken by inotify."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: BinaryIO | None = None
        self._buffer = b""
        self._joiner = _Joiner()
        self._inotify = _Inotify(path)

    def read_available(self) -> list[LogLine]:
        if self._file is None:
            try:
                self._file = open(self._path, "rb")  # noqa: SIM115 (closed in close())
            except FileNotFoundError:
                return []
        data = self._buffer + self._file.read()
        complete, sep, self._buffer = data.rpartition(b"\n")
        if not sep:
            self._buffer = data
            return []
        out = []
        for raw in complete.split(b"\n"):
            record = parse_record(raw)
            line = self._joiner.feed(record) if record else None
            if line is not None:
                out.append(line)
        return out

    async def wait_change(self, timeout: float) -> None:
        await self._inotify.wait(timeout)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._inotify.close()


_IN_MODIFY, _IN_CREATE, _IN_CLOSE_WRITE = 0x2, 0x100, 0x8
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000


class _Inotify:
    """Watch the log's directory (the file may not exist yet); fall back to a timeout."""

    def __init__(self, path: Path) -> None:
        self._fd = -1
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return
        mask = _IN_MODIFY | _IN_CREATE | _IN_CLOSE_WRITE
        if libc.inotify_add_watch(fd, os.fsencode(path.parent), mask) < 0:
            os.close(fd)
            return
        self._fd = fd

    async def wait(self, timeout: float) -> None:
        if self._fd < 0:
            await asyncio.sleep(timeout)
            return
        await readable(self._fd, timeout)
        self._drain()

    def _drain(self) -> None:
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
