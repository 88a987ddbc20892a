"""`docker cp` tar streams: write a container path as a tar, extract a tar into a container path
(through the fd-based view, see the package docstring for the safety rules)."""

from __future__ import annotations

import errno
import gzip
import logging
import lzma
import os
import posixpath
import stat
import tarfile
import zlib
from pathlib import Path
from typing import Any

from berth.engine.containers import Container
from berth.engine.archive._view import READ_ONLY_ROOTFS, READ_ONLY_VOLUME, ContainerView, ViewFs
from berth.errors import Conflict, InvalidArgument, Unavailable
from berth.images import apply_xattrs
from berth.images.safefs import FixedSize, fd_xattrs, open_dir, open_regular, tarinfo_for
from berth.images.xattrs import to_pax
from berth.engine.archive._paths import _as_view, _lookup, _not_found, split_request_path

CAPABILITY_XATTR = "security.capability"
log = logging.getLogger(__name__)
# What a walk meets when the running container removes or swaps an object under it: gone, a
# directory on the way is not one any more, a symlink is not one any more (readlink).
_CHANGED = (errno.ENOENT, errno.ENOTDIR, errno.EINVAL)


def write_tar(root: Path | ContainerView, path: str, container: Container, out: Any, *,
              contents_only: bool = False) -> None:
    """Tar `path` (as the container sees it) into the binary file `out`; symlinks stay links.

    A directory is walked through the view, so volumes and bind mounts under it are included
    (as in Docker, whose tarballer walks the mounted view). Everything is read through fds
    (ViewFs): an object the running container removes or swaps meanwhile is left out.
    `contents_only` (docker export): the directory's entries, named relative to it, not itself."""
    absolute, name = split_request_path(path)
    with _as_view(root).open() as fs:
        top = _lookup(fs, absolute)
        try:
            fs.lstat(top)
        except (FileNotFoundError, NotADirectoryError) as err:
            raise _not_found(path, container) from err
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            pending = [(top, name)]
            if contents_only:
                pending = [(posixpath.join(top, c), c) for c in reversed(sorted(fs.listdir(top)))]
            while pending:
                ctr_path, arcname = pending.pop()
                try:
                    children = _add_entry(tar, fs, ctr_path, arcname)
                except OSError as err:
                    if err.errno not in _CHANGED:
                        raise
                    if ctr_path == top:
                        raise _not_found(path, container) from None
                    continue  # removed or swapped meanwhile by the running container
                pending += [(posixpath.join(ctr_path, c), posixpath.join(arcname, c)) for c in reversed(children)]


def _add_entry(tar: tarfile.TarFile, fs: ViewFs, ctr_path: str, arcname: str) -> list[str]:
    """Archive one object as moby's cp tarballer does (no host owner names; the file capability,
    the only xattr moby's archive carries); returns a directory's children names.

    A socket is left out (moby skips it too); so is a regular file that is not the one lstat'ed
    any more when opened: a FIFO or device node swapped in is neither waited on nor read."""
    parent, name = fs.locate(ctr_path)
    st = os.stat(name, dir_fd=parent, follow_symlinks=False) if name else os.fstat(parent)
    if stat.S_ISREG(st.st_mode) and name:
        _add_file(tar, parent, name, st, arcname)
        return []
    link = os.readlink(name, dir_fd=parent) if stat.S_ISLNK(st.st_mode) and name else ""
    info = tarinfo_for(tar, st, arcname, link)
    if info is None:
        log.debug("cp: %s left out: a socket", ctr_path)
        return []
    tar.addfile(info)
    return fs.listdir(ctr_path) if info.isdir() else []


def _add_file(tar: tarfile.TarFile, parent: int, name: str, listed: os.stat_result, arcname: str) -> None:
    fd = open_regular(parent, name, listed)
    if fd is None:
        log.debug("cp: %s left out: not the regular file listed any more", arcname)
        return
    try:
        info = tarinfo_for(tar, os.fstat(fd), arcname)
        assert info is not None
        if info.islnk():  # already archived under another name
            tar.addfile(info)
            return
        capability = fd_xattrs(fd, [CAPABILITY_XATTR]).get(CAPABILITY_XATTR)
        if capability is not None:
            info.pax_headers = to_pax({CAPABILITY_XATTR: capability})
        tar.addfile(info, FixedSize(fd, info.size))
    finally:
        os.close(fd)


def extract_tar(root: Path | ContainerView, path: str, container: Container, tar_file: Path, *,
                no_overwrite_dir_non_dir: bool, copy_uid_gid: bool, readonly_rootfs: bool = False) -> None:
    """Unpack `tar_file` into directory `path` of the container, never leaving its root or its
    mounts' sources; a read-only volume (or rootfs) refuses with moby's words.

    Every entry is written through fds (ViewFs): created relative to its parent directory's fd,
    its metadata set through the fd of what was created (never a path that a running container
    could swap for a symlink). Directory times are set last, as children change them."""
    view = _as_view(root)
    with view.open() as fs:
        dest_path = fs.resolve(posixpath.join("/", path))
        try:
            dest_st = fs.lstat(dest_path)
        except (FileNotFoundError, NotADirectoryError) as err:
            raise _not_found(path, container) from err
        if not stat.S_ISDIR(dest_st.st_mode):
            raise InvalidArgument("extraction point is not a directory")
        _check_writable(view, dest_path, readonly_rootfs)
        try:
            with tarfile.open(tar_file, mode="r:*") as tar:
                members = tar.getmembers()  # reads the whole archive: a broken one changes nothing
                for member in members:  # refuse a `..` entry (or hard link target) before writing any
                    _entry_path(dest_path, member.name)
                    if member.islnk():
                        _entry_path(dest_path, member.linkname)
                unpack = _Unpack(fs, dest_path, tar, no_overwrite_dir_non_dir, copy_uid_gid, readonly_rootfs)
                for member in members:
                    unpack.member(member)
                unpack.set_dir_times()
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as err:
            raise InvalidArgument(f"invalid tar archive: {err}") from err


def _check_writable(view: ContainerView, ctr_path: str, readonly_rootfs: bool) -> None:
    reason = view.read_only_reason(ctr_path, readonly_rootfs=readonly_rootfs)
    if reason:
        raise InvalidArgument(reason)


def _entry_path(dest_path: str, name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"invalid archive entry {name!r}: '..' is not allowed")
    return posixpath.join(dest_path, *parts) if parts else dest_path


class _Unpack:
    """One cp-in extraction: writes members through `fs` and remembers directory times."""

    def __init__(self, fs: ViewFs, dest_path: str, tar: tarfile.TarFile, no_overwrite: bool, copy_ids: bool,
                 readonly_rootfs: bool) -> None:
        self.fs, self.view, self.dest_path, self.tar = fs, fs.view, dest_path, tar
        self.no_overwrite, self.copy_ids, self.readonly_rootfs = no_overwrite, copy_ids, readonly_rootfs
        self.dir_times: list[tuple[str, float]] = []

    def member(self, member: tarfile.TarInfo) -> None:
        ctr_path = _entry_path(self.dest_path, member.name)
        if ctr_path == self.dest_path and member.isdir():
            return
        # Resolved per entry: an earlier entry may have made a symlink this one goes through, into
        # another mount (checked for writability here, not only at the extraction point).
        resolved = self.fs.resolve(ctr_path, follow_last=False)
        _check_writable(self.view, resolved, self.readonly_rootfs)
        source = ""
        if member.islnk():
            # Across two mounts (e.g. a writable volume and a read-only bind of one host
            # filesystem) the kernel refuses a hard link with EXDEV, and so do we, before anything
            # is replaced: the link would make the read-only file writable through the volume.
            source = self.fs.resolve(_entry_path(self.dest_path, member.linkname), follow_last=False)
            if not self.view.same_mount(source, resolved):
                raise Unavailable(f"link {source} {resolved}: invalid cross-device link")
        try:
            self._write(member, ctr_path, resolved, source)
        except NotADirectoryError as err:  # swapped for a symlink or a file meanwhile
            raise Conflict(f"cannot extract {ctr_path}: a directory on its path was replaced meanwhile") from err
        except OSError as err:
            if err.errno == errno.EROFS:  # mounted read-only where the view does not know it
                found = self.view.mount_of(resolved)
                raise InvalidArgument(READ_ONLY_VOLUME if found and found[1].volume else READ_ONLY_ROOTFS) from err
            raise

    def _write(self, member: tarfile.TarInfo, ctr_path: str, resolved: str, source: str) -> None:
        parent, name = self.fs.locate(resolved, create=True)
        if name is None:  # the container root itself
            raise InvalidArgument(f"cannot overwrite directory \"{ctr_path}\" with non-directory")
        if not self._clear(parent, name, member, ctr_path, resolved):
            return
        uid, gid = (member.uid, member.gid) if self.copy_ids else (0, 0)
        if member.isdir():
            self._make_dir(parent, name, member, uid, gid)
            self.dir_times.append((resolved, member.mtime))
        elif member.isreg():
            self._make_file(parent, name, member, uid, gid)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            _chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            apply_xattrs(None, _fd_path(parent, name), member)  # lsetxattr: the link itself
            os.utime(name, ns=_ns(member.mtime), dir_fd=parent, follow_symlinks=False)
        elif member.islnk():
            parent = os.dup(parent)  # locating the link's target may reuse the borrowed fd
            try:
                self._make_hardlink(parent, name, source, resolved)
                _set_metadata(parent, name, member, uid, gid)
            finally:
                os.close(parent)
        elif member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=parent)
            _set_metadata(parent, name, member, uid, gid)
        # devices are not created by cp (no CAP_MKNOD semantics to honour here)

    def _clear(self, parent: int, name: str, member: tarfile.TarInfo, ctr_path: str, resolved: str) -> bool:
        """Make room for `member` at `name`; False when it is a device node (not created)."""
        if not (member.isdir() or member.isreg() or member.issym() or member.islnk() or member.isfifo()):
            return False
        try:
            existing = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return True
        is_dir = stat.S_ISDIR(existing.st_mode)
        if self.no_overwrite and is_dir != member.isdir():
            raise InvalidArgument(f"cannot overwrite {'directory' if is_dir else 'non-directory'} "
                                  f"\"{ctr_path}\" with {'directory' if member.isdir() else 'non-directory'}")
        if is_dir and member.isdir():
            return True
        if self.view.is_mount_point(resolved):  # the kernel says EBUSY; never unlink a mount's source
            raise Unavailable(f"unlinkat {resolved}: device or resource busy")
        if is_dir:
            raise InvalidArgument(f"cannot overwrite directory \"{ctr_path}\" with non-directory")
        os.unlink(name, dir_fd=parent)  # a symlink is removed, never followed
        return True

    def _make_dir(self, parent: int, name: str, member: tarfile.TarInfo, uid: int, gid: int) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            pass  # merged with the directory there (a symlink there fails the open below)
        fd = open_dir(parent, name)
        try:
            _chown(fd, uid, gid)
            os.fchmod(fd, member.mode & 0o7777)
            apply_xattrs(fd, None, member)
        finally:
            os.close(fd)

    def _make_file(self, parent: int, name: str, member: tarfile.TarInfo, uid: int, gid: int) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            src = self.tar.extractfile(member)
            assert src is not None
            while chunk := src.read(1 << 20):
                _write_all(fd, chunk)
            # chown first: it clears set-id bits and file capabilities
            _chown(fd, uid, gid)
            os.fchmod(fd, member.mode & 0o7777)
            apply_xattrs(fd, None, member)
            os.utime(fd, ns=_ns(member.mtime))
        finally:
            os.close(fd)

    def _make_hardlink(self, parent: int, name: str, source: str, resolved: str) -> None:
        """A hard link to `source`, an object already in the same mount (checked by `member`)."""
        src_parent, src_name = self.fs.locate(source)
        try:
            if src_name is None:
                raise OSError(errno.EPERM, "operation not permitted")
            os.link(src_name, name, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
        except OSError as err:
            raise Unavailable(f"link {source} {resolved}: {(err.strerror or str(err)).lower()}") from err

    def set_dir_times(self) -> None:
        """Directory times, deepest first: set after every entry, as writing children changes them."""
        for path, mtime in sorted(self.dir_times, key=lambda t: -t[0].count("/")):
            try:
                parent, name = self.fs.locate(path)
                if name:
                    os.utime(name, ns=_ns(mtime), dir_fd=parent, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue  # replaced by a later entry or by the container


def _set_metadata(parent: int, name: str, member: tarfile.TarInfo, uid: int, gid: int) -> None:
    """Owner, mode, xattrs and times of the fifo or hard link `name` just created, through an
    O_PATH fd of it (Linux has no lchmod): a symlink swapped in is never followed; a hard link
    to a symlink only gets its owner, as in moby."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            _chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            return
        path = f"/proc/self/fd/{fd}"  # the magic link is the object itself (not a symlink)
        _chown(path, uid, gid)
        os.chmod(path, member.mode & 0o7777)
        apply_xattrs(None, _fd_path(parent, name), member)
        os.utime(path, ns=_ns(member.mtime))
    finally:
        os.close(fd)


def _chown(target: str | int, uid: int, gid: int, **kw: Any) -> None:
    """os.chown, except that an unprivileged daemon (tests) keeps its own ownership."""
    try:
        os.chown(target, uid, gid, **kw)
    except PermissionError:
        if os.geteuid() == 0:
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fd_path(parent: int, name: str) -> str:
    """`name` in directory fd `parent` for calls without dir_fd (its last component not followed
    by the *_nofollow calls)."""
    return f"/proc/self/fd/{parent}/{name}"


def _ns(mtime: float) -> tuple[int, int]:
    """(atime, mtime) in ns for os.utime: the tar's mtime, fraction included (PAX records keep it)."""
    ns = int(mtime * 1_000_000_000)
    return ns, ns
