"""Resolve a container path to a host path without ever leaving the container's root.

Symlinks inside a container are interpreted as the container would: an absolute target starts
again at the container root, `..` stops at the root. This is moby's FollowSymlinkInScope; every
host-side file operation on a container's filesystem (cp, volume copy-up) goes through it, so a
hostile symlink such as `/etc -> /../../../host/etc` cannot reach outside.
"""

from __future__ import annotations

import os
from pathlib import Path

from berth.errors import InvalidArgument

MAX_LINKS = 255


def resolve_in_root(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """The host path for container path `path` under `root` (which must be absolute).

    Missing components are kept as they are (the result may not exist). With
    `follow_last=False` a symlink in the last component is not followed (lstat semantics).

    Raises:
        InvalidArgument: too many levels of symbolic links.
    """
    root = Path(os.path.abspath(root))
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        is_last = not parts
        if os.path.islink(candidate) and (follow_last or not is_last):
            links += 1
            if links > MAX_LINKS:
                raise InvalidArgument(f"too many links resolving {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def container_path(root: Path, host_path: Path) -> str:
    """The container-side absolute path of `host_path` (which lies under `root`)."""
    rel = os.path.relpath(host_path, root)
    return "/" if rel == "." else "/" + rel
