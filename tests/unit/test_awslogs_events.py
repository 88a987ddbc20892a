"""k8s-file bytes → lines → CloudWatch Logs events (pure)."""

from __future__ import annotations

import re

import pytest

from berth.engine.awslogs_events import MAX_EVENT_BYTES, Grouper, Line, LineReader, in_time_order, split_event

T0 = 1_800_000_000_000_000_000  # ns


def rec(text: str, *, stream: str = "stdout", partial: bool = False, ts_ns: int = T0) -> bytes:
    secs, nanos = divmod(ts_ns, 1_000_000_000)
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}+00:00 {stream} {'P' if partial else 'F'} {text}\n".encode()


def test_whole_lines_in_file_order_with_offsets() -> None:
    data = rec("a") + rec("b", stream="stderr") + rec("c")
    lines = LineReader().feed(data)
    assert [(x.text, x.stream) for x in lines] == [(b"a", 1), (b"b", 2), (b"c", 1)]
    assert lines[0].start == 0 and lines[-1].end == len(data)
    assert [x.start for x in lines[1:]] == [x.end for x in lines[:-1]]


def test_a_record_split_between_chunks_waits_for_its_newline() -> None:
    data = rec("hello") + rec("world")
    reader = LineReader()
    assert [x.text for x in reader.feed(data[:10])] == []
    cut = len(rec("hello")) + 5
    assert [x.text for x in reader.feed(data[10:cut])] == [b"hello"]
    assert [x.text for x in reader.feed(data[cut:])] == [b"world"]
    assert reader.position == len(data) == reader.resume_offset()


def test_partial_records_of_one_stream_join_into_one_line() -> None:
    data = rec("ab", partial=True) + rec("err", stream="stderr") + rec("cd", partial=True) + rec("ef")
    reader = LineReader()
    lines = reader.feed(data[: len(data) - len(rec("ef"))])
    assert [x.text for x in lines] == [b"err"]
    assert reader.resume_offset() == 0  # the open run starts there: a restart must re-read it
    lines = reader.feed(rec("ef"))
    assert [(x.text, x.start, x.end) for x in lines] == [(b"abcdef", 0, len(data))]


def test_skip_through_drops_lines_already_shipped() -> None:
    data = rec("a") + rec("b") + rec("c")
    first_two = len(rec("a") + rec("b"))
    assert [x.text for x in LineReader(0, skip_through=first_two).feed(data)] == [b"c"]


def test_malformed_records_are_skipped() -> None:
    data = b"garbage without fields\n" + rec("ok")
    assert [x.text for x in LineReader().feed(data)] == [b"ok"]


def test_one_event_per_line_without_a_pattern() -> None:
    grouper = Grouper(None)
    events = grouper.add(Line(0, 10, T0, 1, b"hello"), 0.0)
    assert [(e.ts_ms, e.message, e.end) for e in events] == [(T0 // 1_000_000, "hello", 10)]
    assert grouper.pending_start is None


def test_multiline_groups_until_the_next_match_or_idle() -> None:
    grouper = Grouper(re.compile(rb"^\d{4}-"), idle_s=0.5)
    assert grouper.add(Line(0, 10, T0, 1, b"2026-01-01 boom"), 0.0) == []
    assert grouper.add(Line(10, 20, T0 + 1, 2, b"  at f()"), 0.1) == []
    assert grouper.pending_start == 0
    events = grouper.add(Line(20, 30, T0 + 2, 1, b"2026-01-01 next"), 0.2)
    assert [(e.message, e.end) for e in events] == [("2026-01-01 boom\n  at f()\n", 20)]
    assert grouper.flush_idle(0.6) == []
    assert grouper.idle_deadline() == pytest.approx(0.7)
    assert [e.message for e in grouper.flush_idle(0.75)] == ["2026-01-01 next\n"]


def test_a_long_line_is_split_into_events_at_character_boundaries() -> None:
    text = ("é" * (MAX_EVENT_BYTES // 2 + 10)).encode()
    events = split_event(5, text, 99)
    assert len(events) == 2
    assert all(len(e.message.encode()) <= MAX_EVENT_BYTES for e in events)
    assert "".join(e.message for e in events) == text.decode()


def test_invalid_utf8_is_replaced() -> None:
    assert split_event(1, b"a\xffb", 3)[0].message == "a\ufffdb"


def test_batches_go_out_in_time_order_stable() -> None:
    from berth.engine.awslogs_events import Event

    out = in_time_order([Event(5, "late", 1), Event(3, "x", 2), Event(3, "y", 3)])
    assert out == [(3, "x"), (3, "y"), (5, "late")]


# --- the encoded fast path ---------------------------------------------------------------------------

def test_the_fast_path_encodes_what_the_event_path_would_store() -> None:
    from berth.engine.awslogs_events import events_of
    from berth.logs._segments import encode_events

    data = b"".join(rec(f"line {i} back\\slash", stream="stderr" if i % 3 else "stdout", ts_ns=T0 + i * 1_700_000)
                    for i in range(2000))
    encoded = LineReader().feed_encoded(data, 1234)
    assert encoded is not None and encoded.n_lines == 2000 and encoded.end == len(data)
    expected = in_time_order([e for line in LineReader().feed(data) for e in split_event(
        line.ts_ns // 1_000_000, line.text, line.end)])
    assert encoded.data == b"".join(encode_events(expected, 1234))
    assert (encoded.first_ts, encoded.last_ts) == (expected[0][0], expected[-1][0])
    assert [(e.ts_ms, e.message) for e in events_of(encoded)] == expected


def test_the_fast_path_keeps_a_partial_record_for_the_next_chunk() -> None:
    data = rec("one") + rec("two")
    reader = LineReader()
    first = reader.feed_encoded(data[:len(rec("one")) + 7], 1)
    assert first is not None and first.n_lines == 1
    second = reader.feed_encoded(data[len(rec("one")) + 7:], 1)
    assert second is not None and second.data.endswith(b"\ttwo\n") and second.end == len(data)


@pytest.mark.parametrize("data", [
    rec("a") + rec("b", partial=True) + rec("c", stream="stderr"),  # a P record, then the other stream
    rec("a") + rec("b", partial=True) + rec("c", partial=True) + rec("d"),  # a line of several P records
    rec("a") + rec(""),                                          # an empty line: not sent
    rec("late", ts_ns=T0 + 5_000_000) + rec("early"),            # out of time order
    rec("a") + b"not a k8s-file record\n",                       # not conmon's shape
], ids=["partial-interleaved", "partial-long", "empty", "disorder", "foreign"])
def test_the_fast_path_leaves_other_chunks_to_the_event_path(data: bytes) -> None:
    reader = LineReader()
    assert reader.feed_encoded(data, 1) is None
    assert reader.position == 0  # nothing consumed: feed_events reads the same chunk
    assert reader.feed_events(data)


def test_the_fast_path_joins_a_line_cut_by_conmons_buffer_as_the_event_path_does() -> None:
    from berth.engine.awslogs_events import events_of

    data = (rec("one") + rec("tw", partial=True, ts_ns=T0 + 1_000_000) + rec("o P x", ts_ns=T0 + 2_000_000)
            + rec("three", stream="stderr", ts_ns=T0 + 2_500_000) + rec("fo", partial=True, ts_ns=T0 + 3_000_000))
    reader = LineReader()
    encoded = reader.feed_encoded(data, 7)
    assert encoded is not None
    assert [(e.ts_ms, e.message) for e in events_of(encoded)] == [
        (T0 // 1_000_000, "one"), (T0 // 1_000_000 + 1, "two P x"), (T0 // 1_000_000 + 2, "three")]
    # the trailing P record waits for the rest of its line
    assert encoded.end == len(data) - len(rec("fo", partial=True, ts_ns=T0 + 3_000_000))
    rest = reader.feed_encoded(rec("ur", ts_ns=T0 + 4_000_000), 7)
    assert rest is not None and [e.message for e in events_of(rest)] == ["four"] and rest.end == len(data) + len(
        rec("ur", ts_ns=T0 + 4_000_000))
