"""LogsService (groups, streams, PutLogEvents rules, tags, retention, recovery) and EngineSink,
over an in-memory store, a temporary directory and a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.errors import InvalidArgument, NotFound
from berth.logs import (
    EngineSink, InvalidParameter, LogsService, Rejected, ResourceAlreadyExists, ResourceNotFound, TooManyTags,
)
from berth.logs._segments import forward, message_of
from berth.logs._service import DAY_MS
from berth.logs._sink import batches
from berth.logs.testing import FakeClock, memory_logs

A, R = "123456789012", "us-east-1"
G, S = "/ecs/web", "web/app/0123"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def logs(tmp_path: Path, clock: FakeClock) -> LogsService:
    service = memory_logs(tmp_path / "logs", clock)
    service.create_group(A, R, G)
    service.create_stream(A, R, G, S)
    return service


def now(clock: FakeClock) -> int:
    return int(clock() * 1000)


def stored(logs: LogsService, group: str = G, stream: str = S) -> list[str]:
    views = logs.stream_views(logs.stream(A, R, group, stream))
    return [message_of(r[4]) for r in forward(views, (0, 0, -1), 0, 10**19)]


# --- groups -------------------------------------------------------------------------------------


def test_group_lifecycle(logs: LogsService, clock: FakeClock) -> None:
    g = logs.create_group(A, R, "/other", tags={"team": "a"})
    assert g.created == now(clock)
    assert g.arn == f"arn:aws:logs:{R}:{A}:log-group:/other"
    assert [x.name for x in logs.groups(A, R)] == ["/ecs/web", "/other"]
    assert [x.name for x in logs.groups(A, R, prefix="/ecs")] == ["/ecs/web"]
    assert [x.name for x in logs.groups(A, R, pattern="OTH")] == ["/other"]  # case-insensitive
    assert logs.groups("999999999999", R) == [] and logs.groups(A, "eu-west-1") == []
    with pytest.raises(ResourceAlreadyExists, match="already exists"):
        logs.create_group(A, R, "/other")
    logs.delete_group(A, R, "/other")
    with pytest.raises(ResourceNotFound, match="^The specified log group does not exist.$"):
        logs.delete_group(A, R, "/other")


@pytest.mark.parametrize("name", ["", "a:b", "with space", "*", "é", "x" * 513])
def test_invalid_group_names(logs: LogsService, name: str) -> None:
    with pytest.raises(InvalidParameter, match="1 validation error detected"):
        logs.create_group(A, R, name)


def test_valid_group_name_characters(logs: LogsService) -> None:
    logs.create_group(A, R, "a.b-c_d/e#F9")
    logs.create_group(A, R, "x" * 512)


def test_create_group_options_are_checked(logs: LogsService) -> None:
    with pytest.raises(InvalidParameter, match="logGroupClass"):
        logs.create_group(A, R, "/g", log_group_class="CHEAP")
    with pytest.raises(InvalidParameter, match="tags"):
        logs.create_group(A, R, "/g", tags={"": "x"})
    with pytest.raises(InvalidParameter):
        logs.create_group(A, R, "/g", tags={f"k{i}": "v" for i in range(51)})
    assert logs.groups(A, R, prefix="/g") == []  # nothing half-made


def test_deletion_protection(logs: LogsService) -> None:
    logs.create_group(A, R, "/keep", deletion_protection=True)
    with pytest.raises(InvalidParameter, match="deletion protection"):
        logs.delete_group(A, R, "/keep")
    assert logs.group(A, R, "/keep")


def test_retention(logs: LogsService) -> None:
    assert logs.put_retention(A, R, G, 7).retention_days == 7
    assert logs.group(A, R, G).retention_days == 7
    for bad in (0, 2, 4000, "7", True, None):
        with pytest.raises(InvalidParameter, match="retentionInDays"):
            logs.put_retention(A, R, G, bad)
    assert logs.group(A, R, G).retention_days == 7
    assert logs.delete_retention(A, R, G).retention_days is None
    with pytest.raises(ResourceNotFound):
        logs.put_retention(A, R, "/none", 7)
    with pytest.raises(ResourceNotFound):
        logs.delete_retention(A, R, "/none")


def test_tags(logs: LogsService) -> None:
    logs.tag_group(A, R, G, {"a": "1", "b": "2"})
    logs.tag_group(A, R, G, {"b": "3"})
    assert dict(logs.group(A, R, G).tags) == {"a": "1", "b": "3"}
    logs.untag_group(A, R, G, ["a", "missing"])
    assert dict(logs.group(A, R, G).tags) == {"b": "3"}
    with pytest.raises(TooManyTags):
        logs.tag_group(A, R, G, {f"k{i}": "v" for i in range(50)})
    assert dict(logs.group(A, R, G).tags) == {"b": "3"}
    with pytest.raises(ResourceNotFound):
        logs.tag_group(A, R, "/none", {"a": "1"})
    with pytest.raises(InvalidParameter):
        logs.untag_group(A, R, G, [""])


def test_group_by_arn(logs: LogsService) -> None:
    arn = f"arn:aws:logs:{R}:{A}:log-group:{G}"
    assert logs.group_by_arn(arn).name == G
    assert logs.group_by_arn(arn + ":*").name == G
    with pytest.raises(ResourceNotFound):
        logs.group_by_arn(f"arn:aws:logs:eu-west-1:{A}:log-group:{G}")
    for bad in ("nope", f"arn:aws:ecs:{R}:{A}:log-group:{G}", f"arn:aws:logs:{R}:{A}:destination:x",
                f"arn:aws:logs:{R}:{A}:log-group:a b"):
        with pytest.raises(InvalidParameter):
            logs.group_by_arn(bad)


# --- streams ------------------------------------------------------------------------------------


def test_stream_lifecycle(logs: LogsService) -> None:
    logs.create_stream(A, R, G, "b")
    logs.create_stream(A, R, G, "a")
    assert [s.name for s in logs.streams(A, R, G)] == ["a", "b", S]
    assert [s.name for s in logs.streams(A, R, G, prefix="web/")] == [S]
    with pytest.raises(ResourceAlreadyExists, match="log stream already exists"):
        logs.create_stream(A, R, G, "a")
    with pytest.raises(ResourceNotFound, match="log group does not exist"):
        logs.create_stream(A, R, "/none", "a")
    logs.delete_stream(A, R, G, "a")
    with pytest.raises(ResourceNotFound, match="^The specified log stream does not exist.$"):
        logs.delete_stream(A, R, G, "a")
    with pytest.raises(ResourceNotFound, match="log group does not exist"):
        logs.delete_stream(A, R, "/none", "a")
    with pytest.raises(ResourceNotFound, match="log group"):
        logs.streams(A, R, "/none")


@pytest.mark.parametrize("name", ["", "a:b", "a*b", "x" * 513])
def test_invalid_stream_names(logs: LogsService, name: str) -> None:
    with pytest.raises(InvalidParameter, match="1 validation error detected"):
        logs.create_stream(A, R, G, name)


def test_stream_names_may_hold_anything_else(logs: LogsService) -> None:
    for name in ("with space", "ünïcode/✓", "a/b/c", "#!$%", "x" * 512):
        logs.create_stream(A, R, G, name)


def test_delete_group_deletes_streams_and_their_files(logs: LogsService, clock: FakeClock, tmp_path: Path) -> None:
    logs.put_events(A, R, G, S, [(now(clock), "hello")])
    directory = tmp_path / "logs" / "streams" / logs.stream(A, R, G, S).storage_id
    assert directory.is_dir()
    logs.delete_group(A, R, G)
    assert not directory.exists()
    assert logs.catalog.storage_ids() == set()
    logs.create_group(A, R, G)
    logs.create_stream(A, R, G, S)
    assert stored(logs) == []  # a re-created stream starts empty


def test_recover_removes_orphaned_directories(logs: LogsService, clock: FakeClock, tmp_path: Path) -> None:
    logs.put_events(A, R, G, S, [(now(clock), "kept")])
    orphan = tmp_path / "logs" / "streams" / "0123abcd"
    orphan.mkdir()
    (orphan / "00000001.log").write_bytes(b"1\t1\tx\n")
    assert logs.recover() == 1
    assert not orphan.exists()
    assert stored(logs) == ["kept"]


# --- PutLogEvents ------------------------------------------------------------------------------


def test_put_and_stats(logs: LogsService, clock: FakeClock) -> None:
    t = now(clock)
    assert not logs.put_events(A, R, G, S, [(t - 5, "a"), (t - 5, "b"), (t, "c")])
    assert stored(logs) == ["a", "b", "c"]
    stats = logs.stream_stats(logs.stream(A, R, G, S))
    assert (stats.first_event, stats.last_event, stats.last_ingestion) == (t - 5, t, t)
    assert logs.stored_bytes(logs.group(A, R, G)) == stats.stored_bytes > 0


@pytest.mark.parametrize("events, message", [
    ([], "length greater than or equal to 1"),
    ([(1, "x")] * 10_001, "length less than or equal to 10000"),
    ([(2, "b"), (1, "a")], "must be in chronological order"),
    ([(0, "a"), (DAY_MS + 1, "b")], "cannot span more than 24 hours"),
    ([(1, "")], "logEvents.1.member.message"),
    ([(-1, "x")], "logEvents.1.member.timestamp"),
    ([(1, "x" * (1_048_576 - 25))], "Upload too large: 1048577 bytes exceeds limit of 1048576"),
    ([(1, "x" * 500_000), (1, "é" * 275_000)], "Upload too large"),
])
def test_batch_rules(logs: LogsService, clock: FakeClock, events: list[tuple[int, str]], message: str) -> None:
    base = now(clock) - DAY_MS
    shifted = [(ts + base if ts >= 0 else ts, m) for ts, m in events]
    with pytest.raises(InvalidParameter, match=message):
        logs.put_events(A, R, G, S, shifted)
    assert stored(logs) == []


def test_batch_limits_are_inclusive(logs: LogsService, clock: FakeClock) -> None:
    t = now(clock) - DAY_MS
    logs.put_events(A, R, G, S, [(t, "x" * (1_048_576 - 26))])
    logs.put_events(A, R, G, S, [(t, "a"), (t + DAY_MS, "b")])
    logs.put_events(A, R, G, S, [(t + DAY_MS, "y")] * 10_000)
    assert len(stored(logs)) == 10_003


def test_too_old_too_new_and_expired_events_are_left_out(logs: LogsService, clock: FakeClock) -> None:
    t = now(clock)
    old = t - 14 * DAY_MS - 10
    rejected = logs.put_events(A, R, G, S, [(old, "old1"), (old + 1, "old2"), (old + 3600_000, "ok")])
    assert rejected == Rejected(too_old_end=2)
    rejected = logs.put_events(A, R, G, S, [(t + 3600_000, "ok2"), (t + 3 * 3600_000, "new")])
    assert rejected == Rejected(too_new_start=1)
    assert stored(logs) == ["ok", "ok2"]
    logs.put_retention(A, R, G, 1)
    rejected = logs.put_events(A, R, G, S, [(t - DAY_MS - 1, "expired"), (t - 2, "fresh")])
    assert rejected == Rejected(expired_end=1)
    assert stored(logs) == ["ok", "fresh", "ok2"]  # in timestamp order
    # the boundaries: exactly 14 days old and exactly 2 h ahead are accepted
    logs.delete_retention(A, R, G)
    assert not logs.put_events(A, R, G, S, [(t - 14 * DAY_MS, "edge-old")])
    assert not logs.put_events(A, R, G, S, [(t + 2 * 3600_000, "edge-new")])
    new = t + 3 * 3600_000
    rejected = logs.put_events(A, R, G, S, [(new, "n1"), (new, "n2")])  # every event rejected
    assert rejected == Rejected(too_new_start=0)


def test_put_to_unknown_group_or_stream(logs: LogsService, clock: FakeClock) -> None:
    with pytest.raises(ResourceNotFound, match="log group does not exist"):
        logs.put_events(A, R, "/none", S, [(now(clock), "x")])
    with pytest.raises(ResourceNotFound, match="log stream does not exist"):
        logs.put_events(A, R, G, "none", [(now(clock), "x")])
    with pytest.raises(InvalidParameter):
        logs.put_events(A, R, G, "a:b", [(now(clock), "x")])


def test_put_after_the_stream_was_deleted(logs: LogsService, clock: FakeClock) -> None:
    logs.put_events(A, R, G, S, [(now(clock), "x")])
    logs.delete_stream(A, R, G, S)
    with pytest.raises(ResourceNotFound, match="log stream"):
        logs.put_events(A, R, G, S, [(now(clock), "y")])


def test_put_notes_activity(logs: LogsService, clock: FakeClock) -> None:
    key = f"{A}/{R}/{G}"
    assert logs.activity.state(key) == (0, None)
    logs.put_events(A, R, G, S, [(now(clock), "x")])
    count, when = logs.activity.state(key)
    assert count == 1 and when is not None
    assert logs.activity.wait(key, 0, 0.01)
    assert not logs.activity.wait(key, 1, 0.01)


# --- retention sweep ----------------------------------------------------------------------------


def test_apply_retention(tmp_path: Path, clock: FakeClock) -> None:
    logs = memory_logs(tmp_path / "logs", clock, segment_bytes=16)
    logs.create_group(A, R, G)
    logs.create_stream(A, R, G, S)
    t = now(clock)
    logs.put_events(A, R, G, S, [(t - 10 * DAY_MS, "old")])
    logs.put_events(A, R, G, S, [(t - DAY_MS, "recent")])
    logs.put_events(A, R, G, S, [(t, "new")])
    assert logs.apply_retention() == 0  # no retention set
    logs.put_retention(A, R, G, 7)
    assert logs.apply_retention() > 0
    assert stored(logs) == ["recent", "new"]
    clock.advance(8 * 86400)
    logs.apply_retention()
    assert stored(logs) == []
    assert logs.stream_stats(logs.stream(A, R, G, S)).first_event is None


# --- EngineSink ---------------------------------------------------------------------------------


def test_sink_prepare(tmp_path: Path, clock: FakeClock) -> None:
    logs = memory_logs(tmp_path / "logs", clock)
    sink = EngineSink(logs)
    with pytest.raises(NotFound):
        sink.prepare(G, S, region=R, create_group=False)
    sink.prepare(G, S, region=R, create_group=True)
    sink.prepare(G, S, region=R, create_group=True)  # idempotent
    sink.prepare(G, "second", region=R, create_group=False)
    assert [s.name for s in logs.streams(A, R, G)] == ["second", S]
    with pytest.raises(InvalidArgument):
        sink.prepare("bad:group", S, region=R, create_group=True)
    with pytest.raises(InvalidArgument):
        sink.prepare(G, "bad*stream", region=R, create_group=True)
    assert logs.groups(A, "eu-west-1") == []


def test_sink_append_splits_sorts_and_skips_empty(logs: LogsService, clock: FakeClock) -> None:
    sink = EngineSink(logs, account=A)
    t = now(clock) - DAY_MS
    events = [(t + 2, "b"), (t + 1, "a"), (t + 3, ""), (t + DAY_MS + 5, "next day")]
    events += [(t + DAY_MS + 5, "x" * 100_000)] * 25
    sink.append(G, S, events, region=R)
    got = stored(logs)
    assert got[:3] == ["a", "b", "next day"] and len(got) == 28


def test_batches_respect_every_limit() -> None:
    day = DAY_MS
    assert batches([]) == []
    assert [len(b) for b in batches([(1, "x")] * 25_000)] == [10_000, 10_000, 5_000]
    big = [(1, "x" * 300_000)] * 7
    assert [len(b) for b in batches(big)] == [3, 3, 1]
    assert [len(b) for b in batches([(0, "a"), (day, "b"), (day + 1, "c")])] == [2, 1]
    for batch in batches([(i * 1000, "y" * 5000) for i in range(5000)]):
        assert sum(len(m) + 26 for _, m in batch) <= 1_048_576


def test_sink_append_to_a_deleted_stream(logs: LogsService, clock: FakeClock) -> None:
    sink = EngineSink(logs)
    logs.delete_group(A, R, G)
    with pytest.raises(NotFound):
        sink.append(G, S, [(now(clock), "x")], region=R)


def test_encoded_lines_are_stored_and_read_like_events(logs: LogsService, clock: FakeClock) -> None:
    from berth.logs._segments import encode_events

    t = now(clock)
    events = [(t - 1000 + i, f"msg {i}\\x") for i in range(50)]
    data = b"".join(encode_events(events, t))
    assert logs.append_encoded(A, R, G, S, data, events[0][0], events[-1][0], t)
    assert stored(logs) == [m for _, m in events]


def test_encoded_lines_outside_the_time_bounds_are_left_to_the_event_path(logs: LogsService,
                                                                            clock: FakeClock) -> None:
    from berth.logs._segments import encode_events

    t = now(clock)
    for events in ([(t - 15 * DAY_MS, "too old"), (t, "now")], [(t, "now"), (t + 3 * 3600_000, "ahead")]):
        data = b"".join(encode_events(events, t))
        assert not logs.append_encoded(A, R, G, S, data, events[0][0], events[-1][0], t)
    logs.put_retention(A, R, G, 1)
    events = [(t - 2 * DAY_MS, "expired"), (t, "now")]
    assert not logs.append_encoded(A, R, G, S, b"".join(encode_events(events, t)), events[0][0], t, t)
    assert stored(logs) == []
