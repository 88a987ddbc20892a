"""`docker exec` through `conmon --exec` (podman's way).

conmon holds the process' stdio (pipes, or the pty master it receives from the runtime's
console socket), serves it on an attach socket, handles resizes through its `ctl` FIFO and
reports pid and exit code on the sync pipe, so tty and non-tty execs share one code path.

Sequence (conmon API version 1, --exec-attach):
  1. write the start pipe      -> conmon sets up the attach socket and FIFOs
  2. read the attach pipe      <- {"data": 0}
  3. connect the attach socket, send the initial tty size to `ctl`
  4. write the start pipe      -> conmon runs `<runtime> exec --process process.json`
  5. read the sync pipe        <- {"data": pid} or {"data": -N, "message": runtime stderr}
  6. read the sync pipe        <- {"data": exit code} (128+N when killed by signal N)

Exec sessions live in <bundle>/exec/<exec id>/ and are not meant to survive the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal as signals
import subprocess
from pathlib import Path
from typing import Any

from berth.runtime import conmon
from berth.runtime._fdwait import readable
from berth.runtime.attach import STDERR, AttachStream
from berth.runtime.errtext import exec_error_text, exec_failure_code


class ExecProcess:
    """A process started in a running container. `pid` is 0 when the exec failed to start;
    then `error` holds Docker's message, read() yields it once on stderr and wait() returns
    126/127."""

    def __init__(
        self, *, directory: Path, popen: subprocess.Popen[bytes], sync: conmon.SyncReader,
        stream: AttachStream | None, pid: int, error: str | None, failure_code: int,
    ) -> None:  # fmt: skip
        self.pid = pid
        self.error = error
        self._directory = directory
        self._popen = popen
        self._sync = sync
        self._stream = stream
        self._failure_code = failure_code
        self._error_pending = error is not None
        self._exit_code: int | None = failure_code if error is not None else None
        self._pidfd = _pidfd_or_none(pid) if pid > 0 else None

    async def read(self) -> tuple[int, bytes] | None:
        if self._error_pending:
            self._error_pending = False
            return STDERR, (self.error or "").encode() + b"\n"
        if self._stream is None:
            return None
        return await self._stream.read()

    async def write(self, data: bytes) -> None:
        if self._stream is not None:
            await self._stream.write(data)

    async def close_stdin(self) -> None:
        if self._stream is not None:
            await self._stream.close_stdin()

    async def detach(self) -> None:
        """Nobody will read this exec's output (`docker exec -d`): close the attach socket, or
        it stays open for good. conmon runs the process on without an attached client."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.close()

    def resize(self, height: int, width: int) -> None:
        conmon.write_ctl_resize(self._directory / "ctl", height, width)

    def kill(self, signal: int) -> None:
        if self._pidfd is None:
            return
        with contextlib.suppress(ProcessLookupError):
            signals.pidfd_send_signal(self._pidfd, signal)

    async def wait(self) -> int:
        """The exit code; cleans the session up. Safe to call more than once."""
        if self._exit_code is None:
            message = await _next_message(self._sync)
            code = _int_data(message) if message is not None else None
            self._exit_code = code if code is not None and code >= 0 else 255
        await self._cleanup()
        return self._exit_code

    async def _cleanup(self) -> None:
        # The attach stream stays open: output conmon sent before the exit code may still
        # be queued in it; it closes itself at EOF.
        self._sync.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        await asyncio.to_thread(self._popen.wait)
        shutil.rmtree(self._directory, ignore_errors=True)


async def start_exec(
    *, conmon_path: str, runtime_path: str, runtime_root: Path, container_id: str,
    bundle: Path, process: dict[str, Any], tty: bool, stdin: bool, height: int, width: int,
) -> ExecProcess:  # fmt: skip
    exec_id = secrets.token_hex(8)
    directory = bundle / "exec" / exec_id
    directory.mkdir(parents=True)
    (directory / "process.json").write_text(json.dumps(process))
    paths = conmon.ConmonPaths(directory, directory / "pid", directory, "none")
    argv = conmon.exec_argv(
        conmon_path, runtime_path, runtime_root, container_id, exec_id, paths,
        directory / "process.json", tty=tty, stdin=stdin,
    )  # fmt: skip
    try:
        return await _run_session(argv, directory, process, tty, height, width)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


async def _run_session(
    argv: list[str], directory: Path, process: dict[str, Any], tty: bool, height: int, width: int
) -> ExecProcess:
    with _Pipes() as pipes:
        popen = conmon.spawn(argv, cwd=directory, pipes=pipes.child_ends())
        pipes.close_child_ends()
        sync = conmon.SyncReader(pipes.take_sync())
        try:
            stream = await _attach(pipes, directory, tty, height, width)
            message = await _next_message(sync)
        except BaseException:
            sync.close()
            popen.kill()
            await asyncio.to_thread(popen.wait)
            raise
    pid = _int_data(message) if message is not None else None
    if pid is not None and pid > 0:
        return ExecProcess(directory=directory, popen=popen, sync=sync, stream=stream, pid=pid,
                           error=None, failure_code=0)  # fmt: skip
    stderr = str((message or {}).get("message", "conmon exited without reporting"))
    args0 = (process.get("args") or [""])[0]
    error = exec_error_text(stderr, args0)
    if stream is not None:
        await stream.close()
    return ExecProcess(directory=directory, popen=popen, sync=sync, stream=None, pid=0,
                       error=error, failure_code=exec_failure_code(error) or 126)  # fmt: skip


async def _attach(
    pipes: _Pipes, directory: Path, tty: bool, height: int, width: int
) -> AttachStream | None:
    os.write(pipes.start_w, b"0")  # 1: let conmon set up its socket and FIFOs
    ready = await _next_message(conmon.SyncReader(pipes.attach_r))
    if ready is None:
        return None  # conmon died early; the sync pipe carries the reason
    stream = await AttachStream.connect(directory)
    if tty and height > 0 and width > 0:
        conmon.write_ctl_resize(directory / "ctl", height, width)
    os.write(pipes.start_w, b"0")  # 2: run `<runtime> exec`
    return stream


class _Pipes:
    """The three conmon pipes; the parent ends are closed on exit unless taken."""

    def __init__(self) -> None:
        self.sync_r, self._sync_w = os.pipe2(os.O_CLOEXEC)
        self.attach_r, self._attach_w = os.pipe2(os.O_CLOEXEC)
        self._start_r, self.start_w = os.pipe2(os.O_CLOEXEC)
        self._child = [self._sync_w, self._attach_w, self._start_r]

    def child_ends(self) -> dict[str, int]:
        return {"_OCI_SYNCPIPE": self._sync_w, "_OCI_ATTACHPIPE": self._attach_w,
                "_OCI_STARTPIPE": self._start_r}  # fmt: skip

    def close_child_ends(self) -> None:
        for fd in self._child:
            os.close(fd)
        self._child = []

    def take_sync(self) -> int:
        fd, self.sync_r = self.sync_r, -1
        return fd

    def __enter__(self) -> _Pipes:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in (self.sync_r, self.attach_r, self.start_w, *self._child):
            if fd >= 0:
                os.close(fd)


async def _next_message(reader: conmon.SyncReader) -> dict[str, Any] | None:
    """Next JSON message from a conmon pipe without blocking the loop; None at EOF."""
    while (message := reader.pop_message()) is None:
        if reader.eof:
            return None
        await readable(reader.fd)
        reader.feed()
    return message


def _int_data(message: dict[str, Any]) -> int | None:
    value = message.get("data")
    return value if isinstance(value, int) else None


def _pidfd_or_none(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None

