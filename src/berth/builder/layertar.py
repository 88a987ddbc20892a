"""Layer tars: written entry by entry (COPY/ADD/WORKDIR), or diffed from an overlay upper dir (RUN).

An overlay upper dir is already a diff of the container against its image, in overlay's own
notation; `diff_upper` translates it to the OCI layer notation:

    upper/                                   layer.tar
    ├── a/            (xattr opaque=y)   ->  a/  +  a/.wh..wh..opq
    ├── gone          (char dev 0:0)     ->  .wh.gone
    └── new.txt                          ->  new.txt

Mount points the runtime creates in an image that lacks them (etc/hosts, proc, ...) are left
out, as Docker keeps them in its init layer.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_OPAQUE_XATTR = "trusted.overlay.opaque"
# Created as mount points by the runtime when missing; empty ones are not the step's work.
_MOUNT_FILES = frozenset({"etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"})
_MOUNT_DIRS = frozenset({"proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "sys/fs/cgroup"})


class LayerWriter:
    """A tar under construction; each directory is written once, parents first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar = tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT)
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

    def add_dir(self, path: str, *, mode: int, uid: int, gid: int, mtime: int) -> None:
        if path in self._dirs or not path:
            return
        self._dirs.add(path)
        self._add(_info(path + "/", tarfile.DIRTYPE, mode, uid, gid, mtime))

    def add_file(self, path: str, data: BinaryIO, size: int, *, mode: int, uid: int, gid: int,
                 mtime: int) -> None:
        info = _info(path, tarfile.REGTYPE, mode, uid, gid, mtime)
        info.size = size
        self._add(info, data)

    def add_symlink(self, path: str, target: str, *, uid: int, gid: int, mtime: int) -> None:
        info = _info(path, tarfile.SYMTYPE, 0o777, uid, gid, mtime)
        info.linkname = target
        self._add(info)

    def info_for(self, full: Path, arcname: str) -> tarfile.TarInfo:
        """A header from the file itself (hard links within this tar become LNKTYPE)."""
        info = self._tar.gettarinfo(str(full), arcname=arcname)
        info.uname = info.gname = ""
        return info

    def add_info(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        if info.isdir():
            if info.name.rstrip("/") in self._dirs:
                return
            self._dirs.add(info.name.rstrip("/"))
        self._add(info, data)

    def _add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        self._tar.addfile(info, data)
        self.entries += 1


def _info(name: str, kind: bytes, mode: int, uid: int, gid: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode & 0o7777
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = mtime
    return info


def diff_upper(upper: Path, out: Path, lower: Callable[[str], Any]) -> int:
    """Write the layer tar for the overlay upper dir `upper`; returns the number of entries.

    `lower(path)` is the image's entry at a path before the step (a `trees.Entry` or None):
    mount points the runtime created are left out, and so are directories that were only
    copied up (same owner and mode as below, nothing kept inside them).
    """
    paths = _walk(upper)
    kept = _kept(upper, paths, lower)
    with LayerWriter(out) as writer:
        for rel in paths:
            if rel in kept:
                _add_upper_entry(writer, upper, rel)
        return writer.entries


def _kept(upper: Path, paths: list[str], lower: Callable[[str], Any]) -> set[str]:
    kept: set[str] = set()
    has_kept_child: set[str] = set()
    for rel in reversed(paths):  # children before parents, so parents know about them
        full = upper / rel
        st = os.lstat(full)
        if _runtime_mount_point(rel, full, st, lower):
            continue
        if (stat.S_ISDIR(st.st_mode) and rel not in has_kept_child and not _opaque(full)
                and not _dir_changed(st, lower(rel))):
            continue
        kept.add(rel)
        has_kept_child.add(rel.rpartition("/")[0])
    return kept


def _dir_changed(st: os.stat_result, below: Any) -> bool:
    if below is None or below.kind != "dir":
        return True
    return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (below.mode, below.uid, below.gid)


def _walk(root: Path) -> list[str]:
    found: list[str] = []

    def visit(directory: Path, prefix: str) -> None:
        for name in sorted(os.listdir(directory)):
            rel = prefix + name
            found.append(rel)
            full = directory / name
            if stat.S_ISDIR(os.lstat(full).st_mode):
                visit(full, rel + "/")

    visit(root, "")
    return found


def _add_upper_entry(writer: LayerWriter, upper: Path, rel: str) -> None:
    full = upper / rel
    st = os.lstat(full)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        parent, _, name = rel.rpartition("/")
        writer.add_info(_info((parent + "/" if parent else "") + WHITEOUT + name, tarfile.REGTYPE,
                              0o644, 0, 0, int(st.st_mtime)))
        return
    info = writer.info_for(full, rel)
    if stat.S_ISREG(st.st_mode) and info.isreg():
        with full.open("rb") as data:
            writer.add_info(info, data)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return  # device nodes never go into a layer (the extractor would skip them anyway)
    else:
        writer.add_info(info)
    if stat.S_ISDIR(st.st_mode) and _opaque(full):
        writer.add_info(_info(rel + "/" + OPAQUE, tarfile.REGTYPE, 0o644, 0, 0, int(st.st_mtime)))


def _runtime_mount_point(rel: str, full: Path, st: os.stat_result, lower: Callable[[str], Any]) -> bool:
    if rel in _MOUNT_FILES and stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return lower(rel) is None
    if rel in _MOUNT_DIRS and stat.S_ISDIR(st.st_mode) and not os.listdir(full):
        return lower(rel) is None
    return False


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, _OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
