"""Unpack one layer tar into a snapshot directory, safely, converting whiteouts for overlayfs.

Safety model, in two layers. First, `LayerGuard` (see `_layer_check`) refuses any entry that
would land outside the snapshot: a name climbing above the root, an absolute name, a write
through a symlink the layer created, a hard link to somewhere else. The whole unpack fails with
`LayerBreakout`, naming the entry. Second, every entry is created relative to a directory file
descriptor obtained by walking the entry's parent components with O_NOFOLLOW from the snapshot
root, so even a case the guard missed fails the walk (ELOOP/ENOTDIR) instead of writing outside.
Symlinks themselves are created verbatim (they are resolved only inside the container) and never
followed while extracting.

What gets created: directories, regular files, symlinks, hardlinks (to a non-directory already
inside this snapshot), fifos, device nodes (when running as root, as dockerd does outside a user
namespace; the container's device cgroup still decides who may open them), and the overlay
whiteouts converted from the OCI/AUFS form:

    .wh.<name>       -> character device 0:0 named <name>
    .wh..wh..opq     -> xattr trusted.overlay.opaque=y on the containing directory

Entries that are malformed rather than dangerous (an empty symlink target, an unknown type,
AUFS metadata) are skipped, logged and counted in the returned report.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from berth.errors import InvalidArgument
from berth.images._layer_check import OPAQUE_MARKER, WHITEOUT_PREFIX, LayerBreakout, LayerGuard, entry_parts
from berth.images.xattrs import OPAQUE_XATTR, from_pax, overlay_private

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Errors that say the host, not the entry, is in trouble: these abort the unpack.
_FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EMFILE}
# Xattrs a layer may carry onto the host filesystem. trusted.overlay.* (user.overlay.* under
# `userxattr`) would let a layer steer overlayfs (redirects, metacopy), so only the opaque marker
# we set ourselves is written.
_XATTR_ALLOWED_PREFIXES = ("user.", "trusted.", "security.capability")


@dataclass
class ExtractReport:
    """What an extraction did; `skipped` lists (name, reason) for entries not written."""

    entries: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, name: str, reason: str) -> None:
        log.warning("layer entry %r skipped: %s", name, reason)
        self.skipped.append((name, reason))


def split_name(name: str) -> list[str]:
    """A member name's components inside the root; raises LayerBreakout when it would leave it."""
    return entry_parts(name)


def extract_layer(stream: BinaryIO, dest: Path) -> ExtractReport:
    """Unpack the (possibly compressed) layer tar in `stream` into the existing directory `dest`.

    Raises:
        InvalidArgument: the stream is not a readable tar.
        LayerBreakout: an entry would land outside `dest` (what was unpacked so far stays in
            `dest`, which the caller discards).
    """
    report = ExtractReport()
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    dir_times: list[tuple[list[str], int]] = []
    guard = LayerGuard()
    try:
        with _open_tar(stream) as tar:
            for member in tar:
                report.entries += 1
                guard.check(member)
                _extract_member(tar, member, root_fd, report, dir_times)
        # Children change their parent's mtime, so directory times are set last, deepest first.
        for parts, mtime in sorted(dir_times, key=lambda t: -len(t[0])):
            _set_dir_mtime(root_fd, parts, mtime)
    finally:
        os.close(root_fd)
    return report


@contextmanager
def _open_tar(stream: BinaryIO) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            yield tar
    except (tarfile.TarError, EOFError, OSError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise  # a real I/O error on our side, not a malformed archive
        raise InvalidArgument(f"invalid tar header: {err}") from err


def _extract_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    root_fd: int,
    report: ExtractReport,
    dir_times: list[tuple[list[str], int]],
) -> None:
    try:
        parts = split_name(member.name)
        if not parts:
            return  # the root itself ("./"): the snapshot dir keeps its own metadata
        with _parent_fd(root_fd, parts[:-1]) as parent:
            _create(tar, member, root_fd, parent, parts, report, dir_times)
    except OSError as err:
        if err.errno in _FATAL_ERRNOS:
            raise
        # A malformed entry (empty symlink target, overlong name, ...) is the layer's problem.
        report.skip(member.name, f"{err.strerror or err}")


@contextmanager
def _parent_fd(root_fd: int, parents: list[str]) -> Iterator[int]:
    """Open (creating as needed) the directory `parents` below root, never following symlinks."""
    fd = os.dup(root_fd)
    try:
        for part in parents:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LayerBreakout("/".join(parents), f"parent {part!r} is not a directory") from err
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _create(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    root_fd: int,
    parent: int,
    parts: list[str],
    report: ExtractReport,
    dir_times: list[tuple[list[str], int]],
) -> None:
    name = parts[-1]
    if name == OPAQUE_MARKER:
        _set_xattr(parent, None, OPAQUE_XATTR, b"y")
        return
    if name.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        report.skip(member.name, "unsupported whiteout metadata entry")
        return
    if name.startswith(WHITEOUT_PREFIX):
        _make_whiteout(parent, name[len(WHITEOUT_PREFIX):])
        return
    if member.isdir():
        _make_dir(parent, name, member)
        dir_times.append((parts, int(member.mtime)))
        return
    if member.ischr() or member.isblk():
        _make_device(parent, name, member, report)
        return
    if not (member.isreg() or member.issym() or member.islnk() or member.isfifo()):
        report.skip(member.name, f"unsupported entry type {member.type!r}")
        return
    _remove_existing(parent, name)
    if member.isreg():
        _make_file(tar, parent, name, member)
    elif member.issym():
        os.symlink(member.linkname, name, dir_fd=parent)
        _apply_owner_times(parent, name, member)
        apply_xattrs(None, _fd_path(parent, name), member)  # lsetxattr: the link itself
    elif member.islnk():
        _make_hardlink(root_fd, parent, name, member)
    else:
        os.mkfifo(name, member.mode & 0o7777, dir_fd=parent)
        _apply_metadata(parent, name, member)


def _remove_existing(parent: int, name: str) -> None:
    """A later entry replaces an earlier one of the same name (tar semantics)."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def _make_whiteout(parent: int, name: str) -> None:
    if not name or name in (".", ".."):
        raise LayerBreakout(name, "malformed whiteout name")
    _remove_existing(parent, name)
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)


def _make_device(parent: int, name: str, member: tarfile.TarInfo, report: ExtractReport) -> None:
    """mknod with the header's major/minor, as dockerd does; without root (tests) it is skipped."""
    if os.geteuid() != 0:
        report.skip(member.name, "device node (not running as root)")
        return
    _remove_existing(parent, name)
    kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
    os.mknod(name, kind | (member.mode & 0o7777), os.makedev(member.devmajor, member.devminor), dir_fd=parent)
    _apply_metadata(parent, name, member)


def _make_dir(parent: int, name: str, member: tarfile.TarInfo) -> None:
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=parent)
            os.mkdir(name, 0o700, dir_fd=parent)
    except FileNotFoundError:
        os.mkdir(name, 0o700, dir_fd=parent)
    _apply_metadata(parent, name, member, set_times=False)


def _make_file(tar: tarfile.TarFile, parent: int, name: str, member: tarfile.TarInfo) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=parent)
    try:
        src = tar.extractfile(member)
        if src is not None:
            with os.fdopen(os.dup(fd), "wb", closefd=True) as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
        _chown(fd, None, member)
        os.chmod(fd, member.mode & 0o7777)
        apply_xattrs(fd, None, member)
        os.utime(fd, ns=(_ns(member.mtime), _ns(member.mtime)))
    finally:
        os.close(fd)


def _make_hardlink(root_fd: int, parent: int, name: str, member: tarfile.TarInfo) -> None:
    refused = f"invalid hardlink {member.name!r} -> {member.linkname!r}"
    target = split_name(member.linkname)
    if not target:
        raise LayerBreakout(member.name, refused)
    with _parent_fd(root_fd, target[:-1]) as target_parent:
        try:
            st = os.stat(target[-1], dir_fd=target_parent, follow_symlinks=False)
        except FileNotFoundError as err:
            raise LayerBreakout(member.name, f"{refused}: the target is not in this layer") from err
        if stat.S_ISDIR(st.st_mode):
            raise LayerBreakout(member.name, f"{refused}: the target is a directory")
        os.link(target[-1], name, src_dir_fd=target_parent, dst_dir_fd=parent, follow_symlinks=False)


def _apply_metadata(parent: int, name: str, member: tarfile.TarInfo, *, set_times: bool = True) -> None:
    """Owner, mode, xattrs and times of a directory or fifo we have just created or checked.

    Linux has no lchmod, so these go through /proc/self/fd/<parent>/<name>; the final component
    is known not to be a symlink (we created it, or lstat'ed it, in this private directory).
    """
    path = _fd_path(parent, name)
    _chown(None, path, member)
    os.chmod(path, member.mode & 0o7777)
    apply_xattrs(None, path, member)
    if set_times:
        os.utime(name, ns=(_ns(member.mtime), _ns(member.mtime)), dir_fd=parent, follow_symlinks=False)


def _apply_owner_times(parent: int, name: str, member: tarfile.TarInfo) -> None:
    try:
        os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
    except PermissionError:
        pass  # unprivileged extraction (tests): keep our own ownership
    os.utime(name, ns=(_ns(member.mtime), _ns(member.mtime)), dir_fd=parent, follow_symlinks=False)


def _set_dir_mtime(root_fd: int, parts: list[str], mtime: int) -> None:
    try:
        with _parent_fd(root_fd, parts[:-1]) as parent:
            os.utime(parts[-1], ns=(_ns(mtime), _ns(mtime)), dir_fd=parent, follow_symlinks=False)
    except (LayerBreakout, FileNotFoundError):
        pass  # replaced or removed by a later entry


def _chown(fd: int | None, path: str | None, member: tarfile.TarInfo) -> None:
    try:
        if fd is not None:
            os.fchown(fd, member.uid, member.gid)
        else:
            os.chown(path, member.uid, member.gid, follow_symlinks=False)  # type: ignore[arg-type]
    except PermissionError:
        pass


def apply_xattrs(fd: int | None, path: str | None, member: tarfile.TarInfo) -> None:
    """Set the member's SCHILY.xattr records; called after chown, which clears file capabilities."""
    for attr, raw in from_pax(member.pax_headers):
        if overlay_private(attr) or not attr.startswith(_XATTR_ALLOWED_PREFIXES):
            continue
        try:
            _set_xattr(fd, path, attr, raw)
        except (OSError, ValueError) as err:  # ValueError: a NUL in a crafted name
            log.warning("xattr %r on %r not set: %s", attr, member.name, err)


def _set_xattr(fd: int | None, path: str | None, attr: str, value: bytes) -> None:
    if fd is not None:
        os.setxattr(fd, attr, value)
    else:
        os.setxattr(path, attr, value, follow_symlinks=False)  # type: ignore[arg-type]


def _fd_path(parent: int, name: str) -> str:
    """A path to `name` inside the directory fd `parent`, usable by calls without dir_fd."""
    return f"/proc/self/fd/{parent}/{name}"


def _ns(mtime: float) -> int:
    return int(mtime) * 1_000_000_000
