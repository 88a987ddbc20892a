from __future__ import annotations

from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.api.docker.container_spec import config_from_wire
from berth.api.docker.wire import CONTAINER_CREATE
from berth.api.shapes import check
from berth.api.docker.container_json import config_json
from berth.engine.containers import ContainerConfig
from berth.engine.containers import _config as cfg
from berth.errors import InvalidArgument

IMAGE = {"Env": ["PATH=/bin", "A=image"], "Cmd": ["sh"], "Entrypoint": None, "WorkingDir": "/srv",
         "Labels": {"from": "image"}, "ExposedPorts": {"80/tcp": {}}}


def _merge(request: dict[str, Any], image: dict[str, Any], container_id: str) -> dict[str, Any]:
    """The merged Config as inspect shows it, for a create body's Config fields."""
    return config_json(cfg.merge_config(config_from_wire(request), image, container_id))


def test_merge_uses_image_defaults() -> None:
    merged = _merge({"Image": "busybox", "Env": ["A=req", "B=2"]}, IMAGE, "a" * 64)
    assert merged["Env"] == ["PATH=/bin", "A=req", "B=2"]
    assert merged["Cmd"] == ["sh"] and merged["WorkingDir"] == "/srv"
    assert merged["Hostname"] == "a" * 12 and merged["ExposedPorts"] == {"80/tcp": {}}


def test_explicit_entrypoint_drops_image_cmd() -> None:
    merged = _merge({"Image": "x", "Entrypoint": ["echo"]}, IMAGE, "b" * 64)
    assert merged["Entrypoint"] == ["echo"] and merged["Cmd"] is None


def test_request_cmd_replaces_image_cmd() -> None:
    merged = cfg.merge_config(config_from_wire({"Image": "x", "Cmd": ["echo", "hi"]}), IMAGE, "c" * 64)
    assert cfg.process_args(merged) == ["echo", "hi"]


def test_no_command_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="no command specified"):
        cfg.process_args(cfg.merge_config(config_from_wire({"Image": "x"}), {}, "d" * 64))


def test_bad_cmd_type() -> None:
    with pytest.raises(InvalidArgument, match="field Cmd of type strslice.StrSlice"):
        check({"Image": "x", "Cmd": {"a": 1}}, CONTAINER_CREATE)  # at the API edge, before the engine


@pytest.mark.parametrize("name", ["web", "/web", "a.b_c-d", "x1"])
def test_valid_names(name: str) -> None:
    assert cfg.validate_name(name) == name.lstrip("/")


@pytest.mark.parametrize("name", ["-web", "w", "a b", "a/b", "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        cfg.validate_name(name)


def test_generated_names_avoid_taken() -> None:
    taken = {cfg.generate_name(set()) for _ in range(5)}
    assert cfg.generate_name(taken) not in taken


def test_port_bindings_and_publish_all() -> None:
    hc = typed_hc({"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                    "53/udp": [{"HostPort": ""}]},
                   "PublishAllPorts": True})
    config = ContainerConfig(exposed_ports=("80/tcp", "443/tcp"))
    assert sorted(cfg.port_bindings(hc, config)) == [(53, "udp", "", 0), (80, "tcp", "127.0.0.1", 8080),
                                                     (443, "tcp", "", 0)]


@pytest.mark.parametrize("key", ["x/tcp", "80/foo", "0/tcp", "70000"])
def test_bad_port_keys(key: str) -> None:
    with pytest.raises(InvalidArgument):
        cfg.port_key(key)


def test_network_modes() -> None:
    assert cfg.network_mode(typed_hc({})) == "bridge"
    assert cfg.network_mode(typed_hc({"NetworkMode": "none"})) == "none"
    assert cfg.network_mode(typed_hc({"NetworkMode": "host"})) == "host"
    assert cfg.network_mode(typed_hc({"NetworkMode": "mynet"})) == "mynet"  # a user network
    assert cfg.network_mode(typed_hc({"NetworkMode": "container:abc"})) == "container:abc"
    with pytest.raises(InvalidArgument, match="invalid container format"):
        cfg.network_mode(typed_hc({"NetworkMode": "container:"}))


def test_host_config_limits() -> None:
    with pytest.raises(InvalidArgument, match="Minimum memory limit"):
        cfg.validate_host_config(typed_hc({"Memory": 1024}))
    with pytest.raises(InvalidArgument, match="restart policy"):
        cfg.validate_host_config(typed_hc({"RestartPolicy": {"Name": "sometimes"}}))
    with pytest.raises(InvalidArgument, match="AutoRemove"):
        cfg.validate_host_config(typed_hc({"AutoRemove": True, "RestartPolicy": {"Name": "always"}}))
    cfg.validate_host_config(typed_hc({"Memory": 64 * 1024 * 1024, "MemorySwap": -1}))


def test_parse_memory() -> None:
    assert cfg.parse_memory("64m") == 64 * 1024 * 1024
    assert cfg.parse_memory(10) == 10
    with pytest.raises(InvalidArgument):
        cfg.parse_memory("lots")
