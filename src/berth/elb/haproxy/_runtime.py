"""HAProxy's runtime API over its unix sockets: the worker's stats socket (servers, stats) and the
master CLI (processes, reload)."""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from pathlib import Path

from berth.errors import Unavailable

# srv_admin_state bits (HAProxy's SRV_ADMF_*).
ADMF_FMAINT = 0x01
ADMF_IMAINT = 0x02
ADMF_CMAINT = 0x04
ADMF_FDRAIN = 0x08
ADMF_IDRAIN = 0x10
ADMF_RMAINT = 0x20
ADMF_HMAINT = 0x40
ADMF_MAINT = ADMF_FMAINT | ADMF_IMAINT | ADMF_CMAINT | ADMF_RMAINT | ADMF_HMAINT
ADMF_DRAIN = ADMF_FDRAIN | ADMF_IDRAIN


class RuntimeError_(Unavailable):
    """The runtime API refused a command or could not be reached."""


@dataclass(frozen=True)
class ServerState:
    backend: str
    name: str
    address: str
    port: int
    op_state: int          # 0 stopped, 1 starting, 2 running, 3 stopping
    admin_state: int       # ADMF_* bits
    weight: int            # user weight

    @property
    def in_maint(self) -> bool:
        return bool(self.admin_state & ADMF_MAINT)

    @property
    def draining(self) -> bool:
        return bool(self.admin_state & ADMF_DRAIN)


@dataclass(frozen=True)
class Proc:
    pid: int
    kind: str              # master | worker
    reloads: int
    old: bool              # an old worker still finishing its connections


def _send(path: Path, command: str, timeout: float = 5.0) -> str:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(command.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError as e:
        raise RuntimeError_(f"haproxy socket {path}: {e}") from e
    return b"".join(chunks).decode(errors="replace")


class Runtime:
    def __init__(self, stats_socket: Path, master_socket: Path) -> None:
        self.stats_socket = stats_socket
        self.master_socket = master_socket

    # -- worker (stats socket) --

    def command(self, command: str) -> str:
        return _send(self.stats_socket, command)

    def checked(self, command: str, ok: tuple[str, ...] = ()) -> str:
        """Run a command whose success answer is empty (or starts with one of `ok`); raise otherwise."""
        out = self.command(command).strip()
        if out and not any(out.startswith(x) for x in ok):
            raise RuntimeError_(f"haproxy refused {command!r}: {out}")
        return out

    def servers_state(self, backend: str = "") -> list[ServerState]:
        out = self.command(f"show servers state {backend}".rstrip())
        states = []
        for line in out.splitlines():
            words = line.split()
            if not line or line.startswith("#") or len(words) < 19:
                continue
            states.append(ServerState(backend=words[1], name=words[3], address=words[4], op_state=int(words[5]),
                                      admin_state=int(words[6]), weight=int(words[7]), port=int(words[18])))
        return states

    def servers_state_text(self) -> str:
        return self.command("show servers state")

    def stat(self) -> list[dict[str, str]]:
        out = self.command("show stat")
        text = out.lstrip("# ")
        return [dict(row) for row in csv.DictReader(io.StringIO(text)) if row.get("pxname")]

    def set_state(self, backend: str, server: str, state: str) -> None:
        self.checked(f"set server {backend}/{server} state {state}")

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        self.checked(f"set server {backend}/{server} weight {weight}")

    def set_addr(self, backend: str, server: str, address: str, port: int) -> None:
        self.checked(f"set server {backend}/{server} addr {address} port {port}", ok=("IP changed", "port changed",
                                                                                       "no need to change"))

    def add_server(self, backend: str, server: str, address: str, port: int, options: list[str]) -> None:
        self.checked(f"add server {backend}/{server} {address}:{port} {' '.join(options)}".rstrip(),
                     ok=("New server registered",))

    def enable_health(self, backend: str, server: str) -> None:
        self.checked(f"enable health {backend}/{server}")

    def mark_down(self, backend: str, server: str) -> None:
        """Start a new server DOWN: HAProxy 2.6 treats an added server as up at once, ELB sends a
        target nothing until its checks pass (`rise` of them, as after any DOWN)."""
        self.checked(f"set server {backend}/{server} health down")

    def enable_server(self, backend: str, server: str) -> None:
        self.checked(f"enable server {backend}/{server}")

    def del_server(self, backend: str, server: str) -> None:
        self.checked(f"del server {backend}/{server}", ok=("Server deleted",))

    # -- master CLI --

    def master(self, command: str) -> str:
        return _send(self.master_socket, command)

    def procs(self) -> list[Proc]:
        procs = []
        old = False
        for line in self.master("show proc").splitlines():
            if line.startswith("# old workers"):
                old = True
                continue
            if line.startswith("#"):
                continue
            words = line.split()
            if len(words) >= 3 and words[0].isdigit():
                procs.append(Proc(pid=int(words[0]), kind=words[1], reloads=int(words[2]), old=old))
        return procs

    def worker_pid(self) -> int | None:
        current = [p for p in self.procs() if p.kind == "worker" and not p.old]
        return current[0].pid if current else None

    def reload(self) -> None:
        """Ask the master to re-execute itself with the config file (seamless: listeners pass over)."""
        try:
            self.master("reload")
        except RuntimeError_:
            pass    # the master closes the CLI connection while it re-executes itself
