"""Docker JSON for containers, rendered from the engine's typed snapshots: `GET /containers/{id}/json`
(`inspect`), the `GET /containers/json` items (`list_item`) and their parts. Pure functions.

Field order and null-versus-empty follow dockerd, as clients compare and print them.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from typing import Any

from berth.api.docker.host_config_json import host_config_json, null_or_list
from berth.engine import health
from berth.engine.containers import (
    ZERO_TIME, AttachedEndpoint, ContainerConfig, ContainerSnapshot, EndpointIPAMConfig, HealthConfig, MountPoint,
    NetworkEntry,
)
from berth.types.durations import human_duration


def _parse_time(text: str) -> datetime | None:
    if not text or text == ZERO_TIME:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def status_text(snapshot: ContainerSnapshot, now: datetime | None = None) -> str:
    """`docker ps`'s STATUS column: `Up 3 seconds (healthy)`, `Exited (3) 5 minutes ago`."""
    now = now or datetime.now(timezone.utc)
    st = snapshot.container.state
    if st.status in ("running", "paused"):
        started = _parse_time(st.started_at) or now
        text = f"Up {human_duration((now - started).total_seconds())}"
        return text + (" (Paused)" if st.status == "paused" else _health_suffix(snapshot))
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


def _health_suffix(snapshot: ContainerSnapshot) -> str:
    return health.status_suffix(snapshot.health.to_json() if snapshot.health is not None else None)


def ports_json(snapshot: ContainerSnapshot) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed port, with bindings when published."""
    ports: dict[str, Any] = {key: None for key in (snapshot.container.config.exposed_ports or ())}
    for p in snapshot.network.ports if snapshot.network is not None else ():
        key = f"{p.container_port}/{p.protocol}"
        ports.setdefault(key, None)
        ports[key] = (ports[key] or []) + [{"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)}]
    return ports


def ps_ports(snapshot: ContainerSnapshot) -> list[dict[str, Any]]:
    """A `docker ps` item's Ports: the published ones, then the exposed ones not published."""
    items: list[dict[str, Any]] = []
    published = set()
    for p in snapshot.network.ports if snapshot.network is not None else ():
        published.add((p.container_port, p.protocol))
        items.append({"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port,
                      "PublicPort": p.host_port, "Type": p.protocol})
    for key in snapshot.container.config.exposed_ports or ():
        port, _, proto = key.partition("/")
        if (int(port), proto or "tcp") not in published:
            items.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return items


def mount_json(m: MountPoint) -> dict[str, Any]:
    """One `Mounts` item (inspect and `docker ps`)."""
    out: dict[str, Any] = {"Type": m.type}
    if m.type == "volume":
        out["Name"] = m.name
    out.update({"Source": m.source, "Destination": m.destination})
    if m.type == "volume":
        out["Driver"] = "local"
    out.update({"Mode": m.mode, "RW": m.rw, "Propagation": m.propagation})
    return out


def mounts_json(snapshot: ContainerSnapshot) -> list[dict[str, Any]]:
    return [mount_json(m) for m in snapshot.mounts]


def command_text(snapshot: ContainerSnapshot) -> str:
    return " ".join(shlex.quote(a) if " " in a else a for a in snapshot.args)


def list_item(snapshot: ContainerSnapshot, now: datetime | None = None) -> dict[str, Any]:
    """One `GET /containers/json` item."""
    c = snapshot.container
    created = _parse_time(c.created)
    return {
        "Id": c.id, "Names": [f"/{c.name}"], "Image": c.image, "ImageID": c.image_id,
        "Command": command_text(snapshot), "Created": int(created.timestamp()) if created else 0,
        "Ports": ps_ports(snapshot), "Labels": dict(c.config.labels), "State": c.state.status,
        "Status": status_text(snapshot, now), "HostConfig": {"NetworkMode": snapshot.network_mode},
        "NetworkSettings": {"Networks": networks_json(snapshot)}, "Mounts": mounts_json(snapshot),
    }


# --- Config -------------------------------------------------------------------------------------

def _keyed(keys: tuple[str, ...] | None) -> dict[str, Any] | None:
    """ExposedPorts / Volumes: Go's map[string]struct{}."""
    return None if keys is None else {key: {} for key in keys}


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
        "Cmd": null_or_list(config.cmd), "Image": config.image, "Volumes": _keyed(config.volumes),
        "WorkingDir": config.working_dir, "Entrypoint": null_or_list(config.entrypoint), "OnBuild": null_or_list(config.on_build),
        "Labels": dict(config.labels), "StopSignal": config.stop_signal, "StopTimeout": config.stop_timeout,
    }
    optional = {"Healthcheck": health_json(config.healthcheck) if config.healthcheck else None,
                "Shell": null_or_list(config.shell), "MacAddress": config.mac_address,
                "NetworkDisabled": config.network_disabled, "ArgsEscaped": config.args_escaped}
    out.update({key: value for key, value in optional.items() if value})
    return out


# --- NetworkSettings ----------------------------------------------------------------------------

def ipam_json(ipam: EndpointIPAMConfig | None) -> dict[str, Any] | None:
    """An endpoint's IPAMConfig as given; empty fields left out (Go's omitempty)."""
    if ipam is None:
        return None
    fields = {"IPv4Address": ipam.ipv4_address, "IPv6Address": ipam.ipv6_address,
              "LinkLocalIPs": list(ipam.link_local_ips)}
    return {key: value for key, value in fields.items() if value}


def network_entry_json(entry: NetworkEntry, container_id: str) -> dict[str, Any]:
    """One `NetworkSettings.Networks` item (empty addresses while not running)."""
    config, ep = entry.config, entry.attached or AttachedEndpoint()
    return {
        "IPAMConfig": ipam_json(config.ipam_config), "Links": null_or_list(config.links),
        "Aliases": list(entry.aliases) or None, "MacAddress": ep.mac_address,
        "DriverOpts": None if config.driver_opts is None else dict(config.driver_opts), "GwPriority": 0,
        "NetworkID": entry.network_id, "EndpointID": container_id if ep.ip_address else "",
        "Gateway": ep.gateway, "IPAddress": ep.ip_address,
        "IPPrefixLen": ep.prefix_len, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DNSNames": list(entry.dns_names) or None,
    }


def networks_json(snapshot: ContainerSnapshot) -> dict[str, Any]:
    return {name: network_entry_json(entry, snapshot.container.id) for name, entry in snapshot.networks.items()}


def network_settings_json(snapshot: ContainerSnapshot) -> dict[str, Any]:
    """inspect's `NetworkSettings`: the sandbox and primary address while running, then every network."""
    net, cid = snapshot.network, snapshot.container.id
    address = net.address if net is not None else AttachedEndpoint()
    return {
        "Bridge": "", "SandboxID": cid if net is not None else "",
        "SandboxKey": net.netns_path if net is not None else "",
        "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports_json(snapshot), "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": cid if address.ip_address else "", "Gateway": address.gateway,
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": address.ip_address,
        "IPPrefixLen": address.prefix_len, "IPv6Gateway": "", "MacAddress": address.mac_address,
        "Networks": networks_json(snapshot),
    }


# --- inspect ------------------------------------------------------------------------------------

def state_json(snapshot: ContainerSnapshot) -> dict[str, Any]:
    st = snapshot.container.state
    return {
        "Status": st.status, "Running": st.running, "Paused": st.status == "paused",
        "Restarting": st.status == "restarting", "OOMKilled": st.oom_killed, "Dead": st.status == "dead",
        "Pid": st.pid, "ExitCode": st.exit_code, "Error": st.error,
        "StartedAt": st.started_at, "FinishedAt": st.finished_at,
        **({"Health": snapshot.health.to_json()} if snapshot.health is not None else {}),
    }


def inspect(snapshot: ContainerSnapshot) -> dict[str, Any]:
    """`GET /containers/{id}/json`."""
    c, root, etc = snapshot.container, snapshot.dir, snapshot.etc_dir
    args = snapshot.args
    return {
        "Id": c.id, "Created": c.created, "Path": args[0] if args else "", "Args": args[1:],
        "State": state_json(snapshot),
        "Image": c.image_id, "ResolvConfPath": f"{etc}/resolv.conf",
        "HostnamePath": f"{etc}/hostname", "HostsPath": f"{etc}/hosts",
        "LogPath": snapshot.log_path, "Name": f"/{c.name}",
        "RestartCount": c.restart_count, "Driver": "overlay2", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": host_config_json(c.host_config, default_runtime=snapshot.runtime),
        "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": f"{root}/upper", "WorkDir": f"{root}/work",
                                                     "MergedDir": f"{root}/rootfs"}},
        "Mounts": mounts_json(snapshot),
        "Config": config_json(c.config),
        "NetworkSettings": network_settings_json(snapshot),
    }
