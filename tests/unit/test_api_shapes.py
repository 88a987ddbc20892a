"""JSON body type checks at the API edge: Go's rules, Docker's wording, AWS's exception."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from berth.api.aws import AwsApi, JsonService
from berth.api.docker import wire
from berth.api.shapes import INT64, STRING, ShapeError, Struct, UINT16, check, json_kind
from berth.errors import InvalidArgument


def test_null_and_empty_bodies_are_an_empty_object() -> None:
    assert check(None, wire.CONTAINER_CREATE) == {}
    assert check({"Image": None, "HostConfig": None}, wire.CONTAINER_CREATE) == {"Image": None, "HostConfig": None}


@pytest.mark.parametrize("body", [[], "busybox", 5, True])
def test_a_body_that_is_no_object_is_refused(body: Any) -> None:
    with pytest.raises(ShapeError, match="into Go value of type container.CreateRequest"):
        check(body, wire.CONTAINER_CREATE)


@pytest.mark.parametrize(("body", "field", "go_type"), [
    ({"Image": 5}, "Image", "string"),
    ({"Env": "A=1"}, "Env", "[]string"),
    ({"Env": ["A=1", 2]}, "Env", "string"),
    ({"Cmd": [1]}, "Cmd", "strslice.StrSlice"),
    ({"Labels": {"a": 1}}, "Labels", "string"),
    ({"ExposedPorts": ["80/tcp"]}, "ExposedPorts", "map[string]struct {}"),
    ({"HostConfig": []}, "HostConfig", "container.HostConfig"),
    ({"HostConfig": {"Memory": "lots"}}, "HostConfig.Memory", "int64"),
    ({"HostConfig": {"Memory": 10 ** 30}}, "HostConfig.Memory", "int64"),
    ({"HostConfig": {"Memory": 1.5}}, "HostConfig.Memory", "int64"),
    ({"HostConfig": {"CpuShares": float("inf")}}, "HostConfig.CpuShares", "int64"),
    ({"HostConfig": {"Privileged": 1}}, "HostConfig.Privileged", "bool"),
    ({"HostConfig": {"PortBindings": {"80/tcp": "8080"}}}, "HostConfig.PortBindings", "[]nat.PortBinding"),
    ({"HostConfig": {"Mounts": [{"Type": "volume", "ReadOnly": "yes"}]}}, "HostConfig.Mounts.ReadOnly", "bool"),
    ({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": "x"}]}}, "HostConfig.Ulimits.Soft", "int64"),
    ({"NetworkingConfig": {"EndpointsConfig": {"bridge": "x"}}}, "NetworkingConfig.EndpointsConfig",
     "network.EndpointSettings"),
])
def test_wrong_types_name_the_field_like_go(body: dict[str, Any], field: str, go_type: str) -> None:
    with pytest.raises(ShapeError) as info:
        check(body, wire.CONTAINER_CREATE)
    assert (info.value.field, info.value.go_type) == (field, go_type)
    assert str(info.value).startswith("json: cannot unmarshal ")
    assert isinstance(info.value, InvalidArgument)  # the API maps it to 400


def test_what_real_clients_send_passes() -> None:
    """The docker CLI's and docker-py's create bodies, with their nulls and zero values."""
    body = {
        "Hostname": "", "User": "", "AttachStdin": False, "Tty": False, "Env": None, "Cmd": ["sh", "-c", "true"],
        "Image": "busybox", "Volumes": {"/data": {}}, "Entrypoint": None, "Labels": {"a": "b"},
        "ExposedPorts": {"80/tcp": {}}, "StopTimeout": None, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 0},
        "HostConfig": {
            "Binds": ["/tmp:/x:ro"], "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "ConsoleSize": [24, 80],
            "Memory": 64 << 20, "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None,
            "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}], "CapAdd": "NET_ADMIN",
            "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}}],
            "LogConfig": {"Type": "json-file", "Config": {}}, "DeviceRequests": [{"Driver": "", "Count": -1}],
        },
        "NetworkingConfig": {"EndpointsConfig": {"net": {"Aliases": ["a"], "IPAMConfig": None}}},
        "SomeFutureField": {"anything": [1, 2]},  # unknown fields are ignored, as Go does
    }
    assert check(body, wire.CONTAINER_CREATE) is body


def test_width_of_whole_numbers() -> None:
    shape = Struct("t", {"w": UINT16, "i": INT64})
    check({"w": 65535, "i": -(1 << 63)}, shape)
    for bad in ({"w": -1}, {"w": 65536}, {"i": 1 << 63}, {"i": True}):
        with pytest.raises(ShapeError):
            check(bad, shape)


def test_json_kind_words() -> None:
    assert [json_kind(v) for v in ("x", 1.5, True, [], {})] == ["string", "number 1.5", "bool", "array", "object"]


def _aws_call(service: JsonService, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One JSON 1.1 call through AwsApi.handle with a stand-in aiohttp request."""
    from aiohttp.test_utils import make_mocked_request

    api = AwsApi()
    api.add_json_service(service)
    raw = json.dumps(params).encode()

    class Payload:
        async def read(self) -> bytes:
            return raw

    request = make_mocked_request("POST", "/", headers={"X-Amz-Target": "Svc_1.Op"})
    request.read = Payload().read  # type: ignore[method-assign]
    response = asyncio.run(api.handle(request))
    return response.status, json.loads(response.body)


def test_aws_wrong_types_are_a_serialization_exception_not_a_fault() -> None:
    calls = []
    service = JsonService("Svc_1", "svc", {"Op": lambda p, ctx: calls.append(p) or {}}, {"name": STRING})
    status, body = _aws_call(service, {"name": ["x"]})
    assert (status, body["__type"]) == (400, "SerializationException")
    assert "name" in body["message"] and calls == []
    assert _aws_call(service, {"name": "x", "other": [1]}) == (200, {})
