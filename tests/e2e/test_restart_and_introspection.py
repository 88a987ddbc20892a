"""Restart policies, live restore with three containers, pause/rename/top/stats/prune."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.helpers import DOCKER, BerthDaemon, conmons_under, holds_for, wait_for

pytestmark = pytest.mark.root


def state_of(d: BerthDaemon, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(d.docker("inspect", ref, check=True).stdout)[0]


def wait_until(predicate, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_on_failure_restarts_exactly_n_times(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "--restart", "on-failure:3", "busybox", "sh", "-c", "echo run; exit 1",
                        check=True).stdout.strip()
    try:
        wait_until(lambda: (s := state_of(daemon, cid))["State"]["Status"] == "exited" and s["RestartCount"] == 3)
        # no fourth restart: an absence, so watched for longer than its back-off (0.8 s) would be
        holds_for("exited after three restarts", lambda: (s := state_of(daemon, cid))["State"]["Status"] == "exited"
                  and s["RestartCount"] == 3, 1.0)
        info = state_of(daemon, cid)
        assert info["RestartCount"] == 3 and info["State"]["ExitCode"] == 1
        assert daemon.docker("logs", cid).stdout == "run\n" * 4
    finally:
        daemon.docker("rm", "-f", cid)


def test_on_failure_does_not_restart_success(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "--restart", "on-failure", "busybox", "true", check=True).stdout.strip()
    try:
        wait_until(lambda: state_of(daemon, cid)["State"]["Status"] == "exited")
        # no restart: an absence, so watched for longer than the first back-off (0.1 s)
        holds_for("exited without a restart", lambda: (s := state_of(daemon, cid))["State"]["Status"] == "exited"
                  and s["RestartCount"] == 0, 0.5)
    finally:
        daemon.docker("rm", "-f", cid)


def test_always_restarts_until_stopped(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2; exit 0",
                        check=True).stdout.strip()
    try:
        wait_until(lambda: state_of(daemon, cid)["RestartCount"] >= 2)
        assert daemon.docker("stop", "-t", "1", cid).returncode == 0
        # the stop suspends `always`: no restart follows (an absence, so watched for a while)
        holds_for("stopped", lambda: (s := state_of(daemon, cid)["State"])["Running"] is False
                  and s["Status"] == "exited", 0.8)
    finally:
        daemon.docker("rm", "-f", cid)


def test_always_survives_daemon_restart_and_unless_stopped_respects_stop(private: BerthDaemon) -> None:
    always = private.docker("run", "-d", "--restart", "always", "busybox", "sleep", "300", check=True).stdout.strip()
    stopped = private.docker("run", "-d", "--restart", "unless-stopped", "busybox", "sleep", "300",
                             check=True).stdout.strip()
    private.docker("stop", "-t", "0", stopped, check=True)
    private.kill()
    for pid in conmons_under(private.base):  # the host "reboots": containers die with the daemon down
        subprocess.run(["kill", "-9", str(pid)])
    wait_for("the killed conmons to be gone", lambda: not conmons_under(private.base), timeout=10)
    private.start()
    wait_until(lambda: state_of(private, always)["State"]["Running"] is True)
    assert state_of(private, stopped)["State"]["Running"] is False
    private.docker("rm", "-f", always, stopped, check=True)


def test_live_restore_three_containers(private: BerthDaemon) -> None:
    web = private.docker("run", "-d", "--name", "lr-web", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
                         check=True).stdout.strip()
    talker = private.docker("run", "-d", "--name", "lr-talk", "busybox", "sh", "-c",
                            "while true; do echo tick; sleep 0.2; done", check=True).stdout.strip()
    short = private.docker("run", "-d", "--name", "lr-short", "busybox", "sh", "-c", "sleep 1; exit 5",
                           check=True).stdout.strip()
    private.kill()
    wait_for("lr-short to exit while no daemon runs", private.exit_file(short).exists, timeout=10)
    private.start()

    assert state_of(private, short)["State"]["ExitCode"] == 5
    assert state_of(private, short)["State"]["Running"] is False
    running = set(private.docker("ps", "-q", "--no-trunc").stdout.split())
    assert {web, talker} <= running and short not in running

    follow = subprocess.Popen([DOCKER, "logs", "-f", "--tail", "1", talker], env=private.env,
                              stdout=subprocess.PIPE, text=True)
    assert follow.stdout is not None and follow.stdout.readline() == "tick\n"
    attach = subprocess.Popen([DOCKER, "attach", "--no-stdin", talker], env=private.env,
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert attach.stdout is not None and attach.stdout.readline() == "tick\n"
    assert private.docker("exec", web, "echo", "still-here").stdout == "still-here\n"
    assert private.docker("stop", "-t", "1", talker).returncode == 0
    assert follow.wait(timeout=10) == 0
    attach.wait(timeout=10)  # ends with the container (its exit code is the container's)
    private.docker("rm", "-f", web, talker, short, check=True)
    wait_until(lambda: not conmons_under(private.base))


def test_pause_rename_top_stats_prune(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "--name", "intro", "busybox", "sleep", "300", check=True).stdout.strip()
    try:
        assert daemon.docker("pause", "intro").returncode == 0
        assert state_of(daemon, cid)["State"]["Paused"] is True
        assert "(Paused)" in daemon.docker("ps", "--filter", "name=intro", "--format", "{{.Status}}").stdout
        assert daemon.docker("unpause", "intro").returncode == 0
        assert daemon.docker("rename", "intro", "intro2").returncode == 0
        assert state_of(daemon, cid)["Name"] == "/intro2"
        top = daemon.docker("top", "intro2", check=True).stdout
        assert "sleep 300" in top
        stats = daemon.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "intro2", check=True)
        assert stats.stdout.startswith("intro2 ")
    finally:
        daemon.docker("rm", "-f", cid)
    exited = daemon.docker("run", "-d", "busybox", "true", check=True).stdout.strip()
    wait_until(lambda: state_of(daemon, exited)["State"]["Status"] == "exited")
    out = daemon.docker("container", "prune", "-f", check=True).stdout
    assert exited in out
    assert daemon.docker("inspect", exited).returncode == 1


def test_system_df(daemon: BerthDaemon) -> None:
    cid = daemon.docker("run", "-d", "-v", "dfvol:/data", "busybox", "sh", "-c",
                        "head -c 100000 /dev/zero > /big; head -c 5000 /dev/zero > /data/f; sleep 60",
                        check=True).stdout.strip()
    try:
        wait_until(lambda: daemon.docker("exec", cid, "test", "-f", "/data/f").returncode == 0)
        out = daemon.docker("system", "df", check=True).stdout
        assert "Images" in out and "Containers" in out and "Local Volumes" in out
        verbose = daemon.docker("system", "df", "-v", "--format", "{{json .}}", check=True).stdout
        data = json.loads(verbose)
        row = next(c for c in data["Containers"] if c["ID"].startswith(cid[:12]))
        assert row["Size"].startswith("10") and "kB" in row["Size"]
        vol = next(v for v in data["Volumes"] if v["Name"] == "dfvol")
        assert str(vol["Links"]) == "1"
    finally:
        daemon.docker("rm", "-f", cid)
        daemon.docker("volume", "rm", "dfvol")
