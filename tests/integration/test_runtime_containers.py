"""Integration tests for berth.runtime: real conmon + crun/runc + overlay (needs root).

Every test runs with runc and with crun. On a hybrid cgroup host whose cgroup2 mount still
owns a controller (host-notes §3) crun runs through the cgroup mask fix (runtime/cgroupfix.py),
so the crun cases also prove that fix: limits enforced, exec, adoption.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from berth.errors import InvalidArgument
from berth.runtime import ContainerSpec, ExecSpec, Mount, Resources, Runtime, read_logs
from berth.runtime.cgroupfix import mask_works
from berth.runtime.selection import read_unified_controllers

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("conmon") is None, reason="needs conmon"),
]

PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
GROUP = "root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n"


@pytest.fixture(scope="module")
def busybox_layer() -> Iterator[Path]:
    """A single lower layer: static busybox plus a symlink per applet (host-notes §5.1)."""
    top = Path(tempfile.mkdtemp(prefix="berth-rt-layer-"))
    layer = top / "layer"
    (layer / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", layer / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True)
    for entry in applets.stdout.split():
        link = layer / entry
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(layer / "bin" / "busybox", link.parent))
    (layer / "etc").mkdir()
    (layer / "etc" / "passwd").write_text(PASSWD)
    (layer / "etc" / "group").write_text(GROUP)
    (layer / "tmp").mkdir(mode=0o1777)
    os.chmod(layer / "tmp", 0o1777)
    yield layer
    shutil.rmtree(top)


def _runtimes() -> list[str]:
    names = ["runc"] if shutil.which("runc") else []
    if shutil.which("crun") and (not read_unified_controllers() or mask_works()):
        names.append("crun")
    return names


class Harness:
    """One Runtime on a temp run dir; tracks containers and removes every trace after."""

    def __init__(self, runtime: str, layer: Path) -> None:
        # Short path under /tmp: it also shows that nothing depends on sun_path length.
        self.top = Path(tempfile.mkdtemp(prefix="berth-rt-"))
        self.run_dir = self.top / "run"
        self.layer = layer
        self.cgroup_parent = f"berth-test-{uuid.uuid4().hex[:8]}"
        self.rt = Runtime(run_dir=self.run_dir, runtime=runtime)
        self.ids: list[str] = []

    def container_dir(self, cid: str) -> Path:
        return self.top / "containers" / cid

    def create(self, *args: str, **kwargs: object) -> str:
        cid = uuid.uuid4().hex
        self.ids.append(cid)
        spec = ContainerSpec(
            id=cid, args=args, env=("PATH=/bin:/usr/bin:/sbin:/usr/sbin",),
            cgroup_parent=self.cgroup_parent, **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip
        rootfs = self.rt.mount_rootfs([self.layer], self.container_dir(cid))
        self.rt.create(spec, rootfs, self.log(cid))
        return cid

    def run(self, *args: str, **kwargs: object) -> str:
        cid = self.create(*args, **kwargs)
        self.rt.start(cid)
        return cid

    def log(self, cid: str) -> Path:
        return self.container_dir(cid) / "ctr.log"

    def log_text(self, cid: str) -> str:
        return "".join(line.decode() for _, line in read_logs(self.log(cid)))

    def cleanup(self) -> None:
        for cid in self.ids:
            self.rt.delete(cid)
            self.rt.unmount_rootfs(self.container_dir(cid))
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            leftover = hierarchy / self.cgroup_parent
            if leftover.exists():
                os.rmdir(leftover)  # fails loudly if a container leaf was left behind
        shutil.rmtree(self.top)


@pytest.fixture(params=_runtimes())
def h(request: pytest.FixtureRequest, busybox_layer: Path) -> Iterator[Harness]:
    harness = Harness(request.param, busybox_layer)
    try:
        yield harness
    finally:
        harness.cleanup()
    assert not _conmons_of(harness.ids), "conmon processes left behind"
    assert str(harness.top) not in Path("/proc/self/mountinfo").read_text()


def _conmons_of(ids: list[str]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"conmon") and any(i.encode() in argv for i in ids):
                pids.append(int(entry.name))
    return pids


def _wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


async def _drain(stream: object) -> dict[int, bytes]:
    out = {1: b"", 2: b""}
    while (item := await asyncio.wait_for(stream.read(), 10)) is not None:  # type: ignore[attr-defined]
        out[item[0]] += item[1]
    return out


# -- plain runs ------------------------------------------------------------------------------


def test_echo_logs_and_exit_zero(h: Harness) -> None:
    cid = h.run("sh", "-c", "echo hi; echo oops >&2")
    assert asyncio.run(h.rt.wait_exit(cid)) == 0
    assert h.rt.exit_code(cid) == 0
    assert list(read_logs(h.log(cid))) == [(1, b"hi\n"), (2, b"oops\n")]
    assert not h.rt.is_running(cid)


def test_exit_code_passes_through(h: Harness) -> None:
    cid = h.run("sh", "-c", "exit 3")
    assert asyncio.run(h.rt.wait_exit(cid)) == 3


def test_sigkill_gives_137(h: Harness) -> None:
    cid = h.run("sleep", "100")
    assert h.rt.is_running(cid)
    assert h.rt.exit_code(cid) is None
    h.rt.kill(cid, signal.SIGKILL)
    assert asyncio.run(h.rt.wait_exit(cid)) == 137
    h.rt.kill(cid, signal.SIGKILL)  # already stopped: no error


def test_missing_executable_is_docker_worded_and_cleaned(h: Harness) -> None:
    with pytest.raises(InvalidArgument) as info:
        h.create("nosuch")
    message = str(info.value)
    assert message.startswith("failed to create task for container: ")
    assert 'exec: "nosuch": executable file not found in $PATH' in message
    cid = h.ids[-1]
    assert not (h.run_dir / cid).exists()
    assert h.rt.conmon_pid(cid) is None


def test_user_resolution_and_hostname(h: Harness) -> None:
    cid = h.run("sh", "-c", "id; hostname; echo $HOME", user="alice", hostname="box")
    assert asyncio.run(h.rt.wait_exit(cid)) == 0
    assert h.log_text(cid) == "uid=1000(alice) gid=1000(alice) groups=50(staff)\nbox\n/home/alice\n"


def test_rootfs_upper_survives_restart(h: Harness) -> None:
    cid = h.run("sh", "-c", "echo kept > /data")
    assert asyncio.run(h.rt.wait_exit(cid)) == 0
    # docker start of a stopped container: create again on the same rootfs.
    rootfs = h.rt.mount_rootfs([h.layer], h.container_dir(cid))
    spec = ContainerSpec(id=cid, args=("cat", "/data"), env=(), cgroup_parent=h.cgroup_parent)
    h.rt.create(spec, rootfs, h.log(cid))
    h.rt.start(cid)
    assert asyncio.run(h.rt.wait_exit(cid)) == 0
    assert h.log_text(cid) == "kept\n"


def test_memory_limit_oom_kills_with_137(h: Harness) -> None:
    limit = 64 * 1024 * 1024
    cid = h.run("dd", "if=/dev/zero", "of=/dev/null", "bs=150M", "count=1",
                resources=Resources(memory=limit))  # fmt: skip
    assert asyncio.run(h.rt.wait_exit(cid)) == 137
    assert h.rt.oom_killed(cid)


def test_memory_and_pids_limits_are_in_the_v1_cgroups(h: Harness) -> None:
    cid = h.run("sh", "-c", "cat /proc/self/cgroup; sleep 100",
                resources=Resources(memory=32 * 1024 * 1024, pids_limit=20))  # fmt: skip
    _wait_for(lambda: "memory:" in h.log_text(cid))
    leaf = f"{h.cgroup_parent}/{cid}"
    assert (Path("/sys/fs/cgroup/memory") / leaf / "memory.limit_in_bytes").read_text() == "33554432\n"
    assert (Path("/sys/fs/cgroup/pids") / leaf / "pids.max").read_text() == "20\n"
    assert f"memory:/{leaf}" in h.log_text(cid)
    h.rt.kill(cid, signal.SIGKILL)
    assert asyncio.run(h.rt.wait_exit(cid)) == 137


def test_pids_limit_stops_fork_bombs(h: Harness) -> None:
    cid = h.run("sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait",
                resources=Resources(pids_limit=20))  # fmt: skip
    assert asyncio.run(h.rt.wait_exit(cid)) != 0
    assert "can't fork" in h.log_text(cid)


def test_seccomp_filter_holds_when_crun_reuses_it(h: Harness) -> None:
    ids = [h.run("sh", "-c", "grep Seccomp: /proc/self/status") for _ in range(2)]
    for cid in ids:
        assert asyncio.run(h.rt.wait_exit(cid)) == 0
        assert h.log_text(cid).split() == ["Seccomp:", "2"]
    if h.rt.name == "crun":  # the second container got the first one's compiled filter
        config = (h.run_dir / ids[1] / "config.json").read_text()
        assert "run.oci.seccomp_bpf_data" in config


def test_crun_choice_reports_the_mask_fix(h: Harness) -> None:
    if h.rt.name != "crun" or not read_unified_controllers():
        pytest.skip("the mask fix applies to crun on a hybrid cgroup host only")
    assert h.rt.cgroup_fix == "mask" and "cgroup mask fix" in h.rt.selection_reason
    assert read_unified_controllers()  # the host itself is unchanged


# -- attach ----------------------------------------------------------------------------------


def test_stdin_via_attach(h: Harness) -> None:
    async def scenario() -> tuple[dict[int, bytes], int]:
        cid = h.create("cat", open_stdin=True, stdin_once=True)
        stream = await h.rt.attach(cid)
        h.rt.start(cid)
        await stream.write(b"hello\n")
        await stream.close_stdin()
        out = await _drain(stream)
        return out, await h.rt.wait_exit(cid)

    out, code = asyncio.run(scenario())
    assert out[1] == b"hello\n" and code == 0


def test_tty_via_attach_with_resize(h: Harness) -> None:
    async def scenario() -> tuple[dict[int, bytes], int]:
        cid = h.create("sh", tty=True, open_stdin=True)
        stream = await h.rt.attach(cid)
        h.rt.resize(cid, 30, 90)
        h.rt.start(cid)
        await stream.write(b"stty size; tty; exit 5\n")
        out = await _drain(stream)
        return out, await h.rt.wait_exit(cid)

    out, code = asyncio.run(scenario())
    assert code == 5
    assert b"30 90\r\n" in out[1] and b"/dev/pts/0" in out[1]
    assert out[2] == b""


def test_adopted_by_a_second_runtime_instance(h: Harness) -> None:
    cid = h.run("sh", "-c", "echo started; exec sleep 100")
    _wait_for(lambda: h.log_text(cid) == "started\n")
    second = Runtime(run_dir=h.run_dir, runtime=h.rt.name)  # as after a daemon restart
    assert second.is_running(cid)
    assert second.conmon_pid(cid) == h.rt.conmon_pid(cid) is not None

    async def scenario() -> int:
        stream = await second.attach(cid)
        proc = await second.exec(cid, ExecSpec(args=("echo", "inside")))
        assert (await _drain(proc))[1] == b"inside\n"
        assert await proc.wait() == 0
        second.kill(cid, signal.SIGKILL)
        assert await _drain(stream) == {1: b"", 2: b""}
        return await second.wait_exit(cid)

    assert asyncio.run(scenario()) == 137
    assert h.log_text(cid) == "started\n"


def test_container_outlives_the_process_that_created_it(h: Harness) -> None:
    cid = uuid.uuid4().hex
    h.ids.append(cid)
    rootfs = h.rt.mount_rootfs([h.layer], h.container_dir(cid))
    creator = f"""
import sys
from pathlib import Path
from berth.runtime import ContainerSpec, Runtime
rt = Runtime(run_dir=Path({str(h.run_dir)!r}), runtime={h.rt.name!r})
spec = ContainerSpec(id={cid!r}, args=("sleep", "100"), env=(), cgroup_parent={h.cgroup_parent!r})
rt.create(spec, Path({str(rootfs)!r}), Path({str(h.log(cid))!r}))
rt.start({cid!r})
"""
    subprocess.run([sys.executable, "-c", creator], check=True, timeout=60)  # the "daemon" exits
    assert h.rt.is_running(cid)

    async def scenario() -> int:
        proc = await h.rt.exec(cid, ExecSpec(args=("echo", "alive")))
        assert (await _drain(proc))[1] == b"alive\n"
        await proc.wait()
        h.rt.kill(cid, signal.SIGKILL)
        return await asyncio.wait_for(h.rt.wait_exit(cid), 10)

    assert asyncio.run(scenario()) == 137


def test_privileged_gets_every_capability_the_daemon_has(h: Harness) -> None:
    cid = h.run("sh", "-c", "grep CapEff /proc/self/status", privileged=True)
    assert asyncio.run(h.rt.wait_exit(cid)) == 0
    own = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("CapEff"))
    assert h.log_text(cid).split() == own.split()


def test_readonly_rootfs_with_bind_mounted_file(h: Harness) -> None:
    hosts = h.top / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    cid = h.run("sh", "-c", "cat /etc/hosts; touch /x || echo readonly",
                readonly_rootfs=True, mounts=(Mount(str(hosts), "/etc/hosts"),))  # fmt: skip
    assert asyncio.run(h.rt.wait_exit(cid)) == 0
    lines = h.log_text(cid).splitlines()
    # stdout and stderr are separate pipes: the log interleaves them in arrival order.
    assert lines[0] == "127.0.0.1 localhost" and "readonly" in lines
    assert any("Read-only file system" in line for line in lines)


# -- exec ------------------------------------------------------------------------------------


def test_exec_non_tty_streams_and_exit_code(h: Harness) -> None:
    cid = h.run("sleep", "100")

    async def scenario() -> None:
        proc = await h.rt.exec(cid, ExecSpec(args=("sh", "-c", "echo out; echo err >&2; exit 7")))
        assert proc.pid > 0
        assert await _drain(proc) == {1: b"out\n", 2: b"err\n"}
        assert await proc.wait() == 7

        proc = await h.rt.exec(cid, ExecSpec(args=("cat",), stdin=True))
        await proc.write(b"ping\n")
        await proc.close_stdin()
        assert (await _drain(proc))[1] == b"ping\n"
        assert await proc.wait() == 0

        proc = await h.rt.exec(cid, ExecSpec(args=("sleep", "100")))
        proc.kill(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == 137

    asyncio.run(scenario())


def test_exec_errors_use_docker_codes(h: Harness) -> None:
    cid = h.run("sleep", "100")

    async def scenario() -> None:
        proc = await h.rt.exec(cid, ExecSpec(args=("nosuch",)))
        out = await _drain(proc)
        assert b'exec: "nosuch": executable file not found in $PATH' in out[2]
        assert out[2].startswith(b"OCI runtime exec failed: ")
        assert await proc.wait() == 127

        proc = await h.rt.exec(cid, ExecSpec(args=("/etc/passwd",)))
        assert b"permission denied" in (await _drain(proc))[2]
        assert await proc.wait() == 126

    asyncio.run(scenario())


def test_exec_tty_size_user_env_cwd(h: Harness) -> None:
    cid = h.run("sleep", "100")

    async def scenario() -> None:
        spec = ExecSpec(args=("sh", "-c", "stty size; id -u; echo $FOO; pwd; exit 4"), tty=True,
                        height=24, width=80, user="alice", env=("FOO=bar",), cwd="/tmp")  # fmt: skip
        proc = await h.rt.exec(cid, spec)
        out = await _drain(proc)
        assert out[1] == b"24 80\r\n1000\r\nbar\r\n/tmp\r\n"
        assert await proc.wait() == 4

    asyncio.run(scenario())


def test_exec_in_stopped_container_is_refused(h: Harness) -> None:
    cid = h.run("true")
    asyncio.run(h.rt.wait_exit(cid))
    with pytest.raises(Exception, match="is not running"):
        asyncio.run(h.rt.exec(cid, ExecSpec(args=("true",))))
