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
(other than whiteouts) and sockets are not written: the extractor would skip them, and a layer
must not hand out host devices.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from berth.images._extract import OPAQUE_MARKER, WHITEOUT_PREFIX
from berth.images.xattrs import OPAQUE_XATTR, read_xattrs, to_pax

__all__ = ["UpperEntry", "is_opaque", "is_whiteout", "walk_upper", "write_layer"]

_WRITTEN_KINDS = (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFIFO)


@dataclass(frozen=True)
class UpperEntry:
    """One object in an upper dir: `rel` is its path inside it ("etc/app.conf", no leading /)."""

    rel: str
    path: Path
    st: os.stat_result

    @property
    def is_whiteout(self) -> bool:
        return is_whiteout(self.st)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


def is_whiteout(st: os.stat_result) -> bool:
    """overlayfs's mark of a deleted path: a 0:0 character device."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path | str) -> bool:
    """Whether the directory hides everything below it (it was removed and made again)."""
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def walk_upper(upper: Path, exclude: Iterable[str] = ()) -> list[UpperEntry]:
    """Every entry of `upper`, parents first, names sorted; symlinks are never followed.

    `exclude` holds paths ("/proc", "etc/hosts") left out together with everything below them.
    """
    skipped = {posixpath.normpath("/" + p).lstrip("/") for p in exclude}
    found: list[UpperEntry] = []

    def visit(directory: Path, prefix: str) -> None:
        for name in sorted(_listdir(directory) if prefix else os.listdir(directory)):
            rel = prefix + name
            if rel in skipped:
                continue
            full = directory / name
            try:
                entry = UpperEntry(rel, full, os.lstat(full))
            except FileNotFoundError:
                continue  # removed since listed (a running container's upper dir)
            found.append(entry)
            if entry.is_dir:
                visit(full, rel + "/")

    visit(Path(upper), "")
    return found


def _listdir(directory: Path) -> list[str]:
    """A subdirectory's names; one removed since it was listed has none."""
    try:
        return os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []


def write_layer(entries: Iterable[UpperEntry], out: Path) -> int:
    """Write `entries` (in walk order) as the layer tar `out`; returns the number of tar entries."""
    written = 0
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for entry in entries:
            written += _add(tar, entry)
    return written


def _add(tar: tarfile.TarFile, entry: UpperEntry) -> int:
    if entry.is_whiteout:
        head, tail = posixpath.split(entry.rel)
        tar.addfile(_marker(posixpath.join(head, WHITEOUT_PREFIX + tail), entry.st))
        return 1
    info = _header(tar, entry)
    if info is None:
        return 0
    if info.isreg():
        with open(entry.path, "rb") as data:
            tar.addfile(info, data)
    else:
        tar.addfile(info)
    if entry.is_dir and is_opaque(entry.path):
        tar.addfile(_marker(posixpath.join(entry.rel, OPAQUE_MARKER), entry.st))
        return 2
    return 1


def _header(tar: tarfile.TarFile, entry: UpperEntry) -> tarfile.TarInfo | None:
    """The entry's tar header with its xattrs, or None for what a layer does not hold."""
    if stat.S_IFMT(entry.st.st_mode) not in _WRITTEN_KINDS:
        return None
    try:
        info = tar.gettarinfo(str(entry.path), arcname=entry.rel)
    except FileNotFoundError:
        return None  # removed since the walk (commit of a running container)
    if info is None:
        return None  # became a socket since the walk
    info.uname = info.gname = ""  # host names mean nothing in the image
    if not info.islnk():  # a link entry shares its target's inode, xattrs included
        info.pax_headers = to_pax(read_xattrs(entry.path))
    return info


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    """An empty regular file standing for a whiteout or an opaque directory."""
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.mtime = int(st.st_mtime)
    return info
