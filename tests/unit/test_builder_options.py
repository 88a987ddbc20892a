"""POST /build query parameters -> BuildOptions (api/docker/build.py), and RUN's /etc/hosts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest

from berth.api.docker.build import extra_host, parse_options
from berth.api.httpserver import Request
from berth.builder.runner import _write_etc_files
from berth.errors import InvalidArgument


def request(params: list[tuple[str, str]]) -> Request:
    return Request(None, "POST", "/build?" + urlencode(params), {})  # type: ignore[arg-type]


def test_dockerfile_is_the_first_value() -> None:
    """docker-py 7 sends `dockerfile` twice for a Dockerfile outside the context: the generated
    name, then the file's text; dockerd's FormValue takes the first."""
    options = parse_options(request([("dockerfile", ".dockerfile.abc"), ("dockerfile", "FROM busybox\n")]))
    assert options.dockerfile == ".dockerfile.abc"
    assert parse_options(request([])).dockerfile == "Dockerfile"


def test_extrahosts_repeat_and_network_modes() -> None:
    options = parse_options(request([("extrahosts", "a:1.2.3.4"), ("extrahosts", "b=::1"), ("networkmode", "none"),
                                     ("target", "Build")]))
    assert options.extra_hosts == (("a", "1.2.3.4"), ("b", "::1"))
    assert (options.network_mode, options.target) == ("none", "Build")
    for mode in ("", "default", "bridge", "host"):
        assert parse_options(request([("networkmode", mode)])).network_mode == mode


def test_an_unsupported_network_mode_is_refused_before_the_build() -> None:
    with pytest.raises(InvalidArgument, match="network mode 'container:x' is not supported"):
        parse_options(request([("networkmode", "container:x")]))


@pytest.mark.parametrize("value, parsed", [
    ("cats:10.1.2.3", ("cats", "10.1.2.3")),
    ("cats=10.1.2.3", ("cats", "10.1.2.3")),
    ("v6:2001:db8::1", ("v6", "2001:db8::1")),
    ("v6=[2001:db8::1]", ("v6", "2001:db8::1")),
    ("gw:host-gateway", ("gw", "host-gateway")),
])
def test_extra_host(value: str, parsed: tuple[str, str]) -> None:
    assert extra_host(value) == parsed


@pytest.mark.parametrize("value, message", [
    ("nocolon", 'bad format for add-host: "nocolon"'),
    (":1.2.3.4", 'bad format for add-host: ":1.2.3.4"'),
    ("cats:notanip", 'invalid IP address in add-host: "notanip"'),
    ("cats:", 'invalid IP address in add-host: ""'),
])
def test_bad_extra_host(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        extra_host(value)
    assert str(err.value) == message


def test_run_hosts_file_carries_extra_hosts(tmp_path: Path) -> None:
    attachment = SimpleNamespace(ip_address="10.9.0.5", gateway="10.9.0.1", mode="bridge")
    _write_etc_files(tmp_path, "c" * 64, attachment, (("cats", "10.1.2.3"), ("gw", "host-gateway")))
    lines = (tmp_path / "hosts").read_text().splitlines()
    assert lines[-3:] == ["10.9.0.5\tcccccccccccc", "10.1.2.3\tcats", "10.9.0.1\tgw"]
