"""Runtime.delete of a container whose init no conmon watches (needs root).

A daemon SIGKILLed while it creates a container leaves an init that waits on the exec FIFO for
a `start` that never comes: its conmon may be gone (it gives up when no one reads its sync
pipe), its pid file unwritten, the runtime's own state partial. `delete` must kill it all the
same (its cgroup, and the processes naming its bundle), and `container_ids` must list it so a
restarted daemon finds it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from berth.runtime import ContainerSpec
from berth.runtime.runtime import container_processes
from tests.integration.test_runtime_containers import Harness, _runtimes

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("conmon") is None, reason="needs conmon"),
]


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    layer = tmp_path_factory.mktemp("layer")
    (layer / "bin").mkdir()
    shutil.copy("/bin/busybox", layer / "bin" / "busybox")
    for applet in ("sh", "sleep", "true"):
        (layer / "bin" / applet).symlink_to("busybox")
    return layer


@pytest.fixture(params=_runtimes())
def h(request: pytest.FixtureRequest, layer: Path) -> Iterator[Harness]:
    harness = Harness(request.param, layer)
    try:
        yield harness
    finally:
        harness.cleanup()  # rmdir of the cgroup parent fails loudly while a process is in it


def _processes(h: Harness, cid: str) -> set[int]:
    bundle = h.run_dir / cid
    return set(container_processes(bundle, f"/{h.cgroup_parent}/{cid}"))


def _wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _kill_conmon(h: Harness, cid: str) -> None:
    os.kill(int((h.run_dir / cid / "conmon.pid").read_text()), signal.SIGKILL)
    _wait_for(lambda: not h.rt.is_running(cid))  # the init is an orphan now


@pytest.mark.parametrize("case", ["conmon gone", "no pid file", "conmon gone, no runtime state",
                                  "conmon gone, no pid file, no runtime state"])
def test_delete_kills_a_created_init_nothing_watches(h: Harness, case: str) -> None:
    cid = h.create("sleep", "3600")
    assert _processes(h, cid)
    assert cid in h.rt.container_ids()
    if "conmon gone" in case:
        _kill_conmon(h, cid)
    if "no pid file" in case:
        (h.run_dir / cid / "pidfile").unlink()
    if "no runtime state" in case:
        shutil.rmtree(h.run_dir / h.rt.name / cid)
    assert not h.rt.is_running(cid)
    assert _processes(h, cid), "the created init outlives its conmon"
    h.rt.delete(cid)
    assert _processes(h, cid) == set()
    assert cid not in h.rt.container_ids()


def test_delete_kills_a_running_container_whose_conmon_is_gone(h: Harness) -> None:
    cid = h.run("sleep", "3600")
    _kill_conmon(h, cid)
    shutil.rmtree(h.run_dir / h.rt.name / cid)  # `<runtime> delete --force` cannot help
    h.rt.delete(cid)
    assert _processes(h, cid) == set()


def test_create_again_clears_a_stale_created_init(h: Harness) -> None:
    """A start after a cut-short create (same id) kills the old init before it creates anew."""
    cid = h.create("sleep", "3600")
    _kill_conmon(h, cid)
    (h.run_dir / cid / "pidfile").unlink()
    old = _processes(h, cid)

    spec = ContainerSpec(id=cid, args=("sleep", "3600"), env=("PATH=/bin",), cgroup_parent=h.cgroup_parent)
    h.rt.create(spec, h.container_dir(cid) / "rootfs", h.log(cid))
    assert old.isdisjoint(_processes(h, cid))
    assert not any(_alive(p) for p in old)


def _alive(pid: int) -> bool:
    """Not gone and not a zombie (this host's PID 1 reaps orphans lazily)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_container_ids_lists_bundles_state_and_exit_files(h: Harness) -> None:
    ran = h.run("true")
    created = h.create("sleep", "3600")
    _wait_for(lambda: h.rt.exit_code(ran) is not None)
    ids = h.rt.container_ids()
    assert {ran, created} <= ids
    assert not ids & {"crun", "runc", "exits"}
