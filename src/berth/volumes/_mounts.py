"""What a container mounts, planned from its create request; pure functions, no I/O.

Inputs are Docker's: `HostConfig.Binds` (`src:dst[:opts]`), `HostConfig.Mounts`
(berth.types.host_config.Mount), `HostConfig.Tmpfs` (`{dst: opts}`), `--volumes-from` (another container's mount
points) and the `Volumes` declared by the image and the request (anonymous volumes).

Precedence is moby's (daemon/volumes.go registerMountPoints): declared volumes, then
volumes-from, then Binds, then Mounts, then Tmpfs; a later source replaces an earlier one on
the same destination. Two Binds/Mounts on one destination are an error.

The plan leaves anonymous volumes unnamed (`name == ""`, `anonymous=True`); the engine names and
creates only the ones that survive.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from berth.errors import InvalidArgument
from berth.types.host_config import Mount, TmpfsOptions
from berth.volumes._store import check_name

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev")


@dataclass(frozen=True)
class MountPoint:
    """One mount of a container, stored on the container record (see `to_record`)."""

    type: str  # volume | bind | tmpfs
    destination: str
    source: str = ""  # bind: host path; volume: the volume's _data dir (filled by the engine)
    name: str = ""  # volume name
    rw: bool = True
    mode: str = ""  # the option text Docker shows (e.g. "ro", "z")
    propagation: str = ""
    options: tuple[str, ...] = ()  # tmpfs mount options
    anonymous: bool = False
    copy_data: bool = True  # copy the image's files into an empty volume (not with nocopy)
    create_source: bool = False  # `-v /missing:/x` makes the host directory
    # `--mount type=volume,volume-driver=..,volume-opt=k=v`: used when the volume is created
    volume_driver: str = ""
    volume_options: tuple[tuple[str, str], ...] = ()
    volume_labels: tuple[tuple[str, str], ...] = ()  # `volume-label=k=v`, also only at creation
    subpath: str = ""  # VolumeOptions.Subpath (API 1.45): mount this directory of the volume

    def to_record(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["options"] = list(self.options)
        data["volume_options"] = dict(self.volume_options)
        data["volume_labels"] = dict(self.volume_labels)
        return data

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> "MountPoint":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["options"] = tuple(fields.get("options") or ())
        fields["volume_options"] = tuple(sorted((fields.get("volume_options") or {}).items()))
        fields["volume_labels"] = tuple(sorted((fields.get("volume_labels") or {}).items()))
        return cls(**fields)


def _clean_destination(dst: str, spec: str) -> str:
    if not dst.startswith("/"):
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid mount path: '{dst}' "
                              "mount path must be absolute" if spec == "" else
                              f"invalid volume specification: '{spec}'")
    clean = posixpath.normpath(dst)
    if clean == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    return clean


def parse_bind(spec: str) -> MountPoint:
    """`/host:/ctr[:opts]` (bind), `name:/ctr[:opts]` (named volume), or a bare `/ctr`: an
    anonymous volume, as moby's parser reads a spec of one part (docker-py sends
    `volumes=["/data"]` so); a destination with a mode and no source stays invalid there too."""
    parts = spec.split(":")
    if len(parts) == 1 and spec.startswith("/"):
        return MountPoint("volume", _clean_destination(spec, spec), anonymous=True)
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    source, dst = parts[0], _clean_destination(parts[1], spec)
    opts = [o for o in (parts[2].split(",") if len(parts) == 3 else []) if o]
    rw, propagation, nocopy = True, "", False
    for opt in opts:
        if opt in ("ro", "rw"):
            rw = opt == "rw"
        elif opt in PROPAGATIONS:
            propagation = opt
        elif opt == "nocopy":
            nocopy = True
        elif opt not in ("z", "Z", "consistent", "cached", "delegated"):
            raise InvalidArgument(f"invalid mode: {opt}")
    mode = ",".join(opts)
    if source.startswith("/"):
        return MountPoint("bind", dst, source=posixpath.normpath(source), rw=rw, mode=mode,
                          propagation=propagation or "rprivate", create_source=True)
    check_name(source)
    if propagation:
        raise InvalidArgument(f"invalid volume specification: '{spec}': propagation is for binds")
    return MountPoint("volume", dst, name=source, rw=rw, mode=mode or "z", copy_data=not nocopy)


def parse_mount(mount: Mount) -> MountPoint:
    """One `HostConfig.Mounts` object (`--mount type=...`)."""
    kind, target, source = mount.type, mount.target, mount.source
    if not target:
        raise InvalidArgument(f"invalid mount config for type \"{kind}\": field Target must not be empty")
    dst = _clean_destination(target, "")
    rw = not mount.read_only
    if kind == "bind":
        if not source:
            raise InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
        if not source.startswith("/"):
            raise InvalidArgument(f"invalid mount config for type \"bind\": invalid mount path: "
                                  f"'{source}' mount path must be absolute")
        propagation = (mount.bind_options.propagation if mount.bind_options else "") or "rprivate"
        return MountPoint("bind", dst, source=posixpath.normpath(source), rw=rw, propagation=propagation)
    if kind == "volume":
        return _volume_mount(mount, dst, rw)
    if kind == "tmpfs":
        if source:
            raise InvalidArgument('invalid mount config for type "tmpfs": field Source must not be specified')
        return MountPoint("tmpfs", dst, rw=rw, options=_tmpfs_options(mount.tmpfs_options or TmpfsOptions(), rw))
    raise InvalidArgument(f"mount type unknown: \"{kind}\"" if kind else "invalid mount config: missing type")


def _volume_mount(mount: Mount, dst: str, rw: bool) -> MountPoint:
    source = mount.source
    volume_opts = mount.volume_options
    nocopy = bool(volume_opts and volume_opts.no_copy)
    if source:
        check_name(source)
    driver = volume_opts.driver_config if volume_opts else None
    options = (driver.options if driver else None) or {}
    labels = (volume_opts.labels if volume_opts else None) or {}
    subpath = volume_opts.subpath if volume_opts else ""
    if subpath and not source:
        raise InvalidArgument('invalid mount config for type "volume": must not set Subpath when using '
                              "anonymous volumes")
    if subpath and not _is_local(subpath):
        raise InvalidArgument('invalid mount config for type "volume": subpath must be a relative path '
                              "within the volume")
    return MountPoint("volume", dst, name=source, rw=rw, anonymous=not source, copy_data=not nocopy,
                      volume_driver=driver.name if driver else "",
                      volume_options=tuple(sorted(options.items())), volume_labels=tuple(sorted(labels.items())),
                      subpath=subpath)


def _is_local(path: str) -> bool:
    """Go's filepath.IsLocal: relative, not empty, and never climbing above its start."""
    if not path or path.startswith("/"):
        return False
    depth = 0
    for part in path.split("/"):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            return False
    return True


def _tmpfs_options(opts: TmpfsOptions, rw: bool) -> tuple[str, ...]:
    out = list(TMPFS_DEFAULTS)
    if opts.size_bytes:
        out.append(f"size={opts.size_bytes}")
    if opts.mode:
        out.append(f"mode={opts.mode:o}")
    if not rw:
        out.append("ro")
    return tuple(out)


def parse_tmpfs(dst: str, text: str) -> MountPoint:
    """`--tmpfs /run:rw,size=64m` arrives as {"/run": "rw,size=64m"}."""
    clean = _clean_destination(dst, f"{dst}:{text}")
    opts = [o for o in (text or "").split(",") if o]
    # a user `exec` (or `suid`, `dev`) cancels the matching default `noexec`
    merged = [o for o in TMPFS_DEFAULTS if o not in opts and o.removeprefix("no") not in opts] + opts
    rw = "ro" not in opts
    return MountPoint("tmpfs", clean, rw=rw, options=tuple(merged))


def volumes_from(points: Iterable[MountPoint], mode: str) -> list[MountPoint]:
    """Another container's mount points for `--volumes-from ctr[:ro|rw]`."""
    if mode not in ("", "ro", "rw"):
        raise InvalidArgument(f"invalid mode for volumes-from: {mode}")
    out = []
    for point in points:
        if point.type == "tmpfs":
            continue  # moby shares only volumes and binds
        rw = point.rw if mode == "" else mode == "rw"
        out.append(replace(point, rw=rw, anonymous=False, copy_data=False, create_source=False))
    return out


def split_volumes_from(spec: str) -> tuple[str, str]:
    """`ctr`, `ctr:ro` → (container, mode)."""
    name, _, mode = spec.partition(":")
    if not name:
        raise InvalidArgument(f"invalid volumes-from specification: '{spec}'")
    return name, mode


def plan_mounts(*, declared: Iterable[str], inherited: Iterable[MountPoint], binds: Iterable[str],
                mounts: Iterable[Mount], tmpfs: Mapping[str, str]) -> list[MountPoint]:
    """The container's mount points, one per destination, sorted so parents mount first."""
    points: dict[str, MountPoint] = {}
    for dst in declared:
        clean = _clean_destination(dst, dst)
        points[clean] = MountPoint("volume", clean, anonymous=True)
    for point in inherited:
        points[point.destination] = point
    explicit: set[str] = set()
    for point in [parse_bind(b) for b in binds] + [parse_mount(m) for m in mounts]:
        if point.destination in explicit:
            raise InvalidArgument(f"Duplicate mount point: {point.destination}")
        explicit.add(point.destination)
        points[point.destination] = point
    for dst, text in tmpfs.items():
        point = parse_tmpfs(dst, text)
        points[point.destination] = point
    return sorted(points.values(), key=lambda p: (p.destination.count("/"), p.destination))


def runtime_options(point: MountPoint) -> tuple[str, ...]:
    """OCI mount options for a bind or volume mount point."""
    opts = ["rbind", point.propagation or "rprivate"]
    if not point.rw:
        opts.append("ro")
    return tuple(opts)
