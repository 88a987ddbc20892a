"""ArchiveService: `docker cp` (archive API), `docker diff` and `docker commit`.

Where the files are (Docker's view, daemon/containerfs_linux.go, running or not): the container's
overlay root plus its volumes, bind mounts and managed /etc files, never its tmpfs mounts. The
overlay is the one mounted at <container dir>/rootfs (mounted for the call when the container is
stopped), pinned by an fd; the mounts are mapped by hand (engine/containerfs.py), so nothing is
mounted for them. All of it under the container's lock, so no start or removal interleaves.
diff and commit read the overlay upper dir (<container dir>/upper) against the image layers;
commit pauses a running container meanwhile (`pause`, default true, as Docker).

Safety: every container path is resolved in the container's namespace (symlinks interpreted
there, `..` stopping at its root) and then reached only through fds (`ContainerView.open()`):
walked from the root or a mount source with O_NOFOLLOW, so a running container that swaps a
directory for a symlink meanwhile fails the walk instead of sending the daemon to a host path
(CVE-2018-15664). Files are read only if they still are the regular file lstat'ed (a FIFO or
device swapped in is skipped), metadata is set through the fd of what was created, entries with
`..` components (or hard links to such) are refused, a mount point is never replaced, a hard
link never joins two mounts, and writes into a read-only volume or rootfs are refused per entry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
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
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from berth.engine.container_launch import ETC_FILES
from berth.engine.container_model import Container
from berth.engine.containerfs import READ_ONLY_ROOTFS, READ_ONLY_VOLUME, ContainerView, ViewFs, ViewMount
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound, Unavailable
from berth.images import Image, apply_xattrs
from berth.images.safefs import FixedSize, fd_xattrs, open_dir, open_regular, tarinfo_for
from berth.images.upperdiff import walk_upper, write_layer
from berth.images.xattrs import to_pax
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
# What a walk meets when the running container removes or swaps an object under it: gone, a
# directory on the way is not one any more, a symlink is not one any more (readlink).
_CHANGED = (errno.ENOENT, errno.ENOTDIR, errno.EINVAL)


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


def _lookup(fs: ViewFs, absolute: str) -> str:
    """The resolved container path of a request path: its directory part is followed, its last
    element is not (lstat), except `dir/.` which names the directory itself."""
    return fs.resolve(absolute, follow_last=absolute.endswith("/.") or absolute == "/")


def stat_path(root: Path | ContainerView, path: str, container: Container) -> dict[str, Any]:
    absolute, name = split_request_path(path)
    with _as_view(root).open() as fs:
        try:
            st = fs.lstat(_lookup(fs, absolute))
        except (FileNotFoundError, NotADirectoryError) as err:
            raise _not_found(path, container) from err
        link_target = fs.resolve(absolute) if stat.S_ISLNK(st.st_mode) else ""
    return {"name": name if name != "." else posixpath.basename(absolute[:-2]) or "/", "size": st.st_size,
            "mode": go_file_mode(st.st_mode), "mtime": _rfc3339(st.st_mtime), "linkTarget": link_target}


def stat_header(stat_json: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(stat_json).encode()).decode()


def write_tar(root: Path | ContainerView, path: str, container: Container, out: Any, *,
              contents_only: bool = False) -> None:
    """Tar `path` (as the container sees it) into the binary file `out`; symlinks stay links.

    A directory is walked through the view, so volumes and bind mounts under it are included
    (as in Docker, whose tarballer walks the mounted view). Everything is read through fds
    (ViewFs): an object the running container removes or swaps meanwhile is left out.
    `contents_only` (docker export): the directory's entries, named relative to it, not itself."""
    absolute, name = split_request_path(path)
    with _as_view(root).open() as fs:
        top = _lookup(fs, absolute)
        try:
            fs.lstat(top)
        except (FileNotFoundError, NotADirectoryError) as err:
            raise _not_found(path, container) from err
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            pending = [(top, name)]
            if contents_only:
                pending = [(posixpath.join(top, c), c) for c in reversed(sorted(fs.listdir(top)))]
            while pending:
                ctr_path, arcname = pending.pop()
                try:
                    children = _add_entry(tar, fs, ctr_path, arcname)
                except OSError as err:
                    if err.errno not in _CHANGED:
                        raise
                    if ctr_path == top:
                        raise _not_found(path, container) from None
                    continue  # removed or swapped meanwhile by the running container
                pending += [(posixpath.join(ctr_path, c), posixpath.join(arcname, c)) for c in reversed(children)]


def _add_entry(tar: tarfile.TarFile, fs: ViewFs, ctr_path: str, arcname: str) -> list[str]:
    """Archive one object as moby's cp tarballer does (no host owner names; the file capability,
    the only xattr moby's archive carries); returns a directory's children names.

    A socket is left out (moby skips it too); so is a regular file that is not the one lstat'ed
    any more when opened: a FIFO or device node swapped in is neither waited on nor read."""
    parent, name = fs.locate(ctr_path)
    st = os.stat(name, dir_fd=parent, follow_symlinks=False) if name else os.fstat(parent)
    if stat.S_ISREG(st.st_mode) and name:
        _add_file(tar, parent, name, st, arcname)
        return []
    link = os.readlink(name, dir_fd=parent) if stat.S_ISLNK(st.st_mode) and name else ""
    info = tarinfo_for(tar, st, arcname, link)
    if info is None:
        log.debug("cp: %s left out: a socket", ctr_path)
        return []
    tar.addfile(info)
    return fs.listdir(ctr_path) if info.isdir() else []


def _add_file(tar: tarfile.TarFile, parent: int, name: str, listed: os.stat_result, arcname: str) -> None:
    fd = open_regular(parent, name, listed)
    if fd is None:
        log.debug("cp: %s left out: not the regular file listed any more", arcname)
        return
    try:
        info = tarinfo_for(tar, os.fstat(fd), arcname)
        assert info is not None
        if info.islnk():  # already archived under another name
            tar.addfile(info)
            return
        capability = fd_xattrs(fd, [CAPABILITY_XATTR]).get(CAPABILITY_XATTR)
        if capability is not None:
            info.pax_headers = to_pax({CAPABILITY_XATTR: capability})
        tar.addfile(info, FixedSize(fd, info.size))
    finally:
        os.close(fd)


def extract_tar(root: Path | ContainerView, path: str, container: Container, tar_file: Path, *,
                no_overwrite_dir_non_dir: bool, copy_uid_gid: bool, readonly_rootfs: bool = False) -> None:
    """Unpack `tar_file` into directory `path` of the container, never leaving its root or its
    mounts' sources; a read-only volume (or rootfs) refuses with moby's words.

    Every entry is written through fds (ViewFs): created relative to its parent directory's fd,
    its metadata set through the fd of what was created (never a path that a running container
    could swap for a symlink). Directory times are set last, as children change them."""
    view = _as_view(root)
    with view.open() as fs:
        dest_path = fs.resolve(posixpath.join("/", path))
        try:
            dest_st = fs.lstat(dest_path)
        except (FileNotFoundError, NotADirectoryError) as err:
            raise _not_found(path, container) from err
        if not stat.S_ISDIR(dest_st.st_mode):
            raise InvalidArgument("extraction point is not a directory")
        _check_writable(view, dest_path, readonly_rootfs)
        try:
            with tarfile.open(tar_file, mode="r:*") as tar:
                members = tar.getmembers()  # reads the whole archive: a broken one changes nothing
                for member in members:  # refuse a `..` entry (or hard link target) before writing any
                    _entry_path(dest_path, member.name)
                    if member.islnk():
                        _entry_path(dest_path, member.linkname)
                unpack = _Unpack(fs, dest_path, tar, no_overwrite_dir_non_dir, copy_uid_gid, readonly_rootfs)
                for member in members:
                    unpack.member(member)
                unpack.set_dir_times()
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


class _Unpack:
    """One cp-in extraction: writes members through `fs` and remembers directory times."""

    def __init__(self, fs: ViewFs, dest_path: str, tar: tarfile.TarFile, no_overwrite: bool, copy_ids: bool,
                 readonly_rootfs: bool) -> None:
        self.fs, self.view, self.dest_path, self.tar = fs, fs.view, dest_path, tar
        self.no_overwrite, self.copy_ids, self.readonly_rootfs = no_overwrite, copy_ids, readonly_rootfs
        self.dir_times: list[tuple[str, float]] = []

    def member(self, member: tarfile.TarInfo) -> None:
        ctr_path = _entry_path(self.dest_path, member.name)
        if ctr_path == self.dest_path and member.isdir():
            return
        # Resolved per entry: an earlier entry may have made a symlink this one goes through, into
        # another mount (checked for writability here, not only at the extraction point).
        resolved = self.fs.resolve(ctr_path, follow_last=False)
        _check_writable(self.view, resolved, self.readonly_rootfs)
        source = ""
        if member.islnk():
            # Across two mounts (e.g. a writable volume and a read-only bind of one host
            # filesystem) the kernel refuses a hard link with EXDEV, and so do we, before anything
            # is replaced: the link would make the read-only file writable through the volume.
            source = self.fs.resolve(_entry_path(self.dest_path, member.linkname), follow_last=False)
            if not self.view.same_mount(source, resolved):
                raise Unavailable(f"link {source} {resolved}: invalid cross-device link")
        try:
            self._write(member, ctr_path, resolved, source)
        except NotADirectoryError as err:  # swapped for a symlink or a file meanwhile
            raise Conflict(f"cannot extract {ctr_path}: a directory on its path was replaced meanwhile") from err
        except OSError as err:
            if err.errno == errno.EROFS:  # mounted read-only where the view does not know it
                found = self.view.mount_of(resolved)
                raise InvalidArgument(READ_ONLY_VOLUME if found and found[1].volume else READ_ONLY_ROOTFS) from err
            raise

    def _write(self, member: tarfile.TarInfo, ctr_path: str, resolved: str, source: str) -> None:
        parent, name = self.fs.locate(resolved, create=True)
        if name is None:  # the container root itself
            raise InvalidArgument(f"cannot overwrite directory \"{ctr_path}\" with non-directory")
        if not self._clear(parent, name, member, ctr_path, resolved):
            return
        uid, gid = (member.uid, member.gid) if self.copy_ids else (0, 0)
        if member.isdir():
            self._make_dir(parent, name, member, uid, gid)
            self.dir_times.append((resolved, member.mtime))
        elif member.isreg():
            self._make_file(parent, name, member, uid, gid)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            _chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            apply_xattrs(None, _fd_path(parent, name), member)  # lsetxattr: the link itself
            os.utime(name, ns=_ns(member.mtime), dir_fd=parent, follow_symlinks=False)
        elif member.islnk():
            parent = os.dup(parent)  # locating the link's target may reuse the borrowed fd
            try:
                self._make_hardlink(parent, name, source, resolved)
                _set_metadata(parent, name, member, uid, gid)
            finally:
                os.close(parent)
        elif member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=parent)
            _set_metadata(parent, name, member, uid, gid)
        # devices are not created by cp (no CAP_MKNOD semantics to honour here)

    def _clear(self, parent: int, name: str, member: tarfile.TarInfo, ctr_path: str, resolved: str) -> bool:
        """Make room for `member` at `name`; False when it is a device node (not created)."""
        if not (member.isdir() or member.isreg() or member.issym() or member.islnk() or member.isfifo()):
            return False
        try:
            existing = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return True
        is_dir = stat.S_ISDIR(existing.st_mode)
        if self.no_overwrite and is_dir != member.isdir():
            raise InvalidArgument(f"cannot overwrite {'directory' if is_dir else 'non-directory'} "
                                  f"\"{ctr_path}\" with {'directory' if member.isdir() else 'non-directory'}")
        if is_dir and member.isdir():
            return True
        if self.view.is_mount_point(resolved):  # the kernel says EBUSY; never unlink a mount's source
            raise Unavailable(f"unlinkat {resolved}: device or resource busy")
        if is_dir:
            raise InvalidArgument(f"cannot overwrite directory \"{ctr_path}\" with non-directory")
        os.unlink(name, dir_fd=parent)  # a symlink is removed, never followed
        return True

    def _make_dir(self, parent: int, name: str, member: tarfile.TarInfo, uid: int, gid: int) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            pass  # merged with the directory there (a symlink there fails the open below)
        fd = open_dir(parent, name)
        try:
            _chown(fd, uid, gid)
            os.fchmod(fd, member.mode & 0o7777)
            apply_xattrs(fd, None, member)
        finally:
            os.close(fd)

    def _make_file(self, parent: int, name: str, member: tarfile.TarInfo, uid: int, gid: int) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            src = self.tar.extractfile(member)
            assert src is not None
            while chunk := src.read(1 << 20):
                _write_all(fd, chunk)
            # chown first: it clears set-id bits and file capabilities
            _chown(fd, uid, gid)
            os.fchmod(fd, member.mode & 0o7777)
            apply_xattrs(fd, None, member)
            os.utime(fd, ns=_ns(member.mtime))
        finally:
            os.close(fd)

    def _make_hardlink(self, parent: int, name: str, source: str, resolved: str) -> None:
        """A hard link to `source`, an object already in the same mount (checked by `member`)."""
        src_parent, src_name = self.fs.locate(source)
        try:
            if src_name is None:
                raise OSError(errno.EPERM, "operation not permitted")
            os.link(src_name, name, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
        except OSError as err:
            raise Unavailable(f"link {source} {resolved}: {(err.strerror or str(err)).lower()}") from err

    def set_dir_times(self) -> None:
        """Directory times, deepest first: set after every entry, as writing children changes them."""
        for path, mtime in sorted(self.dir_times, key=lambda t: -t[0].count("/")):
            try:
                parent, name = self.fs.locate(path)
                if name:
                    os.utime(name, ns=_ns(mtime), dir_fd=parent, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue  # replaced by a later entry or by the container


def _set_metadata(parent: int, name: str, member: tarfile.TarInfo, uid: int, gid: int) -> None:
    """Owner, mode, xattrs and times of the fifo or hard link `name` just created, through an
    O_PATH fd of it (Linux has no lchmod): a symlink swapped in is never followed; a hard link
    to a symlink only gets its owner, as in moby."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            _chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            return
        path = f"/proc/self/fd/{fd}"  # the magic link is the object itself (not a symlink)
        _chown(path, uid, gid)
        os.chmod(path, member.mode & 0o7777)
        apply_xattrs(None, _fd_path(parent, name), member)
        os.utime(path, ns=_ns(member.mtime))
    finally:
        os.close(fd)


def _chown(target: str | int, uid: int, gid: int, **kw: Any) -> None:
    """os.chown, except that an unprivileged daemon (tests) keeps its own ownership."""
    try:
        os.chown(target, uid, gid, **kw)
    except PermissionError:
        if os.geteuid() == 0:
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fd_path(parent: int, name: str) -> str:
    """`name` in directory fd `parent` for calls without dir_fd (its last component not followed
    by the *_nofollow calls)."""
    return f"/proc/self/fd/{parent}/{name}"


def _ns(mtime: float) -> tuple[int, int]:
    """(atime, mtime) in ns for os.utime: the tar's mtime, fraction included (PAX records keep it)."""
    ns = int(mtime * 1_000_000_000)
    return ns, ns


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
        elif entry.is_dir and not entry.opaque:
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

class ArchiveContainers(Protocol):
    """berth.engine.containers.ContainerService, as cp, export, diff and commit use it."""

    def get(self, ref: str) -> Container: ...
    def lock(self, container_id: str) -> asyncio.Lock: ...
    def container_dir(self, container_id: str) -> Path: ...
    async def pause(self, ref: str) -> None: ...
    async def unpause(self, ref: str) -> None: ...


class ArchiveImages(Protocol):
    """berth.images.ImageStore: a container's image layers, and commit's new image (blocking)."""

    def resolve(self, name: str) -> Image: ...
    def layer_dirs(self, image: Image) -> list[Path]: ...
    def blob_path(self, digest: str) -> Path: ...
    def add_image(self, config: dict[str, Any], layer_tars: list[Path], reference: str | None, *,
                  parent: str) -> Image: ...


class RootfsMounter(Protocol):
    """berth.runtime.Runtime: a stopped container's overlay, mounted for the call (blocking)."""

    def mount_rootfs(self, layer_dirs: list[Path], container_dir: Path) -> Path: ...
    def unmount_rootfs(self, container_dir: Path) -> None: ...


class EventPublisher(Protocol):
    """berth.engine.events.EventBus."""

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str]) -> None: ...


class ArchiveService:
    def __init__(self, *, containers: ArchiveContainers, images: ArchiveImages, runtime: RootfsMounter,
                 tmp_dir: Path, events: EventPublisher | None = None,
                 volume_dir: Callable[[str, Path], tuple[Path, bool]] | None = None) -> None:
        # VolumeService.content_dir: (a bind volume's device when unmounted, read-only?)
        self._volume_dir = volume_dir
        self._containers = containers
        self._images = images
        self._runtime = runtime
        self._tmp = Path(tmp_dir)
        self._events = events  # None: no events

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
                if not os.path.ismount(rootfs):  # not ours to mount while it runs: its root as the
                    # kernel shows it, with the same mounts mapped as usual (so read-only volumes and
                    # a read-only rootfs refuse with Docker's words, writable volumes stay writable)
                    view = await asyncio.to_thread(ContainerView, Path(f"/proc/{container.state.pid}/root"),
                                                   view_mounts(container, cdir, self._volume_dir))
                    yield container, view
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
                                                   view_mounts(container, cdir, self._volume_dir))
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

    async def export(self, ref: str) -> Path:
        """`docker export`: the container's root filesystem (without its volumes, as moby's
        export of the container's base filesystem) in a temp tar file the caller streams and
        deletes."""
        async with self.root(ref) as (container, view):
            fd, name = tempfile.mkstemp(prefix="export-", dir=self._tmp)
            try:
                with os.fdopen(fd, "wb") as out:
                    await asyncio.to_thread(write_tar, ContainerView(view.root), "/", container, out,
                                            contents_only=True)
            except BaseException:
                os.unlink(name)
                raise
        self._publish(container, "export")
        return Path(name)

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
        from berth.images import apply_changes  # the store's --change parser

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


def view_mounts(container: Container, cdir: Path,
                volume_dir: Callable[[str, Path], tuple[Path, bool]] | None = None) -> list[ViewMount]:
    """What Docker mounts for a cp: the managed /etc files that exist, then the volumes and bind
    mounts (tmpfs mounts are left out: their path is the rootfs directory beneath). `volume_dir`
    (name, _data dir) -> where a volume's files are (a bind volume's device while unmounted) and
    whether the volume itself is read-only (`o=bind,ro`: cp must not write through it)."""
    mounts = [ViewMount(f"/etc/{f}", cdir / f, volume=False) for f in ETC_FILES if (cdir / f).is_file()]
    for point in (MountPoint.from_record(r) for r in container.mounts):
        if point.type in ("volume", "bind") and point.source:
            source, read_only = Path(point.source), False
            if point.type == "volume" and point.name and volume_dir is not None:
                source, read_only = volume_dir(point.name, source)
            mounts.append(ViewMount(point.destination, source, rw=point.rw and not read_only))
    return mounts


def _familiar(reference: str | None) -> str:
    """moby's imageRef attribute: the familiar form of the new tag (`name:tag`), or ''."""
    if not reference:
        return ""
    try:
        return parse_reference(reference).familiar()
    except BerthError:
        return reference
