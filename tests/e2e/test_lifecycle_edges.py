"""Lifecycle edge cases found in review: paused containers, waits ended by removal, exec -d fds."""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path

import pytest

from tests.helpers import DOCKER, BerthDaemon, UnixHTTPConnection, api, conmons_under, wait_for

pytestmark = pytest.mark.root


def test_paused_container_can_be_stopped_killed_and_removed(daemon: BerthDaemon) -> None:
    for verb in (("stop", "-t", "1"), ("kill",), ("rm", "-f")):
        cid = daemon.docker("run", "-d", "busybox", "sleep", "1000", check=True).stdout.strip()
        try:
            daemon.docker("pause", cid, check=True)
            result = daemon.docker(*verb, cid, timeout=15)
            assert result.returncode == 0, (verb, result.stderr)
            if verb[0] != "rm":
                state = json.loads(daemon.docker("inspect", cid, check=True).stdout)[0]["State"]
                assert state["Running"] is False and state["Paused"] is False
        finally:
            daemon.docker("rm", "-f", cid, timeout=15)


def test_removal_ends_a_next_exit_wait(daemon: BerthDaemon) -> None:
    cid = daemon.docker("create", "busybox", "true", check=True).stdout.strip()
    waiter = UnixHTTPConnection(daemon.sock, timeout=10)
    try:
        waiter.request("POST", f"/containers/{cid}/wait?condition=next-exit")
        response = waiter.getresponse()  # the head goes out as the daemon takes the wait on
        assert response.status == 200
        daemon.docker("rm", cid, check=True)
        assert "StatusCode" in json.loads(response.read())  # the removal ended the wait
    finally:
        waiter.close()


def _exec_conmons(daemon: BerthDaemon, cid: str) -> list[int]:
    """The conmons of `cid`'s execs still running (each ends once its exec has ended)."""
    def is_exec(pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return b"--exec" in argv and cid.encode() in argv
    return [pid for pid in conmons_under(daemon.base) if is_exec(pid)]


def _daemon_fds(daemon: BerthDaemon) -> int:
    assert daemon.proc is not None
    return len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))


def test_detached_execs_do_not_leak_descriptors(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "busybox", "sleep", "1000", check=True).stdout.strip()
    try:
        daemon.docker("exec", "-d", cid, "true", check=True)
        wait_for("the first exec to end", lambda: not _exec_conmons(daemon, cid), timeout=10)
        before = _daemon_fds(daemon)
        for _ in range(10):
            daemon.docker("exec", "-d", cid, "true", check=True)
        wait_for("the execs to end", lambda: not _exec_conmons(daemon, cid), timeout=10)
        # the daemon lets go of an ended exec's descriptors soon after: a leak keeps the count up
        wait_for(lambda: f"the daemon's descriptors to come down ({_daemon_fds(daemon)}, before {before})",
                 lambda: _daemon_fds(daemon) - before < 5, timeout=10)
    finally:
        daemon.docker("rm", "-f", cid)


def test_bad_exec_console_size_and_partial_ulimit(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "busybox", "sleep", "1000", check=True).stdout.strip()
    try:
        status, body = api(daemon.sock, "POST", f"/containers/{cid}/exec", body={"Cmd": ["true"], "ConsoleSize": [1]})
        assert status == 400 and "ConsoleSize" in body["message"]
    finally:
        daemon.docker("rm", "-f", cid)
    status, body = api(daemon.sock, "POST", "/containers/create",
                       body={"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Ulimits": [{"Name": "nofile"}]}})
    if status == 201:  # accepted as nofile=0:0 would be; start must then fail cleanly or run
        status, start = api(daemon.sock, "POST", f"/containers/{body['Id']}/start")
        assert status in (204, 400, 500) and (status == 204 or "Traceback" not in str(start))
        api(daemon.sock, "DELETE", f"/containers/{body['Id']}?force=1")
    else:
        assert status == 400


def test_abandoned_log_followers_are_released(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "busybox", "sh", "-c", "echo up; exec sleep 1000", check=True).stdout.strip()
    try:
        before = _daemon_fds(daemon)
        for _ in range(5):
            follower = subprocess.Popen([DOCKER, "logs", "-f", cid], env=daemon.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                assert follower.stdout is not None
                # the follower is served once the log's line reaches it
                assert select.select([follower.stdout], [], [], 10)[0], "docker logs -f printed nothing"
                assert follower.stdout.readline() == b"up\n"
            finally:
                follower.kill()
                follower.wait()
        # the daemon notices a vanished follower soon after: a leak keeps the count up
        wait_for(lambda: f"the daemon's descriptors to come down ({_daemon_fds(daemon)}, before {before})",
                 lambda: _daemon_fds(daemon) - before < 4, timeout=10)
    finally:
        daemon.docker("rm", "-f", cid)
