"""Pure logic behind the small Docker API edges: version bounds, Info fields, bare Env names,
the removal guard, and the /etc mounts of a read-only container."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.types.container import ContainerConfig
from berth.api.docker.server import API_VERSION, MIN_API_VERSION, version_refusal
from berth.engine.containers import _config as cfg
from berth.engine import etc_files, system_info
from berth.engine.containers._model import Container, ContainerState, check_can_remove
from berth.errors import Conflict
from berth.runtime import ContainerSpec
from berth.runtime.oci import _container_env
from berth.runtime.users import ExecUser


@pytest.mark.parametrize("version", [MIN_API_VERSION, "1.41", "1.44", API_VERSION])
def test_versions_in_range_are_served(version: str) -> None:
    assert version_refusal(version) is None


def test_version_bounds_in_dockerds_words() -> None:
    assert version_refusal("1.99") == "client version 1.99 is too new. Maximum supported API version is 1.50"
    assert version_refusal("2.0") == "client version 2.0 is too new. Maximum supported API version is 1.50"
    assert version_refusal("1.11") == ("client version 1.11 is too old. Minimum supported API version is 1.24, "
                                       "please upgrade your client to a newer version")
    assert version_refusal("1.9") is not None and "too old" in str(version_refusal("1.9"))  # numeric, not text order
    assert version_refusal("1.100") is not None and "too new" in str(version_refusal("1.100"))


def test_rfc3339_nano_like_go() -> None:
    utc = datetime(2026, 12, 7, 8, 1, 2, 120000, tzinfo=timezone.utc)
    assert system_info.rfc3339_nano(utc) == "2026-12-07T08:01:02.12Z"
    assert system_info.rfc3339_nano(utc.replace(microsecond=0)) == "2026-12-07T08:01:02Z"
    cet = datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=timezone(timedelta(hours=1)))
    assert system_info.rfc3339_nano(cet) == "2026-01-02T03:04:05.000001+01:00"
    west = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=3, minutes=30)))
    assert system_info.rfc3339_nano(west) == "2026-01-02T03:04:05-03:30"


def test_info_fields_are_what_was_found() -> None:
    facts = system_info.HostFacts(memory_limit=True, swap_limit=False, oom_kill_disable=True, cpu_cfs=True,
                                  cpu_shares=True, cpuset=True, pids_limit=True, ipv4_forwarding=True,
                                  os_version="12")
    fields = system_info.info_fields(
        facts, debug=False, open_fds=17, workers=9, listeners=2,
        now=datetime(2026, 1, 1, tzinfo=timezone.utc),
        environ={"https_proxy": "http://bob:s3cret@proxy:3128", "NO_PROXY": "localhost"},
        runtime_commit_id="abc123")
    assert fields["NFd"] == 17 and fields["NGoroutines"] == 9 and fields["NEventsListener"] == 2
    assert fields["Debug"] is False and fields["SystemTime"] == "2026-01-01T00:00:00Z"
    assert fields["MemoryLimit"] and not fields["SwapLimit"] and fields["OomKillDisable"]
    assert fields["HttpsProxy"] == "http://bob:xxxxx@proxy:3128"  # dockerd masks the password
    assert fields["HttpProxy"] == "" and fields["NoProxy"] == "localhost"
    assert fields["RuncCommit"] == {"ID": "abc123"} and fields["OSVersion"] == "12"


def test_probe_host_cgroup_v1(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    for rel in ("memory/memory.limit_in_bytes", "memory/memory.oom_control", "cpu/cpu.cfs_quota_us",
                "cpu/cpu.shares", "cpuset/cpuset.cpus", "pids/pids.max"):
        (cg / rel).parent.mkdir(parents=True, exist_ok=True)
        (cg / rel).write_text("1")
    proc = tmp_path / "proc"
    (proc / "sys/net/ipv4").mkdir(parents=True)
    (proc / "sys/net/ipv4/ip_forward").write_text("1\n")
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian GNU/Linux"\nVERSION_ID="12"\n')
    facts = system_info.probe_host(cg, proc, release)
    assert facts == system_info.HostFacts(memory_limit=True, swap_limit=False, oom_kill_disable=True,
                                          cpu_cfs=True, cpu_shares=True, cpuset=True, pids_limit=True,
                                          ipv4_forwarding=True, os_version="12")


def test_probe_host_cgroup_v2(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "system.slice").mkdir()
    (tmp_path / "system.slice" / "memory.swap.max").write_text("max")
    facts = system_info.probe_host(tmp_path, tmp_path / "no-proc", tmp_path / "no-release")
    assert facts.memory_limit and facts.swap_limit and facts.cpu_cfs and facts.pids_limit
    assert not facts.oom_kill_disable and not facts.ipv4_forwarding and facts.os_version == ""


def test_bare_env_names_are_kept_in_config() -> None:
    merged = cfg.merge_env(["PATH=/bin", "LANG=C"], ["LANG", "A=1", "B"])
    assert merged == ["PATH=/bin", "LANG", "A=1", "B"]


def test_bare_env_names_are_unset_in_the_process() -> None:
    user = ExecUser(uid=0, gid=0, additional_gids=(), home="/root")
    spec = ContainerSpec(id="c" * 64, args=("sh",), env=("A=1", "BARE", "PATH"), hostname="h")
    env = _container_env(spec, user)
    assert env == ["A=1", "HOSTNAME=h", "HOME=/root"]  # no BARE, and no default PATH either


def container(status: str) -> Container:
    c = Container(id="f" * 64, name="web", created="", image="busybox", image_id="sha256:" + "0" * 64,
                  config=ContainerConfig(), host_config=typed_hc({}), mounts=[])
    c.state = ContainerState(status=status)
    return c


@pytest.mark.parametrize(("status", "words"), [
    ("running", 'cannot remove container "/web": container is running: '
                "stop the container before removing or force remove"),
    ("restarting", 'cannot remove container "/web": container is restarting: '
                   "stop the container before removing or force remove"),
    ("paused", 'cannot remove container "/web": container is paused and must be unpaused first'),
])
def test_removal_guard_in_mobys_words(status: str, words: str) -> None:
    with pytest.raises(Conflict) as err:
        check_can_remove(container(status), force=False)
    assert str(err.value) == words
    check_can_remove(container(status), force=True)


def test_removal_of_stopped_containers_is_allowed() -> None:
    for status in ("created", "exited", "dead"):
        check_can_remove(container(status), force=False)


def test_etc_mounts_follow_the_read_only_rootfs(tmp_path: Path) -> None:
    ro = etc_files.etc_mounts(tmp_path, read_only=True)
    rw = etc_files.etc_mounts(tmp_path, read_only=False)
    assert [m.destination for m in ro] == ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
    assert all("ro" in m.options for m in ro) and not any("ro" in m.options for m in rw)
    assert all(m.source == str(tmp_path / m.destination.removeprefix("/etc/")) for m in ro)
