"""Daemon lifecycle: side-by-side daemons, SIGTERM, crash (SIGKILL) recovery and clean-up."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from tests.helpers import BERTH, BerthDaemon, conmons_under, mounts_under, wait_for

pytestmark = pytest.mark.root


def _netns_files(d: BerthDaemon) -> list[str]:
    netns = d.run_root / "netns"
    if not netns.exists():
        return []
    # Spare namespaces (pre-attached for fast starts) belong to the daemon, not to a container.
    return sorted(p.name for p in netns.rglob("*") if p.is_file() and not p.name.startswith("spare-"))


def _get(url: str) -> int:
    deadline = time.monotonic() + 10
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2).status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_two_daemons_side_by_side(daemon: BerthDaemon, private: BerthDaemon) -> None:
    a = daemon.docker("run", "--rm", "busybox", "echo", "a").stdout
    b = private.docker("run", "--rm", "busybox", "echo", "b").stdout
    assert (a, b) == ("a\n", "b\n")
    cid = private.docker("create", "busybox", "true", check=True).stdout.strip()
    assert daemon.docker("inspect", cid).returncode == 1  # separate state


def test_crash_recovery_adopts_running_and_settles_exited(private: BerthDaemon) -> None:
    web = private.docker("run", "-d", "-p", "18480:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
                         check=True).stdout.strip()
    short = private.docker("run", "-d", "busybox", "sh", "-c", "sleep 1; exit 9", check=True).stdout.strip()
    assert _get("http://127.0.0.1:18480/passwd") == 200

    private.kill()  # SIGKILL: no chance to clean up
    wait_for("`short` to exit while no daemon runs", private.exit_file(short).exists, timeout=10)
    assert _get("http://127.0.0.1:18480/passwd") == 200  # the container outlived the daemon
    private.start()

    state = json.loads(private.docker("inspect", short, check=True).stdout)[0]["State"]
    assert state["Running"] is False and state["ExitCode"] == 9
    assert json.loads(private.docker("inspect", web, check=True).stdout)[0]["State"]["Running"] is True
    assert private.docker("exec", web, "echo", "adopted").stdout == "adopted\n"
    assert private.docker("logs", web).returncode == 0
    assert private.docker("stop", "-t", "1", web).returncode == 0
    assert json.loads(private.docker("inspect", web).stdout)[0]["State"]["ExitCode"] == 137
    private.docker("rm", web, short, check=True)

    deadline = time.monotonic() + 10
    while (_netns_files(private) or conmons_under(private.base)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _netns_files(private) == []
    assert conmons_under(private.base) == []
    assert [m for m in mounts_under(private.base) if "containers" in m] == []


def test_sigterm_leaves_containers_running(private: BerthDaemon) -> None:
    cid = private.docker("run", "-d", "busybox", "sleep", "300", check=True).stdout.strip()
    private.stop()
    assert conmons_under(private.base), "the container's monitor must survive the daemon"
    private.start()
    assert private.docker("ps", "-q").stdout.strip() == cid[:12]
    private.docker("rm", "-f", cid, check=True)


def test_berth_cli_drives_the_daemon(private: BerthDaemon) -> None:
    env = private.env
    run = subprocess.run([BERTH, "run", "--rm", "busybox", "echo", "via-berth"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout == "via-berth\n", run.stderr
    code = subprocess.run([BERTH, "-H", private.host, "run", "--rm", "busybox", "sh", "-c", "exit 6"],
                          capture_output=True, text=True, timeout=60)
    assert code.returncode == 6
    cid = subprocess.run([BERTH, "run", "-d", "--name", "bcli", "busybox", "sleep", "60"], env=env,
                         capture_output=True, text=True, timeout=60).stdout.strip()
    ps = subprocess.run([BERTH, "ps"], env=env, capture_output=True, text=True).stdout
    assert "bcli" in ps and cid[:12] in ps
    assert subprocess.run([BERTH, "exec", "bcli", "cat", "/etc/hostname"], env=env,
                          capture_output=True, text=True).stdout.strip() == cid[:12]
    assert subprocess.run([BERTH, "rm", "-f", "bcli"], env=env).returncode == 0
    images = subprocess.run([BERTH, "images"], env=env, capture_output=True, text=True).stdout
    assert "busybox" in images
    missing = subprocess.run([BERTH, "inspect", "nosuch"], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    down = subprocess.run([BERTH, "-H", "unix:///nonexistent.sock", "ps"], capture_output=True, text=True)
    assert down.returncode != 0 and "Traceback" not in down.stderr
    assert "run" in subprocess.run([BERTH, "--help"], capture_output=True, text=True).stdout


def test_start_sweeps_container_dirs_without_a_record(private: BerthDaemon) -> None:
    """A crash between an `--rm` container's removal and its deferred clean-up leaves its dir
    (and maybe its rootfs mount); the next daemon removes both."""
    private.stop()
    orphan = private.root / "containers" / ("ab" * 32)
    (orphan / "rootfs").mkdir(parents=True)
    (orphan / "upper").mkdir()
    (orphan / "upper" / "file").write_text("left over")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(orphan / "rootfs")], check=True)
    private.start()
    assert not orphan.exists()
    assert str(orphan) not in "".join(mounts_under(private.base))
    assert private.docker("run", "--rm", "busybox", "true").returncode == 0
