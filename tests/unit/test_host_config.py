"""The typed HostConfig: wire → typed at the API edge, typed → inspect JSON in dockerd's shape,
`docker update` merged into it, and records in both the current and the previous (CamelCase)
format."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire, update_from_wire
from berth.api.docker.wire import CONTAINER_CREATE, CONTAINER_UPDATE
from berth.api.shapes import check
from berth.api.docker.host_config_json import host_config_json
from berth.engine.containers import Container
from berth.engine.containers import _config as cfg
from berth.engine.containers import _limits as limits
from berth.engine.containers._stored import host_config_from_legacy, host_config_from_record, host_config_to_record
from berth.errors import InvalidArgument
from berth.types.host_config import (
    BindOptions, HostConfig, Mount, PortBinding, RestartPolicy, TmpfsOptions, Ulimit, VolumeDriver, VolumeOptions,
)

# HostConfig as docker CLI 28 sends it for `docker create busybox`: Go marshals the whole struct,
# in its field order, with its zero values (nil slices as null), the CLI's own lists as [] and its
# defaults (MemorySwappiness -1, OomKillDisable false).
CLI_HOST_CONFIG: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
    "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
    "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
    "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
    "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
    "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": -1, "OomKillDisable": False, "PidsLimit": None, "Ulimits": [], "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}


def created(body: dict[str, Any]) -> HostConfig:
    """The HostConfig a create keeps: checked, converted, normalised (as ContainerService.create)."""
    checked = check({"Image": "busybox", "HostConfig": body}, CONTAINER_CREATE)["HostConfig"]
    return limits.normalize(cfg.normalize_host_config(host_config_from_wire(checked)))


def test_inspect_shows_what_dockerd_shows_for_a_plain_run() -> None:
    """Every key, in dockerd's order; the daemon fills NetworkMode, the log driver and Runtime."""
    shown = host_config_json(created(CLI_HOST_CONFIG), default_runtime="crun")
    expected = dict(CLI_HOST_CONFIG, NetworkMode="bridge", LogConfig={"Type": "json-file", "Config": {}})
    keys = list(expected)
    keys.insert(keys.index("Isolation"), "Runtime")  # Runtime (omitempty) sits before Isolation
    expected["Runtime"] = "crun"
    assert list(shown) == keys
    assert shown == expected


def test_inspect_of_a_docker_py_create_shows_zero_values_for_what_was_not_sent() -> None:
    shown = host_config_json(created({}), default_runtime="runc")
    assert shown["Binds"] is None and shown["Dns"] is None and shown["Ulimits"] is None
    assert shown["MemorySwappiness"] is None and shown["OomKillDisable"] is None and shown["PidsLimit"] is None
    assert shown["PortBindings"] == {} and shown["ConsoleSize"] == [0, 0]
    assert shown["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert shown["LogConfig"] == {"Type": "json-file", "Config": {}}
    for omitted in ("Annotations", "StorageOpt", "Tmpfs", "Sysctls", "KernelMemory", "KernelMemoryTCP", "Mounts",
                    "Init"):
        assert omitted not in shown, omitted
    assert host_config_json(created({"Runtime": "runc"}), default_runtime="crun")["Runtime"] == "runc"


RICH: dict[str, Any] = {
    "Binds": ["/srv:/srv:ro"], "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, None],
                                                "53/udp": None},
    "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "CapAdd": "NET_ADMIN",
    "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}], "Memory": 64 << 20, "PidsLimit": 0,
    "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rw"}],
    "BlkioDeviceReadIOps": [{"Path": "/dev/sda", "Rate": 100}], "ConsoleSize": [24, 80], "Init": False,
    "Tmpfs": {"/run": "size=64m"}, "Sysctls": {"net.ipv4.ip_forward": "1"}, "OomKillDisable": True,
    "DeviceRequests": [{"Driver": "nvidia", "Count": -1}],
    "Mounts": [
        {"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {
            "NoCopy": True, "Subpath": "sub", "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}},
        {"Type": "bind", "Source": "/h", "Target": "/b", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave", "CreateMountpoint": True}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700, "Options": [["exec"]]}},
    ],
}


def test_the_wire_form_is_typed_once() -> None:
    hc = created(RICH)
    assert hc.port_bindings == {"80/tcp": (PortBinding("127.0.0.1", "8080"), PortBinding()), "53/udp": None}
    assert hc.restart_policy == RestartPolicy("on-failure", 3) and hc.cap_add == ("NET_ADMIN",)
    assert hc.ulimits == (Ulimit(name="nofile", hard=2048, soft=1024),)
    assert (hc.memory, hc.memory_swap, hc.pids_limit) == (64 << 20, 128 << 20, None)  # moby's defaults
    assert hc.console_size == (24, 80) and hc.init is False and hc.oom_kill_disable is True
    assert hc.mounts == (
        Mount(type="volume", source="v", target="/v", volume_options=VolumeOptions(
            no_copy=True, subpath="sub", driver_config=VolumeDriver(name="local", options={"type": "tmpfs"}))),
        Mount(type="bind", source="/h", target="/b", read_only=True,
              bind_options=BindOptions(propagation="rslave", create_mountpoint=True)),
        Mount(type="tmpfs", target="/t", tmpfs_options=TmpfsOptions(size_bytes=1024, mode=0o700, options=(("exec",),))),
    )


def test_inspect_renders_nested_values_as_go_marshals_them() -> None:
    shown = host_config_json(created(RICH))
    assert shown["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"},
                                                {"HostIp": "", "HostPort": ""}], "53/udp": None}
    assert shown["CapAdd"] == ["NET_ADMIN"] and shown["ConsoleSize"] == [24, 80] and shown["Init"] is False
    assert shown["Ulimits"] == [{"Name": "nofile", "Hard": 2048, "Soft": 1024}]
    assert shown["BlkioDeviceReadIOps"] == [{"Path": "/dev/sda", "Rate": 100}]
    assert shown["Tmpfs"] == {"/run": "size=64m"} and shown["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert shown["DeviceRequests"] == [{"Driver": "nvidia", "Count": -1}]
    assert shown["Mounts"] == [  # mount.Mount's fields are omitempty but Type
        {"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {
            "NoCopy": True, "Subpath": "sub", "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}},
        {"Type": "bind", "Source": "/h", "Target": "/b", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave", "CreateMountpoint": True}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700, "Options": [["exec"]]}},
    ]
    assert list(shown)[-4:] == ["Mounts", "MaskedPaths", "ReadonlyPaths", "Init"]


def test_the_record_round_trips_the_typed_host_config() -> None:
    for body in (CLI_HOST_CONFIG, RICH, {}):
        hc = created(body)
        assert host_config_from_record(json.loads(json.dumps(asdict(hc)))) == hc


def test_the_record_keeps_only_what_differs_from_the_defaults() -> None:
    """A create sets a handful of the ~70 fields: the record keeps those (nested ones likewise),
    so reading 100 records for `docker ps` stays cheap; the reader fills in the defaults."""
    assert host_config_to_record(HostConfig()) == {}
    for body in (CLI_HOST_CONFIG, RICH, {}):
        hc = created(body)
        record = json.loads(json.dumps(host_config_to_record(hc)))
        assert host_config_from_record(record) == hc
    sparse = host_config_to_record(host_config_from_wire({"Memory": 1 << 20, "RestartPolicy": {"Name": "always"}}))
    assert sparse == {"memory": 1 << 20, "restart_policy": {"name": "always"}}


def test_a_record_of_the_previous_format_loads_and_is_rewritten() -> None:
    """Records written before HostConfig was typed hold the wire dict as sent, normalised."""
    legacy_host_config = {**RICH, "NetworkMode": "bridge", "LogConfig": {"Type": "json-file", "Config": {}},
                          "PidsLimit": None, "MemorySwap": 128 << 20, "AutoRemove": False}
    record = {"id": "c" * 64, "name": "old", "created": "2026-01-01T00:00:00Z", "image": "busybox",
              "image_id": "sha256:" + "1" * 64, "config": {"Image": "busybox"}, "host_config": legacy_host_config,
              "networking_config": {}, "state": {"status": "exited", "pid": 0, "exit_code": 0, "error": "",
                                                 "oom_killed": False, "started_at": "", "finished_at": ""},
              "network": {}, "restart_count": 0, "runtime": "", "manually_stopped": False, "mounts": [],
              "secret_env": []}
    container = Container.from_json(json.dumps(record))
    assert container.host_config == created(RICH)
    assert host_config_from_legacy(legacy_host_config) == container.host_config
    saved = json.loads(container.to_json())["host_config"]
    assert "memory" in saved and "Memory" not in saved  # saved in the new format
    assert Container.from_json(container.to_json()).host_config == container.host_config


def test_an_update_body_is_typed_and_merged() -> None:
    update = update_from_wire(check({"Memory": 128 << 20, "MemorySwap": 256 << 20, "PidsLimit": 50,
                                     "RestartPolicy": {"Name": "always"}}, CONTAINER_UPDATE))
    hc = limits.merge_update(created({"Memory": 64 << 20, "CpuShares": 100}), update)
    assert (hc.memory, hc.memory_swap, hc.cpu_shares, hc.pids_limit) == (128 << 20, 256 << 20, 100, 50)
    assert hc.restart_policy == RestartPolicy("always", 0)
    with pytest.raises(InvalidArgument, match="AutoRemove is enabled"):
        limits.merge_update(created({"AutoRemove": True}), update)
    assert update_from_wire({}).restart_policy.name == ""  # no policy given: none changed
