"""Layer tars: written entry by entry (COPY/ADD/WORKDIR), or diffed from an overlay upper dir (RUN).

An overlay upper dir is already a diff of the container against its image, in overlay's own
notation; `diff_upper` chooses what of it is the step's work and `berth.images.upperdiff`
(shared with `docker commit`) translates that to the OCI layer notation: whiteouts, opaque
dirs, and xattrs such as file capabilities as PAX records.

Mount points the runtime creates in an image that lacks them (etc/hosts, proc, ...) are left
out, as Docker keeps them in its init layer.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, BinaryIO

from berth.builder.trees import Entry
from berth.images.upperdiff import UpperEntry, is_opaque, walk_upper, write_layer
from berth.images.xattrs import to_pax

Xattrs = Iterable[tuple[str, bytes]]  # (name, raw value), in the order they are to be written

# Created as mount points by the runtime when missing; empty ones are not the step's work.
_MOUNT_FILES = frozenset({"etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"})
_MOUNT_DIRS = frozenset({"proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "sys/fs/cgroup"})
# The image's entry at a path (relative to its root) before the step, None where there was none.
Lower = Callable[[str], Entry | None]


class LayerWriter:
    """A tar under construction; each directory is written once, parents first.

    `xattrs` become PAX `SCHILY.xattr.*` records (file capabilities survive COPY, as in Docker).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar = tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8")
        self._dirs: set[str] = set()
        self.entries = 0

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has_dir(self, path: str) -> bool:
        return path in self._dirs

    def add_dir(self, path: str, *, mode: int, uid: int, gid: int, mtime: int, xattrs: Xattrs = ()) -> None:
        if path in self._dirs or not path:
            return
        self._dirs.add(path)
        self._add(_info(path + "/", tarfile.DIRTYPE, mode, uid, gid, mtime, xattrs))

    def add_file(self, path: str, data: BinaryIO, size: int, *, mode: int, uid: int, gid: int,
                 mtime: int, xattrs: Xattrs = ()) -> None:
        info = _info(path, tarfile.REGTYPE, mode, uid, gid, mtime, xattrs)
        info.size = size
        self._add(info, data)

    def add_symlink(self, path: str, target: str, *, uid: int, gid: int, mtime: int, xattrs: Xattrs = ()) -> None:
        info = _info(path, tarfile.SYMTYPE, 0o777, uid, gid, mtime, xattrs)
        info.linkname = target
        self._add(info)

    def add_info(self, info: tarfile.TarInfo, data: IO[bytes] | None = None) -> None:
        if info.isdir():
            if info.name.rstrip("/") in self._dirs:
                return
            self._dirs.add(info.name.rstrip("/"))
        self._add(info, data)

    def _add(self, info: tarfile.TarInfo, data: IO[bytes] | None = None) -> None:
        self._tar.addfile(info, data)
        self.entries += 1


def _info(name: str, kind: bytes, mode: int, uid: int, gid: int, mtime: int, xattrs: Xattrs = ()) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.pax_headers = to_pax(dict(xattrs))
    info.type = kind
    info.mode = mode & 0o7777
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = mtime
    return info


def diff_upper(upper: Path, out: Path, lower: Lower) -> int:
    """Write the layer tar for the overlay upper dir `upper`; returns the number of entries.

    `lower(path)` is the image's entry at a path before the step (a `trees.Entry` or None):
    mount points the runtime created are left out, and so are directories that were only
    copied up (same owner and mode as below, nothing kept inside them).
    """
    entries = walk_upper(upper)
    kept = _kept(entries, lower)
    return write_layer([e for e in entries if e.rel in kept], out)


def _kept(entries: list[UpperEntry], lower: Lower) -> set[str]:
    kept: set[str] = set()
    has_kept_child: set[str] = set()
    for entry in reversed(entries):  # children before parents, so parents know about them
        rel, st = entry.rel, entry.st
        if _runtime_mount_point(entry, lower):
            continue
        if (entry.is_dir and rel not in has_kept_child and not is_opaque(entry.path)
                and not _dir_changed(st, lower(rel))):
            continue
        kept.add(rel)
        has_kept_child.add(rel.rpartition("/")[0])
    return kept


def _dir_changed(st: os.stat_result, below: Entry | None) -> bool:
    if below is None or below.kind != "dir":
        return True
    return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (below.mode, below.uid, below.gid)


def _runtime_mount_point(entry: UpperEntry, lower: Lower) -> bool:
    rel, st = entry.rel, entry.st
    if rel in _MOUNT_FILES and stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return lower(rel) is None
    if rel in _MOUNT_DIRS and entry.is_dir and not os.listdir(entry.path):
        return lower(rel) is None
    return False
