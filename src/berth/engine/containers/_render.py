"""Docker JSON shapes for containers (`inspect`, `ps` items, status text). Pure functions."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from typing import Any

from berth.engine import filters as filters_mod
from berth.engine import health
from berth.types.durations import human_duration
from berth.engine.containers._model import ZERO_TIME, Container
from berth.engine.network_json import container_networks
from berth.errors import InvalidArgument
from berth.types.container import ContainerConfig, HealthConfig
from berth.types.host_config import (
    DeviceMapping, HostConfig, Mount, PortBinding, ThrottleDevice, Ulimit, VolumeOptions, WeightDevice,
)
from berth.volumes import MountPoint


def _parse_time(text: str) -> datetime | None:
    if not text or text == ZERO_TIME:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def status_text(c: Container, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    st = c.state
    if st.status in ("running", "paused"):
        started = _parse_time(st.started_at) or now
        text = f"Up {human_duration((now - started).total_seconds())}"
        return text + (" (Paused)" if st.status == "paused" else health.status_suffix(c.health))
    if st.status == "exited":
        finished = _parse_time(st.finished_at)
        if finished is None:
            return "Created"
        return f"Exited ({st.exit_code}) {human_duration((now - finished).total_seconds())} ago"
    if st.status == "removing":
        return "Removal In Progress"
    if st.status == "restarting":
        finished = _parse_time(st.finished_at) or now
        return f"Restarting ({st.exit_code}) {human_duration((now - finished).total_seconds())} ago"
    if st.status == "dead":
        return "Dead"
    return "Created"


def ports_json(c: Container) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed port, with bindings when published."""
    ports: dict[str, Any] = {key: None for key in (c.config.exposed_ports or ())}
    if c.state.running:
        for p in c.network.get("ports", []):
            key = f"{p['container_port']}/{p['protocol']}"
            ip = p["host_ip"] or "0.0.0.0"
            ports.setdefault(key, None)
            ports[key] = (ports[key] or []) + [{"HostIp": ip, "HostPort": str(p["host_port"])}]
    return ports


def ps_ports(c: Container) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    published = set()
    if c.state.running:
        for p in c.network.get("ports", []):
            published.add((p["container_port"], p["protocol"]))
            items.append({"IP": p["host_ip"] or "0.0.0.0", "PrivatePort": p["container_port"],
                          "PublicPort": p["host_port"], "Type": p["protocol"]})
    for key in c.config.exposed_ports or ():
        port, _, proto = key.partition("/")
        if (int(port), proto or "tcp") not in published:
            items.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return items


def _network_mode_name(c: Container) -> str:
    mode = c.host_config.network_mode or "default"
    return "bridge" if mode == "default" else mode


def _networks_json(c: Container) -> dict[str, Any]:
    return container_networks(c)  # every network, user networks included (network_json.py)


def mounts_json(c: Container) -> list[dict[str, Any]]:
    return [MountPoint.from_record(m).inspect_json() for m in c.mounts]


def command_text(c: Container) -> str:
    args = list(c.config.entrypoint or ()) + list(c.config.cmd or ())
    return " ".join(shlex.quote(a) if " " in a else a for a in args)


def list_item(c: Container) -> dict[str, Any]:
    created = _parse_time(c.created)
    return {
        "Id": c.id, "Names": [f"/{c.name}"], "Image": c.image, "ImageID": c.image_id,
        "Command": command_text(c), "Created": int(created.timestamp()) if created else 0,
        "Ports": ps_ports(c), "Labels": dict(c.config.labels), "State": c.state.status,
        "Status": status_text(c), "HostConfig": {"NetworkMode": _network_mode_name(c)},
        "NetworkSettings": {"Networks": _networks_json(c)}, "Mounts": mounts_json(c),
    }


def _keyed(keys: tuple[str, ...] | None) -> dict[str, Any] | None:
    """ExposedPorts / Volumes: Go's map[string]struct{}."""
    return None if keys is None else {key: {} for key in keys}


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def health_json(hc: HealthConfig) -> dict[str, Any]:
    """Config.Healthcheck; zero fields left out (Go's omitempty)."""
    fields = {"Test": list(hc.test), "Interval": hc.interval, "Timeout": hc.timeout,
              "StartPeriod": hc.start_period, "StartInterval": hc.start_interval, "Retries": hc.retries}
    return {key: value for key, value in fields.items() if value}


def config_json(config: ContainerConfig) -> dict[str, Any]:
    """inspect's `Config`. Healthcheck, Shell, MacAddress, NetworkDisabled and ArgsEscaped only
    when set (Go's omitempty)."""
    out: dict[str, Any] = {
        "Hostname": config.hostname, "Domainname": config.domainname, "User": config.user,
        "AttachStdin": config.attach_stdin, "AttachStdout": config.attach_stdout,
        "AttachStderr": config.attach_stderr, "ExposedPorts": _keyed(config.exposed_ports), "Tty": config.tty,
        "OpenStdin": config.open_stdin, "StdinOnce": config.stdin_once, "Env": list(config.env),
        "Cmd": _list(config.cmd), "Image": config.image, "Volumes": _keyed(config.volumes),
        "WorkingDir": config.working_dir, "Entrypoint": _list(config.entrypoint), "OnBuild": _list(config.on_build),
        "Labels": dict(config.labels), "StopSignal": config.stop_signal, "StopTimeout": config.stop_timeout,
    }
    optional = {"Healthcheck": health_json(config.healthcheck) if config.healthcheck else None,
                "Shell": _list(config.shell), "MacAddress": config.mac_address,
                "NetworkDisabled": config.network_disabled, "ArgsEscaped": config.args_escaped}
    out.update({key: value for key, value in optional.items() if value})
    return out


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


def mount_json(m: Mount) -> dict[str, Any]:
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
        "Binds": _list(hc.binds), "ContainerIDFile": hc.container_id_file,
        "LogConfig": {"Type": hc.log_config.type, "Config": dict(hc.log_config.config)},
        "NetworkMode": hc.network_mode,
        "PortBindings": {key: _port_bindings_json(b) for key, b in hc.port_bindings.items()},
        "RestartPolicy": {"Name": hc.restart_policy.name,
                          "MaximumRetryCount": hc.restart_policy.maximum_retry_count},
        "AutoRemove": hc.auto_remove, "VolumeDriver": hc.volume_driver, "VolumesFrom": _list(hc.volumes_from),
        "ConsoleSize": list(hc.console_size),
        **_set({"Annotations": dict(hc.annotations)}),
        "CapAdd": _list(hc.cap_add), "CapDrop": _list(hc.cap_drop), "CgroupnsMode": hc.cgroupns_mode,
        "Dns": _list(hc.dns), "DnsOptions": _list(hc.dns_options), "DnsSearch": _list(hc.dns_search),
        "ExtraHosts": _list(hc.extra_hosts), "GroupAdd": _list(hc.group_add), "IpcMode": hc.ipc_mode,
        "Cgroup": hc.cgroup, "Links": _list(hc.links), "OomScoreAdj": hc.oom_score_adj, "PidMode": hc.pid_mode,
        "Privileged": hc.privileged, "PublishAllPorts": hc.publish_all_ports,
        "ReadonlyRootfs": hc.readonly_rootfs, "SecurityOpt": _list(hc.security_opt),
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
        "Devices": _devices_json(hc.devices), "DeviceCgroupRules": _list(hc.device_cgroup_rules),
        "DeviceRequests": None if hc.device_requests is None else [dict(r) for r in hc.device_requests],
        **_set({"KernelMemory": hc.kernel_memory, "KernelMemoryTCP": hc.kernel_memory_tcp}),
        "MemoryReservation": hc.memory_reservation, "MemorySwap": hc.memory_swap,
        "MemorySwappiness": hc.memory_swappiness, "OomKillDisable": hc.oom_kill_disable,
        "PidsLimit": hc.pids_limit, "Ulimits": _ulimits_json(hc.ulimits),
        "CpuCount": hc.cpu_count, "CpuPercent": hc.cpu_percent, "IOMaximumIOps": hc.io_maximum_iops,
        "IOMaximumBandwidth": hc.io_maximum_bandwidth,
        **_set({"Mounts": [mount_json(m) for m in hc.mounts or ()]}),
        "MaskedPaths": _list(hc.masked_paths), "ReadonlyPaths": _list(hc.readonly_paths),
        **({} if hc.init is None else {"Init": hc.init}),
    }


def inspect(c: Container, *, root: str, log_path: str, runtime: str = "") -> dict[str, Any]:
    """`runtime`: the daemon's default OCI runtime, shown as HostConfig.Runtime when the create
    named none (dockerd fills it in the same way)."""
    st = c.state
    args = list(c.config.entrypoint or ()) + list(c.config.cmd or ())
    net = c.network if st.running else {}
    etc_root = root
    if net.get("mode") == "container":
        # moby: the joined container's /etc files, and no sandbox or address of its own
        etc_root = str(net.get("etc_dir") or root)
        net = {}
    return {
        "Id": c.id, "Created": c.created, "Path": args[0] if args else "", "Args": args[1:],
        "State": {
            "Status": st.status, "Running": st.running, "Paused": st.status == "paused",
            "Restarting": st.status == "restarting", "OOMKilled": st.oom_killed, "Dead": st.status == "dead",
            "Pid": st.pid, "ExitCode": st.exit_code, "Error": st.error,
            "StartedAt": st.started_at, "FinishedAt": st.finished_at,
            **({"Health": health.shown(c.health, probed=c.state.status == "running")} if c.health else {}),
        },
        "Image": c.image_id, "ResolvConfPath": f"{etc_root}/resolv.conf",
        "HostnamePath": f"{etc_root}/hostname", "HostsPath": f"{etc_root}/hosts",
        "LogPath": log_path, "Name": f"/{c.name}",
        "RestartCount": c.restart_count, "Driver": "overlay2", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": host_config_json(c.host_config, default_runtime=c.runtime or runtime),
        "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": f"{root}/upper", "WorkDir": f"{root}/work",
                                                     "MergedDir": f"{root}/rootfs"}},
        "Mounts": mounts_json(c),
        "Config": config_json(c.config),
        "NetworkSettings": {
            "Bridge": "", "SandboxID": c.id if net else "", "SandboxKey": net.get("netns_path") or "",
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_json(c), "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": c.id if net.get("ip_address") else "", "Gateway": net.get("gateway", ""),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": net.get("ip_address", ""),
            "IPPrefixLen": net.get("prefix_len", 0), "IPv6Gateway": "", "MacAddress": net.get("mac_address", ""),
            "Networks": _networks_json(c),
        },
    }


LIST_FILTERS = ("ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label",
                "name", "network", "publish", "since", "status", "volume")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def check_list_filters(filters: dict[str, list[str]]) -> None:
    """moby's keys for `docker ps -f`, a known status and a numeric exit code."""
    filters_mod.check_keys(filters, LIST_FILTERS)
    filters_mod.check_values(filters, "status", lambda v: v in STATUSES)
    filters_mod.check_values(filters, "exited", lambda v: v.lstrip("-").isdigit())
    for value in filters.get("health", []):
        if value not in health.FILTER_VALUES:
            raise InvalidArgument(f"Unrecognised filter value for health: {value}")


def matches_filters(c: Container, filters: dict[str, list[str]]) -> bool:
    """`docker ps -f`: id, name, status, label, ancestor, exited, health."""
    def one(key: str, value: str) -> bool:
        if key == "id":
            return c.id.startswith(value)
        if key == "name":
            return value.lstrip("/") in c.name
        if key == "status":
            return c.state.status == value
        if key == "label":
            return filters_mod.label_matches(c.config.labels, value)
        if key == "ancestor":
            return value in (c.image, c.image_id) or c.image_id.startswith("sha256:" + value)
        if key == "exited":
            return c.state.status == "exited" and str(c.state.exit_code) == value
        if key == "health":
            return health.filter_status(health.shown(c.health, probed=c.state.status == "running")) == value
        return True
    return filters_mod.matches(filters, one)
