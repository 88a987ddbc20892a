"""The typed container Config and endpoints: wire → spec at the API edge, spec → inspect JSON,
and records in both the current and the previous (CamelCase) format."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from berth.api.docker.container_spec import EMPTY_CONFIG, config_from_wire, spec_from_create
from berth.api.docker.wire import CONTAINER_CREATE
from berth.api.shapes import check
from berth.api.docker.container_json import config_json
from berth.engine.containers import Container, ContainerConfig
from berth.engine.containers import _config as cfg
from berth.engine.containers._stored import config_from_record, endpoints_from_record
from berth.api.docker.container_json import network_entry_json
from berth.engine.containers import NetworkEntry
from berth.errors import InvalidArgument
from berth.types.container import EndpointIPAMConfig, EndpointSettings

# The Config fields of a create body as docker CLI 28 sends them for
# `docker run -it -e A=1 -l k=v -p 80 -v /data --health-cmd true -w /srv -u 1000 -h web --stop-signal SIGINT
#  --stop-timeout 7 --entrypoint sh busybox -c 'exit 0'`.
CLI_BODY: dict[str, Any] = {
    "Hostname": "web", "Domainname": "", "User": "1000", "AttachStdin": True, "AttachStdout": True,
    "AttachStderr": True, "ExposedPorts": {"80/tcp": {}}, "Tty": True, "OpenStdin": True, "StdinOnce": True,
    "Env": ["A=1"], "Cmd": ["-c", "exit 0"], "Healthcheck": {"Test": ["CMD-SHELL", "true"]},
    "Image": "busybox", "Volumes": {"/data": {}}, "WorkingDir": "/srv", "Entrypoint": ["sh"], "OnBuild": None,
    "Labels": {"k": "v"}, "StopSignal": "SIGINT", "StopTimeout": 7, "MacAddress": "", "ArgsEscaped": False,
    "NetworkDisabled": False, "HostConfig": {"NetworkMode": "bridge"}, "NetworkingConfig": {"EndpointsConfig": {}},
}
IMAGE = {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"from": "image"}}
# What inspect showed for CLI_BODY before the Config was typed (the merged dict, as stored).
INSPECT_CONFIG = {
    "Hostname": "web", "Domainname": "", "User": "1000", "AttachStdin": True, "AttachStdout": True,
    "AttachStderr": True, "ExposedPorts": {"80/tcp": {}}, "Tty": True, "OpenStdin": True, "StdinOnce": True,
    "Env": ["PATH=/bin", "A=1"], "Cmd": ["-c", "exit 0"], "Image": "busybox", "Volumes": {"/data": {}},
    "WorkingDir": "/srv", "Entrypoint": ["sh"], "OnBuild": None, "Labels": {"from": "image", "k": "v"},
    "StopSignal": "SIGINT", "StopTimeout": 7, "Healthcheck": {"Test": ["CMD-SHELL", "true"]},
}


def _inspect_config(body: dict[str, Any], image: dict[str, Any], container_id: str = "a" * 64) -> dict[str, Any]:
    spec = spec_from_create(check(body, CONTAINER_CREATE))
    return config_json(cfg.merge_config(spec.config, image, container_id))


def test_a_full_cli_body_renders_as_inspect_did() -> None:
    assert _inspect_config(CLI_BODY, IMAGE) == INSPECT_CONFIG


def test_a_sparse_body_takes_the_images_defaults() -> None:
    shown = _inspect_config({"Image": "busybox"}, IMAGE, "b" * 64)
    assert shown == {
        "Hostname": "b" * 12, "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
        "AttachStderr": False, "ExposedPorts": None, "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": ["PATH=/bin"], "Cmd": ["sh"], "Image": "busybox", "Volumes": None, "WorkingDir": "",
        "Entrypoint": None, "OnBuild": None, "Labels": {"from": "image"}, "StopSignal": None, "StopTimeout": None,
    }


def test_a_string_cmd_is_one_argument_and_null_differs_from_empty() -> None:
    assert config_from_wire({"Cmd": "echo hi"}).cmd == ("echo hi",)
    assert config_from_wire({"Cmd": None}).cmd is None
    assert config_from_wire({"Cmd": []}).cmd == ()
    assert config_from_wire({}).stop_timeout is None and config_from_wire({"StopTimeout": 0}).stop_timeout == 0


def test_requested_only_fields_are_shown_when_set() -> None:
    shown = config_json(ContainerConfig(mac_address="02:42:ac:11:00:02", network_disabled=True, args_escaped=True,
                                        shell=("/bin/bash", "-c")))
    assert (shown["MacAddress"], shown["NetworkDisabled"], shown["ArgsEscaped"], shown["Shell"]) == \
        ("02:42:ac:11:00:02", True, True, ["/bin/bash", "-c"])


@pytest.mark.parametrize("body", [None, [], "x", {}, {"Image": ""}, {"Cmd": ["sh"]}])
def test_a_create_without_an_image_keeps_dockers_message(body: Any) -> None:
    with pytest.raises(InvalidArgument) as err:
        spec_from_create(body)
    assert str(err.value) == EMPTY_CONFIG


def test_a_host_config_that_is_no_object_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="invalid HostConfig"):
        spec_from_create({"Image": "busybox", "HostConfig": ["x"]})


def test_wrong_json_types_are_refused_at_the_edge_with_gos_wording() -> None:
    with pytest.raises(InvalidArgument, match="field Env of type"):
        check({"Image": "busybox", "Env": [1]}, CONTAINER_CREATE)
    with pytest.raises(InvalidArgument, match="field Entrypoint of type strslice.StrSlice"):
        check({"Image": "busybox", "Entrypoint": 3}, CONTAINER_CREATE)


def test_the_record_round_trips_the_typed_config() -> None:
    config = cfg.merge_config(config_from_wire(CLI_BODY), IMAGE, "a" * 64)
    assert config_from_record(json.loads(json.dumps(asdict(config)))) == config


def test_a_record_of_the_previous_format_still_loads() -> None:
    """Records written before the Config was typed hold inspect's CamelCase Config."""
    legacy = {"id": "c" * 64, "name": "old", "created": "2026-01-01T00:00:00Z", "image": "busybox",
              "image_id": "sha256:" + "1" * 64, "config": INSPECT_CONFIG, "host_config": {"NetworkMode": "bridge"},
              "networking_config": {}, "state": {"status": "exited", "pid": 0, "exit_code": 0, "error": "",
                                                 "oom_killed": False, "started_at": "", "finished_at": ""},
              "network": {}, "restart_count": 0, "runtime": "", "manually_stopped": False, "mounts": [],
              "secret_env": []}
    container = Container.from_json(json.dumps(legacy))
    assert config_json(container.config) == INSPECT_CONFIG
    assert container.config.healthcheck is not None and container.config.healthcheck.test == ("CMD-SHELL", "true")
    again = Container.from_json(container.to_json())  # saved in the new format
    assert again.config == container.config and "Hostname" not in json.loads(container.to_json())["config"]


def test_endpoints_are_typed_at_the_edge_and_shown_as_given() -> None:
    body = {"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {
        "net1": {"IPAMConfig": {"IPv4Address": "10.9.0.5"}, "Links": ["db:d"], "Aliases": ["web"],
                 "MacAddress": "02:42:ac:11:00:02", "DriverOpts": {"k": "v"}, "NetworkID": ""},
        "default": None}}}
    endpoints = spec_from_create(check(body, CONTAINER_CREATE)).networking
    assert endpoints == {
        "net1": EndpointSettings(aliases=("web",), links=("db:d",), mac_address="02:42:ac:11:00:02",
                                 ipam_config=EndpointIPAMConfig(ipv4_address="10.9.0.5"), driver_opts={"k": "v"}),
        "default": EndpointSettings(),
    }
    shown = network_entry_json(NetworkEntry(network_id="n", config=endpoints["net1"], aliases=("web",)), "c")
    assert (shown["IPAMConfig"], shown["Links"], shown["DriverOpts"]) == ({"IPv4Address": "10.9.0.5"}, ["db:d"],
                                                                          {"k": "v"})
    unset = network_entry_json(NetworkEntry(network_id="n", config=endpoints["default"]), "c")
    assert (unset["IPAMConfig"], unset["Links"], unset["DriverOpts"]) == (None, None, None)


def test_endpoints_of_the_previous_record_format_still_load() -> None:
    legacy = {"networking_config": {"EndpointsConfig": {
        "net1": {"IPAMConfig": {"IPv4Address": "10.9.0.5"}, "Aliases": ["web"], "Links": None}, "default": {}}}}
    endpoints = endpoints_from_record(legacy)
    assert endpoints == {"net1": EndpointSettings(aliases=("web",),
                                                  ipam_config=EndpointIPAMConfig(ipv4_address="10.9.0.5")),
                         "default": EndpointSettings()}
    stored = json.loads(json.dumps({"endpoints": {k: asdict(v) for k, v in endpoints.items()}}))
    assert endpoints_from_record(stored) == endpoints
