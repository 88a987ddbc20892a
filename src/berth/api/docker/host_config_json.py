"""inspect's `HostConfig` rendered from the typed HostConfig (berth.types.host_config), in
dockerd's full shape: every key moby's container.HostConfig shows, in its order, with Go's zero
values and omitempty rules. Pure functions; container_json.py calls `host_config_json`."""

from __future__ import annotations

from typing import Any

from berth.types.host_config import (
    DeviceMapping, HostConfig, Mount, PortBinding, ThrottleDevice, Ulimit, VolumeOptions, WeightDevice,
)


def null_or_list(values: tuple[str, ...] | None) -> list[str] | None:
    """A Go slice as JSON: nil is null."""
    return None if values is None else list(values)


def _port_bindings_json(bindings: tuple[PortBinding, ...] | None) -> list[dict[str, str]] | None:
    return None if bindings is None else [{"HostIp": b.host_ip, "HostPort": b.host_port} for b in bindings]


def _throttle_json(devices: tuple[ThrottleDevice, ...] | None) -> list[dict[str, Any]] | None:
    return None if devices is None else [{"Path": d.path, "Rate": d.rate} for d in devices]


def _weights_json(devices: tuple[WeightDevice, ...] | None) -> list[dict[str, Any]] | None:
    return None if devices is None else [{"Path": d.path, "Weight": d.weight} for d in devices]


def _devices_json(devices: tuple[DeviceMapping, ...] | None) -> list[dict[str, str]] | None:
    return None if devices is None else [
        {"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container,
         "CgroupPermissions": d.cgroup_permissions} for d in devices]


def _ulimits_json(ulimits: tuple[Ulimit, ...] | None) -> list[dict[str, Any]] | None:
    return None if ulimits is None else [{"Name": u.name, "Hard": u.hard, "Soft": u.soft} for u in ulimits]


def _set(fields: dict[str, Any]) -> dict[str, Any]:
    """Go's omitempty: the fields that hold a non-zero value."""
    return {key: value for key, value in fields.items() if value}


def _volume_options_json(options: VolumeOptions) -> dict[str, Any]:
    driver = options.driver_config
    return _set({"NoCopy": options.no_copy, "Labels": dict(options.labels or {}), "Subpath": options.subpath,
                 "DriverConfig": None if driver is None else _set(
                     {"Name": driver.name, "Options": dict(driver.options or {})})})


def _mount_json(m: Mount) -> dict[str, Any]:
    """One HostConfig.Mounts entry; every field but Type is omitempty in mount.Mount."""
    bind, volume, tmpfs = m.bind_options, m.volume_options, m.tmpfs_options
    return {"Type": m.type, **_set({
        "Source": m.source, "Target": m.target, "ReadOnly": m.read_only, "Consistency": m.consistency,
        "BindOptions": None if bind is None else _set({
            "Propagation": bind.propagation, "NonRecursive": bind.non_recursive,
            "CreateMountpoint": bind.create_mountpoint, "ReadOnlyNonRecursive": bind.read_only_non_recursive,
            "ReadOnlyForceRecursive": bind.read_only_force_recursive}),
        "VolumeOptions": None if volume is None else _volume_options_json(volume),
        "TmpfsOptions": None if tmpfs is None else _set({
            "SizeBytes": tmpfs.size_bytes, "Mode": tmpfs.mode,
            "Options": None if tmpfs.options is None else [list(o) for o in tmpfs.options]}),
    })}


def host_config_json(hc: HostConfig, *, default_runtime: str = "") -> dict[str, Any]:
    """inspect's `HostConfig`, every key dockerd shows, in its order (moby's HostConfig with
    Resources embedded after Isolation): a nil slice is null, Annotations, StorageOpt, Tmpfs,
    Sysctls, KernelMemory(TCP), Mounts and Init only when set (omitempty). Runtime is the
    daemon's default when the create named none, as dockerd fills it."""
    return {
        "Binds": null_or_list(hc.binds), "ContainerIDFile": hc.container_id_file,
        "LogConfig": {"Type": hc.log_config.type, "Config": dict(hc.log_config.config)},
        "NetworkMode": hc.network_mode,
        "PortBindings": {key: _port_bindings_json(b) for key, b in hc.port_bindings.items()},
        "RestartPolicy": {"Name": hc.restart_policy.name,
                          "MaximumRetryCount": hc.restart_policy.maximum_retry_count},
        "AutoRemove": hc.auto_remove, "VolumeDriver": hc.volume_driver, "VolumesFrom": null_or_list(hc.volumes_from),
        "ConsoleSize": list(hc.console_size),
        **_set({"Annotations": dict(hc.annotations)}),
        "CapAdd": null_or_list(hc.cap_add), "CapDrop": null_or_list(hc.cap_drop), "CgroupnsMode": hc.cgroupns_mode,
        "Dns": null_or_list(hc.dns), "DnsOptions": null_or_list(hc.dns_options), "DnsSearch": null_or_list(hc.dns_search),
        "ExtraHosts": null_or_list(hc.extra_hosts), "GroupAdd": null_or_list(hc.group_add), "IpcMode": hc.ipc_mode,
        "Cgroup": hc.cgroup, "Links": null_or_list(hc.links), "OomScoreAdj": hc.oom_score_adj, "PidMode": hc.pid_mode,
        "Privileged": hc.privileged, "PublishAllPorts": hc.publish_all_ports,
        "ReadonlyRootfs": hc.readonly_rootfs, "SecurityOpt": null_or_list(hc.security_opt),
        **_set({"StorageOpt": dict(hc.storage_opt), "Tmpfs": dict(hc.tmpfs)}),
        "UTSMode": hc.uts_mode, "UsernsMode": hc.userns_mode, "ShmSize": hc.shm_size,
        **_set({"Sysctls": dict(hc.sysctls), "Runtime": hc.runtime or default_runtime}),
        "Isolation": hc.isolation,
        "CpuShares": hc.cpu_shares, "Memory": hc.memory, "NanoCpus": hc.nano_cpus,
        "CgroupParent": hc.cgroup_parent, "BlkioWeight": hc.blkio_weight,
        "BlkioWeightDevice": _weights_json(hc.blkio_weight_device),
        "BlkioDeviceReadBps": _throttle_json(hc.blkio_device_read_bps),
        "BlkioDeviceWriteBps": _throttle_json(hc.blkio_device_write_bps),
        "BlkioDeviceReadIOps": _throttle_json(hc.blkio_device_read_iops),
        "BlkioDeviceWriteIOps": _throttle_json(hc.blkio_device_write_iops),
        "CpuPeriod": hc.cpu_period, "CpuQuota": hc.cpu_quota, "CpuRealtimePeriod": hc.cpu_realtime_period,
        "CpuRealtimeRuntime": hc.cpu_realtime_runtime, "CpusetCpus": hc.cpuset_cpus, "CpusetMems": hc.cpuset_mems,
        "Devices": _devices_json(hc.devices), "DeviceCgroupRules": null_or_list(hc.device_cgroup_rules),
        "DeviceRequests": None if hc.device_requests is None else [dict(r) for r in hc.device_requests],
        **_set({"KernelMemory": hc.kernel_memory, "KernelMemoryTCP": hc.kernel_memory_tcp}),
        "MemoryReservation": hc.memory_reservation, "MemorySwap": hc.memory_swap,
        "MemorySwappiness": hc.memory_swappiness, "OomKillDisable": hc.oom_kill_disable,
        "PidsLimit": hc.pids_limit, "Ulimits": _ulimits_json(hc.ulimits),
        "CpuCount": hc.cpu_count, "CpuPercent": hc.cpu_percent, "IOMaximumIOps": hc.io_maximum_iops,
        "IOMaximumBandwidth": hc.io_maximum_bandwidth,
        **_set({"Mounts": [_mount_json(m) for m in hc.mounts or ()]}),
        "MaskedPaths": null_or_list(hc.masked_paths), "ReadonlyPaths": null_or_list(hc.readonly_paths),
        **({} if hc.init is None else {"Init": hc.init}),
    }
