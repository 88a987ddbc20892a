"""`docker run --init`: tini (docker-init) as PID 1, the process as its child, signals forwarded,
orphans reaped; through exec, restart and a daemon restart (live restore)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root


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


def _inspect(d: BerthDaemon, ref: str) -> dict[str, Any]:
    return json.loads(d.docker("inspect", ref, check=True).stdout)[0]  # type: ignore[no-any-return]


def _ps(d: BerthDaemon, ref: str) -> dict[int, tuple[int, str, str]]:
    """busybox `ps` in the container: pid -> (ppid, stat, args)."""
    out = d.docker("exec", ref, "ps", "-o", "pid,ppid,stat,args", check=True).stdout
    rows = {}
    for line in out.splitlines()[1:]:
        pid, ppid, stat, args = line.split(None, 3)
        rows[int(pid)] = (int(ppid), stat, args)
    return rows


def _assert_tini_pid1(d: BerthDaemon, ref: str, child: str) -> None:
    rows = _ps(d, ref)
    assert rows[1][2].startswith("/sbin/docker-init -- "), rows
    assert any(ppid == 1 and args == child for pid, (ppid, _, args) in rows.items() if pid != 1), rows


def _timed_stop(d: BerthDaemon, ref: str, *args: str) -> float:
    start = time.monotonic()
    d.docker("stop", *args, ref, check=True)
    return time.monotonic() - start


def test_init_runs_tini_as_pid1_and_stop_is_prompt(d: BerthDaemon) -> None:
    cid = d.docker("run", "-d", "--init", "busybox", "sleep", "1000", check=True).stdout.strip()
    info = _inspect(d, cid)
    assert info["HostConfig"]["Init"] is True
    assert (info["Path"], info["Args"]) == ("sleep", ["1000"])  # as dockerd: the user's command
    _assert_tini_pid1(d, cid, "sleep 1000")
    top = d.docker("top", cid, check=True).stdout
    assert "/sbin/docker-init -- sleep 1000" in top and "\nroot" in top
    assert d.docker("exec", cid, "echo", "exec-ok").stdout == "exec-ok\n"
    # tini forwards SIGTERM to sleep (not PID 1, so it dies of it): no 10 s timeout
    assert _timed_stop(d, cid) < 5
    assert _inspect(d, cid)["State"]["ExitCode"] == 143
    d.docker("rm", cid, check=True)


def test_without_init_the_process_is_pid1(d: BerthDaemon) -> None:
    cid = d.docker("run", "-d", "busybox", "sleep", "1000", check=True).stdout.strip()
    assert _inspect(d, cid)["HostConfig"].get("Init") is None  # omitempty, as dockerd
    assert _ps(d, cid)[1][2] == "sleep 1000"
    assert _timed_stop(d, cid, "-t", "1") >= 0.9  # PID 1 ignores SIGTERM: killed after the timeout
    assert _inspect(d, cid)["State"]["ExitCode"] == 137
    d.docker("rm", cid, check=True)


def test_shell_pid_is_not_1_with_init(d: BerthDaemon) -> None:
    assert d.docker("run", "--rm", "--init", "busybox", "sh", "-c", "echo $$", check=True).stdout.strip() != "1"
    assert d.docker("run", "--rm", "busybox", "sh", "-c", "echo $$", check=True).stdout.strip() == "1"
    # exit status passes through tini; a missing command is tini's exec error (127, as dockerd)
    assert d.docker("run", "--rm", "--init", "busybox", "sh", "-c", "exit 7").returncode == 7
    missing = d.docker("run", "--rm", "--init", "busybox", "no-such-cmd")
    assert missing.returncode == 127 and "no-such-cmd" in missing.stderr
    # read-only rootfs, another user, a tty: the init mount and tini still work
    out = d.docker("run", "--rm", "--init", "--read-only", "-u", "1000", "-t", "busybox", "sh", "-c", "id -u; tty",
                   check=True).stdout
    assert out.split() == ["1000", "/dev/pts/0"]


def test_orphans_are_reaped(d: BerthDaemon) -> None:
    script = "(sleep 0.2 &); exec sleep 1000"  # the backgrounded sleep is orphaned to PID 1
    with_init = d.docker("run", "-d", "--init", "busybox", "sh", "-c", script, check=True).stdout.strip()
    without = d.docker("run", "-d", "busybox", "sh", "-c", script, check=True).stdout.strip()
    try:
        deadline = time.monotonic() + 10
        while not any(stat.startswith("Z") for _, stat, _ in _ps(d, without).values()):
            assert time.monotonic() < deadline, _ps(d, without)  # sleep as PID 1 leaves a zombie
            time.sleep(0.1)
        rows = _ps(d, with_init)
        assert not any(stat.startswith("Z") for _, stat, _ in rows.values()), rows
        assert len(rows) == 3, rows  # tini, sleep 1000, ps: the orphan is gone
    finally:
        d.docker("rm", "-f", with_init, without)


def test_image_without_sbin(d: BerthDaemon, tmp_path: Path) -> None:
    """The runtime makes the /sbin/docker-init mount point in a rootfs that has no /sbin."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bin")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        data = Path("/bin/busybox").read_bytes()  # busybox-static on the host
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "rootfs.tar").write_bytes(buf.getvalue())
    d.docker("import", str(tmp_path / "rootfs.tar"), "nosbin:1", check=True)
    out = d.docker("run", "--rm", "--init", "nosbin:1", "/bin/busybox", "ps", "-o", "pid,args", check=True).stdout
    assert "1 /sbin/docker-init -- /bin/busybox ps" in out
    d.docker("rmi", "nosbin:1", check=True)


def test_restart_and_live_restore_keep_init(d: BerthDaemon) -> None:
    cid = d.docker("run", "-d", "--init", "busybox", "sleep", "1000", check=True).stdout.strip()
    start = time.monotonic()
    d.docker("restart", cid, check=True)
    assert time.monotonic() - start < 5  # the stop half is prompt too
    _assert_tini_pid1(d, cid, "sleep 1000")

    pid = _inspect(d, cid)["State"]["Pid"]
    d.stop()  # SIGTERM: containers keep running (live restore)
    d.start()
    info = _inspect(d, cid)
    assert info["State"]["Running"] is True and info["State"]["Pid"] == pid
    assert info["HostConfig"]["Init"] is True
    _assert_tini_pid1(d, cid, "sleep 1000")
    assert d.docker("exec", cid, "echo", "adopted").stdout == "adopted\n"
    assert _timed_stop(d, cid) < 5
    assert _inspect(d, cid)["State"]["ExitCode"] == 143
    d.docker("start", cid, check=True)
    _assert_tini_pid1(d, cid, "sleep 1000")
    d.docker("rm", "-f", cid, check=True)


def test_info_and_version_name_the_init(d: BerthDaemon) -> None:
    info = json.loads(d.docker("info", "--format", "{{json .}}", check=True).stdout)
    assert info["InitBinary"] == "docker-init" and info["InitCommit"]["ID"]
    version = json.loads(d.docker("version", "--format", "{{json .Server}}", check=True).stdout)
    init = [c for c in version["Components"] if c["Name"] == "docker-init"]
    assert init and init[0]["Version"], version
    assert "docker-init" in d.docker("version", check=True).stdout
