"""EmbeddedDns serving UDP and TCP from its own loop (sockets on 127.0.0.1 instead of a netns)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from berth.errors import Unavailable
from berth.network import _dnswire as wire
from berth.network._dns import EmbeddedDns, bound_sockets, dnat_rules
from berth.network._dnsnames import NameTable, NameEntry


class LoopbackSockets:
    """A SocketFactory that records the netns it was asked for and binds 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.ports: dict[str, int] = {}

    def __call__(self, netns: str, address: str, port: int, again: int) -> tuple[socket.socket, socket.socket]:
        assert (address, port) == ("127.0.0.11", 53)
        self.calls.append(netns)
        udp, tcp = bound_sockets("127.0.0.1", again)
        self.ports[netns] = udp.getsockname()[1]
        return udp, tcp


@pytest.fixture
def dns() -> Iterator[tuple[EmbeddedDns, LoopbackSockets]]:
    factory = LoopbackSockets()
    server = EmbeddedDns(sockets=factory)
    yield server, factory
    server.shutdown()


def _udp(port: int, name: str, qtype: int = wire.TYPE_A) -> wire.Response:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.connect(("127.0.0.1", port))  # connected: a closed port answers ECONNREFUSED at once
        s.send(wire.encode_query(42, name, qtype))
        return wire.parse_response(s.recv(4096))


def _tcp(port: int, name: str) -> wire.Response:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        query = wire.encode_query(43, name, wire.TYPE_A)
        s.sendall(struct.pack("!H", len(query)) + query)
        length = struct.unpack("!H", s.recv(2))[0]
        data = b""
        while len(data) < length:
            data += s.recv(length - len(data))
        return wire.parse_response(data)


def _ips(response: wire.Response) -> list[str]:
    return [".".join(map(str, r.rdata)) for r in response.answers]


TABLE = NameTable(peers=(NameEntry("n", "10.1.0.2", ("a",)), NameEntry("n", "10.1.0.3", ("b", "svc")),
                         NameEntry("n", "10.1.0.4", ("c", "svc"))))


def test_udp_and_tcp_answers_and_round_robin(dns: tuple[EmbeddedDns, LoopbackSockets]) -> None:
    server, factory = dns
    server.open("c1", "/ns/c1", TABLE)
    port = factory.ports["/ns/c1"]
    assert _ips(_udp(port, "a")) == ["10.1.0.2"]
    assert _ips(_tcp(port, "b")) == ["10.1.0.3"]
    assert _ips(_udp(port, "svc")) == ["10.1.0.3", "10.1.0.4"]
    assert _ips(_udp(port, "svc")) == ["10.1.0.4", "10.1.0.3"]
    assert _udp(port, "example.org").rcode == wire.REFUSED


def test_update_close_and_reopen(dns: tuple[EmbeddedDns, LoopbackSockets]) -> None:
    server, factory = dns
    server.open("c1", "/ns/c1", NameTable())
    port = factory.ports["/ns/c1"]
    assert _udp(port, "a").rcode == wire.NXDOMAIN
    server.update("c1", TABLE)
    assert server.table("c1") == TABLE and server.serves("c1")
    assert _ips(_udp(port, "a")) == ["10.1.0.2"]
    server.close("c1")
    server.close("c1")
    assert not server.serves("c1")
    with pytest.raises(OSError):
        _udp(port, "a")  # ICMP port unreachable → ECONNREFUSED
    assert server.open("c1", "/ns/c1", TABLE, again=port) == port  # a restart binds the same port
    assert factory.calls == ["/ns/c1", "/ns/c1"]
    assert _ips(_udp(port, "a")) == ["10.1.0.2"]
    server.update("nobody", TABLE)  # no-op


def test_socket_failure_is_unavailable() -> None:
    def broken(netns: str, address: str, port: int, again: int) -> tuple[socket.socket, socket.socket]:
        raise Unavailable(f"embedded DNS in {netns}: no such namespace")

    server = EmbeddedDns(sockets=broken)
    with pytest.raises(Unavailable):
        server.open("c1", "/nope", TABLE)
    assert not server.serves("c1")
    server.shutdown()


def test_dnat_rules_send_port_53_to_the_bound_port() -> None:
    rules = dnat_rules("127.0.0.11", 53, 40123, hook=True)
    assert rules.startswith("*nat\n:BERTH-DNS - [0:0]\n") and rules.endswith("COMMIT\n")
    assert ("-A BERTH-DNS -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40123"
            in rules)
    assert "-p tcp -m tcp --dport 53" in rules and "-A OUTPUT -d 127.0.0.11/32 -j BERTH-DNS" in rules
    assert "OUTPUT" not in dnat_rules("127.0.0.11", 53, 40123, hook=False)
