"""VolumeMounter: volumes with driver options are mounted while containers use them.

Lifecycle (moby's local driver, volume/local/local.go Mount/Unmount):

    docker volume create -o type=tmpfs ...   options stored, nothing mounted
    container start    acquire(ctr, names)   mounts each such volume not mounted yet on its
                                             _data dir; ctr counts as a holder
    container stop     release(ctr)          drops ctr; a volume left without holders is unmounted
                                             (a tmpfs volume's files are gone then)
    daemon start       restore(running)      holders rebuilt from the running containers, their
                                             mounts left in place; mounts nobody holds unmounted
    volume rm / prune  remove(name, in_use)  refused while held or in use; unmounts, deletes the
                                             row and the tree, all under the lock

Plain volumes (no options) are a directory and never pass through here. One lock covers the
counts and the mount calls: container starts run in threads, and a second container must not
reach the runtime before the first one's mount is in place, and a `volume rm` must not delete a
volume between a start's in-use check and its mount (the start would bind a host directory the
removal then empties). A volume's mount is undone by the path recorded when it was mounted, so
it never depends on the volume's row still being there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from berth.errors import BerthError, Conflict, NotFound, Unavailable
from berth.volumes._localmount import is_mounted, mount_volume, unmount_volume
from berth.volumes._options import LocalMount, parse_driver_options
from berth.volumes._refs import MountRefs
from berth.volumes._store import Volume, VolumeStore

log = logging.getLogger(__name__)


class MountOps(Protocol):
    """The side effects, so the counting can be tested with a recording fake."""

    def mount(self, spec: LocalMount, target: Path) -> None: ...
    def unmount(self, target: Path) -> None: ...
    def is_mounted(self, target: Path) -> bool: ...


class HostMountOps:
    def mount(self, spec: LocalMount, target: Path) -> None:
        mount_volume(spec, target)

    def unmount(self, target: Path) -> None:
        unmount_volume(target)

    def is_mounted(self, target: Path) -> bool:
        return is_mounted(target)


def mount_spec(volume: Volume) -> LocalMount | None:
    """The mount a stored volume needs (its options were checked at create), with a bind's
    device as recorded at create."""
    spec = parse_driver_options(volume.options) if volume.options else None
    if spec is not None and spec.bind and volume.bind_source:
        spec = replace(spec, source=volume.bind_source)
    return spec


class VolumeMounter:
    def __init__(self, store: VolumeStore, ops: MountOps | None = None) -> None:
        self._store = store
        self._ops: MountOps = ops or HostMountOps()
        self._refs = MountRefs()
        self._paths: dict[str, Path] = {}  # volume -> where it was mounted (unmount by that path)
        self._lock = threading.Lock()

    def acquire(self, holder: str, names: Iterable[str]) -> None:
        """Mount what `holder` needs and count it; all or nothing.

        Raises:
            Unavailable: a mount failed (the holds taken by this call are undone).
        """
        with self._lock:
            taken: list[str] = []
            try:
                for name in dict.fromkeys(names):
                    found = self._lookup(name)
                    if found is None:
                        continue
                    spec, target = found
                    # Checked every time rather than trusted from the count: a mount someone
                    # removed behind our back comes back for the next container.
                    if not self._ops.is_mounted(target):
                        # no parents=True: a volume whose directory is gone is not recreated
                        try:
                            target.mkdir(exist_ok=True)
                        except OSError as err:
                            raise Unavailable(f"mount volume {name}: {target}: {err.strerror}") from err
                        self._ops.mount(spec, target)
                    self._paths[name] = target
                    if self._refs.hold(name, holder):
                        taken.append(name)
            except BaseException:
                for name in taken:
                    if self._refs.release_one(name, holder):
                        self._unmount_quietly(name)
                raise

    def release(self, holder: str) -> None:
        """`holder` stopped: unmount the volumes it was the last user of (errors are logged:
        a container's teardown must go on; the next acquire or `volume rm` retries)."""
        with self._lock:
            for name in self._refs.release(holder):
                self._unmount_quietly(name)

    def restore(self, running: Iterable[tuple[str, Iterable[str]]]) -> None:
        """At daemon start: count the running containers' holds; unmount mounts none holds."""
        with self._lock:
            self._refs = MountRefs()
            for holder, names in running:
                for name in names:
                    found = self._lookup(name)
                    if found is not None:
                        self._refs.hold(name, holder)
                        self._paths[name] = found[1]
            for volume in self._store.list():
                if volume.options and volume.name not in self._refs.held() and mount_spec(volume):
                    if self._ops.is_mounted(Path(volume.mountpoint)):
                        self._unmount_quietly(volume.name)

    def remove(self, name: str, in_use: Callable[[], list[str]] | None = None) -> None:
        """Delete the volume `name` (row and tree) unless a container holds or uses it.

        Under the lock, so no start mounts it meanwhile: refused while held; `in_use` (the
        containers referring to it, asked now rather than before the call) must be empty; a
        mount left on it is undone by its recorded path before the store deletes it.

        Raises:
            NotFound: no such volume.
            Conflict: held or in use (moby's `volume is in use - [ids]`), or still mounted.
        """
        with self._lock:
            self._store.get(name)
            refs = sorted(self._refs.holders(name)) or (in_use() if in_use is not None else [])
            if refs:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(refs)}]")
            path = self._paths.pop(name, None)
            if path is not None:
                try:
                    self._ops.unmount(path)
                except BerthError as err:
                    self._paths[name] = path
                    raise Conflict(f"remove {name}: volume is still mounted: {err}") from err
            self._store.delete(name)

    def holders(self, name: str) -> frozenset[str]:
        with self._lock:
            return self._refs.holders(name)

    def _lookup(self, name: str) -> tuple[LocalMount, Path] | None:
        try:
            volume = self._store.get(name)
        except NotFound:
            return None
        spec = mount_spec(volume)
        return (spec, Path(volume.mountpoint)) if spec else None

    def _unmount_quietly(self, name: str) -> None:
        path = self._paths.pop(name, None)
        if path is None:
            found = self._lookup(name)
            if found is None:
                return  # never mounted by us and gone
            path = found[1]
        try:
            self._ops.unmount(path)
        except Unavailable:
            self._paths[name] = path  # `volume rm` retries by this path
            log.exception("unmount of volume %s failed", name)
