"""The typed HostConfig: moby's container.HostConfig (with its embedded Resources) as frozen
dataclasses, one field per JSON field of the wire type, named in snake_case after it.

Docker's create body is converted into these once, at the API edge
(api/docker/container_spec.py `host_config_from_wire`); the ECS agent builds them directly; the
engine stores them (engine/containers/_stored.py); inspect renders them back at the API edge
(api/docker/host_config_json.py `host_config_json`).

Unset and empty stay apart where Go tells them apart, because inspect shows each as dockerd
does: a nil slice is `None` (inspect's `null`), a sent `[]` is `()`; Go's pointers
(`PidsLimit`, `MemorySwappiness`, `OomKillDisable`, `Init`) are `None` when unset. Maps that Go
marks `omitempty` (Annotations, StorageOpt, Tmpfs, Sysctls) are plain mappings: null and empty
look alike on the wire.

Fields follow moby's structs, in their order (inspect shows Resources' fields after Isolation,
where Go embeds the struct).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RestartPolicy:
    """`--restart`. Name "" is Go's zero value: "not given" in an update, `no` once created."""
    name: str = ""
    maximum_retry_count: int = 0


@dataclass(frozen=True)
class LogConfig:
    """`--log-driver` and `--log-opt`."""
    type: str = ""
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PortBinding:
    """nat.PortBinding: one host address for a container port; HostPort "" picks a free port."""
    host_ip: str = ""
    host_port: str = ""


@dataclass(frozen=True)
class Ulimit:
    name: str = ""
    hard: int = 0
    soft: int = 0


@dataclass(frozen=True)
class DeviceMapping:
    """`--device /dev/x[:/dev/y[:rwm]]`."""
    path_on_host: str = ""
    path_in_container: str = ""
    cgroup_permissions: str = ""


@dataclass(frozen=True)
class WeightDevice:
    """blkiodev.WeightDevice (`--blkio-weight-device`)."""
    path: str = ""
    weight: int = 0


@dataclass(frozen=True)
class ThrottleDevice:
    """blkiodev.ThrottleDevice (`--device-read-bps` and friends)."""
    path: str = ""
    rate: int = 0


@dataclass(frozen=True)
class BindOptions:
    propagation: str = ""
    non_recursive: bool = False
    create_mountpoint: bool = False
    read_only_non_recursive: bool = False
    read_only_force_recursive: bool = False


@dataclass(frozen=True)
class VolumeDriver:
    """mount.Driver: VolumeOptions.DriverConfig."""
    name: str = ""
    options: Mapping[str, str] | None = None


@dataclass(frozen=True)
class VolumeOptions:
    no_copy: bool = False
    labels: Mapping[str, str] | None = None
    subpath: str = ""
    driver_config: VolumeDriver | None = None


@dataclass(frozen=True)
class TmpfsOptions:
    size_bytes: int = 0
    mode: int = 0
    options: tuple[tuple[str, ...], ...] | None = None   # [["noexec"], ["uid", "1000"]]


@dataclass(frozen=True)
class Mount:
    """mount.Mount: one `--mount type=...`."""
    type: str = ""
    source: str = ""
    target: str = ""
    read_only: bool = False
    consistency: str = ""
    bind_options: BindOptions | None = None
    volume_options: VolumeOptions | None = None
    tmpfs_options: TmpfsOptions | None = None


@dataclass(frozen=True)
class Resources:
    """container.Resources: the cgroup limits, also the body of `docker update`, where a zero
    value (and a None PidsLimit) means "leave as it is"."""
    cpu_shares: int = 0
    memory: int = 0
    nano_cpus: int = 0
    cgroup_parent: str = ""
    blkio_weight: int = 0
    blkio_weight_device: tuple[WeightDevice, ...] | None = None
    blkio_device_read_bps: tuple[ThrottleDevice, ...] | None = None
    blkio_device_write_bps: tuple[ThrottleDevice, ...] | None = None
    blkio_device_read_iops: tuple[ThrottleDevice, ...] | None = None
    blkio_device_write_iops: tuple[ThrottleDevice, ...] | None = None
    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_realtime_period: int = 0
    cpu_realtime_runtime: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    devices: tuple[DeviceMapping, ...] | None = None
    device_cgroup_rules: tuple[str, ...] | None = None
    # Not interpreted by berth (no GPU drivers): kept as sent, for inspect.
    device_requests: tuple[Mapping[str, Any], ...] | None = None
    kernel_memory: int = 0
    kernel_memory_tcp: int = 0
    memory_reservation: int = 0
    memory_swap: int = 0
    memory_swappiness: int | None = None
    oom_kill_disable: bool | None = None
    pids_limit: int | None = None
    ulimits: tuple[Ulimit, ...] | None = None
    cpu_count: int = 0
    cpu_percent: int = 0
    io_maximum_iops: int = 0
    io_maximum_bandwidth: int = 0


@dataclass(frozen=True)
class HostConfig(Resources):
    """container.HostConfig. Resources' fields are its own, as Go embeds the struct."""
    binds: tuple[str, ...] | None = None
    container_id_file: str = ""
    log_config: LogConfig = field(default_factory=LogConfig)
    network_mode: str = ""
    port_bindings: Mapping[str, tuple[PortBinding, ...] | None] = field(default_factory=dict)  # "80/tcp" →
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    auto_remove: bool = False
    volume_driver: str = ""
    volumes_from: tuple[str, ...] | None = None
    console_size: tuple[int, int] = (0, 0)   # height, width
    annotations: Mapping[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] | None = None
    cap_drop: tuple[str, ...] | None = None
    cgroupns_mode: str = ""
    dns: tuple[str, ...] | None = None
    dns_options: tuple[str, ...] | None = None
    dns_search: tuple[str, ...] | None = None
    extra_hosts: tuple[str, ...] | None = None
    group_add: tuple[str, ...] | None = None
    ipc_mode: str = ""
    cgroup: str = ""
    links: tuple[str, ...] | None = None
    oom_score_adj: int = 0
    pid_mode: str = ""
    privileged: bool = False
    publish_all_ports: bool = False
    readonly_rootfs: bool = False
    security_opt: tuple[str, ...] | None = None
    storage_opt: Mapping[str, str] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=dict)    # destination → options
    uts_mode: str = ""
    userns_mode: str = ""
    shm_size: int = 0
    sysctls: Mapping[str, str] = field(default_factory=dict)
    runtime: str = ""
    isolation: str = ""
    mounts: tuple[Mount, ...] | None = None
    masked_paths: tuple[str, ...] | None = None
    readonly_paths: tuple[str, ...] | None = None
    init: bool | None = None


@dataclass(frozen=True)
class ContainerUpdate:
    """`docker update` (container.UpdateConfig): new limits, and a restart policy when its
    name is set."""
    resources: Resources = field(default_factory=Resources)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
