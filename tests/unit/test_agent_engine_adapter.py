"""The agent's engine adapter, without an engine: ContainerSpec → Docker create body, the
engine's container snapshot → ContainerStatus, image-reference and event classification."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone
from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.types.host_config import LogConfig
from berth.types.container import ContainerConfig as EngineConfig
from berth.types.container import EndpointSettings, HealthConfig
from berth.agent._engine import (
    ContainerEngine, ContainerSpec, DeviceMapping, HealthProbe, ImageNotAvailable, Mount, PortBinding, RegistryAuth,
)
from berth.agent.engine_adapter import (
    EngineAdapter, engine_spec, is_exit_event, names_registry, parse_time, published_ports, status_from_snapshot,
)
from berth.engine.containers import Container, ContainerSnapshot, ContainerState, snapshot_of
from berth.engine.events import EventBus
from berth.errors import FailedPrecondition, NotFound, Unavailable
from berth.images.distribution import Credentials

FULL = ContainerSpec(
    name="ecs-web-3-app-9a8b7c",
    image="127.0.0.1:5000/app:v1",
    labels={"com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-east-1:000000000000:task/c/1", "x": "y"},
    env=("A=1", "B=two words"),
    entrypoint=("/bin/sh", "-c"),
    command=("exec httpd -f",),
    working_dir="/srv",
    user="1000:1000",
    hostname="web",
    network_mode="bridge",
    ports=(PortBinding(80), PortBinding(53, "udp", 5353, "127.0.0.1"), PortBinding(80, host_port=8080)),
    links=("ecs-web-3-db-1:db",),
    extra_hosts=("gw:10.0.0.1",),
    dns_servers=("10.0.0.2",),
    dns_search=("example.internal",),
    cpu_shares=256,
    memory=128 * 1024 * 1024,
    memory_reservation=64 * 1024 * 1024,
    ulimits=(("nofile", 1024, 4096),),
    cap_add=("NET_ADMIN",),
    cap_drop=("MKNOD",),
    init=True,
    devices=(DeviceMapping("/dev/fuse", "/dev/fuse", "rw"),),
    privileged=True,
    read_only_rootfs=True,
    mounts=(
        Mount("bind", "/srv/data", "/data", read_only=True),
        Mount("bind", "/srv/logs", "/logs"),
        Mount("volume", "ecs-web-3-cache", "/cache"),
        Mount("tmpfs", "", "/scratch", tmpfs_size=64 * 1024 * 1024),
        Mount("tmpfs", "", "/run/x", read_only=True, tmpfs_size=1024, tmpfs_options=("noexec", "mode=1777")),
    ),
    volumes_from=("0123abcd:ro",),
    health=HealthProbe(("CMD-SHELL", "wget -q -O- localhost"), interval=5, timeout=2.5, retries=4,
                       start_period=0.5),
    stop_timeout=7,
    log_driver="awslogs",
    log_options={"awslogs-group": "/ecs/web"},
    tty=True,
    open_stdin=True,
    shm_size=32 * 1024 * 1024,
)


def test_engine_spec_translates_every_field() -> None:
    made = engine_spec(FULL)
    hc = made.host_config
    assert made.config == EngineConfig(
        image="127.0.0.1:5000/app:v1",
        env=("A=1", "B=two words"),
        labels={"com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-east-1:000000000000:task/c/1", "x": "y"},
        exposed_ports=("80/tcp", "53/udp"),
        tty=True,
        open_stdin=True,
        entrypoint=("/bin/sh", "-c"),
        cmd=("exec httpd -f",),
        working_dir="/srv",
        user="1000:1000",
        hostname="web",
        stop_timeout=7,
        healthcheck=HealthConfig(test=("CMD-SHELL", "wget -q -O- localhost"), interval=5_000_000_000,
                                 timeout=2_500_000_000, retries=4, start_period=500_000_000),
    )
    # what `docker run` would send for it
    assert hc == typed_hc({
        "NetworkMode": "bridge",
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}, {"HostIp": "", "HostPort": "8080"}],
                         "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]},
        "Links": ["ecs-web-3-db-1:db"],
        "ExtraHosts": ["gw:10.0.0.1"],
        "Dns": ["10.0.0.2"],
        "DnsSearch": ["example.internal"],
        "CpuShares": 256,
        "Memory": 134217728,
        "MemoryReservation": 67108864,
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096}],
        "CapAdd": ["NET_ADMIN"],
        "CapDrop": ["MKNOD"],
        "Init": True,
        "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rw"}],
        "Privileged": True,
        "ReadonlyRootfs": True,
        "VolumesFrom": ["0123abcd:ro"],
        # host paths as Binds: a missing source directory is created (AWS documents it for sourcePath)
        "Binds": ["/srv/data:/data:ro", "/srv/logs:/logs"],
        "Mounts": [
            {"Type": "volume", "Source": "ecs-web-3-cache", "Target": "/cache", "ReadOnly": False},
            {"Type": "tmpfs", "Target": "/scratch", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 67108864}},
        ],
        # a tmpfs with mount options: HostConfig.Tmpfs, as the ECS agent does
        "Tmpfs": {"/run/x": "size=1024,noexec,mode=1777,ro"},
        "LogConfig": {"Type": "awslogs", "Config": {"awslogs-group": "/ecs/web"}},
        "ShmSize": 33554432,
    })
    assert made.networking == {}


def test_engine_spec_leaves_unset_values_to_the_engine_and_image() -> None:
    made = engine_spec(ContainerSpec(name="c", image="busybox"))
    hc = made.host_config
    assert made.config == EngineConfig(image="busybox", exposed_ports=()) and made.networking == {}
    assert (hc.log_config, hc.shm_size, hc.binds, hc.mounts, hc.tmpfs) == (LogConfig(), 0, None, None, {})
    assert hc.port_bindings == {}
    assert hc.network_mode == "bridge" and hc.memory == 0 and hc.cpu_shares == 0


def test_engine_spec_empty_command_is_kept_distinct_from_none() -> None:
    made = engine_spec(ContainerSpec(name="c", image="busybox", command=()))
    assert made.config.cmd == ()


def test_engine_spec_aliases_only_on_a_user_network() -> None:
    on_user = engine_spec(ContainerSpec(name="c", image="busybox", network_mode="ecs-net",
                                        network_aliases=("web", "api")))
    assert on_user.networking == {"ecs-net": EndpointSettings(aliases=("web", "api"))}
    assert on_user.host_config.network_mode == "ecs-net"
    for mode in ("bridge", "host", "none", "container:0123abcd"):
        made = engine_spec(ContainerSpec(name="c", image="busybox", network_mode=mode, network_aliases=("web",)))
        assert made.networking == {}
        assert made.host_config.network_mode == mode


def test_engine_spec_rejects_an_unknown_mount_kind() -> None:
    with pytest.raises(ValueError, match="nfs"):
        engine_spec(ContainerSpec(name="c", image="busybox", mounts=(Mount("nfs", "x", "/x"),)))


# A running container as berth's engine records it (abridged to what is read).
def running(**changes: Any) -> Container:
    c = Container(
        id="4f" * 32, created="2025-03-01T10:00:00.000000Z", name="ecs-web-3-app-9a8b7c",
        image="127.0.0.1:5000/app:v1", image_id="sha256:" + "ab" * 32,
        config=EngineConfig(image="127.0.0.1:5000/app:v1", labels={"com.amazonaws.ecs.task-arn": "t1"},
                            exposed_ports=("80/tcp", "53/udp", "9000/tcp")),
        host_config=typed_hc({"NetworkMode": "bridge", "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]}}),
        state=ContainerState(status="running", pid=4242, started_at="2025-03-01T10:00:01.250000Z"),
        network={"mode": "bridge", "netns_path": "/run/berth/netns/4f", "ip_address": "10.88.0.5", "prefix_len": 16,
                 "gateway": "10.88.0.1", "mac_address": "",
                 "ports": [{"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 32768},
                           {"container_port": 53, "protocol": "udp", "host_ip": "127.0.0.1", "host_port": 5353}],
                 "endpoints": {}},
        health={"Status": "healthy", "FailingStreak": 0, "Log": []})
    for key, value in changes.items():
        setattr(c, key, value)
    return c


def snap(c: Container) -> ContainerSnapshot:
    return snapshot_of(c, dir="/r", log_path="/r/ctr.log", default_runtime="crun")


def test_status_of_a_running_container() -> None:
    status = status_from_snapshot(snap(running()))
    assert status.id == "4f" * 32
    assert status.name == "ecs-web-3-app-9a8b7c"
    assert status.labels == {"com.amazonaws.ecs.task-arn": "t1"}
    assert status.state == "running"
    assert status.exit_code is None
    assert status.error == "" and not status.oom_killed
    assert status.health == "healthy"
    assert status.started_at == datetime(2025, 3, 1, 10, 0, 1, 250000, tzinfo=timezone.utc).timestamp()
    assert status.finished_at is None
    assert status.ports == (PortBinding(80, "tcp", 32768, ""), PortBinding(53, "udp", 5353, "127.0.0.1"))
    assert status.ip_address == "10.88.0.5"
    assert status.image_digest == "sha256:" + "ab" * 32


def test_status_of_an_exited_container() -> None:
    state = ContainerState(status="exited", exit_code=137, oom_killed=True, started_at="2025-03-01T10:00:01.250000Z",
                           finished_at="2025-03-01T10:05:00.123456789Z")
    status = status_from_snapshot(snap(running(state=state, health=None)))
    assert status.state == "exited" and status.exit_code == 137 and status.oom_killed
    assert status.finished_at == pytest.approx(datetime(2025, 3, 1, 10, 5, 0, 123456, tzinfo=timezone.utc).timestamp())
    assert status.health == "" and status.ports == () and status.ip_address == ""


def test_status_of_a_created_container_and_a_start_failure() -> None:
    status = status_from_snapshot(snap(running(state=ContainerState(status="created"))))
    assert status.exit_code is None and status.started_at is None and status.finished_at is None
    failed = ContainerState(status="exited", exit_code=127, error="exec: \"nope\": executable file not found")
    status = status_from_snapshot(snap(running(state=failed)))
    assert status.exit_code == 127 and "executable file not found" in status.error


def test_ip_address_by_network_mode() -> None:
    on_user_network = dict(running().network, ip_address="", endpoints={"ecs-net": {
        "network_id": "n1", "ip_address": "172.30.0.9", "prefix_len": 24, "gateway": "172.30.0.1"}})
    user = running(host_config=typed_hc({"NetworkMode": "ecs-net"}), endpoints={"ecs-net": EndpointSettings()},
                   network=on_user_network)
    assert status_from_snapshot(snap(user)).ip_address == "172.30.0.9"
    for mode in ("host", "none", "container:" + "1" * 64):
        other = running(host_config=typed_hc({"NetworkMode": mode}))
        assert status_from_snapshot(snap(other)).ip_address == ""


def test_parse_time() -> None:
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("") is None and parse_time(None) is None and parse_time("garbage") is None
    assert parse_time("2025-03-01T10:00:00Z") == datetime(2025, 3, 1, 10, tzinfo=timezone.utc).timestamp()
    assert parse_time("2025-03-01T10:00:00.5+01:00") == datetime(2025, 3, 1, 9, 0, 0, 500000,
                                                                 tzinfo=timezone.utc).timestamp()


def test_published_ports_skip_unbound() -> None:
    config = dataclasses.replace(running().config, exposed_ports=("80/tcp", "81/tcp"))
    bound = dict(running().network, ports=[{"container_port": 81, "protocol": "tcp", "host_ip": "::", "host_port": 81}])
    assert published_ports(snap(running(config=config, network=bound))) == (PortBinding(81, "tcp", 81, "::"),)
    stopped = running(config=config, network=bound, state=ContainerState(status="exited"))
    assert published_ports(snap(stopped)) == ()


@pytest.mark.parametrize(("reference", "remote"), [
    ("busybox", False), ("busybox:latest", False), ("bob/app:1", False), ("docker.io/library/busybox", False),
    ("127.0.0.1:5000/app:v1", True), ("localhost/app", True),
    ("000000000000.dkr.ecr.us-east-1.localhost.localstack.cloud:4566/app:v1", True),
    ("registry.example.com/team/app@sha256:" + "a" * 64, True), ("Not A Reference", False),
])
def test_names_registry(reference: str, remote: bool) -> None:
    assert names_registry(reference) is remote


def test_exit_events() -> None:
    def event(action: str, type_: str = "container") -> dict[str, Any]:
        return {"Type": type_, "Action": action, "Actor": {"ID": "c1", "Attributes": {}}}
    for action in ("die", "oom", "destroy", "health_status: healthy", "health_status: unhealthy"):
        assert is_exit_event(event(action)), action
    for action in ("start", "create", "kill", "exec_start: sh"):
        assert not is_exit_event(event(action)), action
    assert not is_exit_event(event("destroy", "volume"))


# --- the adapter's delegation, with fakes for the engine services ------------------------------

class _FakeContainers:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        self.calls.append(("stop", ref, timeout))
        if self.error:
            raise self.error

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        self.calls.append(("remove", ref, force, volumes))
        if self.error:
            raise self.error

    def inspect(self, ref: str) -> ContainerSnapshot:
        raise NotFound(f"No such container: {ref}")


def _adapter(containers: Any = None, events: Any = None, networks: Any = None) -> EngineAdapter:
    return EngineAdapter(containers=containers, image_store=None, distribution=None, volumes=None,
                         networks=networks, events=events, bridge_gateway="10.88.0.1", bridge_subnet="10.88.0.0/16")


@pytest.mark.parametrize("error", [None, NotFound("No such container: x"), FailedPrecondition("already stopped")])
def test_stop_and_remove_accept_absent_and_stopped(error: Exception | None) -> None:
    containers = _FakeContainers(error)
    adapter = _adapter(containers)
    asyncio.run(adapter.stop("x", 3))
    if not isinstance(error, FailedPrecondition):  # remove never says "already stopped"
        asyncio.run(adapter.remove("x"))
    assert containers.calls[0] == ("stop", "x", 3)
    assert adapter.inspect("x") is None


def test_network_address() -> None:
    class Networks:
        def inspect_json(self, ref: str) -> dict[str, Any]:
            if ref != "ecs-net":
                raise NotFound(f"network {ref} not found")
            return {"IPAM": {"Config": [{"Subnet": "172.30.0.0/24", "Gateway": "172.30.0.1"}]}}
    adapter = _adapter(networks=Networks())
    assert adapter.network_address("bridge") == ("10.88.0.1", "10.88.0.0/16")
    assert adapter.network_address("ecs-net") == ("172.30.0.1", "172.30.0.0/24")
    with pytest.raises(NotFound):
        adapter.network_address("nope")


def test_on_exit_delivers_exits_until_unsubscribed() -> None:
    async def scenario() -> list[str]:
        bus = EventBus()
        adapter = _adapter(events=bus)
        seen: list[str] = []

        def callback(container_id: str) -> None:
            if container_id == "boom":
                raise RuntimeError("a failing callback does not end the subscription")
            seen.append(container_id)
        unsubscribe = adapter.on_exit(callback)
        bus.publish("container", "start", "c0", {})
        bus.publish("container", "die", "boom", {})
        bus.publish("container", "die", "c1", {"exitCode": "0"})
        bus.publish("container", "health_status: unhealthy", "c2", {})
        bus.publish("container", "destroy", "c3", {})
        deadline = asyncio.get_running_loop().time() + 5
        while len(seen) < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        unsubscribe()
        await asyncio.sleep(0)  # let the cancellation land
        bus.publish("container", "die", "c4", {})
        await adapter.close()
        return seen

    assert asyncio.run(scenario()) == ["c1", "c2", "c3"]


def test_the_adapter_is_a_container_engine() -> None:
    engine: ContainerEngine = _adapter()  # mypy checks the signatures against the Protocol
    assert engine is not None


class _FakeImages:
    def __init__(self, local: dict[str, str]) -> None:
        self.local = local

    def resolve(self, name: str) -> Any:
        if name not in self.local:
            raise NotFound(f"No such image: {name}")
        return type("Image", (), {"id": self.local[name]})()


class _FakeDistribution:
    def __init__(self, images: _FakeImages, pulled: dict[str, str], error: Exception | None = None) -> None:
        self.images, self.pulled, self.error = images, pulled, error
        self.calls: list[tuple[str, Credentials]] = []

    def pull(self, image: str, tag: str, credentials: Credentials, emit: Any, *, platform: str = "") -> None:
        self.calls.append((image, credentials))
        if self.error is not None:
            raise self.error
        self.images.local[image] = self.pulled[image]


def _image_adapter(local: dict[str, str], pulled: dict[str, str],
                   error: Exception | None = None) -> tuple[EngineAdapter, _FakeDistribution]:
    images = _FakeImages(dict(local))
    distribution = _FakeDistribution(images, pulled, error)
    adapter = EngineAdapter(containers=None, image_store=images, distribution=distribution, volumes=None,
                            networks=None, events=None, bridge_gateway="10.88.0.1", bridge_subnet="10.88.0.0/16")
    return adapter, distribution


def test_ensure_image_pull_policy() -> None:
    ref = "127.0.0.1:5000/app:v1"
    # a short name that is here: used, never pulled
    adapter, dist = _image_adapter({"busybox": "sha256:bb"}, {})
    assert asyncio.run(adapter.ensure_image("busybox", None)) == "sha256:bb" and dist.calls == []
    # a registry reference: pulled even when here (its tag may have moved), with the credentials given
    adapter, dist = _image_adapter({ref: "sha256:old"}, {ref: "sha256:new"})
    auth = RegistryAuth("AWS", "token", "127.0.0.1:5000")
    assert asyncio.run(adapter.ensure_image(ref, auth)) == "sha256:new"
    assert dist.calls == [(ref, Credentials(username="AWS", password="token", server_address="127.0.0.1:5000"))]
    # a digest that is here: nothing to pull
    pinned = "127.0.0.1:5000/app@sha256:" + "a" * 64
    adapter, dist = _image_adapter({pinned: "sha256:pinned"}, {})
    assert asyncio.run(adapter.ensure_image(pinned, None)) == "sha256:pinned" and dist.calls == []
    # the pull fails: the local copy (ECS_IMAGE_PULL_BEHAVIOR=default), else the engine's message
    adapter, dist = _image_adapter({ref: "sha256:old"}, {}, Unavailable("registry down"))
    assert asyncio.run(adapter.ensure_image(ref, None)) == "sha256:old"
    adapter, dist = _image_adapter({}, {}, NotFound("manifest for 127.0.0.1:5000/app:v1 not found"))
    with pytest.raises(ImageNotAvailable, match="^manifest for 127.0.0.1:5000/app:v1 not found$"):
        asyncio.run(adapter.ensure_image(ref, None))
