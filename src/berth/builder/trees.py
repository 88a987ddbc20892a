"""Read-only file trees COPY reads from and writes over, without extracting or mounting anything.

    ContextTree   the build context: a tar file indexed in place (never unpacked, so a crafted
                  member name cannot write anywhere; names that leave the root are rejected)
    MergedView    an image's layer snapshots seen as overlayfs would merge them (whiteouts are
                  0:0 character devices, opaque dirs carry trusted.overlay.opaque=y)

Paths are lists of components relative to the root. `resolve()` follows symlinks the way a
chroot would: `..` and absolute targets never leave the root.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from berth.builder.dockerignore import DockerIgnore
from berth.errors import InvalidArgument
from berth.images.upperdiff import is_opaque, is_whiteout
from berth.images.xattrs import carried_from_pax, read_xattrs
from berth.types.scopedpath import resolve_scoped, split_path

_MAX_SYMLINKS = 40


@dataclass(frozen=True)
class Entry:
    """One file-system object as COPY needs it."""

    kind: str            # "file" | "dir" | "symlink" | "other"
    mode: int            # permission bits (07777)
    uid: int
    gid: int
    mtime: int
    size: int = 0
    linkname: str = ""
    ref: object = None   # the tree's own handle (TarInfo or real path)
    xattrs: tuple[tuple[str, bytes], ...] = ()   # carried xattrs (file capabilities...), sorted


class Tree(Protocol):
    def entry(self, parts: list[str]) -> Entry | None: ...
    def children(self, parts: list[str]) -> list[str]: ...
    def open(self, entry: Entry) -> BinaryIO: ...


def resolve(tree: Tree, path: str | list[str], *, follow_last: bool = True) -> list[str]:
    """Follow symlinks inside `tree`, never above its root; the result may not exist."""
    def readlink(parts: list[str]) -> str | None:
        entry = tree.entry(parts)
        return entry.linkname if entry is not None and entry.kind == "symlink" else None

    return resolve_scoped(path, readlink, follow_last=follow_last, max_links=_MAX_SYMLINKS)


def walk(tree: Tree, parts: list[str]) -> Iterator[tuple[list[str], Entry]]:
    """Every entry below the directory `parts` (not itself), parents before children, sorted."""
    for name in sorted(tree.children(parts)):
        child = parts + [name]
        entry = tree.entry(child)
        if entry is None:
            continue
        yield child, entry
        if entry.kind == "dir":
            yield from walk(tree, child)


# -- the build context ---------------------------------------------------------------------------


class ContextTree:
    """The build context tar, indexed once; see the module docstring."""

    def __init__(self, tar_path: Path, ignore: DockerIgnore | None = None) -> None:
        try:
            self._tar = tarfile.open(tar_path, mode="r:")
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError) as err:
            raise InvalidArgument(f"failed to read the build context: {err}") from err
        self._entries: dict[tuple[str, ...], Entry] = {(): _ROOT}
        self._children: dict[tuple[str, ...], set[str]] = {(): set()}
        for member in members:
            self._add(member)
        self.ignore = ignore or DockerIgnore()

    def close(self) -> None:
        self._tar.close()

    def _add(self, member: tarfile.TarInfo) -> None:
        parts = split_path(member.name)
        if member.name.startswith("/") or ".." in parts:
            raise InvalidArgument(
                f"invalid build context: entry {member.name!r} points outside the context")
        if not parts:
            return
        for depth in range(1, len(parts)):
            self._ensure_dir(tuple(parts[:depth]))
        key = tuple(parts)
        entry = _tar_entry(member)
        if member.islnk():  # a hard link reads as its target (same inode, same metadata)
            if member.linkname.startswith("/") or ".." in split_path(member.linkname):
                raise InvalidArgument(f"invalid build context: hard link {member.name!r} -> "
                                      f"{member.linkname!r} points outside the context")
            target = self._entries.get(tuple(split_path(member.linkname)))
            if target is None or target.kind != "file":
                return
            entry = target
        self._entries[key] = entry
        self._children.setdefault(key[:-1], set()).add(key[-1])
        if member.isdir():
            self._children.setdefault(key, set())

    def _ensure_dir(self, key: tuple[str, ...]) -> None:
        if key not in self._entries or self._entries[key].kind != "dir":
            self._entries[key] = _ROOT
            self._children.setdefault(key[:-1], set()).add(key[-1])
        self._children.setdefault(key, set())

    def entry(self, parts: list[str]) -> Entry | None:
        key = tuple(parts)
        if key and self.ignore and self.ignore.excluded("/".join(key)):
            return None
        return self._entries.get(key)

    def raw_entry(self, path: str) -> Entry | None:
        """An entry even if .dockerignore excludes it (the Dockerfile and .dockerignore)."""
        return self._entries.get(tuple(split_path(path)))

    def children(self, parts: list[str]) -> list[str]:
        return list(self._children.get(tuple(parts), ()))

    def open(self, entry: Entry) -> BinaryIO:
        assert isinstance(entry.ref, tarfile.TarInfo)
        f = self._tar.extractfile(entry.ref)
        if f is None:
            raise InvalidArgument(f"cannot read {entry.ref.name!r} from the build context")
        return f  # type: ignore[return-value]

    def read(self, path: str, limit: int) -> bytes | None:
        """A regular file's bytes (at most `limit` + 1, so callers can tell it was too big)."""
        entry = self.raw_entry(path)
        if entry is None or entry.kind != "file":
            return None
        with self.open(entry) as f:
            return f.read(limit + 1)


_ROOT = Entry(kind="dir", mode=0o755, uid=0, gid=0, mtime=0)


def _tar_entry(m: tarfile.TarInfo) -> Entry:
    if m.isreg():
        kind = "file"
    elif m.isdir():
        kind = "dir"
    elif m.issym():
        kind = "symlink"
    else:
        kind = "other"
    return Entry(kind=kind, mode=m.mode & 0o7777, uid=m.uid, gid=m.gid, mtime=int(m.mtime),
                 size=m.size if m.isreg() else 0, linkname=m.linkname if m.issym() else "", ref=m,
                 xattrs=carried_from_pax(m.pax_headers) if kind != "other" else ())


class HeredocTree:
    """In-memory files for `COPY <<EOF /dest` (one per heredoc, named after it)."""

    def __init__(self, files: dict[str, bytes], mtime: int = 0) -> None:
        self._files = files
        self._mtime = mtime

    def entry(self, parts: list[str]) -> Entry | None:
        if not parts:
            return Entry(kind="dir", mode=0o755, uid=0, gid=0, mtime=self._mtime)
        name = "/".join(parts)
        if name not in self._files:
            return None
        return Entry(kind="file", mode=0o644, uid=0, gid=0, mtime=self._mtime,
                     size=len(self._files[name]), ref=name)

    def children(self, parts: list[str]) -> list[str]:
        return list(self._files) if not parts else []

    def open(self, entry: Entry) -> BinaryIO:
        return io.BytesIO(self._files[str(entry.ref)])


# -- image layers ------------------------------------------------------------------------------


class MergedView:
    """An image's snapshot dirs (topmost first) merged like overlayfs, read-only."""

    def __init__(self, layers_top_first: list[Path]) -> None:
        self.layers = [Path(p) for p in layers_top_first]

    def _candidates(self, parts: list[str]) -> Iterator[tuple[Path, os.stat_result]]:
        """The path in each layer that contributes to `parts`, topmost first."""
        for layer in self.layers:
            current, hide_below, found = layer, False, True
            for i, name in enumerate(parts):
                current = current / name
                st = _lstat(current)
                if st is None:
                    found = False
                    break
                if is_whiteout(st):
                    return
                if i < len(parts) - 1:
                    if not stat.S_ISDIR(st.st_mode):
                        return
                    hide_below = hide_below or is_opaque(current)
            if found:
                st = _lstat(current)
                if st is None:
                    return
                yield current, st
                if not stat.S_ISDIR(st.st_mode) or (parts and is_opaque(current)):
                    return
            if hide_below:
                return

    def entry(self, parts: list[str]) -> Entry | None:
        for path, st in self._candidates(parts):
            return _stat_entry(path, st)
        return None

    def children(self, parts: list[str]) -> list[str]:
        names: dict[str, bool] = {}  # name -> visible
        for path, st in self._candidates(parts):
            if not stat.S_ISDIR(st.st_mode):
                break
            for name in os.listdir(path):
                if name in names:
                    continue
                child = _lstat(path / name)
                names[name] = child is not None and not is_whiteout(child)
        return [n for n, visible in names.items() if visible]

    def open(self, entry: Entry) -> BinaryIO:
        assert isinstance(entry.ref, Path)
        return entry.ref.open("rb")

    def read_text(self, path: str) -> str | None:
        entry = self.entry(resolve(self, path))
        if entry is None or entry.kind != "file":
            return None
        with self.open(entry) as f:
            return f.read(1 << 20).decode("utf-8", errors="replace")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _stat_entry(path: Path, st: os.stat_result) -> Entry:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind = "file"
    elif stat.S_ISDIR(mode):
        kind = "dir"
    elif stat.S_ISLNK(mode):
        kind = "symlink"
    else:
        kind = "other"
    return Entry(kind=kind, mode=stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid, mtime=int(st.st_mtime),
                 size=st.st_size if kind == "file" else 0,
                 linkname=os.readlink(path) if kind == "symlink" else "", ref=path,
                 xattrs=tuple(read_xattrs(path).items()) if kind != "other" else ())


def clean_source(path: str) -> str:
    """A COPY source relative to the context root; `..` that leaves the root is refused."""
    cleaned = posixpath.normpath("/" + path.lstrip("/")) if path else "/"
    relative = posixpath.normpath(path.lstrip("/")) if path.lstrip("/") else "."
    if relative == ".." or relative.startswith("../"):
        raise InvalidArgument(f"forbidden path outside the build context: {path} ()")
    return cleaned.lstrip("/")
