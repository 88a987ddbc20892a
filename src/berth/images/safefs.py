"""Race-safe reads and writes in a tree a running container may change under us: fds, not paths.

A path checked a moment ago (lstat'ed, resolved for symlinks) can be swapped by the container
before it is used: a directory for a symlink to the host (CVE-2018-15664), a file for a FIFO
(the copy blocks forever) or a device node (the daemon reads the device). So every access here
starts from a directory fd and opens one component at a time with O_NOFOLLOW: a symlink on the
way fails the open (ENOTDIR/ELOOP, reported as NotADirectoryError) instead of being followed,
and a file is read only through an fd whose fstat matches the regular file that was listed.

    with DirFds(os.open(upper, os.O_RDONLY | os.O_DIRECTORY)) as dirs:
        parent = dirs.get(["etc"])                # upper/etc, borrowed until the next get()
        fd = open_regular(parent, "passwd", st)   # None: no longer the file that was lstat'ed
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path

from berth.images.xattrs import carried

__all__ = ["DirFds", "FixedSize", "fd_xattrs", "open_dir", "open_host_dir", "open_regular", "tarinfo_for"]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_dir(parent: int, name: str, *, create: bool = False) -> int:
    """An fd for the directory `name` in `parent`, never through a symlink (created 0755 if
    `create` and missing).

    Raises:
        NotADirectoryError: `name` is not a directory (a symlink swapped in, a file).
        FileNotFoundError: it does not exist.
    """
    if not name or name in (".", "..") or "/" in name:
        raise ValueError(f"not a single path component: {name!r}")  # `..` would leave the base
    if create:
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
        except FileExistsError:
            pass
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory (or a symlink)", name) from err
        raise


def open_host_dir(path: Path) -> int:
    """An fd for the host directory `path`, already free of symlinks (a realpath): one swapped
    into it since, e.g. by a container owning one of its parents, fails the open."""
    fd = os.open("/", DIR_FLAGS)
    try:
        for part in Path(path).parts[1:]:
            nxt = open_dir(fd, part)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


class DirFds:
    """Directory fds below one base directory fd (owned, closed with the cache), by components.

    Walks share their prefix with the previous one (a tree walk asks for siblings and children),
    so each directory is opened once per visit; at most LIMIT fds stay open however deep the
    tree is: shallower ones are closed and reopened (again with O_NOFOLLOW) when walked back to.
    """

    LIMIT = 64

    def __init__(self, base_fd: int) -> None:
        self._parts: list[str] = []
        self._fds: list[int | None] = [base_fd]  # _fds[i] is the directory _parts[:i]

    def get(self, parts: Sequence[str], *, create: bool = False) -> int:
        """The fd of directory `parts` below the base; borrowed: valid until the next get()."""
        keep = 0
        while keep < min(len(parts), len(self._parts)) and parts[keep] == self._parts[keep]:
            keep += 1
        self._truncate(keep)
        if self._fds[keep] is None:
            self._reopen(keep)
        for part in parts[keep:]:
            fd = open_dir(self._last(), part, create=create)
            self._parts.append(part)
            self._fds.append(fd)
            self._trim()
        return self._last()

    def close(self) -> None:
        self._truncate(0)
        base = self._fds[0]
        if base is not None:
            os.close(base)
            self._fds[0] = None

    def __enter__(self) -> DirFds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _last(self) -> int:
        fd = self._fds[-1]
        assert fd is not None
        return fd

    def _truncate(self, depth: int) -> None:
        while len(self._parts) > depth:
            self._parts.pop()
            fd = self._fds.pop()
            if fd is not None:
                os.close(fd)

    def _reopen(self, depth: int) -> None:
        start = max(i for i in range(depth) if self._fds[i] is not None)
        for i in range(start + 1, depth + 1):
            parent = self._fds[i - 1]
            assert parent is not None
            self._fds[i] = open_dir(parent, self._parts[i - 1])

    def _trim(self) -> None:
        open_fds = [i for i, fd in enumerate(self._fds) if fd is not None and i > 0]
        for i in open_fds[: max(0, len(open_fds) - self.LIMIT)]:
            fd = self._fds[i]
            assert fd is not None
            os.close(fd)
            self._fds[i] = None


def open_regular(parent: int, name: str, listed: os.stat_result) -> int | None:
    """A read fd for `name` if it still is the regular file `listed` (same st_dev, st_ino), else
    None. O_NONBLOCK: a FIFO swapped in does not block the open (and it is refused after)."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOENT, errno.ENOTDIR, errno.ENXIO):
            return None  # a symlink, gone, or a FIFO/socket that cannot be opened
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (listed.st_dev, listed.st_ino):
        os.close(fd)
        return None
    return fd


def fd_xattrs(fd: int, names: Sequence[str] | None = None) -> dict[str, bytes]:
    """The carried xattrs of the open file `fd` (or only `names`), sorted; unreadable ones are
    left out (as `xattrs.read_xattrs` does for a path)."""
    try:
        listed = os.listxattr(fd) if names is None else list(names)
    except OSError:
        return {}
    found: dict[str, bytes] = {}
    for name in sorted(listed):
        if not carried(name):
            continue
        try:
            found[name] = os.getxattr(fd, name)
        except OSError:
            continue
    return found


def tarinfo_for(tar: tarfile.TarFile, st: os.stat_result, arcname: str, linkname: str = "") -> tarfile.TarInfo | None:
    """`TarFile.gettarinfo` from a stat result instead of a path (no host user names; a regular
    file already archived under another name becomes a hard-link entry); None for a socket."""
    kind = stat.S_IFMT(st.st_mode)
    info = tarfile.TarInfo(arcname.lstrip("/"))
    if kind == stat.S_IFREG:
        inode = (st.st_ino, st.st_dev)
        inodes: dict[tuple[int, int], str] = tar.inodes  # type: ignore[attr-defined]  # untyped in typeshed
        seen = inodes.get(inode)
        if st.st_nlink > 1 and seen is not None and seen != info.name:
            info.type, info.linkname = tarfile.LNKTYPE, seen
        else:
            info.type, info.size = tarfile.REGTYPE, st.st_size
            inodes[inode] = info.name
    elif kind in _TYPES:
        info.type = _TYPES[kind]
    else:
        return None
    if kind == stat.S_IFLNK:
        info.linkname = linkname
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    info.mode = st.st_mode
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = st.st_mtime
    info.uname = info.gname = ""
    return info


_TYPES = {stat.S_IFDIR: tarfile.DIRTYPE, stat.S_IFLNK: tarfile.SYMTYPE, stat.S_IFIFO: tarfile.FIFOTYPE,
          stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE}


class FixedSize:
    """Exactly `size` bytes of the fd: a file truncated while archived (a running container) is
    padded with NULs instead of failing the archive with "unexpected end of data"."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._left = size

    def read(self, n: int = -1) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        chunks: list[bytes] = []
        got = 0
        while got < want:
            chunk = os.read(self._fd, want - got)
            if not chunk:
                chunks.append(b"\0" * (want - got))  # EOF early: the file shrank meanwhile
                break
            chunks.append(chunk)
            got += len(chunk)
        data = b"".join(chunks)
        self._left -= len(data)
        return data
