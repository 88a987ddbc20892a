"""The CNI protocol: run a network list's plugins for ADD and DEL (no libcni).

A plugin is an executable; the command, container and netns travel in CNI_* variables, the
network configuration on stdin, the result (or a JSON error) on stdout. Executing is behind the
`PluginExecutor` seam so tests can record calls instead of running binaries.

    ADD: plugins in list order, each given the previous plugin's result as prevResult. The last
         result is what the caller caches. On failure, DEL runs for the plugins tried so far
         (the failing one included: a plugin's DEL tolerates what it never created).
    DEL: plugins in reverse order, with the cached result as prevResult and the same
         runtimeConfig as the ADD. DEL is idempotent.
    CHECK is never used (portmap 1.1.1 breaks on it, host-notes §6.4).

Plugins outlive a SIGKILLed daemon. An ADD still running then finishes on its own, possibly after
the restarted daemon has DELeted the half-made attachment and removed its netns: bridge's ipMasq
chain and POSTROUTING jump (and host-local's lease) stay behind for good, since a DEL without the
netns cannot find the address they are keyed by (host-notes §6.4). So `PluginProcesses`, the real
executor, runs every plugin holding a shared flock on `<state_dir>/plugins.lock` through an open
file description only the plugin inherits (and whatever it runs: the IPAM plugin, iptables). The
kernel drops that lock when the last process holding the description exits, whether or not the
daemon is still alive, so `wait_for_strays()` (exclusive lock on a new description) returns once
no plugin of a predecessor is running; cleanup_stale calls it before it DELs anything.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from berth.errors import Unavailable
from berth.network._cniconfig import JSON, plugin_env, plugin_stdin

log = logging.getLogger(__name__)

# How long a restarted daemon waits for plugins its killed predecessor left running.
STRAY_WAIT_SECONDS = 20.0
PLUGINS_LOCK = "plugins.lock"


class PluginExecutor(Protocol):
    """Runs one plugin binary and returns its stdout.

    Raises:
        Unavailable: the plugin could not run or reported an error (message = plugin's msg).
    """

    def __call__(self, path: str, env: Mapping[str, str], stdin: bytes) -> bytes: ...


@runtime_checkable
class WaitsForStrays(Protocol):
    """An executor whose plugins a restarted daemon can wait for (PluginProcesses)."""

    def wait_for_strays(self, timeout: float = STRAY_WAIT_SECONDS) -> bool: ...


def run_plugin(
    path: str, env: Mapping[str, str], stdin: bytes, *, pass_fds: Sequence[int] = ()
) -> bytes:
    """One subprocess per call, stdin in, stdout out (`pass_fds` stay open in the plugin)."""
    try:
        proc = subprocess.run(
            [path], input=stdin, env=dict(env), capture_output=True, timeout=60, check=False,
            pass_fds=tuple(pass_fds),
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Unavailable(f"CNI plugin {os.path.basename(path)}: {err}") from err
    if proc.returncode != 0:
        raise Unavailable(plugin_error_message(path, proc.stdout, proc.stderr))
    return proc.stdout


class PluginProcesses:
    """The real PluginExecutor: `run_plugin`, each plugin holding a shared flock on `lock_path`
    for as long as it (or anything it started) runs, even past the daemon's death; see the
    module docstring. Thread-safe; one lock file may serve several managers.

    Example:
        plugins = PluginProcesses(state_dir / "plugins.lock")
        plugins.wait_for_strays()   # at start-up, before DELing a crashed daemon's leftovers
        plugins(path, env, stdin)   # as any executor
    """

    def __init__(self, lock_path: Path) -> None:
        self._lock_path = Path(lock_path)

    def __call__(self, path: str, env: Mapping[str, str], stdin: bytes) -> bytes:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # blocks only while a wait_for_strays checks
            return run_plugin(path, env, stdin, pass_fds=(fd,))
        finally:
            os.close(fd)  # the lock lives on in the plugin if it is still running

    def wait_for_strays(self, timeout: float = STRAY_WAIT_SECONDS) -> bool:
        """Wait until no plugin started through `lock_path` runs any more (a killed daemon's,
        or a live one's); False, with a warning, if some still runs after `timeout` seconds."""
        fd = self._open()
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        log.warning("CNI plugins of an earlier daemon still run after %.0f s; "
                                    "cleaning up anyway", timeout)
                        return False
                    time.sleep(0.01)
        finally:
            os.close(fd)

    def _open(self) -> int:
        try:
            self._lock_path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise Unavailable(f"CNI plugin lock {self._lock_path}: {err}") from err


def plugin_error_message(path: str, stdout: bytes, stderr: bytes) -> str:
    """`<plugin>: <msg>[: <details>]` from the CNI error object, else the raw output."""
    name = os.path.basename(path)
    try:
        err = json.loads(stdout)
        text = str(err["msg"])
        if err.get("details"):
            text += f": {err['details']}"
    except (ValueError, KeyError, TypeError):
        text = (stdout or stderr).decode(errors="replace").strip() or "failed"
    return f"CNI plugin {name}: {text}"


class CniRunner:
    """ADD/DEL of a whole network list for one container interface."""

    def __init__(self, executor: PluginExecutor, cni_path: str) -> None:
        self._exec = executor
        self._cni_path = cni_path

    def add(self, conflist: JSON, container_id: str, netns: str, rt_config: JSON) -> JSON:
        """Run ADD through the list; returns the final result.

        Raises:
            Unavailable: a plugin failed; everything tried so far was DELeted again.
        """
        prev: JSON | None = None
        for index in range(len(conflist["plugins"])):
            try:
                prev = self._call("ADD", conflist, index, container_id, netns, prev, rt_config)
            except Unavailable:
                self._rollback(conflist, index + 1, container_id, netns, prev, rt_config)
                raise
        assert prev is not None, "a network list has at least one plugin"
        return prev

    def add_one(
        self,
        conflist: JSON,
        index: int,
        container_id: str,
        netns: str,
        prev: JSON | None,
        rt_config: JSON,
    ) -> JSON:
        """ADD of the single plugin `index` on top of an earlier result (ports for a spare).

        Raises:
            Unavailable: the plugin failed (the caller DELs the whole list).
        """
        return self._call("ADD", conflist, index, container_id, netns, prev, rt_config)

    def delete(
        self, conflist: JSON, container_id: str, netns: str, rt_config: JSON, prev: JSON | None
    ) -> None:
        """Run DEL through the whole list in reverse; tries every plugin even after a failure.

        Raises:
            Unavailable: at least one plugin failed (messages joined).
        """
        errors = self._delete_first(
            len(conflist["plugins"]), conflist, container_id, netns, prev, rt_config
        )
        if errors:
            raise Unavailable("; ".join(errors))

    def _rollback(
        self, conflist: JSON, count: int, cid: str, netns: str, prev: JSON | None, rt: JSON
    ) -> None:
        for error in self._delete_first(count, conflist, cid, netns, prev, rt):
            log.warning("rollback of CNI ADD for %s: %s", cid, error)

    def _delete_first(
        self, count: int, conflist: JSON, cid: str, netns: str, prev: JSON | None, rt: JSON
    ) -> list[str]:
        errors = []
        for index in reversed(range(count)):
            try:
                self._call("DEL", conflist, index, cid, netns, prev, rt)
            except Unavailable as err:
                errors.append(str(err))
        return errors

    def _call(
        self,
        command: str,
        conflist: JSON,
        index: int,
        container_id: str,
        netns: str,
        prev: JSON | None,
        rt_config: JSON,
    ) -> JSON:
        stdin = plugin_stdin(conflist, index, prev, rt_config)
        path = os.path.join(self._cni_path, stdin["type"])
        env = plugin_env(command, container_id, netns, self._cni_path)
        out = self._exec(path, env, json.dumps(stdin).encode())
        if command == "DEL":
            return {}
        try:
            result: JSON = json.loads(out)
        except ValueError as err:
            raise Unavailable(f"CNI plugin {stdin['type']}: unreadable result: {err}") from err
        return result
