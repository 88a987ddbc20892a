"""Runtime: run containers with crun/runc under one conmon each.

A deliberately thin wrapper (like podman's libpod/oci.go): it knows the runtime's verbs and
conmon's files, not the container lifecycle; the engine checks states before calling.

Lifecycle of one container id:
  create()  writes the bundle, starts conmon, which runs `<runtime> create` -> "created"
  start()   `<runtime> start` -> the process runs; conmon logs and serves attach clients
  (exit)    conmon writes exits/<id> (exit code, 128+N for signal N) and exits
  delete()  `<runtime> delete --force`, waits for conmon, removes every file of the id

Files under run_dir (tmpfs in production; a conmon outlives the daemon, a new Runtime on the
same run_dir adopts it through these files):

    <run_dir>/
        crun/ | runc/        the runtime's own state (--root)
        exits/<id>           exit code written by conmon
        <id>/                bundle
            config.json      OCI spec
            pidfile          container init pid (written by the runtime)
            conmon.pid       conmon's pid (written by us)
            attach ctl winsz conmon's socket and FIFOs
            oom              present when the cgroup OOM-killed something
            exec/<exec id>/  exec sessions

Sync methods block (call them from a thread); async ones run on the event loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal as signals
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.errors import Conflict, InvalidArgument, NotFound, Unavailable
from berth.runtime import cgroupfix, conmon, rootfs
from berth.runtime._fdwait import readable, readable_blocking
from berth.runtime.attach import AttachStream
from berth.runtime.errtext import create_error_text, is_user_error, runtime_message
from berth.runtime.exec import ExecProcess, start_exec
from berth.runtime.oci import (
    build_exec_process, build_oci_spec, daemon_caps, daemon_hard_limits, update_resources,
)
from berth.runtime.seccomp_cache import SeccompCache
from berth.runtime.selection import read_unified_controllers, select_runtime
from berth.runtime.spec import ContainerSpec, ExecSpec, Resources

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
_RUN_DIR_ENTRIES = {"crun", "runc", "exits"}  # what the run dir holds besides bundles
UNKNOWN_EXIT = 255  # conmon vanished without writing an exit file
_CONMON_EXIT_GRACE = 5.0  # s to wait for conmon after the container was killed


class Runtime:
    """Create, start, signal, wait for and delete containers; attach and exec into them."""

    def __init__(
        self, *, run_dir: Path, runtime: str = "auto", conmon: str = "conmon",
        cgroup_fix: str = "auto",
    ) -> None:  # fmt: skip
        """`runtime`: auto | crun | runc; `cgroup_fix`: auto | mask | none (see selection.py)."""
        choice = select_runtime(
            runtime, unified_controllers=read_unified_controllers(), cgroup_fix=cgroup_fix,
            mask_works=cgroupfix.mask_works,
        )  # fmt: skip
        self.name = choice.name
        self.selection_reason = choice.reason
        self.cgroup_fix = choice.cgroup_fix
        self._run_dir = run_dir.absolute()
        self._runtime_path = choice.path  # what conmon runs (create, exec) and most verbs
        self._runtime_bin = choice.path  # the bare binary, for the verbs _fast_cmd runs
        if choice.cgroup_fix == "mask":
            tools = cgroupfix.mask_tools()
            assert tools is not None, "mask_works() found them"
            self._runtime_path = str(cgroupfix.install_wrapper(self._run_dir, choice.path, tools))
        self._conmon = shutil.which(conmon) or conmon
        self._state_root = self._run_dir / self.name
        self._exit_dir = self._run_dir / "exits"
        for d in (self._run_dir, self._state_root, self._exit_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._hard_limits = daemon_hard_limits()
        self._caps = daemon_caps()
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # conmons we spawned
        # crun only: reuse its compiled seccomp filter (seccomp_cache.py); runc has no way in.
        self._seccomp = SeccompCache(self._runtime_bin) if self.name == "crun" else None

    # -- rootfs ----------------------------------------------------------------------------

    def mount_rootfs(self, layer_dirs: list[Path], container_dir: Path) -> Path:
        """Overlay `layer_dirs` (topmost first) at container_dir/rootfs; see rootfs.py."""
        return rootfs.mount_rootfs(layer_dirs, container_dir)

    def unmount_rootfs(self, container_dir: Path) -> None:
        rootfs.unmount_rootfs(container_dir)

    # -- lifecycle -------------------------------------------------------------------------

    def create(self, spec: ContainerSpec, rootfs_path: Path, log_path: Path) -> int:
        """Write the bundle and run `<runtime> create` under a new conmon; returns the pid.

        Raises InvalidArgument (bad user/command: Docker's wording, so the CLI exits 126/127)
        or Unavailable (anything else), after removing what was created.
        """
        bundle = self._bundle(spec.id)
        self._clear_stale(spec.id)
        config = build_oci_spec(
            spec, rootfs_path.absolute(), hard_limits=self._hard_limits, available_caps=self._caps
        )
        seccomp_key = self._seccomp.apply(config) if self._seccomp is not None else None
        # 0700: config.json holds the process environment, secrets included (engine/secret_env.py).
        bundle.mkdir(parents=True, mode=0o700)
        fd = os.open(bundle / "config.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(config))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            pid = self._spawn_conmon(spec, bundle, log_path.absolute())
            if self._seccomp is not None:
                self._seccomp.learn(seccomp_key, self._state_root / spec.id / "seccomp.bpf")
            return pid
        except BaseException:
            self._wait_conmon_gone(spec.id, _CONMON_EXIT_GRACE)
            self._runtime_cmd("delete", "--force", spec.id)  # both runtimes clean up; be sure
            self._discard(spec.id)
            raise

    def start(self, container_id: str) -> None:
        result = self._fast_cmd("start", container_id)
        if result.returncode != 0:
            raise self._start_error(container_id, result.stderr)

    def kill(self, container_id: str, signal: int) -> None:
        """Signal the container's init process; a no-op when it is not running."""
        pid = self._init_pid(container_id)
        if pid is None:
            return
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            if self._init_pid(container_id) == pid:  # still ours after opening the pidfd
                signals.pidfd_send_signal(pidfd, signal)
        except ProcessLookupError:
            pass
        finally:
            os.close(pidfd)

    def pause(self, container_id: str) -> None:
        """Freeze every process of the container (cgroup freezer)."""
        result = self._runtime_cmd("pause", container_id)
        if result.returncode != 0:
            raise Unavailable(f"cannot pause container {container_id}: {result.stderr.strip()}")

    def resume(self, container_id: str) -> None:
        result = self._runtime_cmd("resume", container_id)
        if result.returncode != 0:
            raise Unavailable(f"cannot unpause container {container_id}: {result.stderr.strip()}")

    def processes(self, container_id: str) -> list[int]:
        """Host pids of the container's processes (`<runtime> ps`)."""
        result = self._runtime_cmd("ps", "--format", "json", container_id)
        if result.returncode != 0:
            raise Unavailable(f"cannot list processes of {container_id}: {result.stderr.strip()}")
        return [int(p) for p in json.loads(result.stdout or "[]")]

    def delete(self, container_id: str) -> None:
        """Force-remove the container: kill it, wait for conmon, remove every file; idempotent.

        Without a monitored init (created by a daemon that died before it learnt the pid, its
        conmon gone, its pid file unwritten, its runtime state partial) every process of the
        container is killed all the same: the ones in its cgroup and the ones naming its bundle
        (`<runtime> create` and the init it forked, which waits on the exec FIFO until a start
        that will never come; conmon). Otherwise that init would outlive every file of it."""
        if not self._has_files(container_id):
            return  # deleted already: the runtime state always goes before the bundle
        if self._init_pid(container_id) is not None:
            self.kill(container_id, signals.SIGKILL)
        elif self.exit_code(container_id) is None:
            self._kill_strays(container_id)
        self._wait_conmon_gone(container_id, _CONMON_EXIT_GRACE)
        self._fast_cmd("delete", "--force", container_id)
        self._discard(container_id)

    def container_ids(self) -> set[str]:
        """Every container id the run dir has anything of: a bundle, runtime state, an exit file.
        A starting daemon deletes the ones no record explains as running."""
        ids: set[str] = set()
        for directory, dirs_only in ((self._run_dir, True), (self._state_root, True), (self._exit_dir, False)):
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                name = entry.name
                if name.startswith(".") or (directory == self._run_dir and name in _RUN_DIR_ENTRIES):
                    continue
                if dirs_only and not entry.is_dir(follow_symlinks=False):
                    continue
                ids.add(name)
        return ids

    def update(self, container_id: str, res: Resources, *, lift_pids: bool = False) -> None:
        """Apply new cgroup limits to a running container (`<runtime> update --resources -`);
        `lift_pids` when the update removes a pids limit the container had."""
        document = json.dumps(update_resources(res, lift_pids=lift_pids))
        argv = [self._runtime_path, "--root", str(self._state_root), "update", "--resources", "-", container_id]
        result = subprocess.run(argv, input=document, capture_output=True, text=True)
        if result.returncode != 0:
            text = runtime_message(result.stderr) or f"{self.name} update failed"
            raise Unavailable(f"Cannot update container {container_id}: {text}")

    @property
    def hard_limits(self) -> dict[str, int]:
        """rlimit name -> the daemon's hard limit; containers cannot go above it (no CAP_SYS_RESOURCE)."""
        return dict(self._hard_limits)

    def exit_code(self, container_id: str) -> int | None:
        try:
            return int((self._exit_dir / container_id).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def exit_time(self, container_id: str) -> float | None:
        """When the container's process ended (conmon writes the exit file right then: its
        mtime, seconds since the epoch); None without an exit file."""
        try:
            return (self._exit_dir / container_id).stat().st_mtime
        except (FileNotFoundError, ValueError):
            return None

    def conmon_pid(self, container_id: str) -> int | None:
        """conmon's pid while it runs (it checks the process really is this id's conmon)."""
        pid = _read_int(self._bundle(container_id) / "conmon.pid")
        if pid is None or not _is_conmon_of(pid, container_id):
            return None
        return pid

    def is_running(self, container_id: str) -> bool:
        """True while the container process exists (created or running)."""
        return self._init_pid(container_id) is not None

    def oom_killed(self, container_id: str) -> bool:
        """Whether conmon saw an OOM kill in the container's memory cgroup."""
        return (self._bundle(container_id) / "oom").exists()

    async def wait_exit(self, container_id: str) -> int:
        """Resolves when the container process has ended; returns its Docker-style code."""
        code = self.exit_code(container_id)
        if code is not None:
            return code
        pidfd = self._open_conmon_pidfd(container_id)
        if pidfd is None and not self._bundle(container_id).exists():
            raise NotFound(f"No such container: {container_id}")
        if pidfd is not None:
            try:
                await readable(pidfd)
                self._reap(container_id, pidfd)
            finally:
                os.close(pidfd)
        code = self.exit_code(container_id)
        return UNKNOWN_EXIT if code is None else code

    # -- stdio -----------------------------------------------------------------------------

    async def attach(self, container_id: str) -> AttachStream:
        """Connect to the container's stdio; raises Conflict when its conmon is gone."""
        if self.exit_code(container_id) is not None or self.conmon_pid(container_id) is None:
            raise Conflict(f"container {container_id} is not running")
        try:
            return await AttachStream.connect(self._bundle(container_id))
        except OSError as err:
            raise Conflict(f"container {container_id} is not running: {err}") from err

    def resize(self, container_id: str, height: int, width: int) -> None:
        conmon.write_ctl_resize(self._bundle(container_id) / "ctl", height, width)

    async def exec(self, container_id: str, spec: ExecSpec) -> ExecProcess:
        """Start `spec` in the running container; runtime failures come back in the process
        (error text on its stderr, exit code 126/127), not as exceptions."""
        if not self.is_running(container_id):
            raise Conflict(f"Container {container_id} is not running")
        bundle = self._bundle(container_id)
        config = json.loads((bundle / "config.json").read_text())
        process = build_exec_process(config["process"], spec, Path(config["root"]["path"]))
        return await start_exec(
            conmon_path=self._conmon, runtime_path=self._runtime_path,
            runtime_root=self._state_root, container_id=container_id, bundle=bundle,
            process=process, tty=spec.tty, stdin=spec.stdin, height=spec.height, width=spec.width,
        )  # fmt: skip

    # -- internals -------------------------------------------------------------------------

    def _bundle(self, container_id: str) -> Path:
        if not container_id or "/" in container_id or container_id.startswith("."):
            raise InvalidArgument(f"invalid container id {container_id!r}")
        return self._run_dir / container_id

    def _spawn_conmon(self, spec: ContainerSpec, bundle: Path, log_path: Path) -> int:
        paths = conmon.ConmonPaths(bundle, bundle / "pidfile", self._exit_dir, f"k8s-file:{log_path}")
        argv = conmon.container_argv(
            self._conmon, self._runtime_path, self._state_root, spec.id, paths,
            tty=spec.tty, stdin=spec.open_stdin, stdin_once=spec.stdin_once,
        )  # fmt: skip
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
        try:
            popen = conmon.spawn(argv, cwd=bundle, pipes={"_OCI_SYNCPIPE": sync_w})
        except BaseException:
            os.close(sync_r)
            raise
        finally:
            os.close(sync_w)
        self._children[spec.id] = popen
        (bundle / "conmon.pid").write_text(str(popen.pid))
        reader = conmon.SyncReader(sync_r)
        try:
            message = reader.read_blocking()
        finally:
            reader.close()
        pid = (message or {}).get("data")
        if isinstance(pid, int) and pid > 0:
            return pid
        stderr = str((message or {}).get("message", "conmon exited without reporting"))
        raise self._create_error(spec, stderr)

    def _create_error(self, spec: ContainerSpec, stderr: str) -> Exception:
        text = create_error_text(self.name, stderr, spec.args[0] if spec.args else "")
        return InvalidArgument(text) if is_user_error(text) else Unavailable(text)

    def _start_error(self, container_id: str, stderr: str) -> Exception:
        text = runtime_message(stderr)
        if is_user_error(text):
            return InvalidArgument(create_error_text(self.name, stderr, ""))
        return Unavailable(f"{self.name} start {container_id}: {text}")

    def _runtime_cmd(self, *args: str, runtime_path: str = "") -> subprocess.CompletedProcess[str]:
        argv = [runtime_path or self._runtime_path, "--root", str(self._state_root), *args]
        # stdio on /dev/null or captured: these verbs never leave a process holding the pipes.
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)

    def _fast_cmd(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`start` and `delete` of a container that is not running: the bare binary even under
        the cgroup mask. crun reads the cgroup layout only when it sets cgroups up (create,
        exec, update, pause); start just opens the exec FIFO and delete removes the state and
        the leaves it recorded at create (we remove leftover leaves in _discard too). This
        saves the wrapper's ≈ 3 ms per call; a refusal still falls back to the wrapper."""
        result = self._runtime_cmd(*args, runtime_path=self._runtime_bin)
        if result.returncode != 0 and self._runtime_bin != self._runtime_path:
            if "hybrid mode not supported" in result.stderr:
                return self._runtime_cmd(*args)
        return result

    def _init_pid(self, container_id: str) -> int | None:
        """The container's init pid while it is alive and still a child of its conmon."""
        if self.exit_code(container_id) is not None:
            return None
        pid = _read_int(self._bundle(container_id) / "pidfile")
        conmon_pid = _read_int(self._bundle(container_id) / "conmon.pid")
        if pid is None or conmon_pid is None or _parent_pid(pid) != conmon_pid:
            return None
        return pid

    def _open_conmon_pidfd(self, container_id: str) -> int | None:
        pid = _read_int(self._bundle(container_id) / "conmon.pid")
        if pid is None:
            return None
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return None
        # Verify after opening: from here on the pidfd pins this very process.
        if not _is_conmon_of(pid, container_id):
            self._reap(container_id, pidfd)
            os.close(pidfd)
            return None
        return pidfd

    def _reap(self, container_id: str, pidfd: int) -> None:
        """Collect the exited conmon if it is our child (no zombie left behind)."""
        popen = self._children.get(container_id)
        if popen is not None and popen.poll() is not None:
            del self._children[container_id]
            return
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)

    def _wait_conmon_gone(self, container_id: str, timeout: float) -> None:
        pidfd = self._open_conmon_pidfd(container_id)
        if pidfd is None:
            return
        try:
            readable_blocking(pidfd, timeout)
            self._reap(container_id, pidfd)
        finally:
            os.close(pidfd)

    def _clear_stale(self, container_id: str) -> None:
        """Remove leftovers of an earlier container with this id (e.g. before a reboot, or a
        create cut short by a daemon SIGKILL: its init may still wait on the exec FIFO)."""
        if self.conmon_pid(container_id) is not None:
            raise Conflict(f"container {container_id} already has a running monitor")
        self.delete(container_id)

    def _has_files(self, container_id: str) -> bool:
        return (
            self._bundle(container_id).exists() or (self._exit_dir / container_id).exists()
            or (self._state_root / container_id).exists()
        )  # fmt: skip

    def _kill_strays(self, container_id: str) -> None:
        """SIGKILL every process of the container (its cgroup's, and those naming its bundle)
        until none is left, or _CONMON_EXIT_GRACE passed (then the leftovers are logged)."""
        bundle = self._bundle(container_id)
        cgroups_path = _cgroups_path_of(bundle)
        deadline = time.monotonic() + _CONMON_EXIT_GRACE
        thawed = False
        while True:
            found = container_processes(bundle, cgroups_path)
            if not found:
                return
            if cgroups_path and not thawed:  # a frozen process dies only once thawed
                thaw_cgroup(cgroups_path)
                thawed = True
            for pid, check in found.items():
                kill_verified(pid, check)
            if time.monotonic() > deadline:
                log.warning("container %s: processes %s survive SIGKILL", container_id[:12], sorted(found))
                return
            time.sleep(0.01)

    def _discard(self, container_id: str) -> None:
        """Remove the id's files and cgroup leaves; the runtime state must be gone already."""
        bundle = self._bundle(container_id)
        cgroups_path = _cgroups_path_of(bundle)
        popen = self._children.pop(container_id, None)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=_CONMON_EXIT_GRACE)
        shutil.rmtree(bundle, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self._exit_dir / container_id).unlink()
        if cgroups_path:
            remove_cgroup_leaves(cgroups_path)


def container_processes(bundle: Path, cgroups_path: str | None) -> dict[int, Callable[[int], bool]]:
    """The processes of one container, pid -> a check that the pid still is one of them: the
    members of its cgroup (every hierarchy) and the processes whose argv names its bundle
    (conmon: `-b <bundle>`; `<runtime> create --bundle <bundle>` and, for crun, the init it
    forked, which keeps that argv until it execs the container's process)."""
    found: dict[int, Callable[[int], bool]] = {}
    if cgroups_path:
        def in_cgroup(pid: int) -> bool:
            return _in_cgroup(pid, cgroups_path)
        for pid in cgroup_pids(cgroups_path):
            found[pid] = in_cgroup

    def names_bundle(pid: int) -> bool:
        return _names_path(pid, bundle)
    for pid in pids_naming(bundle):
        found.setdefault(pid, names_bundle)
    found.pop(os.getpid(), None)
    return found


def cgroup_pids(cgroups_path: str) -> set[int]:
    """Pids in `cgroups_path` of every cgroup hierarchy."""
    relative = cgroups_path.strip("/")
    pids: set[int] = set()
    for hierarchy in _cgroup_hierarchies():
        try:
            text = (hierarchy / relative / "cgroup.procs").read_text()
        except OSError:
            continue
        pids.update(int(p) for p in text.split() if p.isdigit())
    return pids


def thaw_cgroup(cgroups_path: str) -> None:
    """Thaw `cgroups_path` (v1 freezer and cgroup2), so SIGKILLed members can die."""
    relative = cgroups_path.strip("/")
    for hierarchy in _cgroup_hierarchies():
        for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            target = hierarchy / relative / name
            if target.exists():
                with contextlib.suppress(OSError):
                    target.write_text(value)


def pids_naming(path: Path) -> set[int]:
    """Pids whose argv has `path` or a path under it as an element."""
    pids: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and _names_path(int(entry.name), path):
            pids.add(int(entry.name))
    return pids


def kill_verified(pid: int, check: Callable[[int], bool]) -> None:
    """SIGKILL `pid` if `check(pid)` holds once a pidfd pins it (no reused pid is hit)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if check(pid):
            signals.pidfd_send_signal(pidfd, signals.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(pidfd)


def _in_cgroup(pid: int, cgroups_path: str) -> bool:
    suffix = ":" + "/" + cgroups_path.strip("/")
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return any(line.rstrip("\n").endswith(suffix) for line in f)
    except OSError:
        return False


def _names_path(pid: int, path: Path) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    exact = os.fsencode(path)
    under = exact + b"/"
    return any(arg == exact or arg.startswith(under) for arg in argv)


def remove_cgroup_leaves(cgroups_path: str) -> None:
    """rmdir `cgroups_path` in every hierarchy (the runtime normally did it already)."""
    relative = cgroups_path.strip("/")
    for hierarchy in _cgroup_hierarchies():
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(hierarchy / relative)


def _cgroup_hierarchies() -> list[Path]:
    try:
        return [p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _cgroups_path_of(bundle: Path) -> str | None:
    try:
        config: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("linux", {}).get("cgroupsPath")
    return value if isinstance(value, str) else None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 4 follows the parenthesised command name, which may itself contain spaces.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 2 or fields[0] == b"Z":
        return None
    return int(fields[1])


def _is_conmon_of(pid: int, container_id: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return (
        bool(argv) and os.path.basename(argv[0]) == b"conmon" and container_id.encode() in argv
    )


