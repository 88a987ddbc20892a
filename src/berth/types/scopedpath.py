"""Symlink resolution inside a scope (a container root, a build tree), as the scope would see it.

An absolute link target starts again at the scope's root and `..` stops at the root: moby's
FollowSymlinkInScope. The scope is reached only through `readlink`, so the same walk serves a
directory on disk, a container view with mounts, and the builder's in-memory trees.
"""

from __future__ import annotations

from collections.abc import Callable

from berth.errors import InvalidArgument

MAX_LINKS = 255

# readlink(parts) -> the target if the object at `parts` (already resolved) is a symlink, else None.
ReadLink = Callable[[list[str]], "str | None"]


def split_path(path: str) -> list[str]:
    """`/a//b/./c` -> ["a", "b", "c"] (`..` is kept: resolution decides what it means)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve_scoped(path: str | list[str], readlink: ReadLink, *, follow_last: bool = True,
                   max_links: int = MAX_LINKS) -> list[str]:
    """The components of `path` with every symlink resolved inside the scope.

    Missing components are kept (the result may not exist). With `follow_last=False` a symlink
    in the last component is not followed (lstat semantics).

    Raises:
        InvalidArgument: more than `max_links` symlinks on the way (a loop).
    """
    parts = split_path(path) if isinstance(path, str) else list(path)
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = [*resolved, part]
        target = readlink(candidate) if (parts or follow_last) else None
        if target is None:
            resolved = candidate
            continue
        links += 1
        if links > max_links:
            raise InvalidArgument(f"too many levels of symbolic links: /{'/'.join(candidate)}")
        if target.startswith("/"):
            resolved = []
        parts = split_path(target) + parts
    return resolved
