"""k8s-file parsing without I/O: the chunked forward parser and the backward tail finder."""

from __future__ import annotations

import collections
import random

import pytest

from berth.runtime import k8sfile
from berth.runtime.k8sfile import EVERYTHING, LogLine, LogParser, TailFinder, TailStart, TimeWindow

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
NS = 1_000_000_000


def rec(second: float, stream: str, flag: str, text: str) -> bytes:
    whole, frac = divmod(round(second * 1000), 1000)
    minutes, secs = divmod(20 + whole, 60)
    return f"2023-11-14T22:{13 + minutes:02d}:{secs:02d}.{frac:03d}+00:00 {stream} {flag} {text}\n".encode()


def parse_all(data: bytes, start: TailStart = EVERYTHING, chunk: int = 1 << 30,
              end: int | None = None) -> list[LogLine]:
    parser = LogParser(start)
    out: list[LogLine] = []
    end = len(data) if end is None else end
    for i in range(start.offset, end, chunk):
        out += parser.feed(data[i:min(end, i + chunk)])
    return out


def find(data: bytes, lines: int, block: int = 7, window: TimeWindow = TimeWindow(), lookback: int = 0) -> TailStart:
    finder = TailFinder(lines, len(data), window, lookback)
    while not finder.done:
        begin = max(0, finder.position - block)
        finder.feed(data[begin:finder.position])
    return finder.result()


def tail(data: bytes, lines: int, block: int = 7, window: TimeWindow = TimeWindow(),
         chunk: int = 5) -> list[bytes]:
    start = find(data, lines, block, window)
    return [line.text for line in parse_all(data, start, chunk, start.stop) if window.admits(line.ts_ns)]


# --- forward parser -------------------------------------------------------------------------------

LOG = b"".join([
    rec(0, "stdout", "F", "first"),
    rec(1.5, "stderr", "P", "par"),
    rec(1.6, "stdout", "F", "second"),
    rec(1.7, "stderr", "F", "tial"),
    b"garbage line\n",
    rec(3, "stdout", "F", ""),
])


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_parser_gives_the_same_lines_for_any_chunking(chunk: int) -> None:
    lines = parse_all(LOG, chunk=chunk)
    assert [(line.stream, line.text) for line in lines] == [
        (1, b"first\n"), (1, b"second\n"), (2, b"partial\n"), (1, b"\n")]
    assert lines[2].ts_ns == (T0 + 1) * NS + 500_000_000  # a joined line has its first part's time


def test_parser_keeps_an_unterminated_record_until_its_newline() -> None:
    parser = LogParser()
    last = rec(5, "stdout", "F", "late")
    assert [line.text for line in parser.feed(LOG + last[:-3])] == [b"first\n", b"second\n", b"partial\n", b"\n"]
    assert parser.position == len(LOG) + len(last) - 3
    assert [line.text for line in parser.feed(last[-3:])] == [b"late\n"]
    assert parser.position == len(LOG) + len(last)


def test_parser_skips_an_over_long_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(k8sfile, "MAX_RECORD", 60)
    data = rec(0, "stdout", "F", "x" * 100) + rec(1, "stdout", "F", "ok")
    for chunk in (3, 16, 1000):
        assert [line.text for line in parse_all(data, chunk=chunk)] == [b"ok\n"]


def test_parser_passes_an_over_long_group_on_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(k8sfile, "MAX_JOIN", 10)
    data = b"".join(rec(i, "stdout", "P", "abcd") for i in range(5)) + rec(6, "stdout", "F", "end")
    lines = parse_all(data, chunk=9)
    assert b"".join(line.text for line in lines) == b"abcd" * 5 + b"end\n"
    assert [line.text for line in lines] == [b"abcd" * 3, b"abcdabcdend\n"]
    assert [line.continued for line in lines] == [False, True]
    assert {line.ts_ns for line in lines} == {T0 * NS}  # every piece has the line's time


# --- tail finder -----------------------------------------------------------------------------------

def test_tail_of_simple_lines_at_every_block_size() -> None:
    data = b"".join(rec(i, "stdout", "F", f"line{i}") for i in range(10))
    for block in range(1, len(data) + 2):
        assert tail(data, 3, block) == [b"line7\n", b"line8\n", b"line9\n"], block


def test_tail_start_is_the_first_wanted_record() -> None:
    data = b"".join(rec(i, "stdout", "F", f"line{i}") for i in range(10))
    start = find(data, 2)
    assert data[start.offset:].startswith(rec(8, "stdout", "F", "line8"))
    assert start.keep == frozenset()


def test_tail_counts_a_joined_line_once_across_blocks() -> None:
    data = b"".join([
        rec(0, "stdout", "F", "zero"),
        rec(1, "stdout", "P", "a"), rec(2, "stdout", "P", "b"), rec(3, "stdout", "F", "c"),
        rec(4, "stdout", "F", "four"),
    ])
    for block in (1, 5, 30, 1000):
        assert tail(data, 2, block) == [b"abc\n", b"four\n"]
        assert tail(data, 1, block) == [b"four\n"]


def test_tail_keeps_the_other_streams_straddling_line_whole() -> None:
    # stderr's line started before stdout's "second" but completes after it.
    assert tail(LOG, 2) == [b"partial\n", b"\n"]
    assert tail(LOG, 3) == [b"second\n", b"partial\n", b"\n"]
    start = find(LOG, 2)
    assert start.offset == LOG.index(rec(1.5, "stderr", "P", "par")) and start.keep == frozenset({start.offset})


def test_tail_larger_than_the_file_reads_everything() -> None:
    assert find(LOG, 100) == TailStart(0, 0, frozenset(), len(LOG))
    assert tail(LOG, 100) == [b"first\n", b"second\n", b"partial\n", b"\n"]


def test_tail_zero_and_empty_file() -> None:
    assert tail(LOG, 0) == []
    assert find(LOG, 0) == TailStart(len(LOG), len(LOG))
    assert find(b"", 3) == EVERYTHING and tail(b"", 3) == []
    assert tail(b"", 0) == []


def test_tail_ignores_a_final_record_still_being_written() -> None:
    written = LOG + rec(9, "stdout", "F", "in progress")[:-5]
    for block in (1, 4, 1000):
        assert tail(written, 1, block) == [b"\n"]
        assert tail(written, 2, block) == [b"partial\n", b"\n"]
    assert find(written, 0).first == len(LOG)
    assert find(b"no newline yet", 1) == EVERYTHING


def test_tail_with_a_time_window_counts_admitted_lines_only() -> None:
    until = TimeWindow(until_ns=(T0 + 1) * NS + 600_000_000)  # excludes "\n" at 3 s
    assert tail(LOG, 2, window=until) == [b"second\n", b"partial\n"]
    assert find(LOG, 2, window=until).stop == LOG.index(b"garbage")  # a reader can stop after "tial"
    since = TimeWindow(since_ns=(T0 + 1) * NS + 550_000_000)  # excludes "partial" (1.5 s)
    assert tail(LOG, 2, window=since) == [b"second\n", b"\n"]
    assert tail(LOG, 5, window=TimeWindow(since_ns=(T0 + 60) * NS)) == []
    # none admitted: a follower starts at the end; a reader that does not follow reads nothing
    assert find(LOG, 5, window=TimeWindow(since_ns=(T0 + 60) * NS)) == TailStart(len(LOG), len(LOG))


def test_fewer_lines_than_asked_start_at_the_earliest_admitted_one() -> None:
    since = TimeWindow(since_ns=(T0 + 1) * NS + 550_000_000)  # "second" and "\n" only
    start = find(LOG, 10, window=since)
    assert start.first == LOG.index(rec(1.6, "stdout", "F", "second"))
    # "partial" straddles it: read from its start so that it is not taken for a line "tial"
    assert start.offset == LOG.index(rec(1.5, "stderr", "P", "par")) and start.keep == {start.offset}
    assert start.stop == len(LOG)
    assert tail(LOG, 10, window=since) == [b"second\n", b"\n"]


def test_tail_zero_still_joins_a_line_being_written() -> None:
    """tail 0 (follow): a P written before the scan is part of the first new line."""
    data = LOG + rec(4, "stdout", "P", "progress ")
    start = find(data, 0, lookback=100)
    assert start.offset == len(LOG)
    assert [line.text for line in parse_all(data + rec(5, "stdout", "F", "done"), start)] == [b"progress done\n"]
    assert find(data, 0) == TailStart(len(data), len(data))  # not following: nothing looked for


def test_a_line_being_written_is_looked_for_within_lookback_only() -> None:
    """An older P-only group comes out as its remaining part (as Docker prints it)."""
    data = rec(0, "stderr", "P", "old ") + b"".join(rec(1, "stdout", "F", f"o{i}") for i in range(20))
    more = rec(2, "stderr", "F", "end")
    near, far = find(data, 1, lookback=len(data)), find(data, 1, lookback=100)
    assert [line.text for line in parse_all(data + more, near)] == [b"o19\n", b"old end\n"]
    assert [line.text for line in parse_all(data + more, far)] == [b"o19\n", b"end\n"]


def test_tail_of_a_long_log_reads_only_its_end() -> None:
    data = b"".join(rec(i % 50, "stdout", "F", f"line{i}") for i in range(5000))
    finder = TailFinder(2, len(data))
    while not finder.done:
        begin = max(0, finder.position - 256)
        finder.feed(data[begin:finder.position])
    assert finder.position > len(data) - 512


def test_finder_queue_stays_small_behind_a_line_of_the_other_stream() -> None:
    """stderr's last line is open until the scan reaches the file start; the stdout lines the
    window rejects meanwhile are folded, not queued one by one."""
    data = (rec(0, "stderr", "P", "err ") + b"".join(rec(1, "stdout", "F", f"o{i}") for i in range(2000))
            + rec(30, "stdout", "F", "new") + rec(31, "stderr", "F", "end"))
    finder = TailFinder(3, len(data), TimeWindow(since_ns=(T0 + 30) * NS))
    longest = 0
    while not finder.done:
        begin = max(0, finder.position - 100)
        finder.feed(data[begin:finder.position])
        longest = max(longest, len(finder._queue))
    assert longest <= 4
    assert [line.text for line in parse_all(data, finder.result())
            if line.ts_ns >= (T0 + 30) * NS] == [b"new\n"]  # "err end" has the time of "err " (0 s)


# --- property: any tail equals the tail of the whole parse ------------------------------------------

def random_log(rng: random.Random) -> bytes:
    parts, second = [], 0.0
    for i in range(rng.randrange(0, 40)):
        second += rng.choice([0, 0.1, 0.5, 1])
        if rng.random() < 0.05:
            parts.append(b"garbage\n")
        stream = rng.choice(["stdout", "stdout", "stderr"])
        parts.append(rec(second - rng.choice([0, 0, 0, 2]), stream, rng.choice("PFF"), f"{stream[3:]}{i}"))
    data = b"".join(parts)
    if rng.random() < 0.3:
        data += rec(second, "stdout", "F", "unterminated")[: rng.randrange(1, 30)]
    return data


def reference(data: bytes, lines: int, window: TimeWindow) -> list[bytes]:
    admitted = [line.text for line in parse_all(data) if window.admits(line.ts_ns)]
    return list(collections.deque(admitted, maxlen=lines))


@pytest.mark.parametrize("seed", range(300))
def test_random_logs_tail_like_a_full_read(seed: int) -> None:
    rng = random.Random(seed)
    data = random_log(rng)
    lines = rng.randrange(0, 12)
    window = rng.choice([TimeWindow(), TimeWindow(since_ns=(T0 + 5) * NS), TimeWindow(until_ns=(T0 + 10) * NS),
                         TimeWindow((T0 + 3) * NS, (T0 + 12) * NS)])
    block, chunk = rng.randrange(1, 200), rng.randrange(1, 200)
    assert tail(data, lines, block, window, chunk) == reference(data, lines, window)


@pytest.mark.parametrize("seed", range(100))
def test_random_logs_tail_then_follow_sees_whole_new_lines(seed: int) -> None:
    """Lines completed after the scan come out whole, as a full read would give them."""
    rng = random.Random(seed)
    data = random_log(rng)
    data = data[: data.rfind(b"\n") + 1]
    more = rec(50, "stdout", "F", "o-end") + rec(51, "stderr", "F", "e-end")
    lines = rng.randrange(0, 6)
    window = rng.choice([TimeWindow(), TimeWindow(since_ns=(T0 + 5) * NS)])
    start = find(data, lines, rng.randrange(1, 100), window, lookback=len(data))
    parser = LogParser(start)
    old = [line.text for line in parser.feed(data[start.offset:]) if window.admits(line.ts_ns)]
    new = [line.text for line in parser.feed(more) if window.admits(line.ts_ns)]
    full = LogParser()
    full.feed(data)
    assert old == reference(data, lines, window)
    assert new == [line.text for line in full.feed(more) if window.admits(line.ts_ns)]
