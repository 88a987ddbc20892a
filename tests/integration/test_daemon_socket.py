"""The Docker API socket: root-only by default, one group allowed with `--group`."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from berth.daemon.main import _give_socket_to_group
from berth.errors import Unavailable

pytestmark = pytest.mark.root


@pytest.fixture
def sock(tmp_path: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    path = str(tmp_path / "docker.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    os.chmod(path, 0o660)
    yield path
    server.close()


def test_default_is_root_only(sock: str) -> None:
    _give_socket_to_group(sock, "")
    st = os.stat(sock)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o660)


@pytest.mark.parametrize("group", ["nogroup", "65534"])
def test_group_by_name_or_gid(sock: str, group: str) -> None:
    _give_socket_to_group(sock, group)
    assert os.stat(sock).st_gid == 65534


def test_unknown_group(sock: str) -> None:
    with pytest.raises(Unavailable, match="can't find group 'no-such-group-berth'"):
        _give_socket_to_group(sock, "no-such-group-berth")
