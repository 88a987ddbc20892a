"""ArchiveService: `docker cp` (archive API), `docker diff` and `docker commit`.

Where the files are (Docker's view, daemon/containerfs_linux.go, running or not): the container's
overlay root plus its volumes, bind mounts and managed /etc files, never its tmpfs mounts. The
overlay is the one mounted at <container dir>/rootfs (mounted for the call when the container is
stopped), pinned by an fd; the mounts are mapped by hand (engine/containerfs.py), so nothing is
mounted for them. All of it under the container's lock, so no start or removal interleaves.
diff and commit read the overlay upper dir (<container dir>/upper) against the image layers;
commit pauses a running container meanwhile (`pause`, default true, as Docker).

Safety: every container path is resolved by `ContainerView.resolve` (symlinks are interpreted in
the container's namespace, `..` stops at its root), so no host path outside the root or a mount's
source is reached; the last component of an extracted entry is never followed (O_NOFOLLOW, unlink
before create), entries with `..` components are refused, a mount point is never replaced, and
writes into a read-only volume or a read-only rootfs are refused per entry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import logging
import lzma
import os
import posixpath
import stat
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from berth.engine.container_launch import ETC_FILES
from berth.engine.container_model import Container
from berth.engine.containerfs import ContainerView, ViewMount
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound, Unavailable
from berth.images.upperdiff import is_opaque, walk_upper, write_layer
from berth.images.xattrs import read_xattrs, to_pax
from berth.types import parse_reference
from berth.volumes import MountPoint

CAPABILITY_XATTR = "security.capability"
log = logging.getLogger(__name__)

# Paths the engine itself creates in every container (Docker keeps them in its init layer);
# they never show up in diff or commit.
INIT_PATHS = ("/dev", "/proc", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
              "/.dockerenv", "/etc/mtab")

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


def _as_view(root: Path | ContainerView) -> ContainerView:
    return root if isinstance(root, ContainerView) else ContainerView(root)


def _lookup(view: ContainerView, absolute: str) -> str:
    """The resolved container path of a request path: its directory part is followed, its last
    element is not (lstat), except `dir/.` which names the directory itself."""
    return view.resolve(absolute, follow_last=absolute.endswith("/.") or absolute == "/")


def stat_path(root: Path | ContainerView, path: str, container: Container) -> dict[str, Any]:
    view = _as_view(root)
    absolute, name = split_request_path(path)
    try:
        st = os.lstat(view.host(_lookup(view, absolute)))
    except (FileNotFoundError, NotADirectoryError) as err:
        raise _not_found(path, container) from err
    link_target = view.resolve(absolute) if stat.S_ISLNK(st.st_mode) else ""
    return {"name": name if name != "." else posixpath.basename(absolute[:-2]) or "/", "size": st.st_size,
            "mode": go_file_mode(st.st_mode), "mtime": _rfc3339(st.st_mtime), "linkTarget": link_target}


def stat_header(stat_json: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(stat_json).encode()).decode()


def write_tar(root: Path | ContainerView, path: str, container: Container, out: Any) -> None:
    """Tar `path` (as the container sees it) into the binary file `out`; symlinks stay links.

    A directory is walked through the view, so volumes and bind mounts under it are included
    (as in Docker, whose tarballer walks the mounted view)."""
    view = _as_view(root)
    absolute, name = split_request_path(path)
    top = _lookup(view, absolute)
    if not os.path.lexists(view.host(top)):
        raise _not_found(path, container)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        pending = [(top, name)]
        while pending:
            ctr_path, arcname = pending.pop()
            host = view.host(ctr_path)
            try:
                st = os.lstat(host)
                _add_entry(tar, host, arcname)
                children = view.listdir(ctr_path) if stat.S_ISDIR(st.st_mode) else []
            except (FileNotFoundError, NotADirectoryError):
                if ctr_path == top:
                    raise _not_found(path, container) from None
                continue  # removed meanwhile by the running container
            pending += [(posixpath.join(ctr_path, c), posixpath.join(arcname, c)) for c in reversed(children)]


def _add_entry(tar: tarfile.TarFile, host: Path, arcname: str) -> None:
    """One object as moby's cp tarballer writes it: no owner names looked up on the host, and
    the file capability (the only xattr moby's archive carries). A file is opened without
    following a symlink, so one swapped in by the running container cannot pull in a host file."""
    info = tar.gettarinfo(str(host), arcname=arcname)
    info.uname = info.gname = ""
    capability = read_xattrs(host).get(CAPABILITY_XATTR)
    if capability is not None:
        info.pax_headers = to_pax({CAPABILITY_XATTR: capability})
    if not info.isreg():
        tar.addfile(info)
        return
    fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        tar.addfile(info, f)


def extract_tar(root: Path | ContainerView, path: str, container: Container, tar_file: Path, *,
                no_overwrite_dir_non_dir: bool, copy_uid_gid: bool, readonly_rootfs: bool = False) -> None:
    """Unpack `tar_file` into directory `path` of the container, never leaving its root or its
    mounts' sources; a read-only volume (or rootfs) refuses with moby's words."""
    view = _as_view(root)
    dest_path = view.resolve(posixpath.join("/", path))
    dest = view.host(dest_path)
    if not dest.exists():
        raise _not_found(path, container)
    if not dest.is_dir():
        raise InvalidArgument("extraction point is not a directory")
    _check_writable(view, dest_path, readonly_rootfs)
    try:
        with tarfile.open(tar_file, mode="r:*") as tar:
            members = tar.getmembers()  # reads the whole archive: a broken one changes nothing
            for member in members:
                _entry_path(dest_path, member.name)  # refuse a `..` entry before writing any
            for member in members:
                _extract_member(view, dest_path, tar, member, no_overwrite_dir_non_dir, copy_uid_gid,
                                readonly_rootfs)
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


def _extract_member(view: ContainerView, dest_path: str, tar: tarfile.TarFile, member: tarfile.TarInfo,
                    no_overwrite: bool, copy_ids: bool, readonly_rootfs: bool) -> None:
    ctr_path = _entry_path(dest_path, member.name)
    if ctr_path == dest_path and member.isdir():
        return
    # Resolved per entry: an earlier entry may have made a symlink this one goes through, into
    # another mount (checked for writability here, not only at the extraction point).
    resolved = view.resolve(ctr_path, follow_last=False)
    _check_writable(view, resolved, readonly_rootfs)
    target = view.host(resolved)
    existing = os.lstat(target) if os.path.lexists(target) else None
    if existing is not None:
        is_dir = stat.S_ISDIR(existing.st_mode)
        if no_overwrite and is_dir != member.isdir():
            raise InvalidArgument(f"cannot overwrite {'directory' if is_dir else 'non-directory'} "
                                  f"\"{ctr_path}\" with {'directory' if member.isdir() else 'non-directory'}")
        if is_dir and member.isdir():
            os.chmod(target, member.mode & 0o7777)
        elif view.is_mount_point(resolved):  # the kernel says EBUSY; never unlink a mount's source
            raise Unavailable(f"unlinkat {resolved}: device or resource busy")
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
        source = view.host(view.resolve(_entry_path(dest_path, member.linkname), follow_last=False))
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

def changes(upper: Path, lowers: list[Path], exclude: Iterable[str]) -> list[dict[str, Any]]:
    """`docker diff`: [{"Path", "Kind"}] with Kind 0 changed, 1 added, 2 deleted, sorted by path.

    A directory that was only copied up (it exists below and nothing under it changed) is not
    reported; that happens when the runtime creates a mount point inside it.
    """
    def below(rel: str) -> bool:
        return any(os.path.lexists(os.path.join(lower, rel.lstrip("/"))) for lower in lowers)

    found: dict[str, str] = {}
    copied_dirs: list[str] = []
    for entry in walk_upper(upper, exclude):
        rel = "/" + entry.rel
        if entry.is_whiteout:
            found[rel] = "D"
        elif not below(rel):
            found[rel] = "A"
        elif entry.is_dir and not is_opaque(entry.path):
            copied_dirs.append(rel)
        else:
            found[rel] = "C"
    for rel in copied_dirs:
        if any(p.startswith(rel + "/") for p in found):
            found[rel] = "C"
    return [{"Path": p, "Kind": CHANGE_KINDS[k]} for p, k in sorted(found.items())]


def layer_tar(upper: Path, exclude: Iterable[str], out_path: Path) -> None:
    """The upper dir, minus the container paths `exclude`, as an OCI layer tar (see upperdiff)."""
    write_layer(walk_upper(upper, exclude), out_path)


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
    def __init__(self, *, containers: Any, images: Any, runtime: Any, tmp_dir: Path,
                 events: Any = None) -> None:
        self._containers = containers
        self._images = images
        self._runtime = runtime
        self._tmp = Path(tmp_dir)
        self._events = events  # berth.engine.events.EventBus, or None (no events)

    @contextlib.asynccontextmanager
    async def root(self, ref: str) -> AsyncIterator[tuple[Container, ContainerView]]:
        """The container and a view of its filesystem (Docker's cp view), for the block.

        Held under the container's lock: no start, stop-and-remove or second mount interleaves.
        The overlay is pinned by an O_PATH fd, so an exit's teardown meanwhile only detaches it."""
        container = self._containers.get(ref)
        async with self._containers.lock(container.id):
            container = self._containers.get(container.id)
            cdir = self._containers.container_dir(container.id)
            rootfs = cdir / "rootfs"
            mounted_here = False
            if container.state.running and container.state.pid:
                if not os.path.ismount(rootfs):  # not ours to mount while it runs: the kernel's view
                    yield container, ContainerView(Path(f"/proc/{container.state.pid}/root"))
                    return
            elif not os.path.ismount(rootfs):
                image = await asyncio.to_thread(self._images.resolve, container.image_id)
                layers = await asyncio.to_thread(self._images.layer_dirs, image)
                await asyncio.to_thread(self._runtime.mount_rootfs, layers, cdir)
                mounted_here = True
            try:
                fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
                try:
                    view = await asyncio.to_thread(ContainerView, Path(f"/proc/self/fd/{fd}"),
                                                   view_mounts(container, cdir))
                    yield container, view
                finally:
                    os.close(fd)
            finally:
                if mounted_here:
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
        self._publish(container, "archive-path")
        return info, Path(name)

    async def put(self, ref: str, path: str, tar_file: Path, *, no_overwrite_dir_non_dir: bool,
                  copy_uid_gid: bool) -> None:
        async with self.root(ref) as (container, root):
            await asyncio.to_thread(extract_tar, root, path, container, tar_file,
                                    no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, copy_uid_gid=copy_uid_gid,
                                    readonly_rootfs=bool(container.host_config.get("ReadonlyRootfs")))
        self._publish(container, "extract-to-dir")

    def _publish(self, container: Container, action: str, **extra: str) -> None:
        if self._events is None:
            return
        attrs = {"name": container.name, "image": container.image, **(container.config.get("Labels") or {})}
        attrs.update(extra)
        self._events.publish("container", action, container.id, attrs)

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

    async def commit_container(self, ref: str, *, pause: bool = True, reference: str | None, comment: str,
                               author: str, changes_: list[str], config: dict[str, Any] | None) -> str:
        """`docker commit` (POST /commit): `commit` with a running container paused meanwhile, as
        moby does when `pause` (the default): unpaused afterwards, on error too; one that was
        already paused stays so. Events: pause, commit, unpause."""
        container = self._containers.get(ref)
        if container.state.status == "dead":
            raise Conflict(f"You cannot commit container {container.id} which is Dead")
        if container.state.status == "removing":
            raise Conflict(f"You cannot commit container {container.id} which is being removed")
        paused_here = False
        if pause and container.state.status == "running":
            try:
                await self._containers.pause(container.id)
                paused_here = True
            except BerthError as err:  # moby ignores a failed pause and commits anyway
                log.warning("commit %s: pause failed: %s", container.id[:12], err)
        try:
            image_id = await asyncio.to_thread(self.commit, container.id, reference=reference, comment=comment,
                                               author=author, changes_=changes_, config=config)
            self._publish(container, "commit", comment=comment, imageID=image_id,
                          imageRef=_familiar(reference))
            return image_id
        finally:
            if paused_here:
                try:
                    await self._containers.unpause(container.id)
                except BerthError as err:  # unpaused (or stopped) by someone else meanwhile
                    log.info("commit %s: unpause: %s", container.id[:12], err)


def view_mounts(container: Container, cdir: Path) -> list[ViewMount]:
    """What Docker mounts for a cp: the managed /etc files that exist, then the volumes and bind
    mounts (tmpfs mounts are left out: their path is the rootfs directory beneath)."""
    mounts = [ViewMount(f"/etc/{f}", cdir / f, volume=False) for f in ETC_FILES if (cdir / f).is_file()]
    for point in (MountPoint.from_record(r) for r in container.mounts):
        if point.type in ("volume", "bind") and point.source:
            mounts.append(ViewMount(point.destination, Path(point.source), rw=point.rw))
    return mounts


def _familiar(reference: str | None) -> str:
    """moby's imageRef attribute: the familiar form of the new tag (`name:tag`), or ''."""
    if not reference:
        return ""
    try:
        return parse_reference(reference).familiar()
    except BerthError:
        return reference
