"""Flag-value parsers: ports, env files, filters, labels, restart policies, references."""

import pytest

from berth.cli.envfile import expand_env_item, merge_env, parse_env_file
from berth.cli.options import (
    familiar_ref,
    filters_param,
    parse_filters,
    parse_labels,
    parse_restart_policy,
    pull_params,
    split_repo_tag,
)
from berth.cli.ports import display_ports, parse_port_spec, port_config


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
        ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
        ("127.0.0.1:8080:80/udp", [("80/udp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]),
        ("127.0.0.1::80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
        ("[::1]:8080:80", [("80/tcp", {"HostIp": "::1", "HostPort": "8080"})]),
        ("8000-8001:80-81", [("80/tcp", {"HostIp": "", "HostPort": "8000"}),
                             ("81/tcp", {"HostIp": "", "HostPort": "8001"})]),
        ("8000-8010:80", [("80/tcp", {"HostIp": "", "HostPort": "8000-8010"})]),
    ],
)
def test_parse_port_spec(spec: str, expected: list) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "abc", "8080:80/foo", "8000-8002:80-81", "70000:80", "80:"])
def test_parse_port_spec_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_port_spec(spec)


def test_port_config_merges_repeats_and_expose() -> None:
    config = port_config(["8080:80", "8081:80"], expose=["9000/udp"])
    assert config.exposed == {"80/tcp": {}, "9000/udp": {}}
    assert config.bindings == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8081"}]}


def test_display_ports() -> None:
    ports = [
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
    ]
    assert display_ports(ports) == "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
    assert display_ports([{"PrivatePort": 80, "Type": "tcp"}]) == "80/tcp"
    assert display_ports([]) == ""


def test_display_ports_groups_ranges() -> None:
    ports = [{"PrivatePort": p, "Type": "tcp"} for p in (80, 81, 82, 90)]
    assert display_ports(ports) == "80-82/tcp, 90/tcp"
    same = [{"IP": "0.0.0.0", "PrivatePort": p, "PublicPort": p, "Type": "tcp"} for p in (8000, 8001)]
    assert display_ports(same) == "0.0.0.0:8000-8001->8000-8001/tcp"


def test_env_file() -> None:
    text = "\ufeffA=1\n  # comment\n\nB= spaced value \nHOME\nMISSING\nC=x=y\n"
    assert parse_env_file(text, {"HOME": "/root"}) == ["A=1", "B= spaced value ", "HOME=/root", "MISSING", "C=x=y"]


@pytest.mark.parametrize("line", ["BAD KEY=1", "=value"])
def test_env_file_rejects(line: str) -> None:
    with pytest.raises(ValueError):
        parse_env_file(line, {})


def test_merge_env_files_first(tmp_path) -> None:
    path = tmp_path / "env"
    path.write_text("A=file\n")
    assert merge_env([str(path)], ["A=flag", "USER"], {"USER": "bob"}) == ["A=file", "A=flag", "USER=bob"]
    assert expand_env_item("NOPE", {}) == "NOPE"


def test_filters() -> None:
    filters = parse_filters(["name=web", "status=running", "name=db"])
    assert filters == {"name": {"web": True, "db": True}, "status": {"running": True}}
    assert filters_param({}) == {}
    assert filters_param({"dangling": {"true": True}}) == {"filters": '{"dangling":{"true":true}}'}
    with pytest.raises(ValueError, match="bad format of filter"):
        parse_filters(["name"])


def test_labels_and_restart_policy() -> None:
    assert parse_labels(["a=b", "c", "d=e=f"]) == {"a": "b", "c": "", "d": "e=f"}
    assert parse_restart_policy("no") == {"Name": "no", "MaximumRetryCount": 0}
    assert parse_restart_policy("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(ValueError):
            parse_restart_policy(bad)


def test_references() -> None:
    assert split_repo_tag("localhost:5000/bob/cats") == ("localhost:5000/bob/cats", "latest")
    assert split_repo_tag("cats:v1") == ("cats", "v1")
    assert split_repo_tag("docker.io/library/busybox:1") == ("busybox", "1")
    with pytest.raises(ValueError):
        split_repo_tag("Upper")
    assert familiar_ref("busybox") == "busybox:latest"
    assert familiar_ref("NOT VALID") == "NOT VALID"
    assert pull_params("busybox") == {"fromImage": "docker.io/library/busybox", "tag": "latest"}
    assert pull_params("localhost:5000/x:2") == {"fromImage": "localhost:5000/x", "tag": "2"}
