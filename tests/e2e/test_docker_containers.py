"""More container verbs through the docker CLI: logs options, network modes, -P, kill, restart, events."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from tests.helpers import BerthDaemon, wait_for

pytestmark = pytest.mark.root


def wait_for_log(daemon: BerthDaemon, cid: str, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in daemon.docker("logs", cid).stdout:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the logs of {cid}")


def test_logs_tail_timestamps_follow(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "busybox", "sh", "-c",
                        "for i in 1 2 3 4 5; do echo line$i; done; sleep 1; echo last", check=True).stdout.strip()
    try:
        wait_for_log(daemon, cid, "line5")
        assert daemon.docker("logs", "--tail", "2", cid).stdout == "line4\nline5\n"
        stamped = daemon.docker("logs", "-t", "--tail", "1", cid).stdout
        assert stamped.endswith(" line5\n") and stamped[:4].isdigit() and "T" in stamped.split()[0]
        followed = daemon.docker("logs", "-f", cid, timeout=20)
        assert followed.returncode == 0 and followed.stdout.endswith("last\n")
        assert daemon.docker("logs", "--since", str(int(time.time()) + 3600), cid).stdout == ""
    finally:
        daemon.docker("rm", "-f", cid)


def test_network_none_has_only_loopback(daemon: BerthDaemon) -> None:
    out = daemon.docker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").stdout
    names = [line.split(":")[1].strip() for line in out.splitlines()]
    assert names == ["lo"]


def test_network_host_sees_host_interfaces(daemon: BerthDaemon) -> None:
    out = daemon.docker("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link").stdout
    assert daemon.bridge in out


def test_bridge_container_gets_an_address(daemon: BerthDaemon) -> None:
    out = daemon.docker("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    prefix = daemon.subnet.rsplit(".", 1)[0]
    assert f"inet {prefix}." in out


def test_publish_all_and_port_conflict(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "--expose", "80", "-P", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
                        check=True).stdout.strip()
    try:
        ports = json.loads(daemon.docker("inspect", cid, check=True).stdout)[0]["NetworkSettings"]["Ports"]
        host_port = int(ports["80/tcp"][0]["HostPort"])
        assert host_port > 0
        deadline = time.monotonic() + 10
        while True:
            try:
                assert urllib.request.urlopen(f"http://127.0.0.1:{host_port}/passwd", timeout=2).status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        port_out = daemon.docker("port", cid, check=True).stdout
        assert f"80/tcp -> 0.0.0.0:{host_port}" in port_out
        clash = daemon.docker("run", "--rm", "-p", f"{host_port}:80", "busybox", "true")
        assert clash.returncode == 125 and "port is already allocated" in clash.stderr
    finally:
        daemon.docker("rm", "-f", cid)


def test_port_in_use_by_host_process(daemon: BerthDaemon) -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        result = daemon.docker("run", "--rm", "-p", f"{port}:80", "busybox", "true")
        assert result.returncode == 125 and "already" in result.stderr


def test_kill_restart_and_events(daemon: BerthDaemon) -> None:
    since = str(time.time() - 1)
    cid = daemon.docker("run", "-d", "--name", "cycler", "busybox", "sleep", "300", check=True).stdout.strip()
    try:
        assert daemon.docker("kill", "--signal", "WINCH", cid).returncode == 0  # non-fatal signal
        assert json.loads(daemon.docker("inspect", cid).stdout)[0]["State"]["Running"] is True
        assert daemon.docker("restart", "-t", "0", cid).returncode == 0
        state = json.loads(daemon.docker("inspect", cid).stdout)[0]["State"]
        assert state["Running"] is True
        assert daemon.docker("kill", cid).returncode == 0
        state = json.loads(daemon.docker("inspect", cid).stdout)[0]["State"]
        assert state["Running"] is False and state["ExitCode"] == 137
        assert daemon.docker("kill", cid).returncode == 1
        assert daemon.docker("start", cid).returncode == 0
        assert daemon.docker("ps", "-q", "--filter", "name=cycler").stdout.strip() == cid[:12]
        events = daemon.docker("events", "--since", since, "--until", str(time.time() + 0.5),
                               "--filter", "container=cycler", "--format", "{{.Action}}").stdout.split()
        assert events[:2] == ["create", "start"] and "die" in events and "kill" in events
    finally:
        daemon.docker("rm", "-f", cid)


def test_ps_filters_and_all(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "--name", "exited7", "-l", "team=cats", "busybox", "sh", "-c", "exit 7").stdout
    try:
        assert daemon.docker("ps", "-q", "--filter", "name=exited7").stdout == ""
        row = daemon.docker("ps", "-a", "--filter", "name=exited7", "--format", "{{.Status}}").stdout
        assert row.startswith("Exited (7)")
        assert daemon.docker("ps", "-aq", "--filter", "label=team=cats").stdout.strip()
        assert daemon.docker("ps", "-aq", "--filter", "exited=7").stdout.strip()
    finally:
        daemon.docker("rm", "-f", "exited7")
        _ = cid


def test_exec_interactive_stdin_and_env(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "-e", "FOO=bar", "busybox", "sleep", "300", check=True).stdout.strip()
    try:
        out = daemon.docker("exec", "-i", cid, "sh", "-c", "cat; echo $FOO", input=b"piped\n").stdout
        assert out == "piped\nbar\n"
        out = daemon.docker("exec", "-e", "X=1", "-w", "/tmp", cid, "sh", "-c", "echo $X $(pwd)").stdout
        assert out == "1 /tmp\n"
        missing = daemon.docker("exec", cid, "nosuchcmd")
        assert missing.returncode in (126, 127)
        assert daemon.docker("exec", "-d", cid, "sh", "-c", "echo detached > /tmp/d").returncode == 0
        wait_for("the detached exec's file", lambda: daemon.docker("exec", cid, "cat", "/tmp/d").stdout == "detached\n",
                 timeout=10)
    finally:
        daemon.docker("rm", "-f", cid)
    stopped = daemon.docker("create", "busybox", "true", check=True).stdout.strip()
    try:
        result = daemon.docker("exec", stopped, "true")
        assert result.returncode != 0 and "is not running" in result.stderr
    finally:
        daemon.docker("rm", stopped)
