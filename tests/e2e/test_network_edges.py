"""User networks at the edges clients reach (issue 11 §1 Networks), through docker-py and the CLI:
names dockerd accepts, user-given subnets, internal networks, names resolved by the embedded
DNS, and several networks joined at create."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator

import docker
import pytest
from docker.types import EndpointConfig, IPAMConfig, IPAMPool

from tests.helpers import BerthDaemon, api, free_subnet

pytestmark = pytest.mark.root


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture()
def client(daemon: BerthDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=daemon.host, version="1.50", timeout=60)
    yield c
    c.close()


@pytest.fixture()
def cleanup(daemon: BerthDaemon) -> Iterator[list[tuple[str, str]]]:
    """(kind, name) pairs removed at the end: containers first, then networks."""
    items: list[tuple[str, str]] = []
    yield items
    for kind, name in sorted(items, key=lambda item: item[0] != "container"):
        if kind == "container":
            daemon.docker("rm", "-f", name)
        else:
            daemon.docker("network", "rm", name)


def _net(daemon: BerthDaemon, cleanup: list[tuple[str, str]], *args: str, name: str = "") -> str:
    name = name or _name("net")
    daemon.docker("network", "create", *args, name, check=True)
    cleanup.append(("network", name))
    return name


def _web(daemon: BerthDaemon, cleanup: list[tuple[str, str]], *args: str) -> str:
    name = _name("web")
    script = f"mkdir -p /w && echo hello-{name} > /w/index.html && exec httpd -f -p 80 -h /w"
    daemon.docker("run", "-d", "--name", name, *args, "busybox", "sh", "-c", script, check=True)
    cleanup.append(("container", name))
    return name


def _sh(daemon: BerthDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker run --rm <args...>`: the last argument is a shell script, retried by the caller."""
    *opts, script = args
    return daemon.docker("run", "--rm", *opts, "busybox", "sh", "-c", script)


def _wget_until(daemon: BerthDaemon, url: str, *opts: str) -> str:
    """wget from a throwaway container, retrying inside it while the server starts."""
    script = f"for i in $(seq 1 50); do wget -q -O- {url} && exit 0; sleep 0.1; done; exit 1"
    result = _sh(daemon, *opts, script)
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- names -------------------------------------------------------------------------------------------

def test_network_names_with_spaces_work_everywhere(daemon: BerthDaemon, client: docker.DockerClient,
                                                   cleanup: list[tuple[str, str]]) -> None:
    name = _net(daemon, cleanup, name=f"my net {secrets.token_hex(3)}")
    net = client.networks.get(name)
    assert net.name == name and net.attrs["Driver"] == "bridge"
    assert name in daemon.docker("network", "ls", "--format", "{{.Name}}", check=True).stdout.splitlines()
    out = daemon.docker("run", "--rm", "--network", name, "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
                        check=True).stdout
    subnet = net.attrs["IPAM"]["Config"][0]["Subnet"]
    assert subnet.rsplit(".", 2)[0] in out
    status, body = api(daemon.sock, "GET", "/v1.50/networks/" + name.replace(" ", "%20"))
    assert status == 200 and body["Name"] == name
    with pytest.raises(docker.errors.APIError) as info:
        client.networks.create("   ")
    assert info.value.status_code == 400 and info.value.explanation == "invalid name:    "


# --- user-given subnets ------------------------------------------------------------------------------

@pytest.fixture()
def routed_subnet() -> Iterator[str]:
    """A subnet the host routes (a bridge of the test's own), as another daemon's bridge or
    the LAN would."""
    link, subnet = "h11d" + secrets.token_hex(3), free_subnet()
    gateway = subnet.replace(".0/24", ".1/24")
    for argv in (["ip", "link", "add", link, "type", "bridge"], ["ip", "addr", "add", gateway, "dev", link],
                 ["ip", "link", "set", link, "up"]):
        subprocess.run(argv, check=True, capture_output=True)
    try:
        yield subnet
    finally:
        subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)


def test_a_user_given_subnet_is_checked_against_this_daemons_pools_only(
        daemon: BerthDaemon, client: docker.DockerClient, cleanup: list[tuple[str, str]], routed_subnet: str) -> None:
    # dockerd's IPAM: a host route does not stop a user-given subnet (it only steers the automatic choice)
    name = _name("routed")
    net = client.networks.create(name, ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=routed_subnet)]))
    cleanup.append(("network", name))
    assert net.attrs["IPAM"]["Config"] == [{"Subnet": routed_subnet, "Gateway": routed_subnet.replace(".0/24", ".1")}]
    auto = client.networks.create(_name("auto"))
    cleanup.append(("network", auto.name))
    assert auto.attrs["IPAM"]["Config"][0]["Subnet"] != routed_subnet
    # ... but one of its own networks does, and so does the default bridge's pool
    other = _name("overlap")
    for subnet in (routed_subnet.replace(".0/24", ".128/25"), daemon.subnet):
        result = daemon.docker("network", "create", "--subnet", subnet, other)
        assert result.returncode == 1, result.stdout
        assert result.stderr.strip() == ("Error response from daemon: invalid pool request: "
                                         "Pool overlaps with other one on this address space")
    with pytest.raises(docker.errors.APIError) as info:
        client.networks.create(other, ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="10.3.3.7/24")]))
    assert info.value.status_code == 400
    assert info.value.explanation == "invalid network config:\ninvalid subnet 10.3.3.7/24: it should be 10.3.3.0/24"
    with pytest.raises(docker.errors.APIError) as info:  # (the CLI checks this one itself)
        client.networks.create(other, ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="10.3.3.0/24",
                                                                             gateway="10.3.4.1")]))
    assert info.value.explanation == ("invalid network config:\ninvalid gateway 10.3.4.1: "
                                      "parent subnet 10.3.3.0/24 doesn't contain this address")
    assert other not in daemon.docker("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()


def test_ip_range_and_gateway_of_a_user_subnet(daemon: BerthDaemon, cleanup: list[tuple[str, str]]) -> None:
    subnet = free_subnet()
    prefix = subnet.rsplit(".", 1)[0]
    name = _net(daemon, cleanup, "--subnet", subnet, "--ip-range", f"{prefix}.128/25", "--gateway", f"{prefix}.254")
    out = daemon.docker("run", "--rm", "--network", name, "busybox", "sh", "-c", "ip -o -4 addr show eth0; ip route",
                        check=True).stdout
    address = out.split("inet ", 1)[1].split("/", 1)[0]
    assert int(address.rsplit(".", 1)[1]) >= 128, out
    assert f"default via {prefix}.254" in out


# --- internal networks -------------------------------------------------------------------------------

def test_internal_network_members_reach_each_other_and_nothing_else(
        daemon: BerthDaemon, cleanup: list[tuple[str, str]]) -> None:
    internal = _net(daemon, cleanup, "--internal")
    inside = _web(daemon, cleanup, "--network", internal, "--network-alias", "svc")
    outside = _web(daemon, cleanup)  # on the default bridge
    outside_ip = json.loads(daemon.docker("inspect", outside, check=True).stdout)[0]["NetworkSettings"]["IPAddress"]
    assert _wget_until(daemon, "http://svc/", "--network", internal) == f"hello-{inside}\n"
    assert _wget_until(daemon, f"http://{outside_ip}/") == f"hello-{outside}\n"  # it serves, but ...
    cut = _sh(daemon, "--network", internal, f"ip route; wget -q -O- http://{outside_ip}/")
    assert cut.returncode != 0 and "default" not in cut.stdout and f"hello-{outside}" not in cut.stdout
    assert "unreachable" in cut.stderr.lower(), cut.stderr  # no route out at all
    info = json.loads(daemon.docker("network", "inspect", internal, check=True).stdout)[0]
    assert info["Internal"] is True
    inside_ip = info["Containers"][next(iter(info["Containers"]))]["IPv4Address"].split("/")[0]
    nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True, check=True).stdout
    assert f"-s {outside_ip}/32" in nat  # masqueraded on the way out ...
    assert f"-s {inside_ip}/32" not in nat  # ... but nothing of an internal network


# --- names through the embedded DNS --------------------------------------------------------------------

def test_aliases_and_links_resolve_through_the_embedded_dns(
        daemon: BerthDaemon, client: docker.DockerClient, cleanup: list[tuple[str, str]]) -> None:
    net = _net(daemon, cleanup)
    web = _web(daemon, cleanup, "--network", net, "--network-alias", "frontend")
    web_ip = client.containers.get(web).attrs["NetworkSettings"]["Networks"][net]["IPAddress"]
    # nslookup asks 127.0.0.11 itself: these answers come from the resolver, not /etc/hosts
    script = "for n in frontend db %s; do nslookup $n 127.0.0.11 | tail -n +3; done" % web
    out = _sh(daemon, "--network", net, "--link", f"{web}:db", script)
    assert out.returncode == 0, out.stderr
    for name in ("frontend", "db", web):
        assert f"Name:\t{name}\nAddress: {web_ip}" in out.stdout, out.stdout
    # docker-py's links= (HostConfig.Links) on a user network, and the alias over HTTP
    body = client.containers.run("busybox", ["wget", "-q", "-O-", "http://backend/"], network=net,
                                 links={web: "backend"}, remove=True)
    assert body == f"hello-{web}\n".encode()
    unknown = _sh(daemon, "--network", net, "nslookup nosuch-name 127.0.0.11")
    assert unknown.returncode != 0


# --- several networks at create ------------------------------------------------------------------------

def test_networking_config_with_several_endpoints_joins_all(
        daemon: BerthDaemon, client: docker.DockerClient, cleanup: list[tuple[str, str]]) -> None:
    a, b = _net(daemon, cleanup), _net(daemon, cleanup)
    peer_b = _web(daemon, cleanup, "--network", b)
    name = _name("multi")
    container = client.containers.run(
        "busybox", ["sleep", "600"], name=name, detach=True, network=a,
        networking_config={a: EndpointConfig("1.50", aliases=["on-a"]), b: EndpointConfig("1.50", aliases=["on-b"])})
    cleanup.append(("container", name))
    container.reload()
    nets = container.attrs["NetworkSettings"]["Networks"]
    assert set(nets) == {a, b}
    assert all(nets[n]["IPAddress"] for n in (a, b)) and "on-b" in nets[b]["Aliases"]
    code, out = container.exec_run(["ip", "-o", "-4", "addr"])
    assert code == 0 and b"eth0" in out and b"eth1" in out
    code, out = container.exec_run(["wget", "-q", "-O-", f"http://{peer_b}/"])
    assert (code, out) == (0, f"hello-{peer_b}\n".encode())
    # peers on b find it by its alias there; the CLI's `--network a --network b` does the same
    found = _sh(daemon, "--network", b, "nslookup on-b 127.0.0.11")
    assert nets[b]["IPAddress"] in found.stdout, found.stdout + found.stderr
    out = daemon.docker("run", "--rm", "--network", a, "--network", b, "busybox", "ip", "-o", "-4", "addr",
                        check=True).stdout
    assert "eth0" in out and "eth1" in out
