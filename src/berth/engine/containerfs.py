"""A container's filesystem as `docker cp` sees it: its root plus its volume and bind mounts.

Docker (daemon/containerfs_linux.go) bind-mounts a container's volumes, bind mounts and network
files (/etc/hosts, /etc/hostname, /etc/resolv.conf) over its rootfs in a private mount namespace
for every cp, running or not. tmpfs mounts are not part of that view: a path under one is the
rootfs directory beneath it (moby#22020), and mounts made inside the container are not seen.

`ContainerView` gives the same view without mounting anything: a container path is walked one
component at a time (symlinks interpreted inside the container, `..` stopping at /, as
rootpath.resolve_in_root does) and the resolved path is mapped to the host through the innermost
mount holding it. A symlink in a volume therefore resolves in the container's namespace (an
absolute target starts again at the container root), never on the host: no host path outside the
root or the mount sources is reachable.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from berth.types.scopedpath import resolve_scoped, split_path

READ_ONLY_VOLUME = "mounted volume is marked read-only"
READ_ONLY_ROOTFS = "container rootfs is marked read-only"


@dataclass(frozen=True)
class ViewMount:
    destination: str   # absolute container path, as configured
    source: Path       # host path: a volume's _data dir, a bind source, an engine-managed file
    rw: bool = True
    volume: bool = True  # a volume or bind mount (Docker's MountPoints); False: /etc/hosts & co.


class ContainerView:
    """Container paths → host paths under `root` and the mount sources (blocking: reads links)."""

    def __init__(self, root: Path, mounts: Iterable[ViewMount] = ()) -> None:
        self.root = Path(os.path.abspath(root))  # never realpath: it may be a pinned /proc/self/fd/N
        self._mounts: dict[str, ViewMount] = {}  # effective destination -> mount
        # Parents before children, as mounts are made; each destination is resolved through the
        # mounts made before it (a destination may cross a symlink or lie in another mount).
        for mount in sorted(mounts, key=lambda m: _depth(m.destination)):
            # The kernel resolves a source on the host when it mounts it; do the same once, so a
            # host symlink in a source is never read as a container symlink later.
            source = Path(os.path.realpath(mount.source))
            self._mounts[self.resolve(mount.destination)] = ViewMount(
                mount.destination, source, mount.rw, mount.volume)

    # --- resolution --------------------------------------------------------------------------------
    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """The container path `path` with every symlink resolved in the container's namespace.

        Missing components are kept (the result may not exist). With `follow_last=False` a symlink
        in the last component is not followed (lstat semantics).

        Raises:
            InvalidArgument: too many levels of symbolic links.
        """
        def readlink(parts: list[str]) -> str | None:
            candidate = "/" + "/".join(parts)
            if candidate in self._mounts:  # a mount point is the mount, whatever lies beneath it
                return None
            host = self.host(candidate)
            return os.readlink(host) if os.path.islink(host) else None

        return "/" + "/".join(resolve_scoped(path, readlink, follow_last=follow_last))

    def host(self, path: str) -> Path:
        """The host path of a resolved container path (no symlink in it: see `resolve`)."""
        found = self.mount_of(path)
        if found is None:
            return self.root.joinpath(*split_path(path))
        dest, mount = found
        return mount.source.joinpath(*split_path(path[len(dest):]))

    def mount_of(self, path: str) -> tuple[str, ViewMount] | None:
        """(effective destination, mount) of the innermost mount holding resolved `path`."""
        probe = posixpath.normpath(posixpath.join("/", path))
        while True:
            mount = self._mounts.get(probe)
            if mount is not None:
                return probe, mount
            if probe == "/":
                return None
            probe = posixpath.dirname(probe)

    def is_mount_point(self, path: str) -> bool:
        return posixpath.normpath(posixpath.join("/", path)) in self._mounts

    def listdir(self, path: str) -> list[str]:
        """Names in resolved directory `path`, mount points included even where the rootfs lacks
        the directory (a container that never ran), sorted."""
        names = set(os.listdir(self.host(path)))
        for dest in self._mounts:
            if dest != "/" and posixpath.dirname(dest) == path:
                names.add(posixpath.basename(dest))
        return sorted(names)

    def read_only_reason(self, path: str, *, readonly_rootfs: bool) -> str | None:
        """moby's checkWritablePath for resolved `path`: why a write there is refused, or None."""
        found = self.mount_of(path)
        if found is not None and found[1].volume:
            return None if found[1].rw else READ_ONLY_VOLUME
        return READ_ONLY_ROOTFS if readonly_rootfs else None


def _depth(path: str) -> int:
    return len(split_path(posixpath.normpath(path)))
