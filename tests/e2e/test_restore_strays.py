"""A restarted daemon kills and deletes every runtime container no record explains as running.

The window a SIGKILL can hit (between `<runtime> create` and the record saying "running") is
made deterministic here: the runtime containers are created through berth.runtime directly on
the daemon's run root while the daemon is down, in the states such a SIGKILL leaves them: a
"created" record whose init lost its conmon (conmon gives up when no one reads its sync pipe),
and containers without any record, with a live conmon or with nothing but the init and its
cgroup left (no conmon, no pid file, no runtime state).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
from pathlib import Path

import pytest

from berth.runtime import ContainerSpec, Runtime
from berth.runtime.runtime import container_processes
from tests.helpers import BerthDaemon, processes_of, wait_for

pytestmark = pytest.mark.root


def _runtime_container(rt: Runtime, base: Path, cid: str) -> None:
    """`<runtime> create` of a busybox `sleep 3600` (not started), as the daemon would."""
    layer = base / "scratch-layer"
    if not layer.exists():
        (layer / "bin").mkdir(parents=True)
        shutil.copy("/bin/busybox", layer / "bin" / "busybox")
        (layer / "bin" / "sleep").symlink_to("busybox")
    rootfs = rt.mount_rootfs([layer], base / "scratch" / cid)
    spec = ContainerSpec(id=cid, args=("sleep", "3600"), env=("PATH=/bin",))
    rt.create(spec, rootfs, base / "scratch" / cid / "ctr.log")


def _orphan(rt: Runtime, run_dir: Path, cid: str, *, strip: bool = False) -> None:
    """Kill the container's conmon (its init lives on); `strip`: its pid file and state too."""
    os.kill(int((run_dir / cid / "conmon.pid").read_text()), signal.SIGKILL)
    wait_for("the init orphaned", lambda: not rt.is_running(cid) or None, timeout=10)
    if strip:
        (run_dir / cid / "pidfile").unlink()
        shutil.rmtree(run_dir / rt.name / cid)


def test_restore_kills_every_runtime_container_no_record_explains() -> None:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    d = BerthDaemon()
    try:
        d.start()
        d.bootstrap_busybox()
        cid = d.docker("create", "--name", "cut-short", "busybox", "sleep", "3600", check=True).stdout.strip()
        d.stop()

        run_dir = d.run_root / "runtime"
        rt = Runtime(run_dir=run_dir, runtime=d.runtime)
        watched, bare = secrets.token_hex(32), secrets.token_hex(32)
        for each in (cid, watched, bare):
            _runtime_container(rt, d.base, each)
        _orphan(rt, run_dir, cid)                 # the record says "created"; conmon gone
        _orphan(rt, run_dir, bare, strip=True)    # no record, nothing but the init and its cgroup

        def procs(i: str) -> set[int]:
            return set(container_processes(run_dir / i, f"/berth/{i}"))
        assert all(procs(i) for i in (cid, watched, bare))
        before = {i: procs(i) for i in (cid, watched, bare)}

        d.start()
        for each in (cid, watched, bare):
            assert procs(each) == set(), each
            assert not (run_dir / each).exists() and not (run_dir / rt.name / each).exists()
        assert all(not _alive(p) for pids in before.values() for p in pids)
        assert "was being started when the daemon died" in d.log()

        # the record is true again: the container starts and runs normally
        d.docker("start", "cut-short", check=True)
        assert d.docker("inspect", "-f", "{{.State.Running}}", "cut-short", check=True).stdout.strip() == "true"
        d.docker("rm", "-f", "cut-short", check=True)
    finally:
        base = d.base
        d.destroy()
    assert processes_of(base, set()) == {}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_destroy_kills_what_a_dead_daemon_left() -> None:
    """The test teardown does not rely on the daemon: created and running containers of a
    SIGKILLed daemon whose conmons are gone are killed by BerthDaemon.destroy()."""
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    d = BerthDaemon()
    try:
        d.start()
        d.bootstrap_busybox()
        d.docker("run", "-d", "--name", "running", "busybox", "sleep", "3600", check=True)
        d.kill()
        run_dir = d.run_root / "runtime"
        rt = Runtime(run_dir=run_dir, runtime=d.runtime)
        created = secrets.token_hex(32)
        _runtime_container(rt, d.base, created)
        _orphan(rt, run_dir, created)
        for bundle in run_dir.iterdir():  # every conmon gone: the running container is orphaned too
            if (bundle / "conmon.pid").exists() and bundle.name != created:
                os.kill(int((bundle / "conmon.pid").read_text()), signal.SIGKILL)
        cgroups = {f"/berth/{b.name}" for b in run_dir.iterdir() if (b / "config.json").exists()}
        assert len(cgroups) == 2
    finally:
        base = d.base
        d.destroy()
    left = processes_of(base, cgroups)
    assert left == {}, left
