"""A client connection to conmon's attach socket (one per client; several may attach)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

from berth.runtime.conmon import CONMON_STDERR, CONMON_STDOUT

STDOUT, STDERR = 1, 2
_STREAM_OF = {CONMON_STDOUT: STDOUT, CONMON_STDERR: STDERR}
_RECV_SIZE = 65536
# conmon reads at most CONN_SOCK_BUF_SIZE-1 bytes per record and drops the rest of a longer
# SEQPACKET record, so stdin is sent in small records.
_SEND_CHUNK = 8192


class AttachStream:
    """Reads (stream, data) from the container's stdout/stderr; writes go to its stdin."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._eof = False

    @classmethod
    async def connect(cls, directory: Path) -> AttachStream:
        """Connect to `<directory>/attach`; raises OSError when nothing listens there."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        # Through /proc/self/fd so the path length never hits sun_path's 108 bytes.
        dirfd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
        try:
            await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dirfd}/attach")
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(dirfd)
        return cls(sock)

    async def read(self) -> tuple[int, bytes] | None:
        """Next chunk as (1=stdout | 2=stderr, data); None once the process has ended."""
        loop = asyncio.get_running_loop()
        while not self._eof:
            try:
                record = await loop.sock_recv(self._sock, _RECV_SIZE)
            except (ConnectionResetError, OSError):
                # conmon closing with our unread stdin queued shows up as a reset.
                record = b""
            if not record:
                self._eof = True
                self._sock.close()  # conmon has sent everything; free the fd right away
                break
            stream = _STREAM_OF.get(record[0])
            if stream is not None and len(record) > 1:
                return stream, record[1:]
        return None

    async def write(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        for start in range(0, len(data), _SEND_CHUNK):
            try:
                await loop.sock_sendall(self._sock, data[start : start + _SEND_CHUNK])
            except (BrokenPipeError, ConnectionResetError):
                return  # the process is gone; Docker drops late stdin silently too

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    async def close(self) -> None:
        self._sock.close()
