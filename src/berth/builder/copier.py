"""COPY and ADD as a layer tar written straight from the source tree (no container, no mount).

Docker's rules, applied over `MergedView` (the image being built on) so that the layer lands
where the kernel would have put it:

    COPY dir /d        copies the *contents* of dir into /d
    COPY f /d/         /d/f;  COPY f /d  (where /d is an existing dir) also /d/f; else /d is the file
    COPY a b /d/       several sources need a destination ending in `/`
    new parents        created 0755, owned by the --chown user; existing ones keep their metadata
    symlinks           in the destination path are followed inside the image (/bin -> usr/bin)
    ownership          0:0 unless --chown; --chmod overrides the mode of what is copied
    ADD local.tar[.gz] extracted into the destination (archive members keep their owners)
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase

from berth.builder.layertar import LayerWriter
from berth.builder.trees import Entry, MergedView, Tree, resolve, walk
from berth.errors import InvalidArgument
from berth.images.xattrs import carried_from_pax, to_pax
from berth.runtime.users import parse_group, parse_passwd
from berth.types.scopedpath import split_path

_MULTI_SOURCE = "When using COPY with more than one source file, the destination must be a directory and end with a /"


@dataclass(frozen=True)
class Source:
    tree: Tree
    parts: list[str]     # resolved path inside the tree
    entry: Entry


@dataclass(frozen=True)
class CopyOptions:
    uid: int = 0
    gid: int = 0
    chmod: int | None = None
    extract_archives: bool = False   # ADD


def copy_into_layer(writer: LayerWriter, view: MergedView, sources: list[Source], dest: str,
                    opts: CopyOptions) -> None:
    """Write `sources` to the absolute path `dest` of the image seen through `view`."""
    dest_parts = split_path(dest)
    as_dir = dest.endswith("/") or len(sources) > 1 or any(s.entry.kind == "dir" for s in sources)
    if len(sources) > 1 and not dest.endswith("/"):
        raise InvalidArgument(_MULTI_SOURCE)
    target = resolve(view, dest_parts)
    if not as_dir:
        existing = view.entry(target)
        as_dir = existing is not None and existing.kind == "dir"
    if not as_dir and sources[0].entry.kind == "file" and opts.extract_archives and _is_archive(sources[0]):
        as_dir = True
    if as_dir:
        _ensure_dirs(writer, view, target, opts)
        for source in sources:
            _copy_source(writer, view, source, target, opts)
        return
    parent = resolve(view, dest_parts[:-1]) if dest_parts else []
    _ensure_dirs(writer, view, parent, opts)
    _write_entry(writer, sources[0].tree, sources[0].entry, parent + [dest_parts[-1]], opts)


def _copy_source(writer: LayerWriter, view: MergedView, source: Source, target: list[str],
                 opts: CopyOptions) -> None:
    if source.entry.kind == "dir":
        for child, entry in walk(source.tree, source.parts):
            _write_entry(writer, source.tree, entry, target + child[len(source.parts):], opts)
    elif source.entry.kind == "file" and opts.extract_archives and _is_archive(source):
        _extract_archive(writer, view, source, target, opts)
    else:
        name = source.parts[-1] if source.parts else "file"
        _write_entry(writer, source.tree, source.entry, target + [name], opts)


def _write_entry(writer: LayerWriter, tree: Tree, entry: Entry, parts: list[str], opts: CopyOptions) -> None:
    path = "/".join(parts)
    mode = opts.chmod if opts.chmod is not None else entry.mode
    if entry.kind == "dir":
        writer.add_dir(path, mode=mode, uid=opts.uid, gid=opts.gid, mtime=entry.mtime, xattrs=entry.xattrs)
    elif entry.kind == "file":
        with tree.open(entry) as data:
            writer.add_file(path, data, entry.size, mode=mode, uid=opts.uid, gid=opts.gid, mtime=entry.mtime,
                            xattrs=entry.xattrs)
    elif entry.kind == "symlink":
        writer.add_symlink(path, entry.linkname, uid=opts.uid, gid=opts.gid, mtime=entry.mtime,
                           xattrs=entry.xattrs)


def _ensure_dirs(writer: LayerWriter, view: MergedView, parts: list[str], opts: CopyOptions) -> None:
    """Directory entries for `parts` and its parents: existing ones as they are, new ones 0755."""
    now = int(time.time())
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        if writer.has_dir(path):
            continue
        existing = view.entry(parts[:depth])
        if existing is not None and existing.kind == "dir":  # the layer's copy hides the image's: keep it whole
            writer.add_dir(path, mode=existing.mode, uid=existing.uid, gid=existing.gid, mtime=existing.mtime,
                           xattrs=existing.xattrs)
        else:
            writer.add_dir(path, mode=0o755, uid=opts.uid, gid=opts.gid, mtime=now)


# -- ADD archives ------------------------------------------------------------------------------


def _is_archive(source: Source) -> bool:
    try:
        with source.tree.open(source.entry) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
            return tar.next() is not None
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return False


def _extract_archive(writer: LayerWriter, view: MergedView, source: Source, target: list[str],
                     opts: CopyOptions) -> None:
    archive = "/".join(source.parts)
    with source.tree.open(source.entry) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
        for member in tar:
            parts = archive_member_parts(member, archive=archive, dest="/" + "/".join(target))
            if not parts:
                continue  # `.` or `/`: the destination itself
            dest = target + parts
            _ensure_dirs(writer, view, dest[:-1], opts)
            _add_member(writer, tar, member, dest, target, opts)


def _inside(path: str) -> list[str] | None:
    """moby's Unpack joins a member's name (or a link's target) under the extraction directory
    and cleans it (an absolute name stays inside); the parts, or None when `..` leaves it."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("/"):
        return split_path(cleaned)
    if cleaned == ".." or cleaned.startswith("../"):
        return None
    return split_path(cleaned)


def archive_member_parts(member: tarfile.TarInfo, *, archive: str, dest: str) -> list[str]:
    """Where an ADD archive's member lands, relative to the destination; refused as moby's
    Unpack refuses it (the build fails naming the member) when its name, its hard link's target
    or its relative symlink's target would leave the destination.

    Raises:
        InvalidArgument: the member breaks out of the destination.
    """
    def refuse(what: str) -> InvalidArgument:
        return InvalidArgument(f"ADD failed: failed to extract {archive}: {what}")

    parts = _inside(member.name)
    if parts is None:
        raise refuse(f"{json.dumps(member.name)} is outside of {json.dumps(dest)}")
    if member.islnk() and _inside(member.linkname) is None:
        raise refuse(f"invalid hardlink {json.dumps(member.name)} -> {json.dumps(member.linkname)}")
    if member.issym() and not member.linkname.startswith("/") and \
            _inside(posixpath.join("/".join(parts[:-1]) or ".", member.linkname)) is None:
        raise refuse(f"invalid symlink {json.dumps(member.name)} -> {json.dumps(member.linkname)}")
    return parts


def _add_member(writer: LayerWriter, tar: tarfile.TarFile, member: tarfile.TarInfo, dest: list[str],
                target: list[str], opts: CopyOptions) -> None:
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return
    info = tarfile.TarInfo("/".join(dest) + ("/" if member.isdir() else ""))
    info.type, info.mode, info.mtime = member.type, member.mode, member.mtime
    if not member.islnk():
        info.pax_headers = to_pax(dict(carried_from_pax(member.pax_headers)))
    info.uid, info.gid = (opts.uid, opts.gid) if opts.uid or opts.gid else (member.uid, member.gid)
    if opts.chmod is not None:
        info.mode = opts.chmod
    if member.issym():
        info.linkname = member.linkname
    elif member.islnk():
        info.linkname = "/".join(target + (_inside(member.linkname) or []))  # checked above
    if member.isreg():
        info.size = member.size
        writer.add_info(info, tar.extractfile(member))
    else:
        writer.add_info(info)


# -- sources, ownership, checksums ------------------------------------------------------------


def find_sources(tree: Tree, pattern: str, what: str) -> list[Source]:
    """Sources for one COPY argument: a path (symlinks resolved in the tree) or a glob."""
    if any(c in pattern for c in "*?["):
        found = [Source(tree, parts, entry) for parts, entry in walk(tree, [])
                 if _glob_match(pattern, parts)]
        return found
    parts = resolve(tree, pattern)
    entry = tree.entry(parts)
    if entry is None:
        raise InvalidArgument(f"{what} failed: file not found in build context or excluded by "
                              f".dockerignore: stat {pattern}: file does not exist")
    return [Source(tree, parts, entry)]


def _glob_match(pattern: str, parts: list[str]) -> bool:
    pat = split_path(pattern)
    if len(pat) != len(parts):
        return False
    return all(fnmatchcase(name, p) for name, p in zip(parts, pat))


def chown_ids(spec: str, view: MergedView) -> tuple[int, int]:
    """`--chown=user[:group]` against the image's /etc/passwd and /etc/group.

    Without a group the GID is the UID for numeric users, else the group of the same name
    (falling back to the user's primary group), as moby does.
    """
    user, _, group = spec.partition(":")
    uid = _lookup(user, view, "passwd")
    if group:
        return uid, _lookup(group, view, "group")
    if user.isdigit():
        return uid, uid
    try:
        return uid, _lookup(user, view, "group")
    except InvalidArgument:
        entries = parse_passwd(view.read_text("/etc/passwd") or "")
        return uid, next(e.gid for e in entries if e.name == user)


def _lookup(name: str, view: MergedView, table: str) -> int:
    if name.isdigit():
        return int(name)
    text = view.read_text(f"/etc/{table}") or ""
    entries = parse_passwd(text) if table == "passwd" else parse_group(text)
    for entry in entries:
        if entry.name == name:
            return entry.uid if table == "passwd" else entry.gid  # type: ignore[union-attr]
    kind = "user" if table == "passwd" else "group"
    raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: "
                          f"can't find {kind} {name}: no matching entries in {table} file")


def checksum(sources: list[Source]) -> str:
    """Content checksum of COPY sources: paths, types, modes, sizes, link targets and data."""
    h = hashlib.sha256()
    for source in sources:
        items = [(source.parts, source.entry)]
        if source.entry.kind == "dir":
            items += list(walk(source.tree, source.parts))
        for parts, entry in items:
            rel = posixpath.join(*parts) if parts else "."
            h.update(f"{rel}\0{entry.kind}\0{entry.mode:o}\0{entry.size}\0{entry.linkname}\0".encode())
            for name, value in entry.xattrs:  # nothing added without xattrs: older keys still match
                h.update(f"xattr\0{name}\0{value.hex()}\0".encode())
            if entry.kind == "file":
                with source.tree.open(entry) as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
    return h.hexdigest()
