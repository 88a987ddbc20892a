"""Embedded DNS (127.0.0.11) on user networks through the docker CLI and busybox nslookup."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from berth.engine import etc_files
from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _sleeper(daemon: BerthDaemon, name: str, *args: str) -> str:
    return daemon.docker("run", "-d", "--name", name, *args, "busybox", "sleep", "600", check=True).stdout.strip()


def _lookup(daemon: BerthDaemon, container: str, name: str) -> tuple[int, list[str], str]:
    """`nslookup name 127.0.0.11` inside `container`: (exit code, IPv4 answers in order, output)."""
    result = daemon.docker("exec", container, "nslookup", "-type=a", name, "127.0.0.11")
    out = result.stdout + result.stderr
    answers = out.split("Name:", 1)[1] if "Name:" in out else ""
    return result.returncode, re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)", answers), out


def _ip(daemon: BerthDaemon, container: str, network: str) -> str:
    info = json.loads(daemon.docker("inspect", container, check=True).stdout)[0]
    return str(info["NetworkSettings"]["Networks"][network]["IPAddress"])


@pytest.fixture
def net(daemon: BerthDaemon) -> Iterator[str]:
    name = _name("dnsnet")
    daemon.docker("network", "create", name, check=True)
    yield name
    daemon.docker("network", "rm", name)


def test_names_aliases_links_and_short_ids_resolve_round_robin(daemon: BerthDaemon, net: str) -> None:
    a, b, client = _name("a"), _name("b"), _name("cli")
    try:
        id_a = _sleeper(daemon, a, "--network", net, "--network-alias", "svc")
        _sleeper(daemon, b, "--network", net, "--network-alias", "svc")
        _sleeper(daemon, client, "--network", net, "--link", f"{a}:db")
        ip_a, ip_b = _ip(daemon, a, net), _ip(daemon, b, net)
        resolv = daemon.docker("exec", client, "cat", "/etc/resolv.conf", check=True).stdout
        assert "nameserver 127.0.0.11\n" in resolv and "options ndots:0" in resolv
        assert resolv.count("nameserver") == 1
        for name, want in ((a, ip_a), (b, ip_b), ("db", ip_a), (id_a[:12], ip_a), (f"{a}.{net}", ip_a)):
            code, ips, out = _lookup(daemon, client, name)
            assert code == 0 and ips == [want], out
        first, second = _lookup(daemon, client, "svc")[1], _lookup(daemon, client, "svc")[1]
        assert sorted(first) == sorted([ip_a, ip_b]) and second == first[::-1]
        # the resolver sits on a random port behind a DNAT: port 53 stays the container's
        own = daemon.docker("exec", client, "sh", "-c", "nc -l -p 53 & sleep 0.3; kill $!")
        assert "in use" not in own.stderr, own.stderr
        code, ips, out = _lookup(daemon, client, "nosuch")
        assert code != 0 and "NXDOMAIN" in out and ips == []
        # a peer that leaves is forgotten; one that joins is found
        daemon.docker("rm", "-f", b, check=True)  # its network teardown runs in the background
        deadline = time.monotonic() + 10
        while _lookup(daemon, client, "svc")[1] != [ip_a] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _lookup(daemon, client, "svc")[1] == [ip_a]
        late = _name("late")
        _sleeper(daemon, late, "--network", net)
        assert _lookup(daemon, client, late)[1] == [_ip(daemon, late, net)]
        daemon.docker("rm", "-f", late)
    finally:
        daemon.docker("rm", "-f", a, b, client)


def test_unknown_external_names_are_refused_without_a_packet_leaving(daemon: BerthDaemon, net: str) -> None:
    client = _name("cli")
    bridge = "br-" + json.loads(daemon.docker("network", "inspect", net, check=True).stdout)[0]["Id"][:12]
    counter = ["FORWARD", "-i", bridge, "-p", "udp", "--dport", "53"]  # counts, decides nothing
    subprocess.run(["iptables", "-I", *counter], check=True)
    try:
        _sleeper(daemon, client, "--network", net)
        code, ips, out = _lookup(daemon, client, "example.com")
        assert code != 0 and ips == [] and "REFUSED" in out, out
        rules = subprocess.run(["iptables", "-v", "-x", "-n", "-L", "FORWARD"], capture_output=True, text=True,
                               check=True).stdout
        line = next(ln for ln in rules.splitlines() if f" {bridge} " in ln and "dpt:53" in ln)
        assert line.split()[0] == "0", line  # no DNS packet was routed out of the network
    finally:
        subprocess.run(["iptables", "-D", *counter], check=False)
        daemon.docker("rm", "-f", client)


def test_default_bridge_keeps_the_hosts_resolv_conf(daemon: BerthDaemon) -> None:
    out = daemon.docker("run", "--rm", "busybox", "cat", "/etc/resolv.conf", check=True).stdout
    host = etc_files.host_file("/etc/resolv.conf")
    assert out == etc_files.resolv_conf(host, host_network=False, dns=[], search=[], options=[])
    assert "127.0.0.11" not in out


def test_resolver_comes_back_after_a_daemon_crash(private: BerthDaemon) -> None:
    private.docker("network", "create", "dnsapp", check=True)
    _sleeper(private, "da", "--network", "dnsapp")
    _sleeper(private, "db", "--network", "dnsapp")
    ip_b = _ip(private, "db", "dnsapp")
    assert _lookup(private, "da", "db")[1] == [ip_b]
    private.kill()
    private.start()
    assert _lookup(private, "da", "db")[1] == [ip_b]
    private.docker("run", "-d", "--name", "dc", "--network", "dnsapp", "busybox", "sleep", "600", check=True)
    assert _lookup(private, "da", "dc")[1] == [_ip(private, "dc", "dnsapp")]
    private.docker("rm", "-f", "da", "db", "dc", check=True)
