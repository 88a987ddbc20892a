"""build_oci_spec's security parts: seccomp, no_new_privileges, devices, privileged, system paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from berth.runtime import ContainerSpec, Resources, build_oci_spec
from berth.runtime.devices import device_nodes, host_devices
from berth.runtime.oci import ALL_CAPS, MASKED_PATHS, update_resources
from berth.runtime.spec import DeviceMapping

ALL = frozenset(ALL_CAPS)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\n")
    return tmp_path


def build(rootfs: Path, **kwargs: object) -> dict:
    spec = ContainerSpec(id="c" * 64, args=("sh",), env=(), **kwargs)  # type: ignore[arg-type]
    return build_oci_spec(spec, rootfs, hard_limits={}, available_caps=ALL)


def names(config: dict) -> set[str]:
    return {n for r in config["linux"]["seccomp"]["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}


def test_default_container_gets_the_default_profile(rootfs: Path) -> None:
    config = build(rootfs)
    assert config["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "mount" not in names(config) and "read" in names(config)
    assert config["process"]["noNewPrivileges"] is False
    assert config["linux"]["maskedPaths"] == list(MASKED_PATHS)


def test_profile_follows_cap_add(rootfs: Path) -> None:
    assert "mount" in names(build(rootfs, cap_add=("SYS_ADMIN",)))
    assert "chroot" not in names(build(rootfs, cap_drop=("ALL",)))


def test_unconfined_and_privileged_have_no_filter(rootfs: Path) -> None:
    assert "seccomp" not in build(rootfs, seccomp_profile="unconfined")["linux"]
    privileged = build(rootfs, privileged=True)
    assert "seccomp" not in privileged["linux"] and "maskedPaths" not in privileged["linux"]
    assert privileged["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert {"/dev/null", "/dev/zero"} <= {d["path"] for d in privileged["linux"]["devices"]}
    assert not any(d["path"].startswith("/dev/pts/") for d in privileged["linux"]["devices"])
    sys_mount = next(m for m in privileged["mounts"] if m["destination"] == "/sys")
    assert "rw" in sys_mount["options"]


def test_custom_profile(rootfs: Path) -> None:
    profile = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})
    seccomp = build(rootfs, seccomp_profile=profile)["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ALLOW" and seccomp["syscalls"][0]["names"] == ["mkdir"]


def test_no_new_privileges(rootfs: Path) -> None:
    assert build(rootfs, no_new_privileges=True)["process"]["noNewPrivileges"] is True


def test_device_mapping(rootfs: Path) -> None:
    config = build(rootfs, devices=(DeviceMapping("/dev/null", "/dev/mynull", "rw"),))
    st = os.stat("/dev/null")
    (device,) = config["linux"]["devices"]
    assert device["path"] == "/dev/mynull" and device["type"] == "c"
    assert (device["major"], device["minor"]) == (os.major(st.st_rdev), os.minor(st.st_rdev))
    assert config["linux"]["resources"]["devices"][-1] == {
        "allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}


def test_system_paths(rootfs: Path) -> None:
    config = build(rootfs, masked_paths=(), readonly_paths=())
    assert config["linux"]["maskedPaths"] == [] and config["linux"]["readonlyPaths"] == []


def test_device_directory_and_host_devices() -> None:
    nodes = device_nodes("/dev", "/dev")
    assert any(n.path == "/dev/null" for n in nodes)
    assert all(n.kind in "cb" for n in host_devices())


def test_update_resources() -> None:
    res = Resources(memory=128 << 20, memory_swap=256 << 20, pids_limit=0, cpu_shares=512)
    assert update_resources(res) == {"memory": {"limit": 128 << 20, "swap": 256 << 20}, "cpu": {"shares": 512}}
    # lifting a limit: the kernel's largest pids.max (crun writes -1 to cgroup v1 as "-1": EINVAL)
    assert update_resources(res, lift_pids=True)["pids"] == {"limit": 4 * 1024 * 1024}
    assert update_resources(Resources(pids_limit=7), lift_pids=True)["pids"] == {"limit": 7}
