"""`docker import --change` parsing (pure)."""

from __future__ import annotations

import pytest

from berth.errors import InvalidArgument
from berth.images._changes import apply_changes, command_form


def test_command_forms() -> None:
    assert command_form('["a", "b c"]') == ["a", "b c"]
    assert command_form("echo hi") == ["/bin/sh", "-c", "echo hi"]
    assert command_form("[not json") == ["/bin/sh", "-c", "[not json"]


def test_each_instruction() -> None:
    config = apply_changes({"Env": ["PATH=/bin", "A=old"]}, [
        "cmd sh",
        'ENTRYPOINT ["/init"]',
        "ENV A=new",
        "ENV GREETING hello world",
        'LABEL "x y"=1 z="two words"',
        "EXPOSE 8000-8001/udp 80",
        "WORKDIR /w",
        "USER 1000:1000",
        'VOLUME ["/data"]',
        "VOLUME /cache /logs",
        "STOPSIGNAL SIGINT",
    ])
    assert config == {
        "Env": ["PATH=/bin", "A=new", "GREETING=hello world"],
        "Cmd": ["/bin/sh", "-c", "sh"],
        "Entrypoint": ["/init"],
        "Labels": {"x y": "1", "z": "two words"},
        "ExposedPorts": {"8000/udp": {}, "8001/udp": {}, "80/tcp": {}},
        "WorkingDir": "/w",
        "User": "1000:1000",
        "Volumes": {"/data": {}, "/cache": {}, "/logs": {}},
        "StopSignal": "SIGINT",
    }


def test_input_not_modified_and_multiline() -> None:
    base = {"Env": ["A=1"]}
    out = apply_changes(base, ["ENV B=2\nUSER x"])
    assert base == {"Env": ["A=1"]} and out == {"Env": ["A=1", "B=2"], "User": "x"}


@pytest.mark.parametrize("change, message", [
    ("RUN echo", "RUN is not a valid change command"),
    ("FROM scratch", "FROM is not a valid change command"),
    ("CMD", "CMD requires at least one argument"),
    ("EXPOSE http", "invalid containerPort: http"),
    ("EXPOSE 70000", "invalid containerPort"),
    ("LABEL =x", "names can not be blank"),
])
def test_errors(change: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes({}, [change])
