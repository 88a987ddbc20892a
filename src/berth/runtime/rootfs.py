"""The container root filesystem: an overlay of image layers plus a per-container upper dir.

Layout under the container directory (kept across stop/start; removed by the engine):

    <container_dir>/
        upper/    the container's read-write layer (overlay upperdir)
        work/     overlay workdir (same filesystem as upper)
        empty/    lowerdir stand-in for an image without layers (scratch)
        rootfs/   mount point; the runtime's root.path

mount(2)/umount2(2) are called through libc directly (no `mount` fork: ~1-2 ms saved).
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from berth.errors import InvalidArgument, Unavailable

_MNT_DETACH = 2
_PAGE_LIMIT = 4095  # the kernel copies at most one page of mount options
_libc = ctypes.CDLL(None, use_errno=True)


def overlay_options(
    lowers_top_first: list[Path], upper: Path, work: Path, *, metacopy: bool = False
) -> str:
    """The overlay mount data string. Paths must be absolute and free of ':' and ','."""
    for path in (*lowers_top_first, upper, work):
        if not path.is_absolute() or any(c in str(path) for c in ":,"):
            raise InvalidArgument(f"unusable overlay path {str(path)!r}")
    lower = ":".join(str(p) for p in lowers_top_first)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    if metacopy:
        # metacopy needs redirect_dir; both make the upper dir unusable as a plain diff.
        options += ",redirect_dir=on,metacopy=on"
    else:
        # Off explicitly, whatever the kernel's defaults: commit and RUN layers read the upper dir
        # as a plain diff, which a renamed directory (a redirect) or a metadata-only copy-up breaks.
        options += ",redirect_dir=off,metacopy=off"
    return options


def mount_rootfs(layer_dirs: list[Path], container_dir: Path, *, metacopy: bool = False) -> Path:
    """Mount the overlay at container_dir/rootfs and return that path; idempotent.

    `layer_dirs` are in overlay lowerdir order: topmost layer first, base layer last (as
    the image store's `layer_dirs` returns them).
    """
    container_dir = container_dir.absolute()
    rootfs = container_dir / "rootfs"
    if os.path.ismount(rootfs):
        return rootfs
    upper, work = container_dir / "upper", container_dir / "work"
    for d in (upper, work, rootfs):
        d.mkdir(parents=True, exist_ok=True)
    lowers = [Path(p).absolute() for p in layer_dirs]
    if not lowers:
        empty = container_dir / "empty"
        empty.mkdir(exist_ok=True)
        lowers = [empty]
    options = overlay_options(lowers, upper, work, metacopy=metacopy)
    if len(options) > _PAGE_LIMIT:
        raise InvalidArgument(f"too many image layers for one overlay mount ({len(lowers)})")
    _mount("overlay", rootfs, "overlay", options)
    return rootfs


def unmount_rootfs(container_dir: Path) -> None:
    """Unmount container_dir/rootfs if it is mounted; the directories stay."""
    rootfs = container_dir.absolute() / "rootfs"
    if not os.path.ismount(rootfs):
        return
    if _libc.umount2(os.fsencode(rootfs), 0) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EBUSY:  # something still has it open: detach it lazily
        if _libc.umount2(os.fsencode(rootfs), _MNT_DETACH) == 0:
            return
        err = ctypes.get_errno()
    if err not in (errno.EINVAL, errno.ENOENT):
        raise Unavailable(f"unmount {rootfs}: {os.strerror(err)}")


def _mount(source: str, target: Path, fstype: str, data: str) -> None:
    rc = _libc.mount(source.encode(), os.fsencode(target), fstype.encode(), 0, data.encode())
    if rc != 0:
        err = ctypes.get_errno()
        raise Unavailable(f"mount overlay on {target}: {os.strerror(err)}")
