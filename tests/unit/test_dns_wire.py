"""DNS wire format (berth.network._dnswire): parse queries, encode answers, truncate for UDP."""

from __future__ import annotations

import struct

import pytest

from berth.network import _dnswire as wire


def test_query_round_trip_keeps_id_case_and_question() -> None:
    packet = wire.encode_query(0x1234, "Web.Example", wire.TYPE_A)
    query = wire.parse_query(packet)
    assert query.id == 0x1234 and query.opcode == 0
    assert query.question == wire.Question("Web.Example", wire.TYPE_A, wire.CLASS_IN)


def test_response_echoes_question_and_carries_a_records() -> None:
    query = wire.parse_query(wire.encode_query(7, "web", wire.TYPE_A))
    data = wire.encode_response(query, wire.NOERROR, [wire.a_record("web", "172.18.0.2", 600),
                                                      wire.a_record("web", "172.18.0.3", 600)])
    flags = struct.unpack_from("!H", data, 2)[0]
    assert flags & 0x8000 and flags & 0x0100 and flags & 0x0080  # QR, RD copied, RA
    response = wire.parse_response(data)
    assert response.id == 7 and response.rcode == wire.NOERROR and not response.truncated
    assert [r.rdata for r in response.answers] == [bytes([172, 18, 0, 2]), bytes([172, 18, 0, 3])]
    assert all(r.name == "web" and r.ttl == 600 and r.rtype == wire.TYPE_A for r in response.answers)


def test_rcode_and_ptr_record() -> None:
    query = wire.parse_query(wire.encode_query(9, "2.0.18.172.in-addr.arpa", wire.TYPE_PTR))
    data = wire.encode_response(query, wire.NOERROR, [wire.ptr_record(query.question.name, "web.net", 600)])
    record = wire.parse_response(data).answers[0]
    assert wire.decode_name(record.rdata, 0) == ("web.net", len(record.rdata))
    assert wire.parse_response(wire.encode_response(query, wire.REFUSED)).rcode == wire.REFUSED


def test_udp_answers_are_truncated_with_tc() -> None:
    query = wire.parse_query(wire.encode_query(1, "svc", wire.TYPE_A))
    records = [wire.a_record("svc", f"10.0.{i // 250}.{i % 250 + 1}", 600) for i in range(60)]
    data = wire.encode_response(query, wire.NOERROR, records, max_size=wire.UDP_MAX)
    response = wire.parse_response(data)
    assert len(data) <= wire.UDP_MAX and response.truncated and 0 < len(response.answers) < 60
    full = wire.parse_response(wire.encode_response(query, wire.NOERROR, records))
    assert len(full.answers) == 60 and not full.truncated


def test_compression_pointers_are_followed_and_loops_refused() -> None:
    data = b"\x03abc\x00" + b"\x01x\xc0\x00"
    assert wire.decode_name(data, 5) == ("x.abc", 9)
    with pytest.raises(wire.WireError):
        wire.decode_name(b"\xc0\x00", 0)


@pytest.mark.parametrize("packet", [
    b"\x00\x01",                                                # short header
    struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0),                   # two questions
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x05ab",       # label past the end
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x00\x00",     # no type/class
    struct.pack("!HHHHHH", 1, 0x8000, 1, 0, 0, 0),              # a response
])
def test_malformed_queries_raise(packet: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.parse_query(packet)


def test_encode_name_rejects_long_labels_and_handles_root() -> None:
    assert wire.encode_name("") == b"\0" and wire.encode_name("a.") == b"\x01a\0"
    with pytest.raises(wire.WireError):
        wire.encode_name("x" * 64)
