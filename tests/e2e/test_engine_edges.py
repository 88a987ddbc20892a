"""Small Docker API edges clients depend on, checked through docker-py and the docker CLI.

Swarm endpoints outside a swarm, API version bounds, every Info key, HostConfig.Runtime, bare
Env names, prune reports, load errors, removing a restarting container, and the /etc files of a
`--read-only` container. One private daemon: prune must not reach other tests' containers.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import docker
import pytest

from tests.helpers import DOCKER, BerthDaemon, api, wait_for

pytestmark = pytest.mark.root

# Every key of dockerd 28's GET /info (system.Info) that is not `omitempty`.
DOCKERD_INFO_KEYS = {
    "ID", "Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images", "Driver",
    "DriverStatus", "Plugins", "MemoryLimit", "SwapLimit", "CpuCfsPeriod", "CpuCfsQuota", "CPUShares", "CPUSet",
    "PidsLimit", "IPv4Forwarding", "Debug", "NFd", "OomKillDisable", "NGoroutines", "SystemTime",
    "LoggingDriver", "CgroupDriver", "CgroupVersion", "NEventsListener", "KernelVersion", "OperatingSystem",
    "OSVersion", "OSType", "Architecture", "IndexServerAddress", "RegistryConfig", "NCPU", "MemTotal",
    "GenericResources", "DockerRootDir", "HttpProxy", "HttpsProxy", "NoProxy", "Name", "Labels",
    "ExperimentalBuild", "ServerVersion", "Runtimes", "DefaultRuntime", "Swarm", "LiveRestoreEnabled",
    "Isolation", "InitBinary", "ContainerdCommit", "RuncCommit", "InitCommit", "SecurityOptions",
    "CDISpecDirs", "Warnings",
}


@pytest.fixture(scope="module")
def d() -> Iterator[BerthDaemon]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    daemon = BerthDaemon()
    try:
        daemon.start()
        daemon.bootstrap_busybox()
        yield daemon
    finally:
        daemon.destroy()


@pytest.fixture()
def client(d: BerthDaemon) -> Iterator[Any]:
    c = docker.DockerClient(base_url=d.host, version="1.50", timeout=60)
    yield c
    c.close()


# --- swarm -------------------------------------------------------------------------------------


def test_swarm_endpoints_answer_as_outside_a_swarm(d: BerthDaemon, client: Any) -> None:
    assert client.swarm.leave(force=True) is True  # docker-py takes dockerd's 503 as "no swarm"
    for listing in (client.nodes.list, client.services.list, client.secrets.list, client.configs.list):
        with pytest.raises(docker.errors.APIError) as err:
            listing()
        assert err.value.status_code == 503
        assert err.value.explanation == ('This node is not a swarm manager. Use "docker swarm init" or '
                                         '"docker swarm join" to connect this node to swarm and try again.')
    with pytest.raises(docker.errors.APIError) as err:
        client.api.leave_swarm(force=False)
    assert (err.value.status_code, err.value.explanation) == (503, "This node is not part of a swarm")
    result = d.docker("swarm", "leave")
    assert result.returncode == 1
    assert "Error response from daemon: This node is not part of a swarm" in result.stderr
    assert d.docker("node", "ls").returncode == 1


# --- API versions ------------------------------------------------------------------------------


def test_api_versions_outside_the_supported_range(d: BerthDaemon) -> None:
    too_new = docker.APIClient(base_url=d.host, version="1.99")
    try:
        with pytest.raises(docker.errors.APIError) as err:
            too_new.info()
    finally:
        too_new.close()
    assert err.value.status_code == 400
    assert err.value.explanation == "client version 1.99 is too new. Maximum supported API version is 1.50"
    status, body = api(d.sock, "GET", "/v1.11/version")
    assert status == 400
    assert body["message"] == ("client version 1.11 is too old. Minimum supported API version is 1.24, "
                               "please upgrade your client to a newer version")
    env = {**d.env, "DOCKER_API_VERSION": "1.99"}
    result = subprocess.run([DOCKER, "ps"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "client version 1.99 is too new. Maximum supported API version is 1.50" in result.stderr
    for version in ("1.24", "1.41", "1.50"):  # the bounds themselves are served
        assert api(d.sock, "GET", f"/v{version}/version")[0] == 200
    assert api(d.sock, "GET", "/version")[0] == 200  # no prefix: the current version


# --- Info and inspect ---------------------------------------------------------------------------


def test_info_carries_every_key_dockerd_has(d: BerthDaemon, client: Any) -> None:
    events = client.events(decode=True)  # the request is sent now: one listener open while Info is read
    try:
        info = wait_for("an events listener in Info", lambda: (i := client.info())["NEventsListener"] >= 1 and i)
    finally:
        events.close()
    missing = DOCKERD_INFO_KEYS - set(info)
    assert not missing, f"Info lacks {sorted(missing)}"
    assert info["Debug"] is True  # the test daemon runs with --log-level debug
    assert isinstance(info["NFd"], int) and info["NFd"] > 3
    assert isinstance(info["NGoroutines"], int) and info["NGoroutines"] > 0
    assert datetime.fromisoformat(info["SystemTime"].replace("Z", "+00:00")).tzinfo is not None
    assert isinstance(info["MemoryLimit"], bool) and isinstance(info["OomKillDisable"], bool)
    assert info["RuncCommit"]["ID"] and info["ContainerdCommit"] == {"ID": "N/A"}
    assert info["CDISpecDirs"] == [] and info["Isolation"] == ""
    out = d.docker("info", "--format", "{{.Debug}} {{.NFd}} {{.SystemTime}}", check=True).stdout.split()
    assert out[0] == "true" and int(out[1]) > 3 and out[2].startswith(str(datetime.now().year))


def test_inspect_shows_the_runtime(client: Any) -> None:
    default = client.info()["DefaultRuntime"]
    container = client.containers.create("busybox", ["true"])
    named = client.containers.create("busybox", ["true"], runtime=default)
    try:
        assert container.attrs["HostConfig"]["Runtime"] == default
        assert named.attrs["HostConfig"]["Runtime"] == default
    finally:
        container.remove(force=True)
        named.remove(force=True)
    before = len(client.containers.list(all=True))
    with pytest.raises(docker.errors.APIError) as err:
        client.containers.create("busybox", ["true"], runtime="no-such-runtime")
    assert err.value.status_code == 400
    assert err.value.explanation == "unknown or invalid runtime name: no-such-runtime"
    assert len(client.containers.list(all=True)) == before  # nothing half made


def test_env_names_without_value_are_kept_as_given(client: Any) -> None:
    container = client.containers.create("busybox", ["env"], environment=["FOO=1", "BARE", "EMPTY="])
    try:
        env = container.attrs["Config"]["Env"]
        assert "BARE" in env and "FOO=1" in env and "EMPTY=" in env, env
        container.start()
        assert container.wait(timeout=30)["StatusCode"] == 0
        lines = container.logs().decode().splitlines()
        assert "FOO=1" in lines and "EMPTY=" in lines
        assert not any(line.startswith("BARE") for line in lines), lines  # an unset variable, as in dockerd
    finally:
        container.remove(force=True)


# --- prune and load reports ---------------------------------------------------------------------


def test_container_prune_reports_the_space_reclaimed(client: Any) -> None:
    container = client.containers.run("busybox", ["dd", "if=/dev/zero", "of=/big", "bs=1024", "count=2048"],
                                      detach=True)
    assert container.wait(timeout=60)["StatusCode"] == 0
    report = client.containers.prune()
    assert container.id in report["ContainersDeleted"]
    assert report["SpaceReclaimed"] >= 2 * 1024 * 1024, report
    again = client.api.prune_containers()
    assert again == {"ContainersDeleted": None, "SpaceReclaimed": 0}  # moby: null when none


def test_volume_prune_reports_an_empty_list(d: BerthDaemon, client: Any) -> None:
    status, body = api(d.sock, "POST", "/volumes/prune")
    assert status == 200 and body["VolumesDeleted"] == [] and body["SpaceReclaimed"] == 0
    assert client.volumes.prune()["VolumesDeleted"] == []


def test_put_archive_into_a_never_started_containers_volume(d: BerthDaemon, client: Any) -> None:
    """docker-py's put_archive into an anonymous volume of a created, never started container:
    the file lands in that volume (the container sees it once it runs)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("greeting.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    container = client.containers.create("busybox", ["cat", "/data/greeting.txt"], volumes=["/data"])
    try:
        assert container.put_archive("/data", buf.getvalue())
        container.start()
        assert container.wait(timeout=30)["StatusCode"] == 0
        assert container.logs() == b"hello\n"
        volume = next(m["Name"] for m in client.api.inspect_container(container.id)["Mounts"]
                      if m["Destination"] == "/data")
        reader = client.containers.run("busybox", ["cat", "/v/greeting.txt"], volumes={volume: {"bind": "/v"}},
                                       remove=True)
        assert reader == b"hello\n"
    finally:
        container.remove(v=True, force=True)


def test_load_errors_arrive_in_the_stream(d: BerthDaemon, client: Any) -> None:
    with pytest.raises(docker.errors.ImageLoadError):  # not an APIError: dockerd answers 200
        client.images.load(b"not a tar archive at all " * 100)
    status, body = api(d.sock, "POST", "/images/load", raw=b"")
    assert status == 200
    frames = body if isinstance(body, list) else [body]
    assert any("errorDetail" in f for f in frames), body


# --- restarting containers ----------------------------------------------------------------------


def test_a_restarting_container_needs_force_to_go(client: Any) -> None:
    container = client.containers.run("busybox", ["sh", "-c", "sleep 0.2; exit 3"], detach=True,
                                      restart_policy={"Name": "always"}, name="edges-restarting")

    def restarting() -> bool:
        container.reload()
        return container.status == "restarting"

    try:
        wait_for("the container to be restarting", restarting, timeout=60, every=0.02)
        with pytest.raises(docker.errors.APIError) as err:
            container.remove()
        assert err.value.status_code == 409
        assert err.value.explanation in (
            'cannot remove container "/edges-restarting": container is restarting: '
            "stop the container before removing or force remove",
            'cannot remove container "/edges-restarting": container is running: '
            "stop the container before removing or force remove")  # it came back up meanwhile
    finally:
        container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)


# --- read-only containers ------------------------------------------------------------------------


def test_read_only_container_gets_read_only_etc_files(d: BerthDaemon, client: Any) -> None:
    script = ("for f in hosts resolv.conf hostname; do (echo x >> /etc/$f) 2>&1; echo \"$f=$?\"; done;"
              " grep -E ' /etc/(hosts|resolv.conf|hostname) ' /proc/mounts")
    out = client.containers.run("busybox", ["sh", "-c", script], read_only=True, remove=True).decode()
    for name in ("hosts", "resolv.conf", "hostname"):
        assert f"{name}=1" in out, out
    assert out.count("Read-only file system") == 3, out
    mounts = [f for f in (line.split() for line in out.splitlines()) if len(f) == 6 and f[1].startswith("/etc/")]
    assert len(mounts) == 3 and all(m[3].split(",")[0] == "ro" for m in mounts), out
    writable = client.containers.run("busybox", ["sh", "-c", "echo 10.9.9.9 x >> /etc/hosts && echo ok"],
                                     remove=True).decode()
    assert writable == "ok\n"
    cli = d.docker("run", "--rm", "--read-only", "busybox", "sh", "-c", "echo x >> /etc/resolv.conf")
    assert cli.returncode != 0 and "Read-only file system" in cli.stderr
    assert json.loads(d.docker("info", "--format", "{{json .Swarm.LocalNodeState}}", check=True).stdout) == "inactive"
