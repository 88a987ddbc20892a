"""`docker run --init` (HostConfig.Init): tini as the container's PID 1, as dockerd does it.

dockerd bind-mounts its `docker-init` binary (a static tini) read-only at /sbin/docker-init and
runs `/sbin/docker-init -- <entrypoint + cmd>`: tini forwards the stop signal to the process and
reaps zombies, so a bare `sleep` ends on SIGTERM instead of waiting out the stop timeout.
Inspect keeps showing the user's Path/Args; only the OCI process and mounts change.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

from berth.errors import Unavailable
from berth.runtime import Mount
from berth.types.host_config import HostConfig

BINARY = "docker-init"  # dockerd's default `init-path`, looked up in $PATH
# Debian's `tini` package: a static tini runs in any image (docker.io links docker-init to it).
FALLBACKS = ("tini-static", "/usr/bin/tini-static")
IN_CONTAINER_PATH = "/sbin/docker-init"
MOUNT_OPTIONS = ("bind", "ro")  # as moby's WithCommonOptions


def wanted(host_config: HostConfig) -> bool:
    """HostConfig.Init true (null/absent = the daemon default, which is off here as in dockerd)."""
    return host_config.init is True


def lookup(which: Callable[[str], str | None] | None = None) -> str:
    """The host path of the init binary; dockerd's error when there is none (no silent fallback
    to running without init). Looked up at each start, as dockerd does."""
    for name in (BINARY, *FALLBACKS):
        path = (which or shutil.which)(name)
        if path:
            return path
    raise Unavailable(f'exec: "{BINARY}": executable file not found in $PATH')


def wrap(args: tuple[str, ...], mounts: tuple[Mount, ...], binary: str) -> tuple[tuple[str, ...], tuple[Mount, ...]]:
    """The process args and mounts of an --init container: tini first, the process after `--`."""
    init_mount = Mount(source=binary, destination=IN_CONTAINER_PATH, options=MOUNT_OPTIONS)
    # A user mount on /sbin/docker-init would hide tini: the init mount goes last and wins.
    kept = tuple(m for m in mounts if m.destination.rstrip("/") != IN_CONTAINER_PATH)
    return (IN_CONTAINER_PATH, "--", *args), (*kept, init_mount)


_VERSION = re.compile(r"tini version (\S+)(?:\s+-\s+git\.(\w+))?")


def parse_version(output: str) -> tuple[str, str]:
    """(version, git commit) from `tini --version` ("tini version 0.19.0 - git.de40ad0");
    Debian's build prints no commit."""
    match = _VERSION.search(output)
    if match is None:
        return "", ""
    return match.group(1), match.group(2) or ""


def version(which: Callable[[str], str | None] | None = None) -> tuple[str, str]:
    """(version, commit) of the init binary, ("", "") when it is missing or says nothing."""
    try:
        out = subprocess.run([lookup(which), "--version"], capture_output=True, text=True, timeout=5,
                             stdin=subprocess.DEVNULL)
    except (Unavailable, OSError, subprocess.SubprocessError):
        return "", ""
    return parse_version(out.stdout + out.stderr)


@functools.cache
def cached_version() -> tuple[str, str]:
    """`version()` once per daemon: Info and /version ask often, the binary seldom changes."""
    return version()


def info_fields() -> dict[str, Any]:
    """Info's InitBinary/InitCommit, as dockerd fills them ("N/A" when the commit is unknown)."""
    return {"InitBinary": BINARY, "InitCommit": {"ID": cached_version()[1] or "N/A"}}


def version_component() -> dict[str, Any] | None:
    """The `docker-init` entry of /version's Components (None without an init binary)."""
    ver, commit = cached_version()
    if not ver:
        return None
    return {"Name": "docker-init", "Version": ver, "Details": {"GitCommit": commit or "N/A"}}
