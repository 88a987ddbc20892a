"""Managed /etc/hosts and /etc/resolv.conf content (berth.engine.etc_files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.engine import etc_files
from berth.errors import InvalidArgument


def test_hosts_base_has_own_name_extra_hosts_and_links() -> None:
    text = etc_files.hosts_base(hostname="web", domainname="example.com", own_ip="172.18.0.2",
                                extra_hosts=["db:10.0.0.5", "gw:host-gateway", "v6=[::1]"],
                                links=[("172.18.0.9", "cache abcdef123456 redis")], gateway="172.18.0.1")
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "172.18.0.2\tweb.example.com web" in lines
    assert "10.0.0.5\tdb" in lines and "172.18.0.1\tgw" in lines and "::1\tv6" in lines
    assert "172.18.0.9\tcache abcdef123456 redis" in lines
    with pytest.raises(InvalidArgument):
        etc_files.parse_extra_host("nocolon")


def test_peer_lines_drop_duplicates_and_empty_ips() -> None:
    text = etc_files.peer_lines([("172.18.0.3", ["web", "web", "alias"]), ("", ["gone"])])
    assert text == "172.18.0.3\tweb alias\n"
    assert etc_files.peer_lines([]) == ""


def test_resolv_conf_overrides_and_loopback() -> None:
    host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n"
    assert etc_files.resolv_conf(host, host_network=False, dns=[], search=[], options=[]) == \
        "nameserver 10.0.0.2\nsearch corp\noptions edns0\n"
    assert "127.0.0.53" in etc_files.resolv_conf(host, host_network=True, dns=[], search=[], options=[])
    custom = etc_files.resolv_conf(host, host_network=False, dns=["1.1.1.1"], search=["a.b"], options=["ndots:3"])
    assert custom.splitlines() == ["nameserver 1.1.1.1", "search a.b", "options ndots:3"]


def test_rewrite_in_place_keeps_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    etc_files.write_new(path, "a long first version\n")
    inode = os.stat(path).st_ino
    etc_files.rewrite_in_place(path, "short\n")
    assert path.read_text() == "short\n" and os.stat(path).st_ino == inode
    etc_files.rewrite_in_place(tmp_path / "missing", "x")  # a container being removed: ignored
