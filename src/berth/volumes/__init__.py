"""Named volumes (`local` driver) and the planning of a container's mounts.

`VolumeStore` keeps volumes under <root>/volumes/<name>/_data; `plan_mounts` turns a create
request (Binds, Mounts, Tmpfs, volumes-from, declared VOLUMEs) into `MountPoint`s. A volume
created with driver options (`parse_driver_options`: tmpfs, or a bind of a host directory) is
mounted on its _data dir while containers use it (`VolumeMounter`, counting holders with
`MountRefs`). The engine (berth.engine.volumes) adds Docker's semantics: in-use checks,
anonymous volumes, JSON shapes.
"""

from berth.volumes._mounts import (
    MountPoint, parse_bind, parse_mount, parse_tmpfs, plan_mounts, runtime_options,
    split_volumes_from, volumes_from,
)
from berth.volumes._mounter import HostMountOps, MountOps, VolumeMounter, mount_spec
from berth.volumes._localmount import is_mounted
from berth.volumes._options import MS_RDONLY, LocalMount, parse_driver_options
from berth.volumes._refs import MountRefs
from berth.volumes._store import (
    ANONYMOUS_LABEL, Volume, VolumeStore, check_name, disk_usage, no_such_volume, to_json,
)

__all__ = [
    "ANONYMOUS_LABEL",
    "MS_RDONLY",
    "HostMountOps",
    "LocalMount",
    "MountOps",
    "MountPoint",
    "MountRefs",
    "Volume",
    "VolumeMounter",
    "VolumeStore",
    "check_name",
    "disk_usage",
    "is_mounted",
    "mount_spec",
    "no_such_volume",
    "parse_bind",
    "parse_driver_options",
    "parse_mount",
    "parse_tmpfs",
    "plan_mounts",
    "runtime_options",
    "split_volumes_from",
    "to_json",
    "volumes_from",
]
