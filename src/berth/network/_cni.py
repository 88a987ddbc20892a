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
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping
from typing import Protocol

from berth.errors import Unavailable
from berth.network._cniconfig import JSON, plugin_env, plugin_stdin

log = logging.getLogger(__name__)


class PluginExecutor(Protocol):
    """Runs one plugin binary and returns its stdout.

    Raises:
        Unavailable: the plugin could not run or reported an error (message = plugin's msg).
    """

    def __call__(self, path: str, env: Mapping[str, str], stdin: bytes) -> bytes: ...


def run_plugin(path: str, env: Mapping[str, str], stdin: bytes) -> bytes:
    """The real executor: one subprocess per call, stdin in, stdout out."""
    try:
        proc = subprocess.run(
            [path], input=stdin, env=dict(env), capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Unavailable(f"CNI plugin {os.path.basename(path)}: {err}") from err
    if proc.returncode != 0:
        raise Unavailable(plugin_error_message(path, proc.stdout, proc.stderr))
    return proc.stdout


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
