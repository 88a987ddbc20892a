"""Docker's create body → the engine's typed ContainerSpec, once, at the API edge.

The body has already passed `check(body, wire.CONTAINER_CREATE)`, so every field holds the JSON
type Go would decode (a StrSlice is a string or a list of strings, maps hold strings, ...); this
module only gives the values their typed form. They are rendered back for inspect at the same edge
(api/docker/container_json.py `config_json`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.errors import InvalidArgument
from berth.types.container import (
    ContainerConfig, ContainerSpec, EndpointIPAMConfig, EndpointSettings, HealthConfig,
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


def spec_from_create(body: Any) -> ContainerSpec:
    """`POST /containers/create`'s body (checked against wire.CONTAINER_CREATE) as a ContainerSpec."""
    if not isinstance(body, dict) or not body.get("Image"):
        raise InvalidArgument(EMPTY_CONFIG)
    host_config = body.get("HostConfig") or {}
    if not isinstance(host_config, dict):
        raise InvalidArgument("invalid HostConfig")
    return ContainerSpec(config=config_from_wire(body), host_config=host_config,
                         networking=endpoints_from_wire(body.get("NetworkingConfig")))
