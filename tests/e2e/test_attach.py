"""Attach flows through a real terminal: detach with Ctrl-P Ctrl-Q, re-attach, `start -a`."""

from __future__ import annotations

import json

import pytest

from tests.helpers import BerthDaemon, drive_pty

pytestmark = pytest.mark.root


def drive(d: BerthDaemon, args: list[str], actions: list[tuple[bytes, bytes]],
          timeout: float = 20, size: tuple[int, int] = (24, 80)) -> tuple[int | None, bytes]:
    return drive_pty(d.env, args, actions, timeout=timeout, size=size)


def test_detach_and_reattach(daemon: BerthDaemon) -> None:
    rc, out = drive(daemon, ["run", "-it", "--name", "det", "busybox", "sh"],
                    [(b"#", b"echo first\r"), (b"first\r\n", b"\x10\x11")])
    try:
        assert rc == 0, out
        assert json.loads(daemon.docker("inspect", "det").stdout)[0]["State"]["Running"] is True
        rc, out = drive(daemon, ["attach", "det"], [(b"#", b"echo again\r"), (b"again\r\n", b"exit 6\r")])
        assert rc == 6 and b"again" in out, out
    finally:
        daemon.docker("rm", "-f", "det")


def test_start_attach_returns_exit_code(daemon: BerthDaemon) -> None:
    daemon.docker("create", "--name", "sa", "busybox", "sh", "-c", "echo started-a; exit 4", check=True)
    try:
        result = daemon.docker("start", "-a", "sa")
        assert result.returncode == 4 and result.stdout == "started-a\n"
    finally:
        daemon.docker("rm", "-f", "sa")


def test_start_interactive_pipes_stdin(daemon: BerthDaemon) -> None:
    daemon.docker("create", "-i", "--name", "si", "busybox", "cat", check=True)
    try:
        result = daemon.docker("start", "-ai", "si", input=b"through start\n")
        assert result.returncode == 0 and result.stdout == "through start\n"
    finally:
        daemon.docker("rm", "-f", "si")


def test_run_tty_starts_with_the_clients_terminal_size(daemon: BerthDaemon) -> None:
    rc, out = drive(daemon, ["run", "-it", "--rm", "busybox", "stty", "size"], [], size=(33, 111))
    assert rc == 0 and b"33 111" in out, out
