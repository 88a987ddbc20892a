"""Start conmon (podman's container monitor) and speak its pipe protocol (API version 1).

conmon runs `<runtime> create` (or `exec`), becomes the subreaper of the container process,
copies its output to the k8s-file log and to attach-socket clients, and writes the exit code
(128+N for signal N) to `<exit-dir>/<container id>` when the process ends.

Pipes, passed as inherited fds named by environment variables:
  _OCI_SYNCPIPE    conmon -> us: `{"data": <pid>}` once the runtime call succeeded, or
                   `{"data": -N, "message": "<runtime stderr>"}`; for exec a second line
                   `{"data": <exit code>}` when the process ends.
  _OCI_STARTPIPE   us -> conmon: conmon blocks on it before doing anything; with --exec-attach
                   it blocks a second time (after the attach socket exists) before the exec.
  _OCI_ATTACHPIPE  conmon -> us (exec with --exec-attach): `{"data": 0}` once the attach socket
                   is listening.

Files conmon creates in its bundle dir (with --full-attach): `attach` (SOCK_SEQPACKET; records
from conmon are one byte 2=stdout / 3=stderr + data; what we send goes to stdin; our
shutdown(SHUT_WR) closes stdin unless --leave-stdin-open), `ctl` (FIFO; "1 <h> <w>\\n"
resizes the tty), `winsz`, and `oom` (in its cwd) when the cgroup hit an OOM kill.

We pass --sync so conmon stays our direct child (this host's PID 1 reaps orphans only
lazily); it calls setsid() and has its stdio on /dev/null, so it outlives the daemon.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.errors import Unavailable

CONMON_STDOUT, CONMON_STDERR = 2, 3  # record prefixes on the attach socket
SYNC_TIMEOUT = 60.0  # s; `runtime create` on a loaded host is well under a second


@dataclass(frozen=True)
class ConmonPaths:
    bundle: Path
    pid_file: Path  # written by the runtime: the container (or exec) process pid
    exit_dir: Path
    log: str  # "k8s-file:<path>" or "none"


def container_argv(
    conmon: str, runtime_path: str, runtime_root: Path, container_id: str,
    paths: ConmonPaths, *, tty: bool, stdin: bool, stdin_once: bool,
) -> list[str]:  # fmt: skip
    argv = _common_argv(conmon, runtime_path, runtime_root, container_id, container_id, paths)
    # A tty's stdin is never closed by a client going away (moby): `docker run -it` detached
    # with Ctrl-P Ctrl-Q must accept input again on `docker attach`. Non-tty StdinOnce closes it.
    argv += _stdio_flags(tty=tty, stdin=stdin, leave_stdin_open=stdin and (tty or not stdin_once))
    return argv


def exec_argv(
    conmon: str, runtime_path: str, runtime_root: Path, container_id: str, exec_id: str,
    paths: ConmonPaths, process_spec: Path, *, tty: bool, stdin: bool,
) -> list[str]:  # fmt: skip
    argv = _common_argv(conmon, runtime_path, runtime_root, container_id, exec_id, paths)
    argv += ["--exec", "--exec-process-spec", str(process_spec), "--exec-attach"]
    return argv + _stdio_flags(tty=tty, stdin=stdin, leave_stdin_open=False)


def _common_argv(
    conmon: str, runtime_path: str, runtime_root: Path, container_id: str, uuid: str,
    paths: ConmonPaths,
) -> list[str]:  # fmt: skip
    return [
        conmon, "--api-version", "1", "--sync",
        "-c", container_id, "-u", uuid, "-n", container_id,
        "-r", runtime_path, "--runtime-arg", "--root", "--runtime-arg", str(runtime_root),
        "-b", str(paths.bundle), "-p", str(paths.pid_file),
        "--exit-dir", str(paths.exit_dir), "--full-attach",
        "-l", paths.log, "--log-level", "error",
    ]  # fmt: skip


def _stdio_flags(*, tty: bool, stdin: bool, leave_stdin_open: bool) -> list[str]:
    flags = ["-t"] if tty else []
    if stdin:
        flags.append("-i")
    if leave_stdin_open:
        flags.append("--leave-stdin-open")
    return flags


def spawn(argv: list[str], *, cwd: Path, pipes: dict[str, int]) -> subprocess.Popen[bytes]:
    """Start conmon with `pipes` (env name -> fd) inherited; stdio is /dev/null."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    env.update({name: str(fd) for name, fd in pipes.items()})
    try:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, pass_fds=tuple(pipes.values()),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as err:
        raise Unavailable(f"cannot start conmon: {err}") from err


class SyncReader:
    """Reads the newline-delimited JSON messages of a sync/attach pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""
        self.eof = False

    def pop_message(self) -> dict[str, Any] | None:
        line, sep, rest = self._buffer.partition(b"\n")
        if not sep:
            return None
        self._buffer = rest
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            message = {"data": -1, "message": line.decode(errors="replace")}
        return message if isinstance(message, dict) else {"data": -1, "message": str(message)}

    def feed(self) -> None:
        """One non-blocking-safe read into the buffer (call when the fd is readable)."""
        data = os.read(self.fd, 65536)
        if not data:
            self.eof = True
        self._buffer += data

    def read_blocking(self, timeout: float = SYNC_TIMEOUT) -> dict[str, Any] | None:
        """Next message, waiting up to `timeout`; None at EOF."""
        deadline = time.monotonic() + timeout
        while (message := self.pop_message()) is None:
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                raise Unavailable("conmon did not report within the time limit")
            self.feed()
        return message

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def write_ctl_resize(ctl_fifo: Path, height: int, width: int) -> bool:
    """Ask conmon to resize the tty; False when no conmon listens any more."""
    try:
        fd = os.open(ctl_fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, f"1 {height} {width}\n".encode())
    except OSError:
        return False
    finally:
        os.close(fd)
    return True
