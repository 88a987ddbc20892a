"""`--network container:<name|id>` through the docker CLI: a joiner shares the joined container's
network namespace (localhost, address, interfaces), hostname and /etc files, and owns no network
of its own; conflicting options and non-running targets are refused with dockerd's words."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BerthDaemon, mounts_under

pytestmark = pytest.mark.root

WEB = "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def names(daemon: BerthDaemon) -> Iterator[list[str]]:
    """Containers the test creates; removed (joiners first) whatever happens."""
    made: list[str] = []
    yield made
    for name in reversed(made):
        daemon.docker("rm", "-f", name)


def _run(daemon: BerthDaemon, names: list[str], name: str, *args: str) -> str:
    names.append(name)
    return daemon.docker("run", "-d", "--name", name, *args, check=True).stdout.strip()


def _inspect(daemon: BerthDaemon, ref: str) -> dict[str, Any]:
    return json.loads(daemon.docker("inspect", ref, check=True).stdout)[0]


def _netns(daemon: BerthDaemon, ref: str) -> str:
    return daemon.docker("exec", ref, "readlink", "/proc/self/ns/net", check=True).stdout.strip()


def _fetch_via(daemon: BerthDaemon, target: str, url: str) -> str:
    """wget from a throwaway joiner, retried (with a deadline) while httpd starts."""
    deadline = time.monotonic() + 15
    while True:
        result = daemon.docker("run", "--rm", "--network", f"container:{target}", "busybox",
                               "wget", "-qO-", url)
        if result.returncode == 0 or time.monotonic() > deadline:
            assert result.returncode == 0, result.stderr
            return result.stdout
        time.sleep(0.1)


def _joiner_state_gone(daemon: BerthDaemon, container_id: str) -> bool:
    net = daemon.root / "network"
    leftovers = [p for p in net.rglob(f"*{container_id}*")] if net.exists() else []
    netns = daemon.run_root / "netns"
    leftovers += [p for p in netns.rglob(f"*{container_id}*")] if netns.exists() else []
    return not leftovers and not [m for m in mounts_under(daemon.base) if container_id in m]


def test_joiner_shares_localhost_address_hostname_and_files(daemon: BerthDaemon, names: list[str]) -> None:
    web = _name("web")
    web_id = _run(daemon, names, web, "busybox", "sh", "-c", WEB)
    assert _fetch_via(daemon, web, "http://127.0.0.1:8080/") == "hello-from-web\n"

    side = _name("side")
    side_id = _run(daemon, names, side, "--network", f"container:{web}", "busybox", "sleep", "600")
    web_info, side_info = _inspect(daemon, web), _inspect(daemon, side)
    ip = web_info["NetworkSettings"]["IPAddress"]
    assert ip
    assert _netns(daemon, side) == _netns(daemon, web)
    assert f"inet {ip}/" in daemon.docker("exec", side, "ip", "-4", "addr", "show", "eth0", check=True).stdout
    assert daemon.docker("exec", side, "hostname", check=True).stdout == \
        daemon.docker("exec", web, "hostname", check=True).stdout == web_id[:12] + "\n"
    for path in ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname"):
        assert daemon.docker("exec", side, "cat", path, check=True).stdout == \
            daemon.docker("exec", web, "cat", path, check=True).stdout, path
    # the joiner's localhost is the web container's: it serves too
    assert daemon.docker("exec", side, "wget", "-qO-", "http://127.0.0.1:8080/", check=True).stdout == \
        "hello-from-web\n"

    # inspect and ps: what the user gave, no network and no address of its own
    assert side_info["HostConfig"]["NetworkMode"] == f"container:{web}"
    settings = side_info["NetworkSettings"]
    assert settings["Networks"] == {} and settings["IPAddress"] == "" and settings["SandboxKey"] == ""
    assert side_info["Config"]["Hostname"] == web_id[:12]
    assert side_info["HostsPath"] == web_info["HostsPath"]
    ps = daemon.docker("ps", "--filter", f"id={side_id}", "--format", "{{.Ports}}|{{.Networks}}", check=True)
    assert ps.stdout.strip() == "|"

    # the joined container stops: the joiner keeps running (in a namespace without its bridge)
    daemon.docker("kill", web, check=True)
    assert _inspect(daemon, side)["State"]["Running"] is True
    daemon.docker("rm", "-f", side, web, check=True)
    names.clear()
    deadline = time.monotonic() + 10
    while not (_joiner_state_gone(daemon, side_id) and _joiner_state_gone(daemon, web_id)):
        assert time.monotonic() < deadline, "network state or mounts left behind"
        time.sleep(0.1)


def test_join_by_id_prefix(daemon: BerthDaemon, names: list[str]) -> None:
    web_id = _run(daemon, names, _name("web"), "busybox", "sh", "-c", WEB)
    assert _fetch_via(daemon, web_id[:12], "http://localhost:8080/") == "hello-from-web\n"


@pytest.mark.parametrize(("flags", "message"), [
    (("-p", "18099:80"), "conflicting options: port publishing and the container type network mode"),
    (("--hostname", "other"), "conflicting options: hostname and the network mode"),
    (("--dns", "1.1.1.1"), "conflicting options: dns and the network mode"),
    (("--add-host", "db:10.1.2.3"), "conflicting options: custom host-to-IP mapping and the network mode"),
    (("--expose", "80"), "conflicting options: port exposing and the container type network mode"),
])
def test_conflicting_options_are_refused(daemon: BerthDaemon, names: list[str], flags: tuple[str, ...],
                                         message: str) -> None:
    web = _name("web")
    _run(daemon, names, web, "busybox", "sleep", "600")
    result = daemon.docker("run", "--rm", "--network", f"container:{web}", *flags, "busybox", "true")
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_unknown_container_is_refused_without_a_pull(daemon: BerthDaemon) -> None:
    result = daemon.docker("create", "--network", "container:nosuch-ctr", "busybox", "true")
    assert result.returncode != 0
    assert "No such container: nosuch-ctr" in result.stderr and "Unable to find image" not in result.stderr


def test_joining_a_stopped_container_is_refused(daemon: BerthDaemon, names: list[str]) -> None:
    stopped = _name("stopped")
    names.append(stopped)
    daemon.docker("create", "--name", stopped, "busybox", "sleep", "600", check=True)
    joiner = _name("joiner")
    result = daemon.docker("run", "--rm", "--name", joiner, "--network", f"container:{stopped}", "busybox", "true")
    assert result.returncode != 0
    assert f"cannot join network of a non running container: {stopped}" in result.stderr, result.stderr
    # --rm: removed after the failed start
    assert daemon.docker("ps", "-aq", "--filter", f"name={joiner}", check=True).stdout == ""


def test_join_a_host_network_container(daemon: BerthDaemon, names: list[str]) -> None:
    host = _name("hostnet")
    _run(daemon, names, host, "--network", "host", "busybox", "sleep", "600")
    side = _name("side")
    _run(daemon, names, side, "--network", f"container:{host}", "busybox", "sleep", "600")
    assert _netns(daemon, side) == _netns(daemon, host)
    assert _netns(daemon, side) == os.readlink("/proc/self/ns/net")
    links = daemon.docker("exec", side, "ip", "-o", "link", check=True).stdout
    assert f": {daemon.bridge}:" in links  # the host's interfaces, the daemon's bridge among them


def test_join_a_none_network_container(daemon: BerthDaemon, names: list[str]) -> None:
    lone = _name("lone")
    _run(daemon, names, lone, "--network", "none", "busybox", "sleep", "600")
    side = _name("side")
    _run(daemon, names, side, "--network", f"container:{lone}", "busybox", "sleep", "600")
    assert _netns(daemon, side) == _netns(daemon, lone)
    links = daemon.docker("exec", side, "ip", "-o", "link", check=True).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]


def test_joiner_survives_a_daemon_restart(private: BerthDaemon) -> None:
    private.docker("run", "-d", "--name", "web", "busybox", "sh", "-c", WEB, check=True)
    side_id = private.docker("run", "-d", "--name", "side", "--network", "container:web", "busybox",
                             "sleep", "600", check=True).stdout.strip()
    before = private.docker("exec", "side", "readlink", "/proc/self/ns/net", check=True).stdout
    private.kill()
    private.start()
    info = json.loads(private.docker("inspect", "side", check=True).stdout)[0]
    assert info["State"]["Running"] is True and info["NetworkSettings"]["Networks"] == {}
    assert private.docker("exec", "side", "readlink", "/proc/self/ns/net", check=True).stdout == before
    # the web container's network was adopted, not torn down for the joiner
    assert _fetch_via(private, "side", "http://127.0.0.1:8080/") == "hello-from-web\n"
    private.docker("rm", "-f", "side", "web", check=True)
    deadline = time.monotonic() + 10
    while not _joiner_state_gone(private, side_id):
        assert time.monotonic() < deadline, "network state or mounts left behind"
        time.sleep(0.1)


def test_task_shape_pause_container_on_a_user_network(daemon: BerthDaemon, names: list[str]) -> None:
    """What the ECS agent does for awsvpc: a pause container owns the address on a network,
    the task's containers join it and reach peers on that network by name (embedded DNS)."""
    net = _name("tasknet")
    daemon.docker("network", "create", net, check=True)
    try:
        peer = _name("peer")
        _run(daemon, names, peer, "--network", net, "busybox", "sh", "-c", WEB)
        pause = _name("pause")
        _run(daemon, names, pause, "--network", net, "busybox", "sleep", "600")
        app = _name("app")
        _run(daemon, names, app, "--network", f"container:{pause}", "busybox", "sleep", "600")
        ip = _inspect(daemon, pause)["NetworkSettings"]["Networks"][net]["IPAddress"]
        assert f"inet {ip}/" in daemon.docker("exec", app, "ip", "-4", "addr", check=True).stdout
        deadline = time.monotonic() + 15
        while True:
            got = daemon.docker("exec", app, "wget", "-qO-", f"http://{peer}:8080/")
            if got.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert got.stdout == "hello-from-web\n", got.stderr
        # the network lists the pause container only; the joiner has no endpoint
        members = json.loads(daemon.docker("network", "inspect", net, check=True).stdout)[0]["Containers"]
        assert {m["Name"] for m in members.values()} == {peer, pause}
    finally:
        for name in reversed(names):
            daemon.docker("rm", "-f", name)
        names.clear()
        daemon.docker("network", "rm", net, check=True)


COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox
    command: sh -c "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"
  sidecar:
    image: busybox
    command: sleep 3600
    network_mode: "service:web"
"""


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_network_mode_service(daemon: BerthDaemon, tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", "cm", *args], cwd=tmp_path, env=daemon.env,
                              capture_output=True, text=True, timeout=120)

    up = compose("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        sidecar = daemon.docker("ps", "-q", "--filter", "label=com.docker.compose.service=sidecar",
                                check=True).stdout.strip()
        deadline = time.monotonic() + 15
        while True:
            got = daemon.docker("exec", sidecar, "wget", "-qO-", "http://127.0.0.1:8080/")
            if got.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert got.stdout == "hello-from-web\n", got.stderr
    finally:
        down = compose("down")
        assert down.returncode == 0, down.stderr
