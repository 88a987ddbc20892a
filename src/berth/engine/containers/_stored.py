"""A container's typed Config, HostConfig and endpoints in its SQLite record: from JSON, and the
previous format.

The record keeps the dataclass fields (snake_case, `dataclasses.asdict`). Records written before
they were typed hold Docker's CamelCase `Config` and `HostConfig` dicts and a
`networking_config` dict (NetworkingConfig as sent) instead; `config_from_record`,
`host_config_from_record` and `endpoints_from_record` read both, so containers created by an
older berth survive the upgrade (they are rewritten in the new format on their next save).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, fields, is_dataclass
from typing import Any, TypeGuard, TypeVar, cast

from berth.types.container import ContainerConfig, EndpointIPAMConfig, EndpointSettings, HealthConfig
from berth.types.host_config import HostConfig

_TUPLES = ("exposed_ports", "cmd", "entrypoint", "volumes", "on_build", "shell")
_FIELDS = frozenset(f.name for f in fields(ContainerConfig))


def config_from_record(data: Mapping[str, Any]) -> ContainerConfig:
    if _is_legacy(data):
        return config_from_legacy(data)
    values = {k: v for k, v in data.items() if k in _FIELDS}
    for key in _TUPLES:
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    values["env"] = tuple(values.get("env") or ())
    values["labels"] = dict(values.get("labels") or {})
    health = values.get("healthcheck")
    if health is not None:
        values["healthcheck"] = HealthConfig(**{**health, "test": tuple(health.get("test") or ())})
    return ContainerConfig(**values)


def _is_legacy(data: Mapping[str, Any]) -> bool:
    """The previous format: Docker's Config keys (`Hostname`, `Env`, ...), all capitalised."""
    for key in data:  # one key tells: a record's are all snake_case, a legacy one's all CamelCase
        return key[:1].isupper()
    return False


def _strings(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


def config_from_legacy(data: Mapping[str, Any]) -> ContainerConfig:
    """A Config stored as Docker's JSON (what the engine merged and inspect showed) as typed."""
    health = data.get("Healthcheck")
    return ContainerConfig(
        image=str(data.get("Image") or ""), hostname=str(data.get("Hostname") or ""),
        domainname=str(data.get("Domainname") or ""), user=str(data.get("User") or ""),
        attach_stdin=bool(data.get("AttachStdin")), attach_stdout=bool(data.get("AttachStdout")),
        attach_stderr=bool(data.get("AttachStderr")),
        exposed_ports=tuple(data["ExposedPorts"]) if data.get("ExposedPorts") is not None else None,
        tty=bool(data.get("Tty")), open_stdin=bool(data.get("OpenStdin")), stdin_once=bool(data.get("StdinOnce")),
        env=_strings(data.get("Env")) or (), cmd=_strings(data.get("Cmd")),
        entrypoint=_strings(data.get("Entrypoint")),
        healthcheck=None if not health else HealthConfig(
            test=_strings(health.get("Test")) or (), interval=int(health.get("Interval") or 0),
            timeout=int(health.get("Timeout") or 0), start_period=int(health.get("StartPeriod") or 0),
            start_interval=int(health.get("StartInterval") or 0), retries=int(health.get("Retries") or 0)),
        working_dir=str(data.get("WorkingDir") or ""),
        labels={str(k): str(v) for k, v in (data.get("Labels") or {}).items()},
        stop_signal=data.get("StopSignal") or None,
        stop_timeout=int(data["StopTimeout"]) if data.get("StopTimeout") is not None else None,
        volumes=tuple(data["Volumes"]) if data.get("Volumes") is not None else None,
        on_build=_strings(data.get("OnBuild")), shell=_strings(data.get("Shell")),
        mac_address=str(data.get("MacAddress") or ""), network_disabled=bool(data.get("NetworkDisabled")),
        args_escaped=bool(data.get("ArgsEscaped")),
    )


# The keys of one endpoint's fields in each stored form: the record's own (the dataclass's
# names) and Docker's JSON as the previous format kept it.
_RECORD_KEYS = ("aliases", "links", "mac_address", "ipam_config", "ipv4_address", "ipv6_address",
                "link_local_ips", "driver_opts", "network_id")
_LEGACY_KEYS = ("Aliases", "Links", "MacAddress", "IPAMConfig", "IPv4Address", "IPv6Address",
                "LinkLocalIPs", "DriverOpts", "NetworkID")


def _endpoint(data: Mapping[str, Any], keys: tuple[str, ...]) -> EndpointSettings:
    aliases, links, mac, ipam_key, ipv4, ipv6, link_local, driver_opts, network_id = keys
    ipam = data.get(ipam_key)
    return EndpointSettings(
        aliases=_strings(data.get(aliases)), links=_strings(data.get(links)),
        mac_address=str(data.get(mac) or ""),
        ipam_config=None if ipam is None else EndpointIPAMConfig(
            ipv4_address=str(ipam.get(ipv4) or ""), ipv6_address=str(ipam.get(ipv6) or ""),
            link_local_ips=_strings(ipam.get(link_local)) or ()),
        driver_opts=None if data.get(driver_opts) is None else dict(data[driver_opts]),
        network_id=str(data.get(network_id) or ""),
    )


def endpoint_from_record(data: Mapping[str, Any]) -> EndpointSettings:
    return _endpoint(data, _RECORD_KEYS)


def endpoint_from_legacy(data: Mapping[str, Any] | None) -> EndpointSettings:
    """One EndpointsConfig entry as the previous format kept it (Docker's JSON, as sent)."""
    return _endpoint(data or {}, _LEGACY_KEYS)


def endpoints_from_record(data: Mapping[str, Any]) -> dict[str, EndpointSettings]:
    """The record's `endpoints`, or (previous format) its `networking_config`."""
    if "endpoints" in data:
        return {name: endpoint_from_record(e) for name, e in (data["endpoints"] or {}).items()}
    legacy = (data.get("networking_config") or {}).get("EndpointsConfig") or {}
    return {name: endpoint_from_legacy(e) for name, e in legacy.items()}


# --- HostConfig ---------------------------------------------------------------------------------
# Its record is `asdict` of the typed HostConfig (nested dataclasses as dicts, tuples as lists).
# One reader, driven by the dataclasses' type hints, rebuilds it from that and, with Go's field
# names for keys, from the previous format: the HostConfig dict the client sent, as the engine
# normalised it. Both are JSON, so only the container types need rebuilding.

T = TypeVar("T")
KeyOf = Callable[[str], str]

# Go's JSON names that are not the field name in CamelCase (moby's HostConfig and Resources).
_GO_NAMES = {
    "blkio_device_read_iops": "BlkioDeviceReadIOps", "blkio_device_write_iops": "BlkioDeviceWriteIOps",
    "io_maximum_iops": "IOMaximumIOps", "io_maximum_bandwidth": "IOMaximumBandwidth",
    "kernel_memory_tcp": "KernelMemoryTCP", "container_id_file": "ContainerIDFile", "uts_mode": "UTSMode",
}


def go_name(field_name: str) -> str:
    """`cpu_shares` → `CpuShares`: the wire name of a HostConfig field."""
    return _GO_NAMES.get(field_name) or "".join(part.capitalize() for part in field_name.split("_"))


def host_config_from_record(data: Mapping[str, Any]) -> HostConfig:
    """The record's `host_config`, either format (a legacy one has CamelCase keys)."""
    return host_config_from_legacy(data) if _is_legacy(data) else _decoder(HostConfig, False)(data)


def host_config_from_legacy(data: Mapping[str, Any]) -> HostConfig:
    """A HostConfig stored as Docker's JSON (as sent, normalised by the engine) as typed."""
    return _decoder(HostConfig, True)(data)


def host_config_to_record(hc: HostConfig) -> dict[str, Any]:
    """The record's `host_config`: the fields that differ from their defaults (a create sets a
    handful of HostConfig's ~70), nested values likewise; the reader fills in the rest."""
    return cast(dict[str, Any], _sparse(hc))


def _sparse(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        encoder = _ENCODERS.get(type(value))
        if encoder is None:
            encoder = _ENCODERS[type(value)] = _compile_encoder(type(value))
        return encoder(value)
    if isinstance(value, (tuple, list)):
        return [_sparse(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _sparse(v) for k, v in value.items()}
    return value


_ENCODERS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {}


def _compile_encoder(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    defaults = [(f.name, _default(f)) for f in fields(cls)]

    def encode(obj: Any) -> dict[str, Any]:
        out = {}
        for name, default in defaults:
            value = getattr(obj, name)
            if value != default:
                out[name] = _sparse(value)
        return out

    return encode


# Every container read decodes a HostConfig (`docker ps` of 100 containers reads 100), so the
# reader is compiled once per dataclass from its type hints: a converter per field, the identity
# for the JSON scalars, instead of walking the hints on every read.
Convert = Callable[[Any], Any]


_DECODERS: dict[tuple[type[Any], bool], Callable[[Mapping[str, Any] | None], Any]] = {}


def _decoder(cls: type[T], legacy: bool) -> Callable[[Mapping[str, Any] | None], T]:
    """data → an instance of the dataclass `cls`, reading field `f` at `go_name(f)` if `legacy`."""
    found = _DECODERS.get((cls, legacy))
    if found is None:
        found = _DECODERS[(cls, legacy)] = _compile(cls, legacy)
    return cast(Callable[[Mapping[str, Any] | None], T], found)


def _compile(cls: type[T], legacy: bool) -> Callable[[Mapping[str, Any] | None], T]:
    hints = typing.get_type_hints(cls)
    plan = {go_name(f.name) if legacy else f.name: (f.name, _converter(hints[f.name], legacy, f))
            for f in fields(cast(Any, cls))}

    def decode(data: Mapping[str, Any] | None) -> T:
        values = {}
        for key, raw in (data or {}).items():  # the record holds the set fields only
            known = plan.get(key)
            if known is not None:  # (a key of a later berth, or a wire key berth does not type)
                values[known[0]] = known[1](raw)
        return cls(**values)

    return decode


def _converter(hint: Any, legacy: bool, f: Field[Any] | None = None) -> Convert:
    """A function from JSON to the type `hint`. A null where the type has no None is Go's zero
    value: the field's default, or for a list item or map value the zero struct, "", 0 or False."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is types.UnionType and type(None) in args:
        inner = _converter(next(a for a in args if a is not type(None)), legacy)
        return lambda raw: None if raw is None else inner(raw)
    if f is not None:
        zero: Callable[[], Any] = functools.partial(_default, f)
    elif hint in (str, int, bool):
        zero = hint
    elif _is_dataclass_type(hint):
        zero = functools.partial(_decoder(hint, legacy), None)
    else:
        zero = type(None)
    if _is_dataclass_type(hint):
        build = _decoder(hint, legacy)
        return lambda raw: zero() if raw is None else build(raw)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _converter(args[0], legacy)

        def strings(raw: Any) -> Any:
            if raw is None:
                return zero()
            return tuple(item(v) for v in ([raw] if isinstance(raw, str) else raw))  # a StrSlice as one string
        return strings
    if origin is tuple:
        width = len(args)
        return lambda raw: zero() if raw is None else tuple([*raw, *[0] * width][:width])  # ConsoleSize: [2]uint
    if origin is Mapping:
        value = _converter(args[1], legacy)
        return lambda raw: zero() if raw is None else {k: value(v) for k, v in raw.items()}
    return lambda raw: zero() if raw is None else raw


def _is_dataclass_type(hint: Any) -> TypeGuard[type[Any]]:
    return isinstance(hint, type) and is_dataclass(hint)


def _default(f: Field[Any]) -> Any:
    factory: Any = f.default_factory  # every field of these dataclasses has a default
    return f.default if f.default is not MISSING else factory()
