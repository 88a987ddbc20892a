"""VolumeService: Docker's volume verbs and a container's mounts, over berth.volumes.

- API verbs (`docker volume create/ls/inspect/rm/prune`) with moby's JSON shapes and errors.
- At container create, `plan` turns the request into mount points: named volumes are created
  when missing, anonymous ones get a random name, `-v /missing:/x` makes the host directory.
- At start, `activate` mounts the volumes created with driver options (tmpfs, bind of a host
  directory) that are not mounted yet, `runtime_mounts` gives the runtime its mounts and
  `copy_up` fills empty volumes with the image's files at the destination (Docker's
  copy-on-first-mount). At teardown `deactivate` unmounts the ones no running container holds
  any more; `restore_mounts` rebuilds those holds when the daemon starts.
- At `rm -v`, `remove_anonymous` deletes the container's anonymous volumes.

A volume is "in use" while any container (running or not) refers to it; `users` answers that.
All methods block (the API runs them in threads).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from berth.engine.filters import check_keys, check_values, is_bool, label_matches, matches
from berth.engine.rootpath import resolve_in_root
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from berth.runtime import Mount
from berth.types.create_requests import VolumeCreate
from berth.types.host_config import HostConfig
from berth.volumes import (
    ANONYMOUS_LABEL, MS_RDONLY, LocalMount, MountPoint, Volume, VolumeMounter, VolumeStore, disk_usage, is_mounted,
    mount_spec,
    no_such_volume, plan_mounts, runtime_options, split_volumes_from, to_json, volumes_from,
)

log = logging.getLogger(__name__)

# (container id, its mount point records) for every container
UsersFn = Callable[[], Iterable[tuple[str, list[dict[str, Any]]]]]
# container reference -> (container id, its mount point records); raises NotFound
LookupFn = Callable[[str], tuple[str, list[dict[str, Any]]]]


class VolumeService:
    def __init__(self, store: VolumeStore, users: UsersFn, mounter: VolumeMounter | None = None) -> None:
        self.store = store
        self._users = users
        self._mounter = mounter or VolumeMounter(store)

    def content_dir(self, name: str, data_dir: Path) -> tuple[Path, bool]:
        """Where a volume's files are for `docker cp`, and whether the volume is read-only.

        While no container has it mounted (moby serves a stopped container's cp by mounting
        the volume): a bind volume's device; otherwise its `_data` dir (a tmpfs volume is empty
        then, as a fresh mount would be). A volume created with `o=...,ro` is read-only either
        way. The mount check reads mountinfo: os.path.ismount misses a same-filesystem bind."""
        try:
            spec = mount_spec(self.store.get(name))
        except BerthError:
            return data_dir, False
        read_only = spec is not None and bool(spec.flags & MS_RDONLY)
        if spec is None or not spec.bind or is_mounted(data_dir):
            return data_dir, read_only
        return Path(spec.source or spec.device), read_only

    # --- API verbs ---------------------------------------------------------------------------------
    def create_json(self, request: VolumeCreate) -> dict[str, Any]:
        volume, _ = self.store.create(request.name or secrets.token_hex(32), labels=dict(request.labels),
                                      options=dict(request.driver_opts), driver=request.driver or "local")
        return to_json(volume)

    def inspect_json(self, name: str) -> dict[str, Any]:
        return to_json(self.store.get(name))

    def list_json(self, filters: Mapping[str, list[str]]) -> dict[str, Any]:
        _check_filters(filters)
        used = self._used_names()
        items = [to_json(v) for v in self.store.list() if _matches(v, filters, v.name in used)]
        return {"Volumes": items, "Warnings": []}

    def remove(self, name: str, *, force: bool = False) -> None:
        """Docker: in use → 409 `remove NAME: volume is in use - [ids]`; missing → 404 unless force."""
        try:
            self.store.get(name)
        except NotFound:
            if force:
                return
            raise
        # the in-use checks and the deletion run under the mounter's lock (no start interleaves)
        self._mounter.remove(name, lambda: self.users_of(name))

    def prune(self, filters: Mapping[str, list[str]], *, all_volumes: bool) -> dict[str, Any]:
        """Unused volumes go; since API 1.42 only anonymous ones unless `all=true`. Volumes
        created with driver options are kept, as moby does (a bind volume's files are the
        host's; a tmpfs one holds nothing while unused)."""
        _check_filters(filters)
        used = self._used_names()
        deleted, reclaimed = [], 0
        for volume in self.store.list():
            if volume.name in used or mount_spec(volume) or not _matches(volume, filters, False):
                continue
            if not all_volumes and not volume.anonymous:
                continue
            size = disk_usage(volume.mountpoint)
            try:  # in use checked again under the mounter's lock: a container may have come since
                self._mounter.remove(volume.name, partial(self.users_of, volume.name))
            except (NotFound, Conflict):
                continue
            reclaimed += size
            deleted.append(volume.name)
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}  # [] when none, as moby

    def users_of(self, name: str) -> list[str]:
        return [cid for cid, mounts in self._users()
                if any(m.get("type") == "volume" and m.get("name") == name for m in mounts)]

    def _used_names(self) -> set[str]:
        return {m.get("name", "") for _, mounts in self._users() for m in mounts if m.get("type") == "volume"}

    # --- container mounts --------------------------------------------------------------------------
    def plan(self, host_config: HostConfig, declared: Iterable[str], lookup: LookupFn) -> list[dict[str, Any]]:
        """Mount point records for a new container; creates the volumes and bind dirs it needs.

        Raises:
            InvalidArgument: a malformed spec, or a bind source that must exist and does not.
            NotFound: a --volumes-from container that does not exist.
        """
        inherited: list[MountPoint] = []
        for spec in host_config.volumes_from or ():
            ref, mode = split_volumes_from(spec)
            _, records = lookup(ref)
            inherited += volumes_from([MountPoint.from_record(r) for r in records], mode)
        points = plan_mounts(declared=declared, inherited=inherited, binds=host_config.binds or (),
                             mounts=host_config.mounts or (), tmpfs=host_config.tmpfs)
        return [self._materialise(p).to_record() for p in points]

    def plan_container(self, host_config: HostConfig, config_volumes: Iterable[str],
                       image_config: Mapping[str, Any], lookup: LookupFn) -> list[dict[str, Any]]:
        """`plan` with the declared volumes taken from the image and the container's
        Config.Volumes."""
        return self.plan(host_config, declared_volumes(config_volumes, image_config), lookup)

    def _materialise(self, point: MountPoint) -> MountPoint:
        if point.type == "bind":
            _ensure_bind_source(point)
            return point
        if point.type != "volume":
            return point
        # `--mount volume-opt=...` applies when the volume is created here (moby's wording for
        # a driver other than local comes from the store)
        options, driver = dict(point.volume_options), point.volume_driver or "local"
        labels = dict(point.volume_labels)
        if point.anonymous and not point.name:
            volume, _ = self.store.create(secrets.token_hex(32), labels={**labels, ANONYMOUS_LABEL: ""},
                                           options=options, driver=driver)
        else:
            volume, _ = self.store.create(point.name, labels=labels, options=options, driver=driver)
        return replace(point, name=volume.name, source=volume.mountpoint)

    def activate(self, container_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Before the runtime creates the container: mount its volumes that have driver options.

        Raises:
            Unavailable: a mount failed (nothing this call mounted stays held).
        """
        self._mounter.acquire(container_id, _volume_names(records))

    def deactivate(self, container_id: str) -> None:
        """The container's run is over (idempotent): unmount what no one else holds."""
        self._mounter.release(container_id)

    def restore_mounts(self, running: Iterable[tuple[str, Iterable[Mapping[str, Any]]]]) -> None:
        """Daemon start: the running containers (id, mount records) hold their volumes again."""
        self._mounter.restore([(cid, _volume_names(records)) for cid, records in running])

    def runtime_mounts(self, records: Iterable[Mapping[str, Any]]) -> tuple[Mount, ...]:
        mounts = []
        for point in (MountPoint.from_record(r) for r in records):
            if point.type == "tmpfs":
                mounts.append(Mount(source="tmpfs", destination=point.destination, type="tmpfs",
                                    options=point.options))
            else:
                options = tuple(dict.fromkeys(runtime_options(point) + self._volume_flags(point)))
                source = _subpath_source(point) if point.subpath else point.source
                mounts.append(Mount(source=source, destination=point.destination, type="bind",
                                    options=options))
        return tuple(mounts)

    def copy_up(self, records: Iterable[Mapping[str, Any]], rootfs: Path) -> None:
        """Copy the image's files at each volume's destination into the volume while it is empty."""
        for point in (MountPoint.from_record(r) for r in records):
            if (point.type != "volume" or not point.copy_data or not point.source or point.subpath
                    or self._is_tmpfs(point.name)):
                continue
            data = Path(point.source)
            if not data.is_dir() or any(data.iterdir()):
                continue
            src = resolve_in_root(rootfs, point.destination)
            if src.is_dir() and not src.is_symlink():
                _copy_tree(src, data)

    def _is_tmpfs(self, name: str) -> bool:
        # Docker copies at create into a tmpfs mounted for the copy only, so a tmpfs volume
        # always starts empty, with the mode and owner its options give.
        spec = self._spec(name)
        return spec is not None and spec.fstype == "tmpfs"

    def _volume_flags(self, point: MountPoint) -> tuple[str, ...]:
        """`o=bind,ro` & co. must hold inside the container too (see LocalMount.container_options)."""
        spec = self._spec(point.name) if point.type == "volume" and point.name else None
        return spec.container_options() if spec is not None else ()

    def _spec(self, name: str) -> LocalMount | None:
        try:
            return mount_spec(self.store.get(name))
        except NotFound:
            return None

    def remove_anonymous(self, records: Iterable[Mapping[str, Any]], container_id: str) -> None:
        """`docker rm -v`: delete the container's anonymous volumes no one else uses."""
        for point in (MountPoint.from_record(r) for r in records):
            if point.type != "volume" or not point.name:
                continue
            try:
                volume = self.store.get(point.name)
            except NotFound:
                continue
            if not volume.anonymous:
                continue
            try:
                self._mounter.remove(point.name, partial(self._other_users, point.name, container_id))
            except (NotFound, Conflict):
                pass

    def _other_users(self, name: str, container_id: str) -> list[str]:
        return [cid for cid in self.users_of(name) if cid != container_id]


def _volume_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    return [r["name"] for r in records if r.get("type") == "volume" and r.get("name")]


def _subpath_source(point: MountPoint) -> str:
    """The directory `Subpath` names inside the volume, symlinks resolved inside the volume
    (moby's safepath.Join); it must exist, as in dockerd, which fails the start otherwise."""
    target = resolve_in_root(Path(point.source), point.subpath)
    if not target.exists():
        raise InvalidArgument(f"cannot access path {target}: lstat {target}: no such file or directory")
    return str(target)


def _ensure_bind_source(point: MountPoint) -> None:
    if os.path.exists(point.source):
        return
    if not point.create_source:
        raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: {point.source}')
    os.makedirs(point.source, exist_ok=True)


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy contents, keeping ownership and modes (the volume should look like the image)."""
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True, copy_function=shutil.copy2)
    for root, dirs, files in os.walk(src):
        for name in dirs + files:
            s = os.path.join(root, name)
            d = os.path.join(dst, os.path.relpath(s, src))
            st = os.lstat(s)
            try:
                os.lchown(d, st.st_uid, st.st_gid)
            except OSError:
                pass
    st = os.stat(src)
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, st.st_mode & 0o7777)


def _check_filters(filters: Mapping[str, list[str]]) -> None:
    """Refuse what `_matches` cannot read before any volume is looked at (or pruned)."""
    check_keys(filters, ("name", "label", "dangling", "driver", "all", "anonymous"))
    check_values(filters, "dangling", is_bool)


def _matches(volume: Volume, filters: Mapping[str, list[str]], used: bool) -> bool:
    """`docker volume ls -f`: name (substring), label (key or key=value), dangling, driver."""
    def one(key: str, value: str) -> bool:
        if key == "name":
            return value in volume.name
        if key == "label":
            return label_matches(volume.labels, value)
        if key == "dangling":
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            return (value.lower() in ("true", "1")) != used
        if key == "driver":
            return value == volume.driver
        if key in ("all", "anonymous"):
            return True
        raise InvalidArgument(f"invalid filter '{key}'")
    return matches(filters, one)


def tree_size(path: Path) -> int:
    """Bytes of the files under `path`, never crossing into another filesystem (system df)."""
    return disk_usage(str(path))


__all__ = ["VolumeService", "declared_volumes", "no_such_volume", "tree_size"]


def declared_volumes(config_volumes: Iterable[str], image_config: Mapping[str, Any]) -> list[str]:
    """VOLUME destinations of the image (berth.images' config JSON) plus the container's
    `Config.Volumes` (`-v /path`)."""
    image_volumes = (image_config.get("config") or {}).get("Volumes") or {}
    return list(dict.fromkeys([*image_volumes, *config_volumes]))
