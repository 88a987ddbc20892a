"""Create/inspect edges clients reach (issue 11 §1 Create/inspect), through docker-py and the CLI:
legacy link variables and `rm --link`, MacAddress, GroupAdd, volume Subpath."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import docker
import pytest
from docker.types import Mount

from tests.helpers import BerthDaemon, api

pytestmark = pytest.mark.root


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture()
def client(daemon: BerthDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=daemon.host, version="1.50", timeout=60)
    yield c
    c.close()


@pytest.fixture()
def names(daemon: BerthDaemon) -> Iterator[list[str]]:
    """Containers (and then networks, volumes: "network:x", "volume:x") removed at the end."""
    items: list[str] = []
    yield items
    for item in sorted(items, key=lambda i: ":" in i):
        kind, _, name = item.rpartition(":")
        if kind == "network":
            daemon.docker("network", "rm", name)
        elif kind == "volume":
            daemon.docker("volume", "rm", "-f", name)
        else:
            daemon.docker("rm", "-f", name)


# --- legacy links ----------------------------------------------------------------------------------

def test_legacy_link_environment_on_the_default_bridge(daemon: BerthDaemon, names: list[str]) -> None:
    target, parent = _name("pg"), _name("app")
    names += [target, parent]
    daemon.docker("run", "-d", "--name", target, "-e", "POSTGRES_DB=cats", "-e", "HOME=/nothere",
                  "--expose", "5432", "--expose", "8000-8002", "--expose", "53/udp", "busybox", "sleep", "600",
                  check=True)
    ip = json.loads(daemon.docker("inspect", target, check=True).stdout)[0]["NetworkSettings"]["IPAddress"]
    out = daemon.docker("run", "--name", parent, "--link", f"{target}:web-db", "-e", "WEB_DB_ENV_POSTGRES_DB=mine",
                        "busybox", "env", check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    expected = {
        "WEB_DB_NAME": f"/{parent}/web-db",
        "WEB_DB_PORT": f"udp://{ip}:53",  # the lowest port, tcp first among equals
        "WEB_DB_PORT_5432_TCP": f"tcp://{ip}:5432", "WEB_DB_PORT_5432_TCP_ADDR": ip,
        "WEB_DB_PORT_5432_TCP_PORT": "5432", "WEB_DB_PORT_5432_TCP_PROTO": "tcp",
        "WEB_DB_PORT_53_UDP": f"udp://{ip}:53", "WEB_DB_PORT_53_UDP_PROTO": "udp",
        "WEB_DB_PORT_8000_TCP_START": f"tcp://{ip}:8000", "WEB_DB_PORT_8000_TCP_END": f"tcp://{ip}:8002",
        "WEB_DB_PORT_8000_TCP_PORT_START": "8000", "WEB_DB_PORT_8000_TCP_PORT_END": "8002",
        "WEB_DB_PORT_8001_TCP_ADDR": ip,
        "WEB_DB_ENV_POSTGRES_DB": "mine",  # the container's own Env wins
    }
    assert {k: env.get(k) for k in expected} == expected
    assert "WEB_DB_ENV_HOME" not in env and "WEB_DB_ENV_PATH" not in env
    # Config.Env shows what was asked, not the link variables (as dockerd)
    config_env = json.loads(daemon.docker("inspect", parent, check=True).stdout)[0]["Config"]["Env"]
    assert not any(e.startswith("WEB_DB_NAME=/") for e in config_env)


def test_links_on_a_user_network_set_no_variables(daemon: BerthDaemon, names: list[str]) -> None:
    net, target = _name("net"), _name("t")
    daemon.docker("network", "create", net, check=True)
    names += [target, "network:" + net]
    daemon.docker("run", "-d", "--name", target, "--network", net, "--expose", "80", "busybox", "sleep", "600",
                  check=True)
    out = daemon.docker("run", "--rm", "--network", net, "--link", f"{target}:db", "busybox", "sh", "-c",
                        "env; ping -c1 -W5 db", check=True).stdout
    assert "DB_NAME=" not in out and "DB_PORT" not in out and "1 packets received" in out


def test_rm_link_removes_only_the_link(daemon: BerthDaemon, client: docker.DockerClient, names: list[str]) -> None:
    target, parent = _name("t"), _name("p")
    names += [target, parent]
    daemon.docker("run", "-d", "--name", target, "busybox", "sleep", "600", check=True)
    daemon.docker("create", "--name", parent, "--link", f"{target}:db", "busybox", "sh", "-c", "env", check=True)
    removed = daemon.docker("rm", "--link", f"/{parent}/db", check=True)
    assert removed.stdout.strip() == f"/{parent}/db"
    assert client.containers.get(parent).attrs["HostConfig"]["Links"] is None
    assert client.containers.get(target).status == "running"  # the target is untouched
    daemon.docker("start", parent, check=True)
    assert "DB_NAME" not in daemon.docker("logs", parent, check=True).stdout
    again = daemon.docker("rm", "--link", f"{parent}/db")
    assert again.returncode == 1 and f"No such container: {parent}/db" in again.stderr
    default = daemon.docker("rm", "--link", target)
    assert default.returncode == 1
    assert "Conflict, cannot remove the default link name of the container" in default.stderr
    assert client.containers.get(target).status == "running"
    status, body = api(daemon.sock, "DELETE", f"/v1.50/containers/{parent}/db")  # without link=1
    assert status == 404 and body == {"message": f"No such container: {parent}/db"}


# --- MacAddress --------------------------------------------------------------------------------------

def _eth_mac(container: docker.models.containers.Container, ifname: str) -> str:
    code, out = container.exec_run(["cat", f"/sys/class/net/{ifname}/address"])
    assert code == 0, out
    return out.decode().strip()


def test_mac_address_at_create_and_on_connect(daemon: BerthDaemon, client: docker.DockerClient,
                                              names: list[str]) -> None:
    # docker-py's mac_address= is the container-wide Config.MacAddress of API < 1.44
    one = client.containers.run("busybox", ["sleep", "600"], name=_name("mac"), detach=True,
                                mac_address="02:42:ac:11:00:41")
    names.append(one.name)
    one.reload()
    assert _eth_mac(one, "eth0") == "02:42:ac:11:00:41"
    assert one.attrs["NetworkSettings"]["MacAddress"] == "02:42:ac:11:00:41"
    assert one.attrs["NetworkSettings"]["Networks"]["bridge"]["MacAddress"] == "02:42:ac:11:00:41"
    # the CLI (API >= 1.44) puts it in EndpointsConfig, here on a user network
    net = _name("net")
    daemon.docker("network", "create", net, check=True)
    names.append("network:" + net)
    out = daemon.docker("run", "--rm", "--network", net, "--mac-address", "02:42:AC:11:00:42", "busybox",
                        "cat", "/sys/class/net/eth0/address", check=True).stdout
    assert out.strip() == "02:42:ac:11:00:42"
    # network connect with EndpointConfig.MacAddress
    client.networks.get(net).connect(one, mac_address="02:42:ac:11:00:43")
    assert _eth_mac(one, "eth1") == "02:42:ac:11:00:43"
    one.reload()
    assert one.attrs["NetworkSettings"]["Networks"][net]["MacAddress"] == "02:42:ac:11:00:43"
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.create("busybox", ["true"], mac_address="not-a-mac")
    assert info.value.status_code == 400 and "invalid MAC address not-a-mac" in info.value.explanation
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.create("busybox", ["true"], network_mode="host", mac_address="02:42:ac:11:00:44")
    assert info.value.explanation == "conflicting options: mac-address and the network mode"


# --- GroupAdd ---------------------------------------------------------------------------------------

def test_group_add_numeric_and_named(daemon: BerthDaemon, client: docker.DockerClient) -> None:
    out = client.containers.run("busybox", ["id"], group_add=[1234, "nobody"], remove=True).decode()
    assert "groups=" in out and "1234" in out and "65534(nobody)" in out, out
    out = client.containers.run("busybox", ["id", "-G"], user="1000", group_add=["4321"], remove=True).decode()
    assert "4321" in out.split(), out
    cli = daemon.docker("run", "--rm", "--group-add", "nobody", "busybox", "id", check=True).stdout
    assert "65534(nobody)" in cli
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.run("busybox", ["id"], group_add=["nosuchgroup"], remove=True)
    assert "Unable to find group nosuchgroup: no matching entries in group file" in info.value.explanation


# --- volume Subpath -----------------------------------------------------------------------------------

def test_volume_subpath(daemon: BerthDaemon, client: docker.DockerClient, names: list[str]) -> None:
    volume = _name("vol")
    names.append("volume:" + volume)
    client.volumes.create(volume)
    client.containers.run("busybox", ["sh", "-c", "mkdir -p /v/a/b && echo inner > /v/a/b/f && "
                                                  "ln -s /../../../../etc /v/escape"],
                          volumes={volume: {"bind": "/v", "mode": "rw"}}, remove=True)
    mount = Mount("/m", volume, type="volume", subpath="a/b")
    assert client.containers.run("busybox", ["cat", "/m/f"], mounts=[mount], remove=True) == b"inner\n"
    cli = daemon.docker("run", "--rm", "--mount", f"type=volume,src={volume},dst=/m,volume-subpath=a",
                        "busybox", "ls", "/m", check=True).stdout
    assert cli.split() == ["b"]
    # writes land in the subdirectory
    client.containers.run("busybox", ["sh", "-c", "echo new > /m/g"], mounts=[mount], remove=True)
    check = client.containers.run("busybox", ["cat", "/v/a/b/g"], volumes={volume: {"bind": "/v"}}, remove=True)
    assert check == b"new\n"
    # a symlink is followed inside the volume only: /etc of the volume, which does not exist
    for subpath in ("nosuch", "escape"):
        with pytest.raises(docker.errors.APIError) as info:
            client.containers.run("busybox", ["true"], mounts=[Mount("/m", volume, type="volume", subpath=subpath)],
                                  remove=True)
        assert "cannot access path" in info.value.explanation and "no such file or directory" in info.value.explanation
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.create("busybox", ["true"], mounts=[Mount("/m", volume, type="volume", subpath="../x")])
    assert info.value.status_code == 400
    assert info.value.explanation == ('invalid mount config for type "volume": subpath must be a relative path '
                                      "within the volume")


# dockerd 26-28's inspect HostConfig keys for a plain create, in its order (moby's HostConfig with
# Resources embedded after Isolation; Runtime filled by the daemon).
DOCKERD_HOST_CONFIG_KEYS = [
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "ConsoleSize", "CapAdd", "CapDrop", "CgroupnsMode", "Dns", "DnsOptions",
    "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged",
    "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "UTSMode", "UsernsMode", "ShmSize", "Runtime", "Isolation",
    "CpuShares", "Memory", "NanoCpus", "CgroupParent", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices", "DeviceCgroupRules",
    "DeviceRequests", "MemoryReservation", "MemorySwap", "MemorySwappiness", "OomKillDisable", "PidsLimit",
    "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "MaskedPaths", "ReadonlyPaths",
]


def test_inspect_shows_host_config_in_dockerd_s_shape(daemon: BerthDaemon, client: docker.DockerClient,
                                                      names: list[str]) -> None:
    """Every key, also for what the client did not send (docker-py sends few), and `docker update`
    shows in it."""
    name = _name("hostcfg")
    names.append(name)
    container = client.containers.create("busybox", "true", name=name, mem_limit="64m")
    shown = container.attrs["HostConfig"]
    assert list(shown) == DOCKERD_HOST_CONFIG_KEYS
    assert shown["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0} and shown["ConsoleSize"] == [0, 0]
    assert shown["LogConfig"] == {"Type": "json-file", "Config": {}} and shown["PortBindings"] == {}
    assert (shown["Memory"], shown["MemorySwap"], shown["PidsLimit"]) == (64 << 20, 128 << 20, None)
    daemon.docker("update", "--pids-limit", "50", "--restart", "on-failure:2", name, check=True)
    container.reload()
    assert container.attrs["HostConfig"]["PidsLimit"] == 50
    assert container.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
