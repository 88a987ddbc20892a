"""What the embedded resolver answers (berth.network._dnsnames): names, aliases, links, PTR, refusals."""

from __future__ import annotations

import itertools

from berth.network import _dnswire as wire
from berth.network._dnsnames import NameTable, NameEntry, resolve, respond

TABLE = NameTable(
    peers=(
        NameEntry("app", "172.18.0.2", ("web1", "web", "aaaaaaaaaaaa")),
        NameEntry("app", "172.18.0.3", ("web2", "web", "bbbbbbbbbbbb")),
        NameEntry("app", "172.18.0.4", ("me", "cccccccccccc")),
        NameEntry("back", "172.19.0.5", ("db", "store", "dddddddddddd")),
        NameEntry("back", "172.19.0.6", ("web3", "web", "eeeeeeeeeeee")),
        NameEntry("back", "172.19.0.4", ("me", "cccccccccccc")),
    ),
    links=(NameEntry("", "172.19.0.5", ("cache", "dddddddddddd", "db")),),
    subnets=("172.18.0.0/16", "172.19.0.0/16"),
)


def _ask(name: str, qtype: int = wire.TYPE_A, **kwargs: object) -> tuple[int, list[str]]:
    answer = resolve(wire.Question(name, qtype), TABLE, **kwargs)  # type: ignore[arg-type]
    ips = [".".join(map(str, r.rdata)) if r.rtype == wire.TYPE_A else wire.decode_name(r.rdata, 0)[0]
           for r in answer.records]
    return answer.rcode, ips


def test_names_aliases_and_short_ids_resolve() -> None:
    assert _ask("web1") == (wire.NOERROR, ["172.18.0.2"])
    assert _ask("STORE.") == (wire.NOERROR, ["172.19.0.5"])
    assert _ask("bbbbbbbbbbbb") == (wire.NOERROR, ["172.18.0.3"])
    assert _ask("me") == (wire.NOERROR, ["172.18.0.4"])  # itself, first network first


def test_link_aliases_win_and_network_suffix_selects_the_network() -> None:
    assert _ask("cache") == (wire.NOERROR, ["172.19.0.5"])
    assert _ask("web.back") == (wire.NOERROR, ["172.19.0.6"])
    assert _ask("me.back") == (wire.NOERROR, ["172.19.0.4"])


def test_shared_alias_answers_every_member_round_robin() -> None:
    counter = itertools.count()
    asked: list[str] = []

    def turn(name: str) -> int:
        asked.append(name)
        return next(counter)

    first = _ask("web", turn=turn)[1]
    second = _ask("web", turn=turn)[1]
    assert first == ["172.18.0.2", "172.18.0.3"] and second == ["172.18.0.3", "172.18.0.2"]
    _ask("web1", turn=turn)
    _ask("web", wire.TYPE_AAAA, turn=turn)
    assert asked == ["web", "web"]  # single answers and AAAA do not turn the wheel


def test_known_names_have_no_aaaa_records() -> None:
    assert _ask("web1", wire.TYPE_AAAA) == (wire.NOERROR, [])


def test_unknown_names_are_nxdomain_inside_and_refused_outside() -> None:
    assert _ask("nosuch")[0] == wire.NXDOMAIN
    assert _ask("nosuch.app")[0] == wire.NXDOMAIN
    assert _ask("example.com")[0] == wire.REFUSED
    assert _ask("web1", qtype=wire.TYPE_A)[0] == wire.NOERROR
    assert resolve(wire.Question("web1", wire.TYPE_A, 3), TABLE).rcode == wire.REFUSED  # CHAOS class


def test_reverse_lookups() -> None:
    assert _ask("2.0.18.172.in-addr.arpa", wire.TYPE_PTR) == (wire.NOERROR, ["web1.app"])
    assert _ask("99.0.18.172.in-addr.arpa", wire.TYPE_PTR)[0] == wire.NXDOMAIN
    assert _ask("8.8.8.8.in-addr.arpa", wire.TYPE_PTR)[0] == wire.REFUSED
    assert _ask("x.in-addr.arpa", wire.TYPE_PTR)[0] == wire.REFUSED


def test_respond_handles_packets() -> None:
    reply = respond(wire.encode_query(5, "web2", wire.TYPE_A), TABLE)
    assert reply is not None
    parsed = wire.parse_response(reply)
    assert parsed.id == 5 and parsed.rcode == wire.NOERROR and len(parsed.answers) == 1
    bad = respond(wire.encode_query(6, "x", wire.TYPE_A)[:12] + b"\x05ab", TABLE)
    assert bad is not None and wire.parse_response(bad).rcode == wire.FORMERR
    assert respond(b"\x00", TABLE) is None
    notify = bytearray(wire.encode_query(8, "web2", wire.TYPE_A))
    notify[2] |= 4 << 3  # opcode NOTIFY
    reply = respond(bytes(notify), TABLE)
    assert reply is not None and wire.parse_response(reply).rcode == wire.NOTIMP
