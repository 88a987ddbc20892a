"""HostConfig's security fields (CapAdd/CapDrop, SecurityOpt, Devices, Privileged) checked and
turned into ContainerSpec values, with moby's wording for every refusal.

    container_security.validate(host_config)          # at create: 400 before anything exists
    ContainerSpec(..., **container_security.spec_fields(host_config))   # at start
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime.devices import device_nodes
from berth.runtime.oci import ALL_CAPS, normalize_cap
from berth.runtime.seccomp import parse_profile
from berth.runtime.spec import DeviceMapping
from berth.types.host_config import DeviceMapping as DeviceRequest
from berth.types.host_config import HostConfig


@dataclass(frozen=True)
class SecurityOptions:
    """What `--security-opt` entries ask for."""

    no_new_privileges: bool = False
    seccomp_profile: str = ""  # "", "unconfined", "default"/"builtin", or a JSON profile
    unconfined_system_paths: bool = False  # systempaths=unconfined: no masked/read-only paths
    apparmor: str = ""  # accepted and recorded; this host has no AppArmor
    labels: tuple[str, ...] = ()  # SELinux labels: accepted, unused (no SELinux here)


def _bool(text: str, opt: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')


def parse_security_opts(opts: tuple[str, ...] | None) -> SecurityOptions:
    """moby's parseSecurityOpt: `key=value` (or the deprecated `key:value`) entries."""
    fields: dict[str, Any] = {"labels": []}
    for opt in opts or []:
        if opt == "no-new-privileges":
            fields["no_new_privileges"] = True
            continue
        if opt == "disable":
            fields["labels"].append("disable")
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        if not sep:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        key, value = opt.split(sep, 1)
        if key == "no-new-privileges":
            fields["no_new_privileges"] = _bool(value, opt)
        elif key == "seccomp":
            fields["seccomp_profile"] = value
        elif key == "apparmor":
            fields["apparmor"] = value
        elif key == "label":
            fields["labels"].append(value)
        elif key == "systempaths" and value == "unconfined":
            fields["unconfined_system_paths"] = True
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    fields["labels"] = tuple(fields["labels"])
    return SecurityOptions(**fields)


def check_capabilities(kind: str, names: tuple[str, ...] | None) -> None:
    """moby's NormalizeLegacyCapabilities at create: `invalid CapAdd: unknown capability: "CAP_FOO"`."""
    for name in names or []:
        cap = normalize_cap(name)
        if cap != "CAP_ALL" and cap not in ALL_CAPS:
            raise InvalidArgument(f'invalid {kind}: unknown capability: "{cap}"')


def device_mappings(host_config: HostConfig) -> tuple[DeviceMapping, ...]:
    """HostConfig.Devices (`PathOnHost`, `PathInContainer`, `CgroupPermissions`)."""
    return tuple(_device_mapping(entry) for entry in host_config.devices or ())


def _device_mapping(entry: DeviceRequest) -> DeviceMapping:
    if not entry.path_on_host:
        raise InvalidArgument(f"invalid device mapping: {_device_json(entry)!r}")
    permissions = entry.cgroup_permissions or "rwm"
    if set(permissions) - set("rwm"):
        raise InvalidArgument(f"invalid device mode: {permissions}")
    return DeviceMapping(on_host=entry.path_on_host, in_container=entry.path_in_container or entry.path_on_host,
                         permissions=permissions)


def _device_json(entry: DeviceRequest) -> dict[str, str]:
    """The entry as the client sent it (the message shows Docker's JSON)."""
    return {"PathOnHost": entry.path_on_host, "PathInContainer": entry.path_in_container,
            "CgroupPermissions": entry.cgroup_permissions}


def validate(host_config: HostConfig) -> None:
    """Everything moby refuses at create, plus missing devices (moby only finds those at start)."""
    check_capabilities("CapAdd", host_config.cap_add)
    check_capabilities("CapDrop", host_config.cap_drop)
    options = parse_security_opts(host_config.security_opt)
    if options.seccomp_profile not in ("", "unconfined", "default", "builtin"):
        parse_profile(options.seccomp_profile)
    for mapping in device_mappings(host_config):
        device_nodes(mapping.on_host, mapping.in_container, mapping.permissions)


def spec_fields(host_config: HostConfig) -> dict[str, Any]:
    """ContainerSpec keyword arguments for the security fields of `host_config`."""
    options = parse_security_opts(host_config.security_opt)
    fields: dict[str, Any] = {
        "privileged": host_config.privileged,
        "cap_add": host_config.cap_add or (),
        "cap_drop": host_config.cap_drop or (),
        "readonly_rootfs": host_config.readonly_rootfs,
        "no_new_privileges": options.no_new_privileges,
        "seccomp_profile": options.seccomp_profile,
        "devices": device_mappings(host_config),
    }
    if options.unconfined_system_paths:
        fields["masked_paths"] = fields["readonly_paths"] = ()
    else:  # set explicitly through the API: they replace the defaults
        if host_config.masked_paths is not None:
            fields["masked_paths"] = host_config.masked_paths
        if host_config.readonly_paths is not None:
            fields["readonly_paths"] = host_config.readonly_paths
    return fields
