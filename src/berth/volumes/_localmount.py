"""mount(2)/umount2(2) of a volume's `LocalMount` on its _data directory (the host side effects).

Called through libc, as runtime/rootfs.py does. A bind of a host directory is an ordinary
bind mount; its extra flags (ro, nosuid, ...) need a second, MS_REMOUNT|MS_BIND call, which
also keeps the source mount's own restrictions (runc does the same), so a bind volume never
gains suid, dev or exec where the host directory had none.

`is_mounted` reads /proc/self/mountinfo: os.path.ismount cannot see a bind of a directory of
the same filesystem (same device on both sides).
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from berth.errors import InvalidArgument, Unavailable
from berth.volumes._options import MS_BIND, MS_REC, MS_REMOUNT, LocalMount

_MNT_DETACH = 2
_ST_KEEP = os.ST_NOSUID | os.ST_NODEV | os.ST_NOEXEC | os.ST_NOATIME | os.ST_NODIRATIME | os.ST_RDONLY
_UNMOUNT_ATTEMPTS = 8  # a stack of mounts on one path (each attempt removes the top one)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)


def check_device(spec: LocalMount) -> tuple[str, tuple[int, int]] | None:
    """At create: a bind volume's device must be an existing host directory (moby finds out
    only at the first mount; failing early gives `docker volume create` the error).

    Returns (its real path, (st_dev, st_ino)) for a bind, None otherwise: each mount opens
    exactly that path again and refuses another directory (see `open_bind_device`)."""
    if not spec.bind:
        return None
    if not os.path.isdir(spec.device):
        what = "is not a directory" if os.path.exists(spec.device) else "does not exist"
        raise InvalidArgument(f'invalid bind device "{spec.device}": {what}')
    real = os.path.realpath(spec.device)
    st = os.stat(real)
    return real, (st.st_dev, st.st_ino)


def open_bind_device(spec: LocalMount, target: Path) -> int:
    """An O_PATH fd on a bind volume's device, reached without following any symlink.

    The path recorded at create (`spec.source`, a realpath) is walked one component at a time
    with O_NOFOLLOW, so a symlink swapped in anywhere on it since is refused rather than
    followed. Mounting from /proc/self/fd/N then binds exactly what was walked.

    Raises:
        Unavailable: the device is gone, or a symlink is on its path now.
    """
    path = spec.source or os.path.realpath(spec.device)
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", flags)
    try:
        for part in [p for p in path.split("/") if p]:
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except OSError as err:
                why = ("it does not exist" if err.errno == errno.ENOENT else
                       "a symlink or a non-directory is on its path now, it changed since the volume was created")
                raise Unavailable(f"{_mount_error(spec, target)}: {os.strerror(err.errno or 0)} "
                                  f"({path}: {why})") from err
            os.close(fd)
            fd = nxt
        # No identity check beyond the walk: a directory re-created at the path is bound, as
        # moby does (only a symlink swapped in, which could lead anywhere, is refused).
    except BaseException:
        os.close(fd)
        raise
    return fd


def mount_volume(spec: LocalMount, target: Path) -> None:
    """Mount `spec` on `target`; on failure nothing stays mounted.

    Raises:
        Unavailable: the kernel refused (moby's "failed to mount local volume" wording).
    """
    if spec.bind:
        fd = open_bind_device(spec, target)
        try:
            _mount(spec, f"/proc/self/fd/{fd}", target, None, MS_BIND | (MS_REC if spec.recursive else 0), None)
        finally:
            os.close(fd)
        if spec.flags:
            keep = _kept_flags(target)
            try:
                _mount(spec, None, target, None, MS_REMOUNT | MS_BIND | spec.flags | keep, None)
            except Unavailable:
                unmount_volume(target)
                raise
        return
    _mount(spec, spec.device, target, spec.fstype, spec.flags, spec.data or None)


def unmount_volume(target: Path) -> None:
    """Unmount whatever is mounted on `target` (lazily when busy); nothing mounted is fine.

    Raises:
        Unavailable: the kernel refused and the mount is still there.
    """
    for _ in range(_UNMOUNT_ATTEMPTS):
        if not is_mounted(target):
            return
        if _libc.umount2(os.fsencode(target), 0) == 0:
            continue
        err = ctypes.get_errno()
        if err == errno.EBUSY and _libc.umount2(os.fsencode(target), _MNT_DETACH) == 0:
            continue  # open files or submounts (rbind): detach now, free when unused
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise Unavailable(f"unmount volume {target}: {os.strerror(err)}")
    if is_mounted(target):
        raise Unavailable(f"unmount volume {target}: still mounted")


def is_mounted(target: Path) -> bool:
    path = os.path.realpath(target)
    return any(point == path for point in _mount_points())


def mounted_under(top: Path) -> bool:
    """Whether anything is mounted on `top` or below it (checked right before a tree removal:
    rmtree must never reach through a mount into a host directory or someone's tmpfs)."""
    path = os.path.realpath(top)
    return any(point == path or point.startswith(path + "/") for point in _mount_points())


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return [_unescape(line.split(" ", 5)[4]) for line in f]


def _unescape(field: str) -> str:
    # the kernel writes space, tab, newline and backslash in mount points as \ooo
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _kept_flags(target: Path) -> int:
    # statvfs's ST_* bits for these flags are the MS_* values (linux/statfs.h)
    return os.statvfs(target).f_flag & _ST_KEEP


def _mount(spec: LocalMount, source: str | None, target: Path, fstype: str | None, flags: int,
           data: str | None) -> None:
    rc = _libc.mount(source.encode() if source is not None else None, os.fsencode(target),
                     fstype.encode() if fstype is not None else None, flags,
                     data.encode() if data is not None else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise Unavailable(f"{_mount_error(spec, target)}: {os.strerror(err)}")


def _mount_error(spec: LocalMount, target: Path) -> str:
    return (f"error while mounting volume '{target}': failed to mount local volume: "
            f"mount {spec.device}:{target}, type {spec.fstype}")
