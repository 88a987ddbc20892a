"""ArchiveService: `docker cp` (archive API), `docker diff` and `docker commit`.

Where the files are:
- a running container is read and written through `/proc/<pid>/root`, which shows exactly the
  container's view (volumes, bind mounts and the managed /etc files included);
- a stopped container's overlay is mounted for the call, under the container's lock so a start
  cannot interleave (volumes are not visible then: they are mounted only in a running one);
- diff and commit read the overlay upper dir (<container dir>/upper) against the image layers.

Safety: every container path is resolved with `resolve_in_root` (symlinks are interpreted inside
the container root, `..` stops at it); the last component of an extracted entry is never followed
(O_NOFOLLOW, unlink before create), and entries with `..` components are refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import lzma
import os
import posixpath
import stat
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from berth.engine.container_model import Container
from berth.engine.rootpath import container_path, resolve_in_root
from berth.errors import InvalidArgument, NotFound

# Paths the engine itself creates in every container (Docker keeps them in its init layer);
# they never show up in diff or commit.
INIT_PATHS = ("/dev", "/proc", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
              "/.dockerenv", "/etc/mtab")
_OPAQUE_XATTR = "trusted.overlay.opaque"

# Go's os.FileMode type bits (the CLI decodes the stat header with them).
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20
CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}


def go_file_mode(mode: int) -> int:
    """A st_mode as Go's os.FileMode (what Docker puts in the path-stat header)."""
    out = mode & 0o777
    kind = stat.S_IFMT(mode)
    out |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE,
            stat.S_IFSOCK: _GO_SOCKET, stat.S_IFBLK: _GO_DEVICE,
            stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}.get(kind, 0)
    if mode & stat.S_ISUID:
        out |= _GO_SETUID
    if mode & stat.S_ISGID:
        out |= _GO_SETGID
    if mode & stat.S_ISVTX:
        out |= _GO_STICKY
    return out


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _not_found(path: str, container: Container) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {container.name}")


# --- stat / read / write (pure filesystem work on a root) -----------------------------------------

def split_request_path(path: str) -> tuple[str, str]:
    """moby's ResolvePath: (absolute path keeping a trailing "/." or "/", its last element)."""
    if not path:
        raise InvalidArgument("Path cannot be empty")
    absolute = posixpath.join("/", path)
    clean = posixpath.normpath(absolute)
    if path.endswith("/.") or path == ".":
        return clean.rstrip("/") + "/.", "."
    return clean, posixpath.basename(clean) or "/"


def _host_path(root: Path, absolute: str) -> Path:
    """Resolve the directory part inside the root; the last element is not followed."""
    directory, base = posixpath.split(absolute)
    parent = resolve_in_root(root, directory)
    return parent if base in ("", ".") else parent / base


def stat_path(root: Path, path: str, container: Container) -> dict[str, Any]:
    absolute, name = split_request_path(path)
    host = _host_path(root, absolute)
    try:
        st = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise _not_found(path, container) from err
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        link_target = container_path(root, resolve_in_root(root, absolute))
    return {"name": name if name != "." else posixpath.basename(absolute[:-2]) or "/", "size": st.st_size,
            "mode": go_file_mode(st.st_mode), "mtime": _rfc3339(st.st_mtime), "linkTarget": link_target}


def stat_header(stat_json: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(stat_json).encode()).decode()


def write_tar(root: Path, path: str, container: Container, out: Any) -> None:
    """Tar `path` (as the container sees it) into the binary file `out`; symlinks stay links."""
    absolute, name = split_request_path(path)
    host = _host_path(root, absolute)
    if not os.path.lexists(host):
        raise _not_found(path, container)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(host), arcname=name, recursive=True)


def extract_tar(root: Path, path: str, container: Container, tar_file: Path, *,
                no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> None:
    """Unpack `tar_file` into directory `path` of the container, never leaving its root."""
    dest = resolve_in_root(root, posixpath.join("/", path))
    if not dest.exists():
        raise _not_found(path, container)
    if not dest.is_dir():
        raise InvalidArgument("extraction point is not a directory")
    dest_path = container_path(root, dest)
    try:
        with tarfile.open(tar_file, mode="r:*") as tar:
            members = tar.getmembers()  # reads the whole archive: a broken one changes nothing
            for member in members:
                _entry_path(dest_path, member.name)  # refuse a `..` entry before writing any
            for member in members:
                _extract_member(root, dest_path, tar, member, no_overwrite_dir_non_dir, copy_uid_gid)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as err:
        raise InvalidArgument(f"invalid tar archive: {err}") from err


def _entry_path(dest_path: str, name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"invalid archive entry {name!r}: '..' is not allowed")
    return posixpath.join(dest_path, *parts) if parts else dest_path


def _extract_member(root: Path, dest_path: str, tar: tarfile.TarFile, member: tarfile.TarInfo,
                    no_overwrite: bool, copy_ids: bool) -> None:
    ctr_path = _entry_path(dest_path, member.name)
    if ctr_path == dest_path and member.isdir():
        return
    target = _host_path(root, ctr_path)
    existing = os.lstat(target) if os.path.lexists(target) else None
    if existing is not None:
        is_dir = stat.S_ISDIR(existing.st_mode)
        if no_overwrite and is_dir != member.isdir():
            raise InvalidArgument(f"cannot overwrite {'directory' if is_dir else 'non-directory'} "
                                  f"\"{ctr_path}\" with {'directory' if member.isdir() else 'non-directory'}")
        if is_dir and member.isdir():
            os.chmod(target, member.mode & 0o7777)
        elif is_dir:
            raise InvalidArgument(f"cannot overwrite directory \"{ctr_path}\" with non-directory")
        else:
            os.unlink(target)  # a symlink is removed, never followed
    if member.isdir():
        if existing is None:
            os.mkdir(target, member.mode & 0o7777)
    elif member.isreg():
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, member.mode & 0o7777)
        with os.fdopen(fd, "wb") as out:
            src = tar.extractfile(member)
            assert src is not None
            while chunk := src.read(1 << 20):
                out.write(chunk)
    elif member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        source = _host_path(root, _entry_path(dest_path, member.linkname))
        os.link(source, target, follow_symlinks=False)
    elif member.isfifo():
        os.mkfifo(target, member.mode & 0o7777)
    else:
        return  # devices are not created by cp (no CAP_MKNOD semantics to honour here)
    uid, gid = (member.uid, member.gid) if copy_ids else (0, 0)
    os.lchown(target, uid, gid)
    if not member.issym():
        os.chmod(target, member.mode & 0o7777)
        os.utime(target, (member.mtime, member.mtime))


# --- diff and commit (the overlay upper dir) -------------------------------------------------------

def _excluded(rel: str, exclude: Iterable[str]) -> bool:
    return any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in exclude)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, _OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _walk_upper(upper: Path, exclude: Iterable[str]) -> Iterator[tuple[str, str, os.stat_result]]:
    """(container path, host path, lstat) of every upper entry outside `exclude`, parents first."""
    exclude = tuple(exclude)
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            host = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(host, upper)
            if _excluded(rel, exclude):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            yield rel, host, os.lstat(host)


def changes(upper: Path, lowers: list[Path], exclude: Iterable[str]) -> list[dict[str, Any]]:
    """`docker diff`: [{"Path", "Kind"}] with Kind 0 changed, 1 added, 2 deleted, sorted by path.

    A directory that was only copied up (it exists below and nothing under it changed) is not
    reported; that happens when the runtime creates a mount point inside it.
    """
    def below(rel: str) -> bool:
        return any(os.path.lexists(os.path.join(lower, rel.lstrip("/"))) for lower in lowers)

    found: dict[str, str] = {}
    copied_dirs: list[str] = []
    for rel, host, st in _walk_upper(upper, exclude):
        if _is_whiteout(st):
            found[rel] = "D"
        elif not below(rel):
            found[rel] = "A"
        elif stat.S_ISDIR(st.st_mode) and not _is_opaque(host):
            copied_dirs.append(rel)
        else:
            found[rel] = "C"
    for rel in copied_dirs:
        if any(p.startswith(rel + "/") for p in found):
            found[rel] = "C"
    return [{"Path": p, "Kind": CHANGE_KINDS[k]} for p, k in sorted(found.items())]


def layer_tar(upper: Path, exclude: Iterable[str], out_path: Path) -> None:
    """The upper dir as an OCI layer tar: whiteouts become `.wh.<name>`, opaque dirs get
    `.wh..wh..opq`."""
    with tarfile.open(out_path, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, host, st in _walk_upper(upper, exclude):
            arcname = rel.lstrip("/")
            if _is_whiteout(st):
                head, tail = posixpath.split(arcname)
                tar.addfile(_empty(posixpath.join(head, ".wh." + tail), st.st_mtime))
                continue
            tar.add(host, arcname=arcname, recursive=False)
            if stat.S_ISDIR(st.st_mode) and _is_opaque(host):
                tar.addfile(_empty(posixpath.join(arcname, ".wh..wh..opq"), st.st_mtime))


def _empty(name: str, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = int(mtime)
    return info


_COMMIT_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
                "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes",
                "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal")


def commit_config(container_config: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """moby's merge: fields set in the request's config win, the rest come from the container."""
    base = {k: container_config.get(k) for k in _COMMIT_KEYS}
    for key, value in (override or {}).items():
        if value not in (None, "", [], {}):
            base[key] = value
    return base


# --- the service -----------------------------------------------------------------------------------

class ArchiveService:
    def __init__(self, *, containers: Any, images: Any, runtime: Any, tmp_dir: Path) -> None:
        self._containers = containers
        self._images = images
        self._runtime = runtime
        self._tmp = Path(tmp_dir)

    @contextlib.asynccontextmanager
    async def root(self, ref: str) -> AsyncIterator[tuple[Container, Path]]:
        """The container and a host path showing its filesystem, for the duration of the block."""
        container = self._containers.get(ref)
        if container.state.running and container.state.pid:
            yield container, Path(f"/proc/{container.state.pid}/root")
            return
        async with self._containers.lock(container.id):  # no start while we hold its rootfs
            container = self._containers.get(container.id)
            if container.state.running and container.state.pid:
                yield container, Path(f"/proc/{container.state.pid}/root")
                return
            cdir = self._containers.container_dir(container.id)
            mounted = os.path.ismount(cdir / "rootfs")
            image = await asyncio.to_thread(self._images.resolve, container.image_id)
            layers = await asyncio.to_thread(self._images.layer_dirs, image)
            rootfs = await asyncio.to_thread(self._runtime.mount_rootfs, layers, cdir)
            try:
                yield container, Path(rootfs)
            finally:
                if not mounted:
                    await asyncio.to_thread(self._runtime.unmount_rootfs, cdir)

    async def stat(self, ref: str, path: str) -> dict[str, Any]:
        async with self.root(ref) as (container, root):
            return await asyncio.to_thread(stat_path, root, path, container)

    async def get(self, ref: str, path: str) -> tuple[dict[str, Any], Path]:
        """(path stat, a temp tar file the caller streams and deletes)."""
        async with self.root(ref) as (container, root):
            info = await asyncio.to_thread(stat_path, root, path, container)
            fd, name = tempfile.mkstemp(prefix="cp-", dir=self._tmp)
            try:
                with os.fdopen(fd, "wb") as out:
                    await asyncio.to_thread(write_tar, root, path, container, out)
            except BaseException:
                os.unlink(name)
                raise
            return info, Path(name)

    async def put(self, ref: str, path: str, tar_file: Path, *, no_overwrite_dir_non_dir: bool,
                  copy_uid_gid: bool) -> None:
        async with self.root(ref) as (container, root):
            if container.host_config.get("ReadonlyRootfs") and not _in_writable_mount(container, path):
                raise InvalidArgument("container rootfs is marked read-only")
            await asyncio.to_thread(extract_tar, root, path, container, tar_file,
                                    no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, copy_uid_gid=copy_uid_gid)

    def _exclude(self, container: Container) -> list[str]:
        return [*INIT_PATHS, *(m["destination"] for m in container.mounts)]

    def diff(self, ref: str) -> list[dict[str, Any]]:
        container = self._containers.get(ref)
        upper = self._containers.container_dir(container.id) / "upper"
        lowers = self._images.layer_dirs(self._images.resolve(container.image_id))
        return changes(upper, lowers, self._exclude(container)) if upper.exists() else []

    def commit(self, ref: str, *, reference: str | None, comment: str, author: str,
               changes_: list[str], config: dict[str, Any] | None) -> str:
        """The container's read-write layer on top of its image → a new image; returns its id."""
        from berth.images._changes import apply_changes  # the store's --change parser

        container = self._containers.get(ref)
        base = self._images.resolve(container.image_id)
        upper = self._containers.container_dir(container.id) / "upper"
        runtime_config = apply_changes(commit_config(container.config, config), changes_)
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        base_config = base.config or {}
        history = list(base_config.get("history") or [])
        history.append({"created": now, **({"author": author} if author else {}),
                        **({"comment": comment} if comment else {})})
        image_config = {
            "architecture": base_config.get("architecture", "amd64"), "os": base_config.get("os", "linux"),
            "author": author, "comment": comment, "created": now, "container": container.id,
            "config": runtime_config, "history": history,
        }
        fd, name = tempfile.mkstemp(prefix="commit-", suffix=".tar", dir=self._tmp)
        os.close(fd)
        try:
            if upper.exists():
                layer_tar(upper, self._exclude(container), Path(name))
            else:
                tarfile.open(name, "w").close()
            layers = [self._images.blob_path(d) for d in base.layers] + [Path(name)]
            image = self._images.add_image(image_config, layers, reference, parent=base.id)
        finally:
            os.unlink(name)
        return str(image.id)


def _in_writable_mount(container: Container, path: str) -> bool:
    clean = posixpath.normpath(posixpath.join("/", path))
    return any(m.get("rw", True) and (clean == m["destination"] or clean.startswith(m["destination"] + "/"))
               for m in container.mounts)
