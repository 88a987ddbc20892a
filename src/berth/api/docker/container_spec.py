"""Docker's create body → the engine's typed ContainerSpec, once, at the API edge.

The body has already passed `check(body, wire.CONTAINER_CREATE)`, so every field holds the JSON
type Go would decode (a StrSlice is a string or a list of strings, maps hold strings, ...); this
module only gives the values their typed form. They are rendered back for inspect at the same edge
(api/docker/container_json.py `config_json`, `host_config_json`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.errors import InvalidArgument
from berth.types.container import (
    ContainerConfig, ContainerSpec, EndpointIPAMConfig, EndpointSettings, HealthConfig,
)
from berth.types.host_config import (
    BindOptions, ContainerUpdate, DeviceMapping, HostConfig, LogConfig, Mount, PortBinding, Resources,
    RestartPolicy, ThrottleDevice, TmpfsOptions, Ulimit, VolumeDriver, VolumeOptions, WeightDevice,
)

EMPTY_CONFIG = "Config cannot be empty in order to create a container"


def _strslice(value: Any) -> tuple[str, ...] | None:
    """strslice.StrSlice: a single string is a one-element list; null is unset."""
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _keys(value: Any) -> tuple[str, ...] | None:
    """map[string]struct{} (ExposedPorts, Volumes): its keys, in the order sent; null is unset."""
    return None if value is None else tuple(value)


def health_from_wire(value: Mapping[str, Any] | None) -> HealthConfig | None:
    if value is None:
        return None
    return HealthConfig(
        test=_strslice(value.get("Test")) or (), interval=value.get("Interval") or 0,
        timeout=value.get("Timeout") or 0, start_period=value.get("StartPeriod") or 0,
        start_interval=value.get("StartInterval") or 0, retries=value.get("Retries") or 0)


def config_from_wire(body: Mapping[str, Any]) -> ContainerConfig:
    """The Config fields of a create body (they sit at its top level)."""
    return ContainerConfig(
        image=body.get("Image") or "", hostname=body.get("Hostname") or "",
        domainname=body.get("Domainname") or "", user=body.get("User") or "",
        attach_stdin=bool(body.get("AttachStdin")), attach_stdout=bool(body.get("AttachStdout")),
        attach_stderr=bool(body.get("AttachStderr")), exposed_ports=_keys(body.get("ExposedPorts")),
        tty=bool(body.get("Tty")), open_stdin=bool(body.get("OpenStdin")), stdin_once=bool(body.get("StdinOnce")),
        env=_strslice(body.get("Env")) or (), cmd=_strslice(body.get("Cmd")),
        entrypoint=_strslice(body.get("Entrypoint")), healthcheck=health_from_wire(body.get("Healthcheck")),
        working_dir=body.get("WorkingDir") or "", labels=dict(body.get("Labels") or {}),
        stop_signal=body.get("StopSignal") or None, stop_timeout=body.get("StopTimeout"),
        volumes=_keys(body.get("Volumes")), on_build=_strslice(body.get("OnBuild")),
        shell=_strslice(body.get("Shell")), mac_address=body.get("MacAddress") or "",
        network_disabled=bool(body.get("NetworkDisabled")), args_escaped=bool(body.get("ArgsEscaped")),
    )


def endpoint_from_wire(value: Mapping[str, Any] | None) -> EndpointSettings:
    """network.EndpointSettings (a create's EndpointsConfig entry, `network connect`'s
    EndpointConfig). Addresses and ids the client may echo back are not requests; only
    NetworkID is kept (inspect shows it for a configured network not joined yet)."""
    value = value or {}
    ipam = value.get("IPAMConfig")
    return EndpointSettings(
        aliases=_strslice(value.get("Aliases")), links=_strslice(value.get("Links")),
        mac_address=value.get("MacAddress") or "",
        ipam_config=None if ipam is None else EndpointIPAMConfig(
            ipv4_address=ipam.get("IPv4Address") or "", ipv6_address=ipam.get("IPv6Address") or "",
            link_local_ips=tuple(ipam.get("LinkLocalIPs") or ())),
        driver_opts=None if value.get("DriverOpts") is None else dict(value["DriverOpts"]),
        network_id=value.get("NetworkID") or "",
    )


def endpoints_from_wire(networking: Mapping[str, Any] | None) -> dict[str, EndpointSettings]:
    """NetworkingConfig → the endpoints by network name, in the order sent."""
    endpoints = (networking or {}).get("EndpointsConfig") or {}
    return {name: endpoint_from_wire(settings) for name, settings in endpoints.items()}


def _strings(value: Any) -> tuple[str, ...] | None:
    """A []string; null is unset (Go's nil slice)."""
    return None if value is None else tuple(value)


def _labels(value: Any) -> dict[str, str]:
    return dict(value or {})


def _throttle(value: Any) -> tuple[ThrottleDevice, ...] | None:
    if value is None:
        return None
    return tuple(ThrottleDevice(path=(d or {}).get("Path") or "", rate=(d or {}).get("Rate") or 0) for d in value)


def _weights(value: Any) -> tuple[WeightDevice, ...] | None:
    if value is None:
        return None
    return tuple(WeightDevice(path=(d or {}).get("Path") or "", weight=(d or {}).get("Weight") or 0) for d in value)


def _devices(value: Any) -> tuple[DeviceMapping, ...] | None:
    if value is None:
        return None
    return tuple(DeviceMapping(path_on_host=(d or {}).get("PathOnHost") or "",
                               path_in_container=(d or {}).get("PathInContainer") or "",
                               cgroup_permissions=(d or {}).get("CgroupPermissions") or "") for d in value)


def _ulimits(value: Any) -> tuple[Ulimit, ...] | None:
    if value is None:
        return None
    return tuple(Ulimit(name=(u or {}).get("Name") or "", hard=(u or {}).get("Hard") or 0,
                        soft=(u or {}).get("Soft") or 0) for u in value)


def resources_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """container.Resources' fields (at the top level of a HostConfig and of an update body),
    as keyword arguments of Resources or HostConfig."""
    return dict(
        cpu_shares=body.get("CpuShares") or 0, memory=body.get("Memory") or 0,
        nano_cpus=body.get("NanoCpus") or 0, cgroup_parent=body.get("CgroupParent") or "",
        blkio_weight=body.get("BlkioWeight") or 0, blkio_weight_device=_weights(body.get("BlkioWeightDevice")),
        blkio_device_read_bps=_throttle(body.get("BlkioDeviceReadBps")),
        blkio_device_write_bps=_throttle(body.get("BlkioDeviceWriteBps")),
        blkio_device_read_iops=_throttle(body.get("BlkioDeviceReadIOps")),
        blkio_device_write_iops=_throttle(body.get("BlkioDeviceWriteIOps")),
        cpu_period=body.get("CpuPeriod") or 0, cpu_quota=body.get("CpuQuota") or 0,
        cpu_realtime_period=body.get("CpuRealtimePeriod") or 0,
        cpu_realtime_runtime=body.get("CpuRealtimeRuntime") or 0,
        cpuset_cpus=body.get("CpusetCpus") or "", cpuset_mems=body.get("CpusetMems") or "",
        devices=_devices(body.get("Devices")), device_cgroup_rules=_strings(body.get("DeviceCgroupRules")),
        device_requests=None if body.get("DeviceRequests") is None else tuple(
            dict(r or {}) for r in body["DeviceRequests"]),
        kernel_memory=body.get("KernelMemory") or 0, kernel_memory_tcp=body.get("KernelMemoryTCP") or 0,
        memory_reservation=body.get("MemoryReservation") or 0, memory_swap=body.get("MemorySwap") or 0,
        memory_swappiness=body.get("MemorySwappiness"), oom_kill_disable=body.get("OomKillDisable"),
        pids_limit=body.get("PidsLimit"), ulimits=_ulimits(body.get("Ulimits")),
        cpu_count=body.get("CpuCount") or 0, cpu_percent=body.get("CpuPercent") or 0,
        io_maximum_iops=body.get("IOMaximumIOps") or 0, io_maximum_bandwidth=body.get("IOMaximumBandwidth") or 0,
    )


def restart_policy_from_wire(value: Mapping[str, Any] | None) -> RestartPolicy:
    value = value or {}
    return RestartPolicy(name=value.get("Name") or "", maximum_retry_count=value.get("MaximumRetryCount") or 0)


def _port_bindings(value: Any) -> dict[str, tuple[PortBinding, ...] | None]:
    """nat.PortMap: "80/tcp" → its bindings, in the order sent (a null list stays null)."""
    return {key: None if entries is None else tuple(
                PortBinding(host_ip=(b or {}).get("HostIp") or "", host_port=(b or {}).get("HostPort") or "")
                for b in entries)
            for key, entries in (value or {}).items()}


def _console_size(value: Any) -> tuple[int, int]:
    """Go's [2]uint: missing elements are 0, extra ones are dropped."""
    height, width = [*(value or ()), 0, 0][:2]
    return (height or 0, width or 0)


def mount_from_wire(value: Mapping[str, Any] | None) -> Mount:
    value = value or {}
    bind, volume, tmpfs = value.get("BindOptions"), value.get("VolumeOptions"), value.get("TmpfsOptions")
    return Mount(
        type=value.get("Type") or "", source=value.get("Source") or "", target=value.get("Target") or "",
        read_only=bool(value.get("ReadOnly")), consistency=value.get("Consistency") or "",
        bind_options=None if bind is None else BindOptions(
            propagation=bind.get("Propagation") or "", non_recursive=bool(bind.get("NonRecursive")),
            create_mountpoint=bool(bind.get("CreateMountpoint")),
            read_only_non_recursive=bool(bind.get("ReadOnlyNonRecursive")),
            read_only_force_recursive=bool(bind.get("ReadOnlyForceRecursive"))),
        volume_options=None if volume is None else _volume_options(volume),
        tmpfs_options=None if tmpfs is None else TmpfsOptions(
            size_bytes=tmpfs.get("SizeBytes") or 0, mode=tmpfs.get("Mode") or 0,
            options=None if tmpfs.get("Options") is None else tuple(
                tuple(option or ()) for option in tmpfs["Options"])),
    )


def _volume_options(value: Mapping[str, Any]) -> VolumeOptions:
    driver = value.get("DriverConfig")
    return VolumeOptions(
        no_copy=bool(value.get("NoCopy")),
        labels=None if value.get("Labels") is None else dict(value["Labels"]),
        subpath=value.get("Subpath") or "",
        driver_config=None if driver is None else VolumeDriver(
            name=driver.get("Name") or "",
            options=None if driver.get("Options") is None else dict(driver["Options"])))


def host_config_from_wire(body: Mapping[str, Any]) -> HostConfig:
    """A create's HostConfig (checked against wire.HOST_CONFIG) as typed; the engine fills in
    the defaults dockerd fills (engine/containers/_config.py `normalize_host_config`)."""
    log_config = body.get("LogConfig") or {}
    mounts = body.get("Mounts")
    return HostConfig(
        **resources_fields(body),
        binds=_strings(body.get("Binds")), container_id_file=body.get("ContainerIDFile") or "",
        log_config=LogConfig(type=log_config.get("Type") or "", config=_labels(log_config.get("Config"))),
        network_mode=body.get("NetworkMode") or "", port_bindings=_port_bindings(body.get("PortBindings")),
        restart_policy=restart_policy_from_wire(body.get("RestartPolicy")),
        auto_remove=bool(body.get("AutoRemove")), volume_driver=body.get("VolumeDriver") or "",
        volumes_from=_strings(body.get("VolumesFrom")), console_size=_console_size(body.get("ConsoleSize")),
        annotations=_labels(body.get("Annotations")),
        cap_add=_strslice(body.get("CapAdd")), cap_drop=_strslice(body.get("CapDrop")),
        cgroupns_mode=body.get("CgroupnsMode") or "", dns=_strings(body.get("Dns")),
        dns_options=_strings(body.get("DnsOptions")), dns_search=_strings(body.get("DnsSearch")),
        extra_hosts=_strings(body.get("ExtraHosts")), group_add=_strings(body.get("GroupAdd")),
        ipc_mode=body.get("IpcMode") or "", cgroup=body.get("Cgroup") or "", links=_strings(body.get("Links")),
        oom_score_adj=body.get("OomScoreAdj") or 0, pid_mode=body.get("PidMode") or "",
        privileged=bool(body.get("Privileged")), publish_all_ports=bool(body.get("PublishAllPorts")),
        readonly_rootfs=bool(body.get("ReadonlyRootfs")), security_opt=_strings(body.get("SecurityOpt")),
        storage_opt=_labels(body.get("StorageOpt")), tmpfs=_labels(body.get("Tmpfs")),
        uts_mode=body.get("UTSMode") or "", userns_mode=body.get("UsernsMode") or "",
        shm_size=body.get("ShmSize") or 0, sysctls=_labels(body.get("Sysctls")),
        runtime=body.get("Runtime") or "", isolation=body.get("Isolation") or "",
        mounts=None if mounts is None else tuple(mount_from_wire(m) for m in mounts),
        masked_paths=_strings(body.get("MaskedPaths")), readonly_paths=_strings(body.get("ReadonlyPaths")),
        init=body.get("Init"),
    )


def update_from_wire(body: Any) -> ContainerUpdate:
    """`POST /containers/{id}/update`'s body (checked against wire.CONTAINER_UPDATE)."""
    if not isinstance(body, dict):
        raise InvalidArgument("invalid update body")
    return ContainerUpdate(resources=Resources(**resources_fields(body)),
                           restart_policy=restart_policy_from_wire(body.get("RestartPolicy")))


def spec_from_create(body: Any) -> ContainerSpec:
    """`POST /containers/create`'s body (checked against wire.CONTAINER_CREATE) as a ContainerSpec."""
    if not isinstance(body, dict) or not body.get("Image"):
        raise InvalidArgument(EMPTY_CONFIG)
    host_config = body.get("HostConfig") or {}
    if not isinstance(host_config, dict):
        raise InvalidArgument("invalid HostConfig")
    return ContainerSpec(config=config_from_wire(body), host_config=host_config_from_wire(host_config),
                         networking=endpoints_from_wire(body.get("NetworkingConfig")))
