"""The agent's EngineAdapter over berth's real engine, built in-process as `Daemon.build()` does
(needs root, conmon, an OCI runtime, CNI plugins and busybox-static).

Each test gets an engine of its own on a temp root with its own bridge and subnet, and runs in
one `asyncio.run`: the engine's per-container locks and exit monitors belong to that loop, so its
containers are removed and its services closed before the loop ends. The host clean-up after
that (conmons, CNI leftovers, isolation rules, bridge, mounts) is tests.helpers.BerthDaemon's.
"""

from __future__ import annotations

from berth.types.create_requests import IpamPool, NetworkCreate

import asyncio
import os
import secrets
import shutil
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from berth.agent._engine import ContainerSpec, ContainerStatus, HealthProbe, ImageNotAvailable, Mount, PortBinding
from berth.agent.engine_adapter import PAUSE_IMAGE, EngineAdapter
from berth.daemon.config import DaemonConfig
from berth.daemon.main import Daemon
from berth.errors import BerthError, Conflict, NotFound
from tests.helpers import BerthDaemon, conmons_under, mounts_under

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("conmon") is None, reason="needs conmon"),
    pytest.mark.skipif(not Path("/usr/lib/cni/bridge").exists(), reason="needs CNI plugins"),
    pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="needs busybox-static"),
]

TASK_LABEL = "com.amazonaws.ecs.task-arn"
HTTPD = ("sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www")
T = TypeVar("T")
Scenario = Callable[[EngineAdapter, Daemon], Awaitable[None]]


@pytest.fixture()
def host() -> Iterator[BerthDaemon]:
    """A temp root, bridge name and subnet (BerthDaemon's), and its destroy-time clean-up;
    no daemon process is started: the engine runs in this process."""
    d = BerthDaemon()
    base = d.base
    try:
        yield d
    finally:
        d.destroy()
        assert conmons_under(base) == [], "conmon processes left behind"
        assert mounts_under(base) == [], "mounts left behind"


def run_engine(host: BerthDaemon, scenario: Scenario) -> None:
    asyncio.run(_with_engine(host, scenario))


async def _with_engine(host: BerthDaemon, scenario: Scenario) -> None:
    daemon = Daemon(DaemonConfig(
        root=host.root, run_root=host.run_root, bridge_name=host.bridge, bridge_subnet=host.subnet,
        registry_addr="off", aws_addr="off", docker_hosts=(),
        network_spares=0))  # no background spare filler racing the clean-up
    daemon.build()
    try:
        await asyncio.to_thread(daemon.networks.ensure_isolation)
        await daemon.containers.restore()
        adapter = EngineAdapter(daemon.containers, daemon.image_store, daemon.distribution, daemon.volumes,
                                daemon.networks, daemon.events, daemon.config.bridge_gateway,
                                daemon.config.bridge_subnet)
        try:
            await scenario(adapter, daemon)
        finally:
            await adapter.close()
    finally:
        await _shut_down(daemon)


async def _shut_down(daemon: Daemon) -> None:
    """Remove what the scenario left, then close the engine as `Daemon.serve` does on SIGTERM."""
    for snapshot in daemon.containers.list(all=True, limit=-1, filters={}):
        try:
            await daemon.containers.remove(snapshot.container.id, force=True, volumes=True)
        except NotFound:
            pass
    await daemon.containers.close()
    await asyncio.to_thread(daemon.network.close)
    await asyncio.to_thread(daemon.networks.close_dns)
    await daemon.builder.close()
    daemon.db.close()
    daemon._lock_file.close()


async def until(what: str, probe: Callable[[], T | None], timeout: float = 20) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bytes(resp.read())
    except OSError:
        return None


async def http_get(url: str, timeout: float = 20) -> bytes:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        body = await asyncio.to_thread(_get, url)
        if body is not None:
            return body
        if loop.time() > deadline:
            raise AssertionError(f"no answer from {url}")
        await asyncio.sleep(0.05)


def test_container_lifecycle(host: BerthDaemon) -> None:
    async def scenario(adapter: EngineAdapter, daemon: Daemon) -> None:
        busybox = await asyncio.to_thread(daemon.image_store.bootstrap_busybox, "busybox:latest")
        image_id = await adapter.ensure_image("busybox", None)
        assert image_id == busybox.id

        exits: list[str] = []
        unsubscribe = adapter.on_exit(exits.append)
        await adapter.ensure_volume("agent-data", {"owner": "agent"}, None, {})
        spec = ContainerSpec(
            name="ecs-web-1-httpd-0a1b", image="busybox", labels={TASK_LABEL: "task/1", "role": "web"},
            command=HTTPD, env=("GREETING=hi",), ports=(PortBinding(80),), stop_timeout=1,
            mounts=(Mount("volume", "agent-data", "/data"),))
        cid = await adapter.create(spec)
        created = adapter.inspect(cid)
        assert created is not None
        assert created.state == "created" and created.exit_code is None and created.ports == ()
        assert created.name == spec.name and created.labels[TASK_LABEL] == "task/1"

        await adapter.start(cid)
        running = adapter.inspect(cid)
        assert running is not None and running.state == "running" and running.exit_code is None
        assert running.started_at is not None and running.finished_at is None
        assert running.image_digest == image_id
        [binding] = running.ports
        assert binding.container_port == 80 and binding.protocol == "tcp" and binding.host_port > 0
        assert running.ip_address.startswith(host.subnet.rsplit(".", 1)[0] + ".")
        assert await http_get(f"http://127.0.0.1:{binding.host_port}/") == b"hi\n"

        assert [s.id for s in adapter.list_labelled(TASK_LABEL)] == [cid]
        assert adapter.list_labelled("com.example.absent") == []
        with pytest.raises(Conflict):  # in use by the container
            await adapter.remove_volume("agent-data")

        await adapter.stop(cid, None)  # httpd as PID 1 ignores SIGTERM: killed after StopTimeout
        await until("the exit callback", lambda: cid in exits)
        stopped = adapter.inspect(cid)
        assert stopped is not None and stopped.state == "exited" and stopped.exit_code == 137
        assert stopped.finished_at is not None and running.started_at is not None
        assert stopped.finished_at >= running.started_at
        assert stopped.ports == () and stopped.ip_address == ""
        await adapter.stop(cid, 1)  # already stopped: fine
        assert [s.state for s in adapter.list_labelled(TASK_LABEL)] == ["exited"]

        await adapter.remove(cid)
        assert adapter.inspect(cid) is None
        assert adapter.list_labelled(TASK_LABEL) == []
        await adapter.remove(cid)  # absent: fine
        await adapter.stop(cid, 1)
        unsubscribe()

        await adapter.remove_volume("agent-data")
        with pytest.raises(NotFound):
            await asyncio.to_thread(daemon.volumes.inspect_json, "agent-data")
        await adapter.remove_volume("agent-data")  # absent: fine

    run_engine(host, scenario)


def test_health_probe_reports_healthy(host: BerthDaemon) -> None:
    async def scenario(adapter: EngineAdapter, daemon: Daemon) -> None:
        await asyncio.to_thread(daemon.image_store.bootstrap_busybox, "busybox:latest")
        changes: list[str] = []
        adapter.on_exit(changes.append)  # health changes are delivered too
        spec = ContainerSpec(
            name="ecs-web-1-probe-2c3d", image="busybox", labels={TASK_LABEL: "task/2"},
            command=("sleep", "600"), network_mode="none", stop_timeout=0,
            health=HealthProbe(("CMD-SHELL", "test -d /proc"), interval=0.2, timeout=2, retries=2))
        cid = await adapter.create(spec)
        await adapter.start(cid)
        status = await until("healthy", lambda: _healthy(adapter.inspect(cid)))
        assert status.ip_address == "" and status.state == "running"
        await until("a health_status callback", lambda: cid in changes)
        await adapter.remove(cid)  # force-removes a running container
        assert adapter.inspect(cid) is None

    run_engine(host, scenario)


def _healthy(status: ContainerStatus | None) -> ContainerStatus | None:
    return status if status is not None and status.health == "healthy" else None


def test_images_volumes_and_networks(host: BerthDaemon) -> None:
    async def scenario(adapter: EngineAdapter, daemon: Daemon) -> None:
        with pytest.raises(ImageNotAvailable, match="connection refused"):  # the engine's wording
            await adapter.ensure_image("127.0.0.1:1/nope:1", None)
        with pytest.raises(ImageNotAvailable):  # not here, and no public registry is contacted
            await adapter.ensure_image("busybox", None)

        busybox = await asyncio.to_thread(daemon.image_store.bootstrap_busybox, "busybox:latest")
        # a registry reference whose pull fails but which is here: the local copy (ECS's default pull behaviour)
        await asyncio.to_thread(daemon.image_store.tag, "busybox:latest", "127.0.0.1:1/cached:1")
        assert await adapter.ensure_image("127.0.0.1:1/cached:1", None) == busybox.id

        assert await adapter.ensure_pause_image() == PAUSE_IMAGE
        pause = await asyncio.to_thread(daemon.image_store.resolve, PAUSE_IMAGE)
        assert await adapter.ensure_pause_image() == PAUSE_IMAGE  # present: not built again
        assert (await asyncio.to_thread(daemon.image_store.resolve, PAUSE_IMAGE)).id == pause.id

        await adapter.ensure_volume("agent-vol", {"a": "b"}, "local", {})
        await adapter.ensure_volume("agent-vol", {"a": "b"}, None, {})  # exists: fine
        assert daemon.volumes.inspect_json("agent-vol")["Labels"] == {"a": "b"}
        await adapter.remove_volume("agent-vol")
        with pytest.raises(NotFound):
            daemon.volumes.inspect_json("agent-vol")

        assert adapter.network_address("bridge") == (daemon.config.bridge_gateway, host.subnet)
        net = f"172.31.{secrets.randbelow(250)}"
        await asyncio.to_thread(daemon.networks.create_json, NetworkCreate(
            name="agent-net", ipam_pools=(IpamPool(subnet=f"{net}.0/24", gateway=f"{net}.1"),)))
        assert adapter.network_address("agent-net") == (f"{net}.1", f"{net}.0/24")
        await asyncio.to_thread(daemon.networks.remove, "agent-net")

    run_engine(host, scenario)


def test_task_network_shared_through_a_pause_container(host: BerthDaemon) -> None:
    """The awsvpc shape: a pause container holds the network namespace (and the published port),
    the app joins it with `container:<id>`."""
    async def scenario(adapter: EngineAdapter, daemon: Daemon) -> None:
        await asyncio.to_thread(daemon.image_store.bootstrap_busybox, "busybox:latest")
        pause_image = await adapter.ensure_pause_image()
        pause = await adapter.create(ContainerSpec(
            name="ecs-web-1-pause-4e5f", image=pause_image, labels={TASK_LABEL: "task/3"},
            command=("sleep", "2147483647"), ports=(PortBinding(80),), stop_timeout=0))
        await adapter.start(pause)
        try:
            app = await adapter.create(ContainerSpec(
                name="ecs-web-1-app-4e5f", image="busybox", labels={TASK_LABEL: "task/3"}, command=HTTPD,
                network_mode=f"container:{pause}", stop_timeout=0))
            await adapter.start(app)
        except BerthError as err:
            pytest.skip(f"the engine's container:<id> network mode is not there yet: {err}")
        pause_status = adapter.inspect(pause)
        app_status = adapter.inspect(app)
        assert pause_status is not None and app_status is not None
        assert app_status.state == "running" and app_status.ip_address == ""
        [binding] = pause_status.ports
        assert pause_status.ip_address
        assert await http_get(f"http://127.0.0.1:{binding.host_port}/") == b"hi\n"
        assert sorted(s.id for s in adapter.list_labelled(TASK_LABEL)) == sorted([pause, app])
        await adapter.stop(app, 0)
        await adapter.remove(app)
        await adapter.remove(pause)

    run_engine(host, scenario)
