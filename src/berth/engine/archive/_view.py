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

Resolving is not enough against a running container: it can swap a directory of the resolved
path for a symlink before the path is used. So files are reached only through `ViewFs`
(`view.open()`): the resolved path is walked one component at a time from a directory fd of the
container root or of the mount source with O_NOFOLLOW (berth.images.safefs), and the caller
works on (directory fd, name) with the *at() calls. A component swapped for a symlink fails the
walk (NotADirectoryError) instead of being followed on the host.

    with view.open() as fs:
        path = fs.resolve("/etc/passwd")
        parent, name = fs.locate(path)         # borrowed fd, valid until the next fs call
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from berth.images.safefs import DirFds, open_dir, open_host_dir
from berth.types.scopedpath import resolve_scoped, split_path

READ_ONLY_VOLUME = "mounted volume is marked read-only"
READ_ONLY_ROOTFS = "container rootfs is marked read-only"
_ROOT = "/"


@dataclass(frozen=True)
class ViewMount:
    destination: str   # absolute container path, as configured
    source: Path       # host path: a volume's _data dir, a bind source, an engine-managed file
    rw: bool = True
    volume: bool = True  # a volume or bind mount (Docker's MountPoints); False: /etc/hosts & co.


class ContainerView:
    """Container paths → host paths under `root` and the mount sources (blocking: reads links).

    `root` is trusted (a pinned /proc/self/fd/N, /proc/PID/root): it is opened following links.
    """

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

    def open(self) -> ViewFs:
        """fd-based access to the view's files (close it, or use it as a context manager)."""
        return ViewFs(self)

    # --- resolution --------------------------------------------------------------------------------
    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """The container path `path` with every symlink resolved in the container's namespace.

        Missing components are kept (the result may not exist). With `follow_last=False` a symlink
        in the last component is not followed (lstat semantics).

        Raises:
            InvalidArgument: too many levels of symbolic links.
        """
        with self.open() as fs:
            return fs.resolve(path, follow_last=follow_last)

    def host(self, path: str) -> Path:
        """The host path of a resolved container path, for messages and tests: file work goes
        through `open()`, as this path may cross a symlink swapped in meanwhile."""
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

    def mount_points_in(self, path: str) -> list[str]:
        """Names of the mount points directly in resolved directory `path`."""
        return [posixpath.basename(d) for d in self._mounts if d != "/" and posixpath.dirname(d) == path]

    def listdir(self, path: str) -> list[str]:
        """Names in resolved directory `path`, mount points included even where the rootfs lacks
        the directory (a container that never ran), sorted."""
        with self.open() as fs:
            return fs.listdir(path)

    def read_only_reason(self, path: str, *, readonly_rootfs: bool) -> str | None:
        """moby's checkWritablePath for resolved `path`: why a write there is refused, or None."""
        found = self.mount_of(path)
        if found is not None and found[1].volume:
            return None if found[1].rw else READ_ONLY_VOLUME
        return READ_ONLY_ROOTFS if readonly_rootfs else None

    def same_mount(self, a: str, b: str) -> bool:
        """Whether resolved paths `a` and `b` lie in the same mount (or both in the rootfs): a
        hard link between them is possible (the kernel refuses others with EXDEV)."""
        first, second = self.mount_of(a), self.mount_of(b)
        return (first[0] if first else None) == (second[0] if second else None)


class ViewFs:
    """A ContainerView's files through fds (see the module doc); blocking; not thread-safe.

    A "base" is the container root or a mount source. Fds are opened lazily and cached per base
    (`DirFds`); an fd returned is borrowed: valid until the next call on this object.
    """

    def __init__(self, view: ContainerView) -> None:
        self.view = view
        self._trees: dict[str, DirFds] = {}           # base (mount destination or "/") -> its dirs
        self._homes: dict[str, tuple[int, str | None]] = {}  # mount destination -> (source's dir, name)

    def close(self) -> None:
        for tree in self._trees.values():
            tree.close()
        for fd, _ in self._homes.values():
            os.close(fd)
        self._trees.clear()
        self._homes.clear()

    def __enter__(self) -> ViewFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- walking -------------------------------------------------------------------------------------
    def locate(self, path: str, *, create: bool = False) -> tuple[int, str | None]:
        """(fd of the directory holding resolved `path`, its last name); the name is None for the
        container root, whose own fd is returned. A mount point is located in its source's host
        directory. `create` makes missing parent directories (0755) below the base.

        Raises:
            NotADirectoryError: a parent is not a directory any more (a symlink swapped in).
            FileNotFoundError: a parent is missing.
        """
        base, rel = self._split(path)
        if rel:
            return self._tree(base).get(rel[:-1], create=create), rel[-1]
        if base == _ROOT:
            return self._tree(_ROOT).get([]), None
        return self._home(base)

    def dir_fd(self, path: str) -> int:
        """A borrowed fd of resolved directory `path` (see `locate` for the errors)."""
        base, rel = self._split(path)
        return self._tree(base).get(rel)

    def lstat(self, path: str) -> os.stat_result:
        parent, name = self.locate(path)
        return os.stat(name, dir_fd=parent, follow_symlinks=False) if name else os.fstat(parent)

    def open_dir(self, path: str) -> int:
        """An fd of resolved directory `path`, owned by the caller (O_NOFOLLOW)."""
        parent, name = self.locate(path)
        return open_dir(parent, name) if name else os.dup(parent)

    def listdir(self, path: str) -> list[str]:
        """Names in resolved directory `path` plus the mount points in it, sorted."""
        names = set(self.view.mount_points_in(path))
        try:
            names.update(os.listdir(self.dir_fd(path)))
        except (FileNotFoundError, NotADirectoryError):
            if not names:
                raise
        return sorted(names)

    def readlink(self, path: str) -> str | None:
        """The target if resolved `path` is a symlink (a mount point never is), else None."""
        if path == "/" or self.view.is_mount_point(path):
            return None
        try:
            parent, name = self.locate(path)
            return os.readlink(name, dir_fd=parent) if name else None
        except OSError as err:
            if err.errno in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR):
                return None  # not a link, or missing: resolution keeps the component as is
            raise

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """See `ContainerView.resolve`; every link is read through fds."""
        parts = resolve_scoped(path, lambda p: self.readlink("/" + "/".join(p)), follow_last=follow_last)
        return "/" + "/".join(parts)

    # --- bases ---------------------------------------------------------------------------------------
    def _split(self, path: str) -> tuple[str, list[str]]:
        found = self.view.mount_of(path)
        parts = split_path(path)
        if found is None:
            return _ROOT, parts
        return found[0], parts[len(split_path(found[0])):]

    def _tree(self, base: str) -> DirFds:
        tree = self._trees.get(base)
        if tree is None:
            if base == _ROOT:
                fd = os.open(self.view.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            else:
                fd = open_host_dir(self._mount(base).source)
            tree = self._trees[base] = DirFds(fd)
        return tree

    def _home(self, base: str) -> tuple[int, str | None]:
        home = self._homes.get(base)
        if home is None:
            source = self._mount(base).source
            home = self._homes[base] = (open_host_dir(source.parent), source.name or None)
        return home

    def _mount(self, base: str) -> ViewMount:
        return self.view._mounts[base]


def _depth(path: str) -> int:
    return len(split_path(posixpath.normpath(path)))
