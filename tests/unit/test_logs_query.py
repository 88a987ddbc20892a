"""Reading events back (berth.logs._query): GetLogEvents' forward/backward tokens and
FilterLogEvents' interleaving, paging, time budget, and the follow tokens with their long poll."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from berth.logs import FilterQuery, InvalidFilterPattern, InvalidParameter, LogsService, filter_events, get_events
from berth.logs import _query
from berth.logs.testing import FakeClock, memory_logs

A, R, G = "123456789012", "us-east-1", "/ecs/web"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def logs(tmp_path: Path, clock: FakeClock) -> LogsService:
    service = memory_logs(tmp_path / "logs", clock, segment_bytes=4096, index_every=256)
    service.create_group(A, R, G)
    for name in ("a", "b", "c"):
        service.create_stream(A, R, G, name)
    return service


def t0(clock: FakeClock) -> int:
    return int(clock() * 1000) - 3600_000


def put(logs: LogsService, stream: str, events: list[tuple[int, str]]) -> None:
    assert not logs.put_events(A, R, G, stream, events)


def stream(logs: LogsService, name: str = "a"):  # type: ignore[no-untyped-def]
    return logs.stream(A, R, G, name)


# --- GetLogEvents --------------------------------------------------------------------------------


def test_default_is_the_last_page_ascending(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    put(logs, "a", [(base + i, f"m{i}") for i in range(100)])
    page = get_events(logs, stream(logs), limit=10)
    assert [e.message for e in page.events] == [f"m{i}" for i in range(90, 100)]
    head = get_events(logs, stream(logs), limit=10, from_head=True)
    assert [e.message for e in head.events] == [f"m{i}" for i in range(10)]
    assert head.events[0].ingestion_time == int(clock() * 1000)


def test_forward_paging_ends_with_the_same_token(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    put(logs, "a", [(base + i // 3, f"m{i}") for i in range(95)])  # timestamps repeat
    seen: list[str] = []
    page = get_events(logs, stream(logs), limit=10, from_head=True)
    seen += [e.message for e in page.events]
    while True:
        nxt = get_events(logs, stream(logs), limit=10, token=page.forward)
        if not nxt.events:
            assert nxt.forward == page.forward  # AWS: the token you passed in
            break
        seen += [e.message for e in nxt.events]
        page = nxt
    assert seen == [f"m{i}" for i in range(95)]
    put(logs, "a", [(base + 100, "late")])
    assert [e.message for e in get_events(logs, stream(logs), token=page.forward).events] == ["late"]


def test_backward_paging_ends_with_the_same_token(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    put(logs, "a", [(base + i, f"m{i}") for i in range(45)])
    seen: list[str] = []
    page = get_events(logs, stream(logs), limit=10)
    seen = [e.message for e in page.events] + seen
    while True:
        prev = get_events(logs, stream(logs), limit=10, token=page.backward)
        if not prev.events:
            assert prev.backward == page.backward
            break
        seen = [e.message for e in prev.events] + seen
        page = prev
    assert seen == [f"m{i}" for i in range(45)]
    # going forward again from the first page
    again = get_events(logs, stream(logs), limit=10, token=page.forward)
    assert again.events[0].message == "m5"  # the first page held m0..m4


def test_time_range_start_inclusive_end_exclusive(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    put(logs, "a", [(base + i, f"m{i}") for i in range(20)])
    page = get_events(logs, stream(logs), start=base + 5, end=base + 8, from_head=True)
    assert [e.message for e in page.events] == ["m5", "m6", "m7"]
    page = get_events(logs, stream(logs), start=base + 5, end=base + 8)
    assert [e.message for e in page.events] == ["m5", "m6", "m7"]
    assert get_events(logs, stream(logs), start=base + 50).events == []


def test_empty_stream_tokens_still_work(logs: LogsService, clock: FakeClock) -> None:
    page = get_events(logs, stream(logs))
    assert page.events == []
    put(logs, "a", [(t0(clock), "first")])
    assert [e.message for e in get_events(logs, stream(logs), token=page.forward).events] == ["first"]


def test_response_is_capped_at_one_megabyte(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    for b in range(3):
        put(logs, "a", [(base + b, "x" * 500_000)])
    page = get_events(logs, stream(logs), from_head=True)
    assert len(page.events) == 2
    assert len(get_events(logs, stream(logs), token=page.forward).events) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 0}, "limit"),
    ({"limit": 10_001}, "limit"),
    ({"token": "x/123"}, "nextToken is invalid"),
    ({"token": "f/" + "9" * 49}, "nextToken is invalid"),
    ({"start": -1}, "startTime"),
    ({"start": 10, "end": 5}, "startTime must be less than or equal to endTime"),
])
def test_get_refusals(logs: LogsService, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        get_events(logs, stream(logs), **kwargs)  # type: ignore[arg-type]


# --- FilterLogEvents -----------------------------------------------------------------------------


def query(logs: LogsService, **kw: object) -> FilterQuery:
    return FilterQuery(logs.streams(A, R, G), **kw)  # type: ignore[arg-type]


def all_pages(logs: LogsService, q: FilterQuery, **kw: object) -> tuple[list[str], int]:
    out: list[str] = []
    calls = 0
    token = None
    while True:
        page = filter_events(logs, A, R, G, FilterQuery(q.streams, q.start, q.end, q.pattern, token, q.limit,
                                                        q.follow), **kw)  # type: ignore[arg-type]
        calls += 1
        out += [f"{f.stream}:{f.event.message}" for f in page.events]
        token = page.next_token
        if token is None:
            return out, calls


def test_interleaved_by_time_then_stream(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    put(logs, "b", [(base + 1, "b1"), (base + 3, "b3")])
    put(logs, "a", [(base + 2, "a2"), (base + 3, "a3")])
    put(logs, "c", [(base + 0, "c0")])
    page = filter_events(logs, A, R, G, query(logs))
    assert [f"{f.stream}:{f.event.message}" for f in page.events] == ["c:c0", "b:b1", "a:a2", "a:a3", "b:b3"]
    assert page.next_token is None
    ids = [f.event_id for f in page.events]
    assert len(set(ids)) == len(ids) and all(len(i) == 56 and i.isdigit() for i in ids)


def test_pattern_streams_and_time_range(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    put(logs, "a", [(base + i, '{"level": "%s", "i": %d}' % ("error" if i % 4 == 0 else "info", i))
                    for i in range(40)])
    put(logs, "b", [(base + i, '{"level": "error", "i": %d}' % i) for i in range(3)])
    errors = filter_events(logs, A, R, G, query(logs, pattern='{ $.level = "error" }')).events
    assert len(errors) == 10 + 3
    only_a = FilterQuery([stream(logs, "a")], pattern='{ $.level = "error" }', start=base + 4, end=base + 8)
    assert [f.event.message for f in filter_events(logs, A, R, G, only_a).events] == [
        '{"level": "error", "i": 4}', '{"level": "error", "i": 8}']  # endTime inclusive
    with pytest.raises(InvalidFilterPattern):
        filter_events(logs, A, R, G, query(logs, pattern="{ $.level = "))


def test_paging_with_limit_visits_everything_once(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    for name in ("a", "b", "c"):
        put(logs, name, [(base + i // 2, f"{name}{i}") for i in range(50)])
    everything, _ = all_pages(logs, query(logs))
    paged, calls = all_pages(logs, query(logs, limit=7))
    assert paged == everything and len(paged) == 150 and calls == 22


def test_time_budget_answers_with_a_token_and_always_progresses(logs: LogsService, clock: FakeClock) -> None:
    base = t0(clock)
    for name in ("a", "b"):
        put(logs, name, [(base + i, f"{name}{i} " + "pad" * 100) for i in range(2000)])
    expected, _ = all_pages(logs, query(logs, pattern="a1999"))
    assert expected == ["a:a1999 " + "pad" * 100]
    got, calls = all_pages(logs, query(logs, pattern="a1999"), budget=-1.0)  # every marker is past the deadline
    assert got == expected and calls > 2


def test_bad_tokens_and_limits(logs: LogsService) -> None:
    for token in ("garbage", "eyJrIjogMX0="):
        with pytest.raises(InvalidParameter, match="nextToken is invalid"):
            filter_events(logs, A, R, G, query(logs, token=token))
    with pytest.raises(InvalidParameter, match="limit"):
        filter_events(logs, A, R, G, query(logs, limit=0))


# --- following (aws logs tail --follow) -----------------------------------------------------------


def test_quiet_group_gets_no_token(logs: LogsService, clock: FakeClock) -> None:
    page = filter_events(logs, A, R, G, query(logs, follow=True))
    assert page.events == [] and page.next_token is None


def test_not_following_gets_no_token_even_when_active(logs: LogsService, clock: FakeClock) -> None:
    put(logs, "a", [(t0(clock), "x")])
    assert filter_events(logs, A, R, G, query(logs)).next_token is None


def test_active_group_keeps_a_token_and_the_long_poll_wakes_on_a_write(logs: LogsService,
                                                                        clock: FakeClock) -> None:
    put(logs, "a", [(t0(clock), "first")])
    page = filter_events(logs, A, R, G, query(logs, follow=True))
    assert [f.event.message for f in page.events] == ["first"] and page.next_token
    writer = threading.Timer(0.2, put, (logs, "b", [(t0(clock) + 1, "second")]))
    writer.start()
    started = time.monotonic()
    nxt = filter_events(logs, A, R, G, query(logs, follow=True, token=page.next_token))
    waited = time.monotonic() - started
    writer.join()
    assert [f.event.message for f in nxt.events] == ["second"]
    assert 0.1 < waited < _query.LONG_POLL + 0.5
    assert nxt.next_token and nxt.next_token != page.next_token
    # nothing new: the long poll times out and the token changes (botocore refuses a repeat)
    idle = filter_events(logs, A, R, G, query(logs, follow=True, token=nxt.next_token))
    assert idle.events == [] and idle.next_token not in (None, nxt.next_token)


def test_follow_ends_when_the_group_goes_quiet_or_the_chain_is_old(logs: LogsService, clock: FakeClock,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    put(logs, "a", [(t0(clock), "first")])
    page = filter_events(logs, A, R, G, query(logs, follow=True))
    assert page.next_token
    monkeypatch.setattr(_query, "ACTIVE_WINDOW", 0.0)
    assert filter_events(logs, A, R, G, query(logs, follow=True, token=page.next_token)).next_token is None
    monkeypatch.setattr(_query, "ACTIVE_WINDOW", 60.0)
    clock.advance(_query.CHAIN_MAX + 1)
    assert filter_events(logs, A, R, G, query(logs, follow=True, token=page.next_token)).next_token is None


def test_follow_with_a_past_end_time_ends(logs: LogsService, clock: FakeClock) -> None:
    put(logs, "a", [(t0(clock), "first")])
    assert filter_events(logs, A, R, G, query(logs, follow=True, end=t0(clock) + 10)).next_token is None
