"""The seccomp profile generator: Docker's default profile resolved per capabilities and arch."""

from __future__ import annotations

import json

import pytest

from berth.errors import InvalidArgument
from berth.runtime import seccomp
from berth.runtime.oci import ALL_CAPS, DEFAULT_CAPS


def allowed(oci: dict, name: str) -> list[dict]:
    return [r for r in oci["syscalls"] if name in r["names"] and r["action"] == seccomp.ALLOW]


def resolve(caps=DEFAULT_CAPS, arch="x86_64", kernel=(6, 1)) -> dict:
    return seccomp.resolve(seccomp.default_profile(), caps=caps, arch=arch, kernel=kernel)


def test_default_is_an_eperm_allowlist() -> None:
    oci = resolve()
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == 1
    for name in ("read", "write", "execve", "openat", "fork", "wait4", "exit_group"):
        assert allowed(oci, name), name
    json.dumps(oci)  # plain JSON for config.json


@pytest.mark.parametrize(("arch", "expected"), [
    ("x86_64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("aarch64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
])
def test_architectures_follow_the_host(arch: str, expected: list[str]) -> None:
    assert resolve(arch=arch)["architectures"] == expected


def test_arch_specific_syscalls() -> None:
    assert allowed(resolve(arch="x86_64"), "arch_prctl")
    assert not allowed(resolve(arch="aarch64"), "arch_prctl")
    assert allowed(resolve(arch="aarch64"), "set_tls")
    assert not allowed(resolve(arch="x86_64"), "set_tls")


@pytest.mark.parametrize(("cap", "syscalls"), [
    ("CAP_SYS_ADMIN", ("mount", "umount2", "unshare", "setns", "sethostname")),
    ("CAP_SYS_MODULE", ("init_module", "finit_module", "delete_module")),
    ("CAP_SYS_BOOT", ("reboot",)),
    ("CAP_SYS_TIME", ("settimeofday", "clock_settime")),
    ("CAP_SYS_PTRACE", ("kcmp", "pidfd_getfd")),
    ("CAP_SYS_RAWIO", ("iopl", "ioperm")),
    ("CAP_SYS_PACCT", ("acct",)),
    ("CAP_DAC_READ_SEARCH", ("open_by_handle_at",)),
])
def test_capability_conditional_rules(cap: str, syscalls: tuple[str, ...]) -> None:
    without = resolve(caps=DEFAULT_CAPS)
    with_cap = resolve(caps=(*DEFAULT_CAPS, cap))
    for name in syscalls:
        assert not allowed(without, name), name
        assert allowed(with_cap, name), name


def test_chroot_follows_sys_chroot() -> None:
    assert allowed(resolve(caps=DEFAULT_CAPS), "chroot")  # in Docker's default capability set
    assert not allowed(resolve(caps=()), "chroot")


def test_clone_without_sys_admin_may_not_create_namespaces() -> None:
    rules = allowed(resolve(caps=DEFAULT_CAPS), "clone")
    assert len(rules) == 1
    (arg,) = rules[0]["args"]
    assert arg["op"] == "SCMP_CMP_MASKED_EQ" and arg["index"] == 0 and arg["value"] == 0x7E020000
    assert arg.get("valueTwo", 0) == 0
    clone3 = [r for r in resolve(caps=DEFAULT_CAPS)["syscalls"] if "clone3" in r["names"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_clone_with_sys_admin_is_unrestricted() -> None:
    oci = resolve(caps=ALL_CAPS)
    assert all("args" not in r for r in allowed(oci, "clone"))
    assert allowed(oci, "clone3")
    assert not [r for r in oci["syscalls"] if "clone3" in r["names"] and r["action"] != seccomp.ALLOW]


def test_min_kernel_filter() -> None:
    assert allowed(resolve(kernel=(6, 1)), "ptrace")
    assert not allowed(resolve(kernel=(4, 4)), "ptrace")


def test_vsock_sockets_are_refused() -> None:
    (rule,) = allowed(resolve(), "socket")
    assert rule["args"] == [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]


def test_user_profile_with_includes_and_excludes() -> None:
    text = json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_FOWNER"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "4.8"}},
        ],
    })
    oci = seccomp.resolve(seccomp.parse_profile(text), caps=["CAP_FOWNER"], arch="x86_64", kernel=(6, 1))
    assert oci["defaultAction"] == "SCMP_ACT_ALLOW" and "defaultErrnoRet" not in oci
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert oci["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]


def test_oci_style_profile_passes_through() -> None:
    text = json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                       "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})
    oci = seccomp.resolve(seccomp.parse_profile(text), caps=[], arch="x86_64")
    assert oci == {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                   "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "Decoding seccomp profile failed"),
    ('{"architectures": ["a"], "archMap": [{"architecture": "a"}]}', "use either 'architectures' or 'archMap'"),
    ('{"syscalls": [{"name": "a", "names": ["b"]}]}', "use either 'name' or 'names'"),
    ('{"syscalls": [{"names": ["a"], "includes": {"minKernel": "x"}}]}', "invalid kernel version"),
])
def test_bad_profiles(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        seccomp.parse_profile(text)


def test_kernel_version_parsing() -> None:
    assert seccomp.kernel_version("6.18.44-fc-v657") == (6, 18)
    assert seccomp.kernel_version("garbage") == (0, 0)
