"""DNS messages on the wire (RFC 1035), just what the embedded resolver needs; pure.

A query is a 12-byte header and one question; an answer repeats the question and appends
resource records. Only what a stub resolver sends is understood: one question, names as
labels (compression pointers are followed, though stubs do not use them in questions).
Additional records (EDNS OPT) are ignored and not echoed, which RFC 6891 allows.

    header   id:16 | QR:1 opcode:4 AA:1 TC:1 RD:1 | RA:1 Z:3 rcode:4 | qd an ns ar counts:16 each
    question name (labels) | type:16 | class:16
    record   name | type:16 | class:16 | ttl:32 | rdlength:16 | rdata
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
CLASS_IN = 1

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5

UDP_MAX = 512  # without EDNS a UDP answer must fit here; longer ones are truncated (TC set)

_HEADER = struct.Struct("!HHHHHH")
_QR, _AA, _TC, _RD, _RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080


class WireError(ValueError):
    """A message that cannot be parsed; `query_id` is set when at least the header was read."""

    def __init__(self, message: str, query_id: int | None = None, flags: int = 0) -> None:
        super().__init__(message)
        self.query_id = query_id
        self.flags = flags


@dataclass(frozen=True)
class Question:
    name: str  # as asked (case kept: it is echoed back), no trailing dot ("" is the root)
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    question: Question

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    ttl: int
    rdata: bytes


def a_record(name: str, ip: str, ttl: int) -> Record:
    return Record(name, TYPE_A, ttl, ipaddress.IPv4Address(ip).packed)


def ptr_record(name: str, target: str, ttl: int) -> Record:
    return Record(name, TYPE_PTR, ttl, encode_name(target))


# --- parsing ---------------------------------------------------------------------------------------


def parse_query(data: bytes) -> Query:
    """Parse a query with exactly one question.

    Raises:
        WireError: too short, not a query, no single question, or a malformed name.
    """
    if len(data) < _HEADER.size:
        raise WireError("short header")
    qid, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & _QR:
        raise WireError("not a query", qid, flags)
    if qdcount != 1:
        raise WireError(f"{qdcount} questions", qid, flags)
    try:
        name, offset = decode_name(data, _HEADER.size)
        qtype, qclass = struct.unpack_from("!HH", data, offset)
    except (struct.error, WireError) as err:
        raise WireError(f"bad question: {err}", qid, flags) from err
    return Query(qid, flags, Question(name, qtype, qclass))


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` and the offset just after it (pointers followed, loops refused)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(data):
            raise WireError("name runs past the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data) or jumps > 16:
                raise WireError("bad compression pointer")
            end = offset + 2 if end < 0 else end
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            continue
        if length & 0xC0:
            raise WireError("unknown label type")
        offset += 1
        if length == 0:
            break
        label = data[offset:offset + length]
        if len(label) != length:
            raise WireError("label runs past the message")
        labels.append(label.decode("ascii", errors="replace"))
        offset += length
    name = ".".join(labels)
    if len(name) > 253:
        raise WireError("name too long")
    return name, end if end >= 0 else offset


# --- encoding --------------------------------------------------------------------------------------


def encode_name(name: str) -> bytes:
    """`a.b` → 1a 1b 0 (no compression). Raises WireError for a label over 63 bytes."""
    out = bytearray()
    for label in name.strip(".").split(".") if name.strip(".") else []:
        raw = label.encode("ascii", errors="replace")
        if not 0 < len(raw) <= 63:
            raise WireError(f"bad label {label!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out + b"\0")


def encode_response(query: Query, rcode: int, answers: Sequence[Record] = (), *,
                    max_size: int = 0) -> bytes:
    """The answer to `query`: its id, RD copied, AA and RA set, the question echoed.

    With `max_size` (UDP), records that do not fit are left out and TC is set, so the client
    retries over TCP.
    """
    question = encode_name(query.question.name) + struct.pack("!HH", query.question.qtype, query.question.qclass)
    records = [_encode_record(r) for r in answers]
    truncated = False
    if max_size:
        while records and _HEADER.size + len(question) + sum(map(len, records)) > max_size:
            records.pop()
            truncated = True
    flags = _QR | (query.flags & (0xF << 11)) | _AA | (query.flags & _RD) | _RA | (rcode & 0xF)
    if truncated:
        flags |= _TC
    header = _HEADER.pack(query.id, flags, 1, len(records), 0, 0)
    return header + question + b"".join(records)


def encode_error(query_id: int, query_flags: int, rcode: int) -> bytes:
    """A bare answer (no question echoed) for a query that could not be parsed."""
    flags = _QR | (query_flags & (0xF << 11)) | (query_flags & _RD) | _RA | (rcode & 0xF)
    return _HEADER.pack(query_id, flags, 0, 0, 0, 0)


def _encode_record(record: Record) -> bytes:
    # 0xC00C would point at the question's name, but PTR names differ from it; spell names out.
    return (encode_name(record.name) + struct.pack("!HHIH", record.rtype, CLASS_IN, record.ttl, len(record.rdata))
            + record.rdata)


def encode_query(qid: int, name: str, qtype: int, *, recursion: bool = True) -> bytes:
    """A stub resolver's query (tests and probes)."""
    return _HEADER.pack(qid, _RD if recursion else 0, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype,
                                                                                                      CLASS_IN)


@dataclass(frozen=True)
class Response:
    id: int
    rcode: int
    truncated: bool
    answers: tuple[Record, ...]


def parse_response(data: bytes) -> Response:
    """Parse an answer (tests and probes): header, skip the question, read the records."""
    if len(data) < _HEADER.size:
        raise WireError("short header")
    qid, flags, qdcount, ancount, _ns, _ar = _HEADER.unpack_from(data)
    offset = _HEADER.size
    for _ in range(qdcount):
        offset = decode_name(data, offset)[1] + 4
    answers = []
    for _ in range(ancount):
        name, offset = decode_name(data, offset)
        rtype, _cls, ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        answers.append(Record(name, rtype, ttl, data[offset:offset + length]))
        offset += length
    return Response(qid, flags & 0xF, bool(flags & _TC), tuple(answers))
