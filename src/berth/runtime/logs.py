"""Read container logs written by conmon in the k8s-file format (see k8sfile.py for the format).

Memory stays bounded whatever the log's size: the file is read in chunks of at most CHUNK bytes
and each batch of lines goes to the caller before the next is read; `tail` seeks backwards from
the end in BLOCK-sized reads instead of reading the whole file. Items are (1=stdout | 2=stderr,
bytes), normally a whole line ending in "\\n" (with timestamps: `<RFC3339Nano UTC> <line>`).

The async readers do every file read in a worker thread, so a large backlog never stalls the
event loop; each read opens the file afresh, so no descriptor outlives an abandoned read.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from berth.runtime._fdwait import readable
from berth.runtime.k8sfile import (
    EVERYTHING,
    LOOKBACK,
    LogLine,
    LogParser,
    TailFinder,
    TailStart,
    TimeWindow,
    format_timestamp,
    parse_timestamp,
)

__all__ = ["follow_logs", "format_timestamp", "parse_timestamp", "read_logs", "read_logs_async"]

CHUNK = 256 * 1024  # forward read size: bounds the bytes (and parsed lines) held per batch
BLOCK = 64 * 1024  # backward read size while looking for the tail
_FOLLOW_RECHECK = 0.1  # s; how soon a follower notices stopped() without a file event

Item = tuple[int, bytes]


def find_tail_start(f: BinaryIO, size: int, lines: int, window: TimeWindow = TimeWindow(), *,
                    follow: bool = False, block: int = BLOCK) -> TailStart:
    """Where to start reading `f` (of `size` bytes) forwards to get its last `lines` lines
    (with `follow`, also the start of a line still being written; see TailFinder)."""
    finder = TailFinder(lines, size, window, LOOKBACK if follow else 0)
    while not finder.done:
        start = max(0, finder.position - block)
        f.seek(start)
        data = f.read(finder.position - start)
        if len(data) != finder.position - start:
            return EVERYTHING  # the file shrank under us: fall back to reading all of it
        finder.feed(data)
    return finder.result()


def _read_at(path: Path, offset: int, size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
    except FileNotFoundError:
        return b""


def _render(line: LogLine, timestamps: bool) -> Item:
    if timestamps and not line.continued:
        return line.stream, format_timestamp(line.ts_ns).encode() + b" " + line.text
    return line.stream, line.text


class _LogReader:
    """Reads one log forwards in bounded chunks, from where its tail begins.

    Lifecycle (every call blocks on file I/O; the async readers run them in a thread):
    `start(tail)` finds the tail and notes the current size; `backlog()` returns the next batch of
    what the file held then, None once it is all read; `more()` then returns whatever was added.
    """

    def __init__(self, path: Path, window: TimeWindow, timestamps: bool) -> None:
        self._path = path
        self._window = window
        self._timestamps = timestamps
        self._parser = LogParser()
        self._end = 0

    def start(self, tail: int | None, follow: bool = False) -> None:
        """`tail`: how many of the last lines to read (None or negative: all)."""
        try:
            f = open(self._path, "rb")  # noqa: SIM115 (the with below closes it)
        except FileNotFoundError:
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            if tail is None or tail < 0:
                start = EVERYTHING
            else:
                start = find_tail_start(f, size, tail, self._window, follow=follow)
        self._parser = LogParser(start)
        self._end = size if follow or start.stop is None else min(size, start.stop)

    def backlog(self) -> list[Item] | None:
        remaining = self._end - self._parser.position
        data = _read_at(self._path, self._parser.position, min(CHUNK, remaining)) if remaining > 0 else b""
        return self._lines(data) if data else None

    def more(self) -> tuple[list[Item], bool]:
        """The lines completed by the next chunk, and whether the file may hold more already."""
        data = _read_at(self._path, self._parser.position, CHUNK)
        return self._lines(data), len(data) == CHUNK

    def _lines(self, data: bytes) -> list[Item]:
        return [_render(line, self._timestamps) for line in self._parser.feed(data)
                if self._window.admits(line.ts_ns)]


def read_logs(path: Path, *, since: float = 0, until: float = 0, tail: int | None = None,
              timestamps: bool = False) -> Iterator[Item]:
    """Yield (stream, line) for the log at `path`; since/until are inclusive unix times.

    `tail` keeps the last lines among those since/until admits (None or negative: all).
    """
    if tail == 0:
        return
    reader = _LogReader(path, TimeWindow.of(since, until), timestamps)
    reader.start(tail)
    while (batch := reader.backlog()) is not None:
        yield from batch


async def read_logs_async(path: Path, *, since: float = 0, until: float = 0, tail: int | None = None,
                          timestamps: bool = False) -> AsyncIterator[Item]:
    """read_logs with each batch read in a worker thread."""
    if tail == 0:
        return
    reader = _LogReader(path, TimeWindow.of(since, until), timestamps)
    await asyncio.to_thread(reader.start, tail)
    while (batch := await asyncio.to_thread(reader.backlog)) is not None:
        for item in batch:
            yield item


async def follow_logs(
    path: Path,
    *,
    since: float = 0,
    until: float = 0,
    tail: int | None = None,
    timestamps: bool = False,
    stopped: Callable[[], bool],
) -> AsyncIterator[Item]:
    """Yield existing lines (since/until/tail applied), then new ones as conmon appends them.

    Ends once `stopped()` is true, or the clock has passed `until` (no later line can qualify),
    and everything written so far has been yielded.
    """
    inotify = _Inotify(path)  # before the first read, so no write goes unnoticed
    reader = _LogReader(path, TimeWindow.of(since, until), timestamps)
    try:
        await asyncio.to_thread(reader.start, tail, True)
        while (batch := await asyncio.to_thread(reader.backlog)) is not None:
            for item in batch:
                yield item
        while True:
            # sampled before reading, so the last write is never missed
            done = stopped() or (until > 0 and time.time() > until)
            full = True
            while full:
                lines, full = await asyncio.to_thread(reader.more)
                for item in lines:
                    yield item
            if done:
                return
            wait = _FOLLOW_RECHECK if until <= 0 else min(_FOLLOW_RECHECK, max(0.0, until - time.time()) + 0.01)
            await inotify.wait(wait)
    finally:
        inotify.close()


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
