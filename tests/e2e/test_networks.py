"""User networks through the docker CLI: name resolution, aliases, links, connect, /etc files."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import pytest

from tests.helpers import BerthDaemon, api

pytestmark = pytest.mark.root

WEB = "mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def net(daemon: BerthDaemon) -> Iterator[str]:
    name = _name("net")
    daemon.docker("network", "create", name, check=True)
    yield name
    daemon.docker("network", "rm", name)


def _run_web(daemon: BerthDaemon, name: str, *args: str) -> str:
    return daemon.docker("run", "-d", "--name", name, "--hostname", name, *args, "busybox", "sh", "-c", WEB,
                         check=True).stdout.strip()


def _fetch(daemon: BerthDaemon, url: str, *args: str) -> tuple[int, str]:
    """wget from a throwaway container (retried while the server starts)."""
    result = None
    for _ in range(40):
        result = daemon.docker("run", "--rm", *args, "busybox", "wget", "-q", "-O-", url)
        if result.returncode == 0 or "bad address" in result.stderr:
            break
        time.sleep(0.1)
    assert result is not None
    return result.returncode, result.stdout + result.stderr


def test_user_network_resolves_names_and_aliases_over_http(daemon: BerthDaemon, net: str) -> None:
    web = _name("web")
    _run_web(daemon, web, "--network", net, "--network-alias", "frontend")
    try:
        code, out = _fetch(daemon, f"http://{web}/", "--network", net)
        assert code == 0 and out == f"hello-{web}\n", out
        code, out = _fetch(daemon, "http://frontend/", "--network", net)
        assert code == 0 and out == f"hello-{web}\n", out
        # the default bridge keeps Docker's behaviour: no name resolution
        code, out = _fetch(daemon, f"http://{web}/")
        assert code != 0 and "bad address" in out
    finally:
        daemon.docker("rm", "-f", web)


def test_default_bridge_containers_do_not_resolve_each_other(daemon: BerthDaemon) -> None:
    web = _name("web")
    _run_web(daemon, web)
    try:
        code, out = _fetch(daemon, f"http://{web}/")
        assert code != 0 and "bad address" in out
    finally:
        daemon.docker("rm", "-f", web)


def test_peers_join_and_leave_hosts_files(daemon: BerthDaemon, net: str) -> None:
    a, b = _name("a"), _name("b")
    daemon.docker("run", "-d", "--name", a, "--network", net, "busybox", "sleep", "600", check=True)
    try:
        daemon.docker("run", "-d", "--name", b, "--network", net, "busybox", "sleep", "600", check=True)
        assert b in daemon.docker("exec", a, "cat", "/etc/hosts", check=True).stdout  # rewritten in place
        daemon.docker("rm", "-f", b, check=True)
        deadline = time.monotonic() + 10
        while b in daemon.docker("exec", a, "cat", "/etc/hosts").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        assert b not in daemon.docker("exec", a, "cat", "/etc/hosts").stdout
    finally:
        daemon.docker("rm", "-f", a, b)


def test_connect_and_disconnect_a_running_container(daemon: BerthDaemon, net: str) -> None:
    web, client = _name("web"), _name("client")
    _run_web(daemon, web, "--network", net)
    daemon.docker("run", "-d", "--name", client, "busybox", "sleep", "600", check=True)
    try:
        assert daemon.docker("exec", client, "wget", "-q", "-O-", f"http://{web}/").returncode != 0
        daemon.docker("network", "connect", "--alias", "cli", net, client, check=True)
        out = daemon.docker("exec", client, "wget", "-q", "-O-", f"http://{web}/")
        assert out.returncode == 0 and out.stdout == f"hello-{web}\n", out.stderr
        assert "cli" in daemon.docker("exec", web, "cat", "/etc/hosts").stdout
        inspect = json.loads(daemon.docker("inspect", client, check=True).stdout)[0]
        assert set(inspect["NetworkSettings"]["Networks"]) == {"bridge", net}
        members = json.loads(daemon.docker("network", "inspect", net, check=True).stdout)[0]["Containers"]
        assert {m["Name"] for m in members.values()} == {web, client}
        daemon.docker("network", "disconnect", net, client, check=True)
        assert daemon.docker("exec", client, "wget", "-q", "-O-", f"http://{web}/").returncode != 0
    finally:
        daemon.docker("rm", "-f", web, client)


def test_link_on_the_default_bridge(daemon: BerthDaemon) -> None:
    web = _name("web")
    _run_web(daemon, web)
    try:
        code, out = _fetch(daemon, "http://db/", "--link", f"{web}:db")
        assert code == 0 and out == f"hello-{web}\n", out
    finally:
        daemon.docker("rm", "-f", web)


def test_hostname_add_host_dns_options(daemon: BerthDaemon) -> None:
    out = daemon.docker("run", "--rm", "--hostname", "myhost", "--add-host", "db.local:10.1.2.3",
                        "--dns", "10.9.9.9", "--dns-search", "example.com", "--dns-option", "ndots:2",
                        "busybox", "sh", "-c", "hostname; cat /etc/hosts /etc/resolv.conf", check=True).stdout
    assert out.startswith("myhost\n")
    assert "10.1.2.3\tdb.local" in out
    assert "nameserver 10.9.9.9" in out and "search example.com" in out and "options ndots:2" in out
    assert "nameserver 127." not in out


def test_network_api_shapes_and_errors(daemon: BerthDaemon, net: str) -> None:
    names = daemon.docker("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    assert {"bridge", "host", "none", net} <= set(names)
    info = json.loads(daemon.docker("network", "inspect", net, check=True).stdout)[0]
    assert info["Driver"] == "bridge" and info["IPAM"]["Config"][0]["Subnet"]
    dup = daemon.docker("network", "create", net)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    status, body = api(daemon.sock, "GET", "/v1.50/networks/nosuch-net")
    assert status == 404 and body == {"message": "network nosuch-net not found"}
    assert daemon.docker("network", "rm", "bridge").returncode == 1
    run = daemon.docker("run", "--rm", "--network", "nosuch-net", "busybox", "true")
    assert run.returncode == 125 and "network nosuch-net not found" in run.stderr
    other = _name("sub")
    created = daemon.docker("network", "create", "--subnet", "10.123.45.0/24", "--gateway", "10.123.45.254", other)
    try:
        assert created.returncode == 0, created.stderr
        out = daemon.docker("run", "--rm", "--network", other, "busybox", "ip", "-4", "addr", "show", "eth0",
                            check=True).stdout
        assert "10.123.45." in out
    finally:
        daemon.docker("network", "rm", other)


def test_network_rm_refuses_active_endpoints_and_prune(daemon: BerthDaemon) -> None:
    name = _name("busy")
    daemon.docker("network", "create", name, check=True)
    c = _name("c")
    daemon.docker("run", "-d", "--name", c, "--network", name, "busybox", "sleep", "600", check=True)
    try:
        result = daemon.docker("network", "rm", name)
        assert result.returncode == 1 and "active endpoints" in result.stderr
    finally:
        daemon.docker("rm", "-f", c)
    pruned = daemon.docker("network", "prune", "-f", check=True).stdout
    assert name in pruned
    assert daemon.docker("network", "inspect", name).returncode == 1


def test_fixed_ip_and_published_port_on_a_user_network(daemon: BerthDaemon) -> None:
    import urllib.request

    name, web = _name("fixed"), _name("web")
    daemon.docker("network", "create", "--subnet", "10.124.7.0/24", name, check=True)
    try:
        _run_web(daemon, web, "--network", name, "--ip", "10.124.7.77", "-p", "18581:80")
        inspect = json.loads(daemon.docker("inspect", web, check=True).stdout)[0]
        assert inspect["NetworkSettings"]["Networks"][name]["IPAddress"] == "10.124.7.77"
        body = b""
        for _ in range(50):
            try:
                body = urllib.request.urlopen("http://127.0.0.1:18581/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == f"hello-{web}\n".encode()
        bad = daemon.docker("run", "--rm", "--network", "bridge", "--ip", "10.124.7.78", "busybox", "true")
        assert bad.returncode != 0
    finally:
        daemon.docker("rm", "-f", web)
        daemon.docker("network", "rm", name)


def test_internal_network_and_connect_before_start(daemon: BerthDaemon) -> None:
    internal, c = _name("int"), _name("c")
    daemon.docker("network", "create", "--internal", internal, check=True)
    try:
        routes = daemon.docker("run", "--rm", "--network", internal, "busybox", "ip", "route", check=True).stdout
        assert "default" not in routes and routes.strip()
        daemon.docker("create", "--name", c, "busybox", "ip", "-o", "-4", "addr", check=True)
        daemon.docker("network", "connect", internal, c, check=True)
        nets = json.loads(daemon.docker("inspect", c, check=True).stdout)[0]["NetworkSettings"]["Networks"]
        assert set(nets) == {"bridge", internal}
        out = daemon.docker("start", "-a", c, check=True).stdout
        assert "eth0" in out and "eth1" in out
    finally:
        daemon.docker("rm", "-f", c)
        daemon.docker("network", "rm", internal)


@pytest.mark.parametrize("on_user_network", [False, True])
def test_interfaces_of_ipv4_networks_have_ipv6_off_and_lo_keeps_it(daemon: BerthDaemon, net: str,
                                                                   on_user_network: bool) -> None:
    """As moby (26.1+) on an IPv4-only network: eth0 gets disable_ipv6, so it sends no DAD or
    MLD packets for the bridge to flood to every other member; lo keeps ::1."""
    args = ("--network", net) if on_user_network else ()
    script = ("cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6 /proc/sys/net/ipv6/conf/lo/disable_ipv6; "
              "ip -6 -o addr show dev eth0 | wc -l; ip -6 -o addr show dev lo")
    out = daemon.docker("run", "--rm", *args, "busybox", "sh", "-c", script, check=True).stdout.split("\n")
    assert out[:3] == ["1", "0", "0"], out
    assert "::1/128" in out[3], out
