"""Resolve a container path to a host path without ever leaving the container's root.

Symlinks inside a container are interpreted as the container would: an absolute target starts
again at the container root, `..` stops at the root. This is moby's FollowSymlinkInScope; every
host-side file operation on a container's filesystem (cp, volume copy-up) goes through it, so a
hostile symlink such as `/etc -> /../../../host/etc` cannot reach outside.
"""

from __future__ import annotations

import os
from pathlib import Path

from berth.types.scopedpath import resolve_scoped


def resolve_in_root(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """The host path for container path `path` under `root` (which must be absolute).

    Missing components are kept as they are (the result may not exist). With
    `follow_last=False` a symlink in the last component is not followed (lstat semantics).

    Raises:
        InvalidArgument: too many levels of symbolic links.
    """
    root = Path(os.path.abspath(root))

    def readlink(parts: list[str]) -> str | None:
        candidate = root.joinpath(*parts)
        return os.readlink(candidate) if os.path.islink(candidate) else None

    return root.joinpath(*resolve_scoped(path, readlink, follow_last=follow_last))


def container_path(root: Path, host_path: Path) -> str:
    """The container-side absolute path of `host_path` (which lies under `root`)."""
    rel = os.path.relpath(host_path, root)
    return "/" if rel == "." else "/" + rel
