"""What the embedded resolver answers a container: its `NameTable`, looked up; pure.

A container on user networks may resolve, like Docker's 127.0.0.11:

    its --link aliases                      (only this container sees them; they win)
    name, network alias, short id           of every member of its networks (itself included);
                                            a name on two of its networks answers from the first
    <name>.<network>                        the same, on that network only
    in-addr.arpa of a member's address      PTR <name>.<network>

A name several members share (a compose service with replicas) answers all their addresses,
rotated by the caller's per-name turn counter (round robin). AAAA and other types of a known name answer
NOERROR with no records, so resolvers go on to use the A records.

Unknown names are never forwarded (berth's resolver talks to nobody): a single-label name, a
name under one of the container's networks and the reverse name of an address in one of its
subnets are this host's to know, so they are NXDOMAIN; anything else is REFUSED, which tells a
resolver "ask someone else" rather than "this name does not exist".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from berth.network._dnswire import (
    CLASS_IN, FORMERR, NOERROR, NOTIMP, NXDOMAIN, REFUSED, TYPE_A, TYPE_PTR, Question, Record, WireError,
    a_record, encode_error, encode_response, parse_query, ptr_record,
)

TTL = 600  # Docker's embedded DNS answers with this TTL
_REVERSE = ".in-addr.arpa"


@dataclass(frozen=True)
class NameEntry:
    network: str  # network name ("" for a --link alias)
    ip: str
    names: tuple[str, ...]  # container name first, then aliases and the short id


@dataclass(frozen=True)
class NameTable:
    """Everything one container may resolve (see the module docstring)."""

    peers: tuple[NameEntry, ...] = ()  # in the order of the container's networks
    links: tuple[NameEntry, ...] = ()
    subnets: tuple[str, ...] = ()  # of its networks: reverse names inside are NXDOMAIN

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.network for p in self.peers))


@dataclass(frozen=True)
class Answer:
    rcode: int
    records: tuple[Record, ...] = ()


def _first_turn(_name: str) -> int:
    return 0


Turns = Callable[[str], int]  # name -> how many times its addresses were handed out before


def resolve(question: Question, table: NameTable, *, turn: Turns = _first_turn, ttl: int = TTL) -> Answer:
    """The answer to one question from one container's table; `turn` is asked only for a name
    with several addresses (A queries), so AAAA lookups do not skew the rotation."""
    if question.qclass != CLASS_IN:
        return Answer(REFUSED)
    key = question.name.lower().rstrip(".")
    if key.endswith(_REVERSE):
        return _reverse(question, key, table, ttl)
    found = addresses(key, table)
    if found is None:
        return Answer(NXDOMAIN if _ours(key, table) else REFUSED)
    if question.qtype != TYPE_A:
        return Answer(NOERROR)
    shift = turn(key) % len(found) if len(found) > 1 else 0
    ordered = found[shift:] + found[:shift]
    return Answer(NOERROR, tuple(a_record(question.name, ip, ttl) for ip in ordered))


def addresses(key: str, table: NameTable) -> list[str] | None:
    """The IPv4 addresses of a lower-case name, or None when the table does not know it."""
    links = _matching(key, table.links)
    if links:
        return links
    for network in table.networks:
        found = _matching(key, [p for p in table.peers if p.network == network])
        if found:
            return found
    for network in table.networks:
        suffix = "." + network.lower()
        if key.endswith(suffix):
            found = _matching(key[:-len(suffix)], [p for p in table.peers if p.network == network])
            if found:
                return found
    return None


def respond(packet: bytes, table: NameTable, *, turn: Turns = _first_turn, max_size: int = 0,
            ttl: int = TTL) -> bytes | None:
    """The reply datagram/message for a query packet; None when it is not worth an answer
    (shorter than a header, or itself a response)."""
    try:
        query = parse_query(packet)
    except WireError as err:
        if err.query_id is None or err.flags & 0x8000:
            return None
        return encode_error(err.query_id, err.flags, FORMERR)
    if query.opcode != 0:
        return encode_error(query.id, query.flags, NOTIMP)
    answer = resolve(query.question, table, turn=turn, ttl=ttl)
    return encode_response(query, answer.rcode, answer.records, max_size=max_size)


def _matching(key: str, peers: Sequence[NameEntry]) -> list[str]:
    return list(dict.fromkeys(p.ip for p in peers if p.ip and key in (n.lower() for n in p.names)))


def _ours(key: str, table: NameTable) -> bool:
    return "." not in key or any(key.endswith("." + n.lower()) for n in table.networks)


def _reverse(question: Question, key: str, table: NameTable, ttl: int) -> Answer:
    octets = key[:-len(_REVERSE)].split(".")
    try:
        ip = ipaddress.IPv4Address(".".join(reversed(octets)))
    except ValueError:
        return Answer(REFUSED)
    for peer in table.peers:
        if peer.ip == str(ip) and peer.names:
            if question.qtype != TYPE_PTR:
                return Answer(NOERROR)
            return Answer(NOERROR, (ptr_record(question.name, f"{peer.names[0]}.{peer.network}", ttl),))
    inside = any(ip in ipaddress.ip_network(s, strict=False) for s in table.subnets)
    return Answer(NXDOMAIN if inside else REFUSED)
