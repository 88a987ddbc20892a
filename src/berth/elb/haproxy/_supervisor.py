"""One HAProxy master (master-worker mode, daemonized so it outlives berth's daemon) per run dir:
start it, adopt a running one, reload it seamlessly, and restart it when it dies.

The master is found again through its pid file; a pidfd on it tells a watcher thread the moment it
exits (it is not berth's child once daemonized, so waitpid cannot), and the thread starts a new
one from the config file on disk within milliseconds.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from berth.elb.haproxy._runtime import Runtime, RuntimeError_
from berth.errors import InvalidArgument, Unavailable

log = logging.getLogger(__name__)


class ConfigRejected(InvalidArgument):
    """HAProxy refused a rendered configuration (`haproxy -c`); the running one keeps serving."""


class ProxyUnavailable(Unavailable):
    """HAProxy could not be started, reached or reloaded."""


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not found:
        raise ProxyUnavailable("haproxy is not installed (Debian package haproxy)")
    return found


def _wait(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Supervisor:
    def __init__(self, run_dir: Path, binary: str | None = None, restart: bool = True) -> None:
        self.run_dir = run_dir
        self.config_path = run_dir / "haproxy.cfg"
        self.pid_path = run_dir / "haproxy.pid"
        self.master_socket = run_dir / "master.sock"
        self.stats_socket = run_dir / "stats.sock"
        self.log_path = run_dir / "haproxy.log"
        self.runtime = Runtime(self.stats_socket, self.master_socket)
        self._binary = binary
        self._restart = restart
        self._lock = threading.RLock()
        self._pid: int | None = None
        self._pidfd: int | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._watcher: threading.Thread | None = None
        self._closing = False
        self.restarts = 0

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = haproxy_binary()
        return self._binary

    @property
    def pid(self) -> int | None:
        return self._pid

    def running(self) -> bool:
        return self._pid is not None and _alive(self._pid)

    # -- config --

    def validate(self, path: Path) -> None:
        proc = subprocess.run([self.binary, "-c", "-q", "-f", str(path)], capture_output=True, text=True,
                              timeout=30)
        if proc.returncode != 0:
            detail = "\n".join(line for line in (proc.stderr + proc.stdout).splitlines() if "ALERT" in line)
            raise ConfigRejected(f"haproxy refused the configuration: {detail or proc.stderr.strip()}")

    def write_config(self, text: str) -> Path:
        """Validate `text` in a temporary file; return it (rename over haproxy.cfg with `install`)."""
        tmp = self.run_dir / f".haproxy.cfg.{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(text)
        try:
            self.validate(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def install(self, tmp: Path) -> None:
        os.replace(tmp, self.config_path)

    # -- lifecycle --

    def adopt(self) -> bool:
        """Take over a master already running for this run dir; False when there is none."""
        with self._lock:
            try:
                pid = int(self.pid_path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                return False
            if not _is_our_haproxy(pid, self.config_path):
                return False
            try:
                self.runtime.procs()
            except RuntimeError_:
                return False
            self._attach(pid)
            log.info("adopted haproxy master %d", pid)
            return True

    def start(self) -> None:
        with self._lock:
            if self.running():
                return
            self._spawn()

    def _spawn(self) -> None:
        self.pid_path.unlink(missing_ok=True)
        argv = [self.binary, "-W", "-D", "-p", str(self.pid_path), "-S", f"{self.master_socket},mode,600",
                "-f", str(self.config_path)]
        with open(self.log_path, "ab") as logf:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True,
                                  timeout=30)
        if proc.returncode != 0:
            raise ProxyUnavailable(f"haproxy did not start (exit {proc.returncode}); see {self.log_path}")
        if not _wait(lambda: self.pid_path.exists() and self.pid_path.read_text().strip() != "", 5):
            raise ProxyUnavailable("haproxy wrote no pid file")
        pid = int(self.pid_path.read_text().split()[0])
        self._attach(pid)
        if not _wait(self._worker_ready, 10):
            raise ProxyUnavailable(f"haproxy master {pid} has no worker; see {self.log_path}")

    def _worker_ready(self) -> bool:
        try:
            return self.runtime.worker_pid() is not None and self.stats_socket.exists()
        except RuntimeError_:
            return False

    def _attach(self, pid: int) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
        self._pid = pid
        self._pidfd = os.pidfd_open(pid)
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=self._watch, name="haproxy-watch", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while not self._closing:
            fd = self._pidfd
            if fd is None:
                return
            try:
                ready, _, _ = select.select([fd, self._stop_r], [], [], 1.0)
            except (OSError, ValueError):
                ready = []
                if self._closing:
                    return
                continue
            if self._stop_r in ready or self._closing:
                return
            if fd not in ready:
                continue
            with self._lock:
                if self._closing or fd != self._pidfd:
                    continue
                log.warning("haproxy master %s exited", self._pid)
                os.close(fd)
                self._pidfd = None
                self._pid = None
                if not self._restart or not self.config_path.exists():
                    return
                try:
                    self._spawn()
                    self.restarts += 1
                    log.warning("haproxy restarted as %s", self._pid)
                except (Unavailable, OSError, subprocess.SubprocessError) as e:
                    log.error("haproxy restart failed: %s", e)
                    return

    def reload(self, timeout: float = 15.0) -> None:
        """Seamless reload: the master re-executes with the config file; the new worker takes the
        listening sockets over (expose-fd listeners) and old workers finish their connections."""
        with self._lock:
            if not self.running():
                self._spawn()
                return
            before = self.runtime.worker_pid()
            self.runtime.reload()

            def changed() -> bool:
                try:
                    now = self.runtime.worker_pid()
                except RuntimeError_:
                    return False
                return now is not None and now != before and self.stats_socket.exists()

            if not _wait(changed, timeout):
                raise ProxyUnavailable(f"haproxy did not reload (worker {before} still current); see {self.log_path}")

    def detach(self) -> None:
        """Stop watching without stopping HAProxy (a daemon shutting down: the next one adopts it)."""
        with self._lock:
            self._closing = True
            os.write(self._stop_w, b"x")
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop HAProxy for real (master and workers) and stop watching."""
        pid = self._pid
        fd = self._pidfd
        with self._lock:
            self._closing = True
            os.write(self._stop_w, b"x")
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        workers: list[int] = []
        if pid is not None:
            try:
                workers = [p.pid for p in self.runtime.procs() if p.kind == "worker"]
            except RuntimeError_:
                pass
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if fd is not None:
                select.select([fd], [], [], timeout)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for w in workers:
            if not _wait(lambda w=w: not _alive(w), timeout):   # type: ignore[misc]
                try:
                    os.kill(w, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        with self._lock:
            if self._pidfd is not None:
                os.close(self._pidfd)
            self._pidfd = None
            self._pid = None
        self.pid_path.unlink(missing_ok=True)

    def close_fds(self) -> None:
        for fd in (self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _is_our_haproxy(pid: int, config: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and os.path.basename(argv[0]).startswith(b"haproxy") and str(config).encode() in argv \
        and _alive(pid)
