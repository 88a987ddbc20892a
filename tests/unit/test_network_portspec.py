import pytest

from berth.errors import InvalidArgument
from berth.network import PortMapping, parse_port_spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortMapping(80, "tcp")]),
        ("8080:80", [PortMapping(80, "tcp", "", 8080)]),
        ("127.0.0.1:8080:80", [PortMapping(80, "tcp", "127.0.0.1", 8080)]),
        ("127.0.0.1::80", [PortMapping(80, "tcp", "127.0.0.1", 0)]),
        ("53:53/udp", [PortMapping(53, "udp", "", 53)]),
        ("80/UDP", [PortMapping(80, "udp")]),
        ("[::1]:8080:80", [PortMapping(80, "tcp", "::1", 8080)]),
        (
            "8000-8001:80-81",
            [PortMapping(80, "tcp", "", 8000), PortMapping(81, "tcp", "", 8001)],
        ),
        ("80-81/udp", [PortMapping(80, "udp"), PortMapping(81, "udp")]),
        (
            "0.0.0.0:9000-9001:90-91",
            [PortMapping(90, "tcp", "0.0.0.0", 9000), PortMapping(91, "tcp", "0.0.0.0", 9001)],
        ),
    ],
)
def test_parses_docker_syntax(spec: str, expected: list[PortMapping]) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "No port specified: <empty>"),
        ("8080:", "No port specified: 8080:<empty>"),
        ("abc", "Invalid containerPort: abc"),
        ("0", "Invalid containerPort: 0"),
        ("70000", "Invalid containerPort: 70000"),
        ("x:80", "Invalid hostPort: x"),
        ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
        ("80/sctpx", "Invalid proto: sctpx"),
        ("80/sctp", "Invalid proto: sctp"),
        (
            "8000-8002:80-81",
            "Invalid ranges specified for container and host Ports: 80-81 and 8000-8002",
        ),
        ("81-80", "Invalid containerPort: 81-80"),
        ("8000-8010:80", "not supported"),
    ],
)
def test_rejects_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        parse_port_spec(spec)
