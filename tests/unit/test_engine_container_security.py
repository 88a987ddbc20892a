"""SecurityOpt / CapAdd / Devices: moby's parsing and wording, and the ContainerSpec fields."""

from __future__ import annotations

import json

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed
from berth.engine.containers import _security as security
from berth.errors import InvalidArgument
from berth.runtime.spec import DeviceMapping


@pytest.mark.parametrize(("opts", "expected"), [
    (["no-new-privileges"], {"no_new_privileges": True}),
    (["no-new-privileges:true"], {"no_new_privileges": True}),
    (["no-new-privileges=false"], {"no_new_privileges": False}),
    (["seccomp=unconfined"], {"seccomp_profile": "unconfined"}),
    (["seccomp:unconfined"], {"seccomp_profile": "unconfined"}),
    (["apparmor=unconfined", "label=disable"], {"apparmor": "unconfined", "labels": ("disable",)}),
    (["systempaths=unconfined"], {"unconfined_system_paths": True}),
])
def test_parse_security_opts(opts: list[str], expected: dict) -> None:
    parsed = security.parse_security_opts(opts)
    for key, value in expected.items():
        assert getattr(parsed, key) == value


@pytest.mark.parametrize(("opt", "message"), [
    ("bogus", 'invalid --security-opt 1: "bogus"'),
    ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
    ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ("systempaths=confined", 'invalid --security-opt 2: "systempaths=confined"'),
])
def test_bad_security_opts(opt: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        security.parse_security_opts([opt])
    assert str(info.value) == message


@pytest.mark.parametrize(("field", "caps"), [("CapAdd", ["foo"]), ("CapDrop", ["CAP_NOPE"])])
def test_unknown_capability(field: str, caps: list[str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        security.validate(typed({field: caps}))
    cap = caps[0].upper()
    cap = cap if cap.startswith("CAP_") else "CAP_" + cap
    assert str(info.value) == f'invalid {field}: unknown capability: "{cap}"'


def test_known_capabilities_in_any_spelling() -> None:
    security.validate(typed({"CapAdd": ["net_admin", "CAP_SYS_ADMIN", "ALL"], "CapDrop": ["all", "chown"]}))


def test_seccomp_profile_is_checked_at_create() -> None:
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed"):
        security.validate(typed({"SecurityOpt": ["seccomp={broken"]}))
    security.validate(typed({"SecurityOpt": ["seccomp=" + json.dumps({"defaultAction": "SCMP_ACT_ALLOW"})]}))


def test_devices() -> None:
    hc = typed({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"},
                            {"PathOnHost": "/dev/zero", "PathInContainer": "", "CgroupPermissions": ""}]})
    security.validate(hc)
    assert security.device_mappings(hc) == (DeviceMapping("/dev/null", "/dev/mynull", "rw"),
                                            DeviceMapping("/dev/zero", "/dev/zero", "rwm"))


@pytest.mark.parametrize(("path", "message"), [
    ("/dev/does-not-exist", 'error gathering device information while adding custom device '
                            '"/dev/does-not-exist": no such file or directory'),
    ("/etc/hostname", 'error gathering device information while adding custom device '
                      '"/etc/hostname": not a device node'),
])
def test_bad_devices(path: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        security.validate(typed({"Devices": [{"PathOnHost": path, "PathInContainer": path, "CgroupPermissions": "rwm"}]}))
    assert str(info.value) == message


def test_bad_device_mode() -> None:
    with pytest.raises(InvalidArgument, match="invalid device mode: rwx"):
        security.device_mappings(typed({"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "rwx"}]}))


def test_spec_fields() -> None:
    fields = security.spec_fields(typed({"Privileged": True, "CapAdd": ["NET_ADMIN"], "ReadonlyRootfs": True,
                                   "SecurityOpt": ["no-new-privileges", "seccomp=unconfined"]}))
    assert fields["privileged"] and fields["readonly_rootfs"] and fields["no_new_privileges"]
    assert fields["cap_add"] == ("NET_ADMIN",) and fields["seccomp_profile"] == "unconfined"
    assert "masked_paths" not in fields
    assert security.spec_fields(typed({"SecurityOpt": ["systempaths=unconfined"]}))["masked_paths"] == ()
    assert security.spec_fields(typed({"MaskedPaths": ["/proc/x"]}))["masked_paths"] == ("/proc/x",)
