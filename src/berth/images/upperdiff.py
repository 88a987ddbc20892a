"""An overlay upper dir written as an OCI layer tar: the translation RUN steps and commit share.

overlayfs records a container's changes in its own notation; a layer tar uses the OCI one:

    upper/                                        layer.tar
    ├── a/          (trusted.overlay.opaque=y) -> a/  +  a/.wh..wh..opq
    ├── gone        (char device 0:0)          -> .wh.gone
    ├── ping        (security.capability)      -> ping  + PAX SCHILY.xattr.security.capability
    └── new.txt                                -> new.txt

`walk_upper` lists the upper dir; the caller picks the entries that belong in its layer (commit
leaves out the engine's init paths and mounts, a RUN step its runtime mount points and
copied-up directories) and `write_layer` writes them:

    entries = walk_upper(upper, exclude=["/proc", "/etc/hosts"])
    write_layer([e for e in entries if wanted(e)], out)

The output depends only on the upper dir: entries in sorted path order, xattrs sorted by name,
no host user or group names. Hard links within the layer become link entries. Device nodes
(other than whiteouts) and sockets are not written (dockerd's commit keeps device nodes; the
extractor creates those that arrive in pulled or loaded layers).

A running container (commit with pause=false) may change the upper dir while it is read: it is
walked and read through directory fds with O_NOFOLLOW (berth.images.safefs), and a file is read
only if it still is the regular file the walk found, so neither a symlink swapped in nor a FIFO
or device node can bring host data into the layer or block the commit.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from berth.images._layer_check import OPAQUE_MARKER, WHITEOUT_PREFIX
from berth.images.safefs import DirFds, FixedSize, fd_xattrs, open_regular, tarinfo_for
from berth.images.xattrs import OPAQUE_XATTR, read_xattrs, to_pax

__all__ = ["UpperEntry", "is_opaque", "is_whiteout", "walk_upper", "write_layer"]

log = logging.getLogger(__name__)
_WRITTEN_KINDS = (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFIFO)
_UPPER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(frozen=True)
class UpperEntry:
    """One object in an upper dir: `rel` is its path inside it ("etc/app.conf", no leading /)."""

    rel: str
    path: Path
    st: os.stat_result
    opaque: bool = False  # a directory marked opaque (read through its fd during the walk)

    @property
    def is_whiteout(self) -> bool:
        return is_whiteout(self.st)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def upper(self) -> Path:
        """The upper dir the entry was found in (`path` is upper/rel)."""
        return self.path.parents[self.rel.count("/")]


def is_whiteout(st: os.stat_result) -> bool:
    """overlayfs's mark of a deleted path: a 0:0 character device."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path | str | int) -> bool:
    """Whether the directory (a path, or an open fd) hides everything below it (it was removed
    and made again)."""
    try:
        if isinstance(path, int):
            return os.getxattr(path, OPAQUE_XATTR) == b"y"
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def walk_upper(upper: Path, exclude: Iterable[str] = ()) -> list[UpperEntry]:
    """Every entry of `upper`, parents first, names sorted; symlinks are never followed.

    `exclude` holds paths ("/proc", "etc/hosts") left out together with everything below them.
    Iterative (any depth) and through directory fds: an entry removed or replaced meanwhile by a
    running container is left out, or listed without children.
    """
    skipped = {posixpath.normpath("/" + p).lstrip("/") for p in exclude}
    upper = Path(upper)
    found: list[UpperEntry] = []
    with DirFds(os.open(upper, _UPPER_FLAGS)) as dirs:
        pending = [[name] for name in sorted(os.listdir(dirs.get([])), reverse=True)]
        while pending:
            parts = pending.pop()
            rel = "/".join(parts)
            if rel in skipped:
                continue
            try:
                st = os.stat(parts[-1], dir_fd=dirs.get(parts[:-1]), follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed since listed (a running container's upper dir)
            names, opaque = _list_dir(dirs, parts) if stat.S_ISDIR(st.st_mode) else ([], False)
            found.append(UpperEntry(rel, upper / rel, st, opaque))
            pending += [[*parts, name] for name in sorted(names, reverse=True)]
    return found


def _list_dir(dirs: DirFds, parts: list[str]) -> tuple[list[str], bool]:
    """A subdirectory's names and opaque mark; one removed or replaced since it was listed has none."""
    try:
        fd = dirs.get(parts)
        return os.listdir(fd), is_opaque(fd)
    except (FileNotFoundError, NotADirectoryError):
        return [], False


def write_layer(entries: Iterable[UpperEntry], out: Path) -> int:
    """Write `entries` (in walk order) as the layer tar `out`; returns the number of tar entries."""
    written = 0
    with contextlib.ExitStack() as stack:
        trees: dict[Path, DirFds] = {}
        tar = stack.enter_context(tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8"))
        for entry in entries:
            dirs = trees.get(entry.upper)
            if dirs is None:
                dirs = trees[entry.upper] = stack.enter_context(DirFds(os.open(entry.upper, _UPPER_FLAGS)))
            written += _add(tar, dirs, entry)
    return written


def _add(tar: tarfile.TarFile, dirs: DirFds, entry: UpperEntry) -> int:
    if entry.is_whiteout:
        head, tail = posixpath.split(entry.rel)
        tar.addfile(_marker(posixpath.join(head, WHITEOUT_PREFIX + tail), entry.st))
        return 1
    if stat.S_IFMT(entry.st.st_mode) not in _WRITTEN_KINDS:
        return 0  # device nodes and sockets
    parts = entry.rel.split("/")
    try:
        parent = dirs.get(parts[:-1])
        if stat.S_ISREG(entry.st.st_mode):
            return _add_file(tar, parent, parts[-1], entry)
        if entry.is_dir:
            return _add_dir(tar, dirs, parts, entry)
        link = os.readlink(parts[-1], dir_fd=parent) if stat.S_ISLNK(entry.st.st_mode) else ""
        info = tarinfo_for(tar, entry.st, entry.rel, link)
        assert info is not None
        # lgetxattr through the pinned parent: the last component is not followed
        info.pax_headers = to_pax(read_xattrs(f"/proc/self/fd/{parent}/{parts[-1]}"))
        tar.addfile(info)
        return 1
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EINVAL):  # EINVAL: not a link any more
            raise
        log.debug("layer: %s left out: changed since the walk (%s)", entry.rel, err)
        return 0


def _add_file(tar: tarfile.TarFile, parent: int, name: str, entry: UpperEntry) -> int:
    fd = open_regular(parent, name, entry.st)
    if fd is None:
        log.debug("layer: %s left out: not the regular file walked any more", entry.rel)
        return 0
    try:
        info = tarinfo_for(tar, os.fstat(fd), entry.rel)
        assert info is not None
        if info.islnk():  # a link entry shares its target's inode, xattrs included
            tar.addfile(info)
        else:
            info.pax_headers = to_pax(fd_xattrs(fd))
            tar.addfile(info, FixedSize(fd, info.size))
        return 1
    finally:
        os.close(fd)


def _add_dir(tar: tarfile.TarFile, dirs: DirFds, parts: list[str], entry: UpperEntry) -> int:
    fd = dirs.get(parts)
    info = tarinfo_for(tar, os.fstat(fd), entry.rel)
    assert info is not None
    info.pax_headers = to_pax(fd_xattrs(fd))
    tar.addfile(info)
    if is_opaque(fd):
        tar.addfile(_marker(posixpath.join(entry.rel, OPAQUE_MARKER), entry.st))
        return 2
    return 1


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    """An empty regular file standing for a whiteout or an opaque directory."""
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.mtime = int(st.st_mtime)
    return info
