"""Shared pieces of the ELB end-to-end tests: the daemon's HAProxy (it outlives the daemon on
purpose, so each test stops it after the daemon) and a look at what it serves."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import BerthDaemon, wait_for


def haproxy_master(d: BerthDaemon) -> int | None:
    try:
        return int((d.run_root / "elb" / "haproxy.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_haproxy(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"haproxy")
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def haproxy_stopped_after(d: BerthDaemon) -> Iterator[None]:
    """Inside a running daemon's block: on the way out, note its HAProxy master; once the daemon is
    gone (the caller's `with running_aws_daemon()` ends after this), stop it. Use as

        with running_aws_daemon() as d, haproxy_stopped_after(d): ...

    (the master is read while the daemon still runs, then stopped by `stop_haproxy`)."""
    masters: list[int] = []
    try:
        yield
    finally:
        pid = haproxy_master(d)
        if pid is not None:
            masters.append(pid)
        d.stop()
        for pid in masters:
            stop_haproxy(pid)


def stop_haproxy(pid: int) -> None:
    if is_haproxy(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        wait_for(f"haproxy {pid} to exit", lambda: not is_haproxy(pid), timeout=15)


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def listening_ports(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN that one of `pids` holds."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    out: set[tuple[str, int]] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        words = line.split()
        if words[3] != "0A" or words[9] not in inodes:   # 0A: LISTEN
            continue
        hexaddr, hexport = words[1].split(":")
        address = socket.inet_ntoa(bytes.fromhex(hexaddr)[::-1])
        out.add((address, int(hexport, 16)))
    return out


def runtime(d: BerthDaemon, command: str) -> str:
    """One command on the daemon's HAProxy worker stats socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(d.run_root / "elb" / "stats.sock"))
        s.sendall(command.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()
