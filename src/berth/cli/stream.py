"""Attached streams: hijacked connections, stdcopy demultiplexing, raw terminals, detach keys.

Flow of an attached session (run/exec):

    hijack(...)  ->  Hijacked(reader, sock)
    stdin thread:  os.read(stdin) -> DetachScanner -> sock.sendall ... EOF -> shutdown(SHUT_WR)
    main thread:   reader.read1 -> FrameDemuxer (no tty) or raw (tty) -> our stdout/stderr
    the daemon closes the connection when the process exits; that ends the session.

Ctrl-P Ctrl-Q on stdin detaches: the client drops the connection and the container keeps running.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import struct
import sys
import termios
import threading
import tty
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import docker

from berth.cli.client import READ_SIZE

HEADER = struct.Struct(">BxxxI")
STDOUT, STDERR = 1, 2
DETACH_KEYS = b"\x10\x11"  # Ctrl-P Ctrl-Q, docker's default


class FrameDemuxer:
    """Incremental parser of stdcopy frames: `feed(bytes)` -> [(stream, payload), ...].

    Frames may be split anywhere across reads; partial data waits for the next feed.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER.size:
            stream, length = HEADER.unpack_from(self._buffer)
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((stream, bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame still buffered."""
        return len(self._buffer)


class DetachScanner:
    """Watches stdin for the detach sequence, holding back a partial match until it resolves."""

    def __init__(self, keys: bytes = DETACH_KEYS) -> None:
        self._keys = keys
        self._held = b""
        self.detached = False

    def scan(self, data: bytes) -> bytes:
        """Return the bytes to forward; sets `detached` (and forwards nothing more) on a match."""
        out = bytearray()
        for byte in data:
            candidate = self._held + bytes([byte])
            if self._keys.startswith(candidate):
                if candidate == self._keys:
                    self.detached = True
                    self._held = b""
                    return bytes(out)
                self._held = candidate
                continue
            out += candidate
            self._held = b""
        return bytes(out)


@dataclass
class Hijacked:
    """A connection upgraded to a raw byte stream. `reader` may already hold early output."""

    reader: io.BufferedReader
    sock: socket.socket
    response: Any = field(repr=False)

    def read(self) -> bytes:
        try:
            return self.reader.read1(READ_SIZE)
        except (OSError, ValueError):
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.response.close()


def hijack(
    api: docker.APIClient,
    path: str,
    *parts: str,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
) -> Hijacked:
    """POST with `Upgrade: tcp` and return the raw stream (daemon errors raise APIError)."""
    headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body)
    response = api._post(api._url(path, *parts), params=params, data=data, headers=headers, stream=True)
    api._raise_for_status(response)
    # Read through http.client's buffered reader, not the bare socket: the reader may have pulled
    # the first output bytes in along with the 101 headers.
    reader = response.raw._fp.fp
    sock = reader.raw._sock
    return Hijacked(reader=reader, sock=sock, response=response)


def write_flush(stream: BinaryIO, data: bytes) -> None:
    stream.write(data)
    stream.flush()


def copy_output(conn: Hijacked, tty_mode: bool, stdout: BinaryIO, stderr: BinaryIO) -> None:
    """Copy the container's output until the daemon closes the stream."""
    demux = FrameDemuxer()
    while True:
        data = conn.read()
        if not data:
            return
        if tty_mode:
            write_flush(stdout, data)
            continue
        for stream, payload in demux.feed(data):
            write_flush(stderr if stream == STDERR else stdout, payload)


def copy_frames(chunks: Iterator[bytes], tty_mode: bool, stdout: BinaryIO, stderr: BinaryIO) -> None:
    """Same as copy_output for an ordinary streamed body (logs)."""
    demux = FrameDemuxer()
    for data in chunks:
        if tty_mode:
            write_flush(stdout, data)
            continue
        for stream, payload in demux.feed(data):
            write_flush(stderr if stream == STDERR else stdout, payload)


class StdinPump:
    """Forwards our stdin to the connection in a daemon thread; half-closes at EOF."""

    def __init__(self, conn: Hijacked, fd: int) -> None:
        self._conn = conn
        self._fd = fd
        self._scanner = DetachScanner()
        self.detached = False
        self._thread = threading.Thread(target=self._run, name="stdin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                data = os.read(self._fd, READ_SIZE)
                if not data:
                    break
                forward = self._scanner.scan(data)
                if forward:
                    self._conn.send(forward)
                if self._scanner.detached:
                    self.detached = True
                    # Unblocks the reader in the main thread; the container keeps running.
                    self._conn.close()
                    return
        except OSError:
            return
        self._conn.close_write()


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def terminal_size() -> tuple[int, int]:
    """(rows, columns) of our terminal, docker's ConsoleSize order."""
    size = shutil.get_terminal_size(fallback=(80, 24))
    return size.lines, size.columns


@contextlib.contextmanager
def raw_terminal(fd: int, enabled: bool = True) -> Iterator[None]:
    """Put the terminal at `fd` in raw mode (keystrokes go to the container), restoring it after."""
    if not enabled or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_session(conn: Hijacked, *, tty_mode: bool, forward_stdin: bool) -> bool:
    """Pump stdin (when attached) and output until the stream ends; True when the user detached."""
    pump = None
    if forward_stdin:
        pump = StdinPump(conn, sys.stdin.fileno())
        pump.start()
    try:
        copy_output(conn, tty_mode, sys.stdout.buffer, sys.stderr.buffer)
    finally:
        conn.close()
    return bool(pump and pump.detached)
