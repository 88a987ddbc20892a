"""ArchiveService: cp, diff and commit on a container, under its lock; the cp view's mounts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from berth.engine.containers import ETC_FILES, Container, event_attributes
from berth.engine.archive._view import ContainerView, ViewMount
from berth.errors import BerthError, Conflict
from berth.images import Image
from berth.types import parse_reference
from berth.volumes import MountPoint
from berth.engine.archive._changes import INIT_PATHS, changes, commit_config, image_config_of, layer_tar
from berth.engine.archive._paths import stat_path
from berth.engine.archive._tar import extract_tar, write_tar

log = logging.getLogger(__name__)


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
                                    readonly_rootfs=container.host_config.readonly_rootfs)
        self._publish(container, "extract-to-dir")

    def _publish(self, container: Container, action: str, **extra: str) -> None:
        if self._events is None:
            return
        self._events.publish("container", action, container.id, event_attributes(container, **extra))

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
        runtime_config = apply_changes(commit_config(image_config_of(container.config), config), changes_)
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
