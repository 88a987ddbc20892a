"""Named volumes (`local` driver) and the planning of a container's mounts.

`VolumeStore` keeps volumes under <root>/volumes/<name>/_data; `plan_mounts` turns a create
request (Binds, Mounts, Tmpfs, volumes-from, declared VOLUMEs) into `MountPoint`s. The engine
(berth.engine.volumes) adds Docker's semantics: in-use checks, anonymous volumes, JSON shapes.
"""

from berth.volumes._mounts import (
    MountPoint, parse_bind, parse_mount, parse_tmpfs, plan_mounts, runtime_options,
    split_volumes_from, volumes_from,
)
from berth.volumes._store import (
    ANONYMOUS_LABEL, Volume, VolumeStore, check_name, disk_usage, no_such_volume, to_json,
)

__all__ = [
    "ANONYMOUS_LABEL",
    "MountPoint",
    "Volume",
    "VolumeStore",
    "check_name",
    "disk_usage",
    "no_such_volume",
    "parse_bind",
    "parse_mount",
    "parse_tmpfs",
    "plan_mounts",
    "runtime_options",
    "split_volumes_from",
    "to_json",
    "volumes_from",
]
