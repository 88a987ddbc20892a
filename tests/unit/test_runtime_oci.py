"""build_oci_spec and user resolution: pure, against a fake rootfs."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.errors import InvalidArgument
from berth.runtime import ContainerSpec, ExecSpec, Mount, Resources, build_oci_spec
from berth.runtime.oci import ALL_CAPS, DEFAULT_CAPS, build_exec_process
from berth.runtime.users import resolve_user

PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n"
GROUP = "root:x:0:\nalice:x:1001:\nstaff:x:50:alice,bob\nwheel:x:10:bob\n"
ALL = frozenset(ALL_CAPS)
NO_SYS_RESOURCE = ALL - {"CAP_SYS_RESOURCE"}


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    return tmp_path


def build(rootfs: Path, **kwargs: object) -> dict:
    spec = ContainerSpec(id="c" * 64, args=("sh",), env=("A=1",), **kwargs)  # type: ignore[arg-type]
    return build_oci_spec(spec, rootfs, hard_limits={"nofile": 20000}, available_caps=ALL)


def test_process_basics(rootfs: Path) -> None:
    s = build(rootfs, cwd="/srv", tty=True)
    p = s["process"]
    assert p["args"] == ["sh"] and p["cwd"] == "/srv" and p["terminal"] is True
    assert p["user"] == {"uid": 0, "gid": 0}
    assert p["env"][0] == "A=1"
    assert "TERM=xterm" in p["env"] and "HOME=/root" in p["env"]
    assert any(e.startswith("PATH=/usr/local/sbin:") for e in p["env"])
    assert f"HOSTNAME={'c' * 12}" in p["env"]
    assert p["noNewPrivileges"] is False and p["oomScoreAdj"] == 0
    assert "rlimits" not in p
    assert s["root"] == {"path": str(rootfs), "readonly": False}
    assert s["hostname"] == "c" * 12


def test_env_from_image_wins_over_defaults(rootfs: Path) -> None:
    spec = ContainerSpec(id="x", args=("sh",), env=("PATH=/bin", "HOME=/h"))
    env = build_oci_spec(spec, rootfs, hard_limits={}, available_caps=ALL)["process"]["env"]
    assert "PATH=/bin" in env and "HOME=/h" in env
    assert not any(e.startswith("PATH=/usr") for e in env)


@pytest.mark.parametrize(
    ("user", "uid", "gid", "extra"),
    [
        ("", 0, 0, []),
        ("alice", 1000, 1001, [50]),
        ("1000", 1000, 1001, [50]),
        ("1000:10", 1000, 10, []),
        ("alice:wheel", 1000, 10, []),
        ("4242", 4242, 0, []),  # numeric uid not in passwd is allowed
        ("4242:4243", 4242, 4243, []),
    ],
)
def test_user_forms(rootfs: Path, user: str, uid: int, gid: int, extra: list[int]) -> None:
    u = build(rootfs, user=user)["process"]["user"]
    assert (u["uid"], u["gid"], u.get("additionalGids", [])) == (uid, gid, extra)


def test_unknown_user_has_docker_wording(rootfs: Path) -> None:
    wording = "^unable to find user nosuch: no matching entries in passwd file$"
    with pytest.raises(InvalidArgument, match=wording):
        build(rootfs, user="nosuch")
    with pytest.raises(InvalidArgument, match="unable to find group nogroup"):
        build(rootfs, user="alice:nogroup")


def test_user_without_passwd_file(tmp_path: Path) -> None:
    assert resolve_user("7:8", None, None).uid == 7
    with pytest.raises(InvalidArgument, match="unable to find user bob"):
        resolve_user("bob", None, None)


def test_home_comes_from_passwd(rootfs: Path) -> None:
    assert "HOME=/home/alice" in build(rootfs, user="alice")["process"]["env"]


def test_namespaces_with_netns_and_host_network(rootfs: Path) -> None:
    ns = build(rootfs, netns_path="/var/run/netns/x")["linux"]["namespaces"]
    assert {n["type"] for n in ns} == {"pid", "ipc", "uts", "mount", "network"}
    assert {"type": "network", "path": "/var/run/netns/x"} in ns
    host = build(rootfs)["linux"]["namespaces"]
    assert "network" not in {n["type"] for n in host}


def test_default_capabilities_are_dockers(rootfs: Path) -> None:
    caps = build(rootfs)["process"]["capabilities"]
    assert set(caps) == {"bounding", "effective", "permitted"}
    assert sorted(caps["bounding"]) == sorted(DEFAULT_CAPS)
    assert len(DEFAULT_CAPS) == 14 and "CAP_NET_RAW" in DEFAULT_CAPS


def test_cap_add_and_drop(rootfs: Path) -> None:
    caps = build(rootfs, cap_add=("net_admin",), cap_drop=("CAP_CHOWN", "mknod"))
    bounding = set(caps["process"]["capabilities"]["bounding"])
    assert "CAP_NET_ADMIN" in bounding and not {"CAP_CHOWN", "CAP_MKNOD"} & bounding
    only = build(rootfs, cap_drop=("ALL",), cap_add=("KILL",))["process"]["capabilities"]
    assert only["effective"] == ["CAP_KILL"]
    every = build(rootfs, cap_add=("ALL",), cap_drop=("SYS_ADMIN",))["process"]["capabilities"]
    assert len(every["bounding"]) == len(ALL_CAPS) - 1


def test_unknown_capability_is_invalid(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_FOO"'):
        build(rootfs, cap_add=("foo",))


def test_capabilities_limited_to_what_the_daemon_holds(rootfs: Path) -> None:
    spec = ContainerSpec(id="x", args=("sh",), env=(), privileged=True)
    s = build_oci_spec(spec, rootfs, hard_limits={}, available_caps=NO_SYS_RESOURCE)
    assert "CAP_SYS_RESOURCE" not in s["process"]["capabilities"]["bounding"]
    assert len(s["process"]["capabilities"]["bounding"]) == len(ALL_CAPS) - 1


def test_masked_and_readonly_paths(rootfs: Path) -> None:
    linux = build(rootfs)["linux"]
    assert "/proc/kcore" in linux["maskedPaths"] and "/sys/firmware" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"] and "/proc/sysrq-trigger" in linux["readonlyPaths"]
    privileged = build(rootfs, privileged=True)["linux"]
    assert "maskedPaths" not in privileged and "readonlyPaths" not in privileged
    assert privileged["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_default_mounts(rootfs: Path) -> None:
    mounts = {m["destination"]: m for m in build(rootfs)["mounts"]}
    assert set(mounts) == {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}
    assert f"size={64 * 1024 * 1024}" in mounts["/dev/shm"]["options"]
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]


def test_user_mounts_append_and_override_defaults(rootfs: Path) -> None:
    hosts = Mount("/var/lib/berth/c/hosts", "/etc/hosts")
    shm = Mount("tmpfs", "/dev/shm", "tmpfs", ("size=1m",))
    mounts = build(rootfs, mounts=(hosts, shm))["mounts"]
    assert mounts[-2] == {"destination": "/etc/hosts", "type": "bind",
                          "source": "/var/lib/berth/c/hosts", "options": ["rbind", "rprivate"]}
    assert [m for m in mounts if m["destination"] == "/dev/shm"] == [mounts[-1]]


def test_readonly_rootfs(rootfs: Path) -> None:
    assert build(rootfs, readonly_rootfs=True)["root"]["readonly"] is True


def test_cgroups_path_and_limits(rootfs: Path) -> None:
    res = Resources(memory=64 << 20, cpu_shares=512, nano_cpus=1_500_000_000, cpuset_cpus="0-1",
                    pids_limit=20)  # fmt: skip
    linux = build(rootfs, resources=res, cgroup_parent="/custom/")["linux"]
    assert linux["cgroupsPath"] == f"/custom/{'c' * 64}"
    r = linux["resources"]
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert r["cpu"] == {"shares": 512, "period": 100000, "quota": 150000, "cpus": "0-1"}
    assert r["pids"] == {"limit": 20}


def test_default_cgroup_parent_and_explicit_quota(rootfs: Path) -> None:
    res = Resources(memory=1 << 30, memory_swap=-1, cpu_period=50000, cpu_quota=25000)
    linux = build(rootfs, resources=res)["linux"]
    assert linux["cgroupsPath"] == f"/berth/{'c' * 64}"
    assert linux["resources"]["memory"] == {"limit": 1 << 30}
    assert linux["resources"]["cpu"] == {"period": 50000, "quota": 25000}
    assert "pids" not in linux["resources"]


def test_device_rules_deny_by_default(rootfs: Path) -> None:
    devices = build(rootfs)["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in devices
    assert {"allow": True, "type": "c", "major": 136, "access": "rwm"} in devices


def test_rlimits_clamped_to_daemon_hard_limit(rootfs: Path) -> None:
    ulimits = (("nofile", 1048576, 1048576), ("nproc", 100, 200), ("core", 0, 0))
    rl = build(rootfs, ulimits=ulimits)["process"]["rlimits"]
    assert rl == [
        {"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000},
        {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    with pytest.raises(InvalidArgument, match="invalid ulimit type"):
        build(rootfs, ulimits=(("bogus", 1, 1),))


def test_annotations(rootfs: Path) -> None:
    assert build(rootfs, annotations=(("a", "b"),))["annotations"] == {"a": "b"}


def test_exec_process_inherits_and_overrides(rootfs: Path) -> None:
    container = build(rootfs, user="alice", cwd="/srv")["process"]
    p = build_exec_process(container, ExecSpec(args=("ls",), env=("A=2", "B=3"), tty=True), rootfs)
    assert p["args"] == ["ls"] and p["terminal"] is True and p["cwd"] == "/srv"
    assert p["user"] == container["user"]
    assert "A=2" in p["env"] and "B=3" in p["env"] and "A=1" not in p["env"]
    assert "TERM=xterm" in p["env"]
    root = build_exec_process(container, ExecSpec(args=("id",), user="root", cwd="/tmp"), rootfs)
    assert root["user"] == {"uid": 0, "gid": 0} and root["cwd"] == "/tmp"


def test_console_size_only_for_a_tty(tmp_path: Path) -> None:
    from berth.runtime import ContainerSpec, build_oci_spec

    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\n")
    tty = ContainerSpec(id="a" * 64, args=("sh",), env=(), tty=True, console_size=(30, 100))
    assert build_oci_spec(tty, tmp_path)["process"]["consoleSize"] == {"height": 30, "width": 100}
    plain = ContainerSpec(id="a" * 64, args=("sh",), env=(), console_size=(30, 100))
    assert "consoleSize" not in build_oci_spec(plain, tmp_path)["process"]
