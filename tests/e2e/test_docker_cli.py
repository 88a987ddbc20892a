"""The docker CLI (28.x) against a berth daemon: the acceptance flow of the engine-core issue."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
import urllib.request

import pytest

from tests.helpers import DOCKER, BerthDaemon, api

pytestmark = pytest.mark.root

WEB_PORT = 18080


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, resp.read()
        except Exception as err:  # noqa: BLE001 - the server may still be starting
            last = err
            time.sleep(0.05)
    raise AssertionError(f"GET {url} failed: {last}")


def test_version_and_info(daemon: BerthDaemon) -> None:
    out = daemon.docker("version", check=True).stdout
    assert "API version:" in out and "1.50" in out
    info = daemon.docker("info", "--format", "{{json .}}", check=True).stdout
    assert json.loads(info)["Driver"] == "overlay2"


def test_run_echo(daemon: BerthDaemon) -> None:
    result = daemon.docker("run", "--rm", "busybox", "echo", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"


def test_run_exit_code(daemon: BerthDaemon) -> None:
    assert daemon.docker("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3


def test_run_stderr_is_separate(daemon: BerthDaemon) -> None:
    result = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert result.stdout == "out\n" and result.stderr == "err\n"


def test_run_stdin_pipe(daemon: BerthDaemon) -> None:
    result = daemon.docker("run", "-i", "--rm", "busybox", "cat", input=b"foo\nbar\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "foo\nbar\n"


def test_run_missing_executable_exits_127(daemon: BerthDaemon) -> None:
    before = set(daemon.docker("ps", "-aq", "--no-trunc").stdout.split())
    result = daemon.docker("run", "--rm", "busybox", "/nonexistent")
    assert result.returncode == 127, result.stderr
    assert "executable file not found" in result.stderr or "no such file" in result.stderr.lower()
    # AutoRemove also applies when start fails: nothing new is left behind.
    assert set(daemon.docker("ps", "-aq", "--no-trunc").stdout.split()) == before


def test_web_server_flow(daemon: BerthDaemon) -> None:
    script = "mkdir -p /www && echo hello-berth > /www/index.html && echo started && exec httpd -f -p 80 -h /www"
    run = daemon.docker("run", "-d", "--name", "web", "-p", f"{WEB_PORT}:80", "busybox", "sh", "-c", script)
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    try:
        status, body = http_get(f"http://127.0.0.1:{WEB_PORT}/")
        assert status == 200 and body == b"hello-berth\n"

        ps = daemon.docker("ps", check=True).stdout
        assert "web" in ps and f"0.0.0.0:{WEB_PORT}->80/tcp" in ps

        logs = daemon.docker("logs", "web", check=True)
        assert "started" in logs.stdout

        hostname = daemon.docker("exec", "web", "cat", "/etc/hostname", check=True).stdout.strip()
        assert hostname == cid[:12]
        assert daemon.docker("exec", "web", "sh", "-c", "exit 4").returncode == 4

        inspect = json.loads(daemon.docker("inspect", "web", check=True).stdout)[0]
        assert inspect["State"]["Running"] is True
        assert inspect["Config"]["Image"] == "busybox"
        assert inspect["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(WEB_PORT)}]

        # httpd as PID 1 ignores SIGTERM: stop must SIGKILL after the grace period.
        started = time.monotonic()
        assert daemon.docker("stop", "-t", "1", "web").returncode == 0
        assert time.monotonic() - started >= 1.0
        state = json.loads(daemon.docker("inspect", "web", check=True).stdout)[0]["State"]
        assert state["Running"] is False and state["ExitCode"] == 137
        assert daemon.docker("rm", "web").returncode == 0
        assert daemon.docker("inspect", "web").returncode == 1
    finally:
        daemon.docker("rm", "-f", "web")


def test_stop_sends_sigterm_first(daemon: BerthDaemon) -> None:
    script = "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done"
    cid = daemon.docker("run", "-d", "busybox", "sh", "-c", script, check=True).stdout.strip()
    try:
        deadline = time.monotonic() + 10
        while "ready" not in daemon.docker("logs", cid).stdout and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        assert daemon.docker("stop", "-t", "10", cid).returncode == 0
        assert time.monotonic() - started < 5
        state = json.loads(daemon.docker("inspect", cid, check=True).stdout)[0]["State"]
        assert state["ExitCode"] == 42
    finally:
        daemon.docker("rm", "-f", cid)


def test_interactive_tty(daemon: BerthDaemon) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([DOCKER, "run", "-it", "--rm", "busybox", "sh"], env=daemon.env,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 20
        sent = False
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    break
            if not sent and b"#" in output:
                os.write(master, b"echo tty-$((6*7)); exit 5\r")
                sent = True
        assert proc.wait(timeout=10) == 5, output
        assert b"tty-42" in output
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_rw_layer_is_per_container(daemon: BerthDaemon) -> None:
    first = daemon.docker("run", "--name", "writer", "busybox", "sh", "-c", "echo secret > /data.txt && cat /data.txt")
    assert first.stdout == "secret\n", first.stderr
    second = daemon.docker("run", "--rm", "busybox", "cat", "/data.txt")
    assert second.returncode == 1 and "No such file" in second.stderr
    daemon.docker("rm", "writer", check=True)


def test_errors_have_docker_shape(daemon: BerthDaemon) -> None:
    status, body = api(daemon.sock, "POST", "/v1.50/containers/create", raw=b"{not json")
    assert status == 400 and "message" in body
    status, body = api(daemon.sock, "GET", "/v1.50/containers/nosuch/json")
    assert status == 404 and body == {"message": "No such container: nosuch"}
    status, body = api(daemon.sock, "POST", "/v1.50/containers/create", body={"Image": "nosuchimage"})
    assert status == 404 and "No such image" in body["message"]
    status, body = api(daemon.sock, "GET", "/v1.50/nosuch/endpoint")
    assert status == 404 and body == {"message": "page not found"}
    cid = daemon.docker("create", "--name", "dup", "busybox", "true", check=True).stdout.strip()
    try:
        status, body = api(daemon.sock, "POST", "/v1.50/containers/create?name=dup", body={"Image": "busybox"})
        assert status == 409 and "already in use" in body["message"]
        result = daemon.docker("run", "--name", "dup", "busybox", "true")
        assert result.returncode == 125 and "already in use" in result.stderr
    finally:
        daemon.docker("rm", "-f", cid)
    assert daemon.docker("rm", "nosuch").returncode == 1


def test_missing_image_never_leaves_the_host(daemon: BerthDaemon) -> None:
    started = time.monotonic()
    result = daemon.docker("run", "--rm", "nosuch-image-x")
    assert result.returncode == 125
    assert "does not contact public registries" in result.stderr
    assert time.monotonic() - started < 5
