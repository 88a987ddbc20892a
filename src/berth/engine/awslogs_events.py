"""From conmon's k8s-file bytes to CloudWatch Logs events, without any I/O (awslogs.py does it).

    reader = LineReader(offset)                # fed the file forwards from a record boundary
    grouper = Grouper(pattern, idle_s=0.5)     # one event per line, or multiline events
    for line in reader.feed(chunk):
        events += grouper.add(line, now)
    events += grouper.flush_idle(now)          # a multiline event nobody continued for idle_s
    ... append events ...
    state = Progress(resume=min(reader.resume_offset(), grouper.pending_start or ...),
                     shipped=max(e.end for e in events))

Offsets make shipping resumable without duplicates or gaps: lines come out in the order of their
last record (F), so "every line whose last record ends at or before `shipped` is in the store"
holds after each append; `resume` is where the earliest line not yet shipped starts (a P-run still
being written, or a multiline event still being collected). A reader restarted at `resume` skips
the lines ending at or before `shipped` (`LineReader(resume, skip_through=shipped)`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from berth.runtime.k8sfile import MAX_RECORD, parse_record

# CloudWatch Logs: an event is at most 256 KiB including 26 bytes of overhead (moby's
# maximumBytesPerEvent); a longer line is split, as dockerd's driver splits it.
MAX_EVENT_BYTES = 262144 - 26
_SHORT = MAX_EVENT_BYTES // 3  # a line this long fits in an event whatever its decoding
_QUARTER = MAX_EVENT_BYTES // 4  # so many characters fit in an event whatever they are (UTF-8: 4 bytes at most)


# NamedTuples, not dataclasses: one of each per log line, and a tuple is several times cheaper to make.
class Line(NamedTuple):
    start: int  # file offset of its first record
    end: int  # file offset just past its last record
    ts_ns: int
    stream: int  # 1 stdout, 2 stderr
    text: bytes  # without the newline


class Event(NamedTuple):
    ts_ms: int
    message: str
    end: int  # Line.end of the last line in it


class EncodedLines(NamedTuple):
    """Whole lines already in the store's segment encoding (berth.logs: `<ts ms>\t<ingestion
    ms>\t<escaped message>\n` each), in time order: the shipper's fast path, no object per line."""

    data: bytes
    first_ts: int
    last_ts: int
    n_lines: int
    end: int  # file offset just past the last record
    ingestion: int  # the ingestion time written into each line, ms


# conmon's record head (`\n2026-12-07T07:00:55.783123456+00:00 stdout F `) after a newline: the
# literal first byte lets the regex engine jump from line to line.
_HEAD = re.compile(rb"\n(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})\d{6}([+-]\d\d:\d\d) std(?:out|err) F ")
_STAMP_LEN = 35
_HEADS: dict[bytes, re.Pattern[bytes]] = {}


def _heads_at(offset: bytes) -> re.Pattern[bytes]:
    """Record heads with this UTC offset: (stamp to the ms, its second, its ms digits)."""
    pattern = _HEADS.get(offset)
    if pattern is None:
        pattern = _HEADS[offset] = re.compile(rb"\n((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3}))\d{6}"
                                              + re.escape(offset) + rb" std(?:out|err) F ")
    return pattern

_STREAMS = {b"stdout": 1, b"stderr": 2}
_TEXT_STREAMS = frozenset({"stdout", "stderr"})
_PARTIAL_START = (b"stdout P ", b"stderr P ")


@dataclass
class _Open:
    start: int
    ts_ns: int
    chunks: list[bytes]
    size: int = 0


class LineReader:
    """k8s-file records → whole lines (a P... F run of one stream is one line), in F order."""

    def __init__(self, offset: int = 0, skip_through: int = 0) -> None:
        self._buffer = b""
        self._at = offset  # file offset of self._buffer[0]
        self._skip_through = skip_through
        self._open: dict[int, _Open] = {}
        self._discarding = False  # inside an over-long (malformed) record, up to its newline
        self.records = 0  # complete records read (drop counting)
        self._seconds: dict[bytes, int] = {}  # "<date>T<time><offset>" -> unix seconds
        self._text_seconds: dict[str, int] = {}  # the same for feed_events, which parses text
        self._second_texts: dict[bytes, bytes] = {}  # "<date>T<time>" -> b"\n<unix seconds>" (feed_encoded)

    @property
    def position(self) -> int:
        """File offset just past everything fed."""
        return self._at + len(self._buffer)

    def resume_offset(self) -> int:
        """Where a new reader must start so that no line still being read is lost."""
        return min([self._at, *(o.start for o in self._open.values())])

    def pending_lines(self) -> int:
        """Lines begun but not complete (a record still unterminated is not one: its newline is
        counted where it falls)."""
        return len(self._open)

    def feed(self, data: bytes) -> list[Line]:
        out: list[Line] = []
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                self._at += len(data)
                return out
            self._at += newline + 1
            data, self._discarding = data[newline + 1:], False
        buf = self._buffer + data if self._buffer else data
        pos = self._at
        last = buf.rfind(b"\n")
        if last >= 0:
            pos = self._records(buf[:last].split(b"\n"), pos, out)
        self._buffer, self._at = buf[last + 1:], pos
        if len(self._buffer) > MAX_RECORD:
            self._at += len(self._buffer)
            self._buffer, self._discarding = b"", True
        return out

    def feed_events(self, data: bytes) -> list[Event]:
        """`feed`, turned into one event per line (no multiline pattern). The usual chunk (whole
        lines, none partial, past any already-shipped part) is decoded once and split as text:
        this is the shipper's hot path, so it makes one tuple per line and nothing else."""
        buf = self._buffer + data if self._buffer else data
        last = buf.rfind(b"\n")
        complete = buf[:last]
        if (last < 0 or self._open or self._discarding or self._at < self._skip_through
                or b" stdout P " in complete or b" stderr P " in complete or complete.startswith(_PARTIAL_START)):
            return [e for line in self.feed(data) for e in _line_events(line)]
        end = self._at + last + 1
        out: list[Event] = []
        seconds_of = self._text_seconds
        records = complete.decode("utf-8", errors="replace").split("\n")
        self.records += len(records)
        for record in records:
            parts = record.split(" ", 3)
            stamp = parts[0]
            seconds = seconds_of.get(stamp[:19] + stamp[29:]) if len(stamp) == 35 else None
            if seconds is None and len(stamp) == 35:
                seconds = self._text_second(stamp)
            if (seconds is None or len(parts) != 4 or parts[2] != "F" or parts[1] not in _TEXT_STREAMS
                    or not stamp[20:23].isdigit()):
                line = self._slow_record(record.encode(), end)
                out += _line_events(line) if line is not None else []
                continue
            text = parts[3]
            if not text:
                continue  # dockerd sends no empty line
            ts_ms = seconds * 1000 + int(stamp[20:23])
            out += [Event(ts_ms, text, end)] if len(text) <= _QUARTER else split_event(ts_ms, text.encode(), end)
        self._buffer, self._at = buf[last + 1:], end
        return out

    def feed_encoded(self, data: bytes, ingestion_ms: int) -> EncodedLines | None:
        """`feed_events` for the usual chunk (whole `F` records in conmon's shape, none empty,
        in time order, past anything already shipped; a P record joined with the F of its stream
        that follows), turned straight into the store's encoding by regex substitutions; None,
        with nothing consumed, for anything else (the caller then feeds the chunk to `feed_events`)."""
        buf = self._buffer + data if self._buffer else data
        last = buf.rfind(b"\n")
        if last < 0 or self._open or self._discarding or self._at < self._skip_through:
            return None
        complete = buf[:last + 1]
        records = complete.count(b"\n")
        if b" P " in complete:
            tail = complete.rfind(b"\n", 0, last) + 1  # the last record: its line may go on
            if complete[tail:].split(b" ", 3)[2:3] == [b"P"]:
                complete, last = complete[:tail], tail - 1
                records -= 1
                if not complete:
                    return None
        text: bytes | None = b"\n" + complete[:-1]  # each record after a newline, none at the end
        joined = 0
        if b" P " in complete:
            text, joined = _join_partials(b"\n" + complete[:-1])
        if text is None or b" F \n" in text or text.endswith(b" F "):  # an empty line: dockerd sends none
            return None
        encoded = self._encode_heads(text, records - joined, ingestion_ms)
        if encoded is None:
            return None
        data, first_ts, last_ts, lines = encoded
        end = self._at + last + 1
        self.records += records
        self._buffer, self._at = buf[last + 1:], end
        return EncodedLines(data, first_ts, last_ts, lines, end, ingestion_ms)

    def _encode_heads(self, text: bytes, lines: int, ingestion_ms: int) -> tuple[bytes, int, int, int] | None:
        """Every record head of `text` (its `lines` lines) → `<ts ms>\t<ingestion>\t` (the
        message escaped), with the first and last timestamps and the line count; None unless
        every line has conmon's head, with the first line's UTC offset, and the timestamps never
        go back (a stamp's text order is its time order while the offset is the same)."""
        first = _HEAD.match(text)
        if first is None:
            return None
        offset = first[3]
        head = _heads_at(offset)
        second_texts, tail = self._second_texts, b"\t%d\t" % ingestion_ms
        last, in_order = b"", True

        def encode(match: re.Match[bytes]) -> bytes:
            nonlocal last, in_order
            stamp = match[1]  # "<date>T<time>.<ms>"
            if stamp < last:
                in_order = False
            last = stamp
            second = match[2]
            prefix = second_texts.get(second)
            if prefix is None:
                prefix = second_texts[second] = b"\n%d" % self._second_of(second + offset)
                if len(second_texts) > 64:
                    second_texts.clear()
            return prefix + match[3] + tail  # the ms value: the second's number, then 3 digits

        if b"\\" in text:  # the store's escape (a message holds no newline: one record each)
            text = text.replace(b"\\", b"\\\\")
        encoded, count = head.subn(encode, text)
        if count != lines or not in_order:
            return None
        first_ts = int(encoded[1:encoded.index(b"\t")])
        last_line = encoded.rfind(b"\n") + 1
        last_ts = int(encoded[last_line:encoded.index(b"\t", last_line)])
        return encoded[1:] + b"\n", first_ts, last_ts, lines

    def _second_of(self, key: bytes) -> int:
        seconds = int(dt.datetime.fromisoformat(key.decode()).timestamp())
        if len(self._seconds) > 64:
            self._seconds.clear()
        self._seconds[key] = seconds
        return seconds

    def _text_second(self, stamp: str) -> int | None:
        key = stamp[:19] + stamp[29:]
        try:
            seconds = int(dt.datetime.fromisoformat(key).timestamp())
        except ValueError:
            return None
        if len(self._text_seconds) > 64:
            self._text_seconds.clear()
        self._text_seconds[key] = seconds
        return seconds

    def _slow_record(self, raw: bytes, end: int) -> Line | None:
        """One record of a fast chunk that needs the general parser (and primes the seconds cache)."""
        parsed = self._fast(raw)
        if parsed is None:
            record = parse_record(raw)
            if record is None:
                return None
            parsed = (record.ts_ns, record.stream, record.partial, record.text)
        ts_ns, stream, partial, text = parsed
        return None if partial else Line(end, end, ts_ns, stream, text)

    def _records(self, raws: list[bytes], pos: int, out: list[Line]) -> int:
        """Parse whole records; returns the offset after them. The loop inlines the common case
        (a whole stdout/stderr line in conmon's timestamp shape, no P-run open): it runs once per
        log line, so it is the shipper's hot path."""
        seconds_of, skip, opened, streams = self._seconds, self._skip_through, self._open, _STREAMS
        self.records += len(raws)
        for raw in raws:
            end = pos + len(raw) + 1
            parts = raw.split(b" ", 3)
            if not opened and len(parts) == 4 and parts[2] == b"F":
                stamp = parts[0]
                seconds = seconds_of.get(stamp[:19] + stamp[29:]) if len(stamp) == 35 else None
                stream = streams.get(parts[1])
                if seconds is not None and stream is not None and stamp[20:29].isdigit():
                    if end > skip:
                        out.append(Line(pos, end, seconds * 1_000_000_000 + int(stamp[20:29]), stream, parts[3]))
                    pos = end
                    continue
            self._record(raw, pos, end, out)
            pos = end
        return pos

    def _record(self, raw: bytes, pos: int, end: int, out: list[Line]) -> None:
        parsed = self._fast(raw)
        if parsed is None:
            record = parse_record(raw)
            if record is None:
                return
            parsed = (record.ts_ns, record.stream, record.partial, record.text)
        ts_ns, stream, partial, text = parsed
        group = self._open.get(stream)
        if group is None:
            if not partial:  # the common case: a whole line in one record
                if end > self._skip_through:
                    out.append(Line(pos, end, ts_ns, stream, text))
                return
            group = self._open[stream] = _Open(pos, ts_ns, [])
        group.chunks.append(text)
        group.size += len(text)
        if not partial or group.size >= MAX_EVENT_BYTES:
            # a P-run as long as an event goes out as a piece; the rest starts a new run
            del self._open[stream]
            if end > self._skip_through:
                out.append(Line(group.start, end, group.ts_ns, stream, b"".join(group.chunks)))
            if partial:
                self._open[stream] = _Open(end, ts_ns, [])

    def _fast(self, raw: bytes) -> tuple[int, int, bool, bytes] | None:
        """conmon's own shape (`2026-12-07T07:00:55.783123456+00:00 stdout F text`) without the
        general parser: the seconds part repeats from line to line, so its value is cached."""
        parts = raw.split(b" ", 3)
        if len(parts) < 3 or len(parts[0]) != 35 or parts[0][19:20] != b"." or len(parts[2]) != 1:
            return None
        stream = _STREAMS.get(parts[1])
        stamp = parts[0]
        key = stamp[:19] + stamp[29:]
        seconds = self._seconds.get(key)
        if seconds is None:
            try:
                seconds = int(dt.datetime.fromisoformat((stamp[:19] + stamp[29:]).decode()).timestamp())
            except ValueError:
                return None
            if len(self._seconds) > 64:
                self._seconds.clear()
            self._seconds[key] = seconds
        if stream is None or not stamp[20:29].isdigit():
            return None
        return seconds * 1_000_000_000 + int(stamp[20:29]), stream, parts[2] == b"P", parts[3] if len(parts) == 4 else b""


def _join_partials(text: bytes) -> tuple[bytes | None, int]:
    """Each P record joined with the F record of its stream right after it (one line cut by
    conmon's 8 KiB read buffer: a fast writer makes one every ~8 KiB), as `feed` would join
    them, and how many were joined; None when a P record is followed by anything else (the
    other stream, another P)."""
    out: list[bytes] = []
    at = joined = 0
    mark = text.find(b" P ")
    while mark >= 0:
        head = text[text.rfind(b"\n", 0, mark) + 1:mark]  # "<stamp> stdout"
        if len(head) != _STAMP_LEN + 7 or head[_STAMP_LEN:] not in (b" stdout", b" stderr"):
            mark = text.find(b" P ", mark + 3)  # " P " inside a message
            continue
        newline = text.find(b"\n", mark)
        cont = newline + 1 + _STAMP_LEN
        if newline < 0 or text[cont:cont + 10] != head[_STAMP_LEN:] + b" F ":
            return None, 0
        out += [text[at:mark], b" F ", text[mark + 3:newline]]
        joined += 1
        at = cont + 10
        mark = text.find(b" P ", at)
    out.append(text[at:])
    return b"".join(out), joined


class Grouper:
    """Lines → events: one per line, or with `pattern` a multiline event from a line matching
    it up to the next such line (moby's awslogs collectBatch), flushed after `idle_s` without a
    new line, or when it would outgrow an event."""

    def __init__(self, pattern: re.Pattern[bytes] | None, idle_s: float = 0.5) -> None:
        self._pattern = pattern
        self._idle_s = idle_s
        self._lines: list[Line] = []
        self._size = 0
        self._last_add = 0.0

    @property
    def pending_start(self) -> int | None:
        return self._lines[0].start if self._lines else None

    @property
    def pending_lines(self) -> int:
        return len(self._lines)

    def add_all(self, lines: list[Line], now: float) -> list[Event]:
        if self._pattern is None:
            return [Event(ts // 1_000_000, text.decode("utf-8", errors="replace"), end) if len(text) <= _SHORT
                    else split_event(ts // 1_000_000, text, end)[0] for _, end, ts, _, text in lines
                    ] if all(len(line.text) <= _SHORT for line in lines) else [
                        e for line in lines for e in self.add(line, now)]
        return [e for line in lines for e in self.add(line, now)]

    def add(self, line: Line, now: float) -> list[Event]:
        if self._pattern is None:
            if len(line.text) <= _SHORT:
                return [Event(line.ts_ns // 1_000_000, line.text.decode("utf-8", errors="replace"), line.end)]
            return split_event(line.ts_ns // 1_000_000, line.text, line.end)
        out: list[Event] = []
        if self._pattern.search(line.text) or self._size + len(line.text) + 1 > MAX_EVENT_BYTES:
            out = self.flush()
        self._lines.append(line)
        self._size += len(line.text) + 1
        self._last_add = now
        return out

    def flush_idle(self, now: float) -> list[Event]:
        return self.flush() if self._lines and now - self._last_add >= self._idle_s else []

    def idle_deadline(self) -> float | None:
        return self._last_add + self._idle_s if self._lines else None

    def flush(self) -> list[Event]:
        if not self._lines:
            return []
        first, last = self._lines[0], self._lines[-1]
        # moby appends "\n" to each line of a multiline event
        text = b"".join(line.text + b"\n" for line in self._lines)
        self._lines, self._size = [], 0
        return split_event(first.ts_ns // 1_000_000, text, last.end)

    def drop(self) -> int:
        """Forget the event being collected (non-blocking skip-ahead); how many lines it had."""
        count = len(self._lines)
        self._lines, self._size = [], 0
        return count


def _line_events(line: Line) -> list[Event]:
    if not line.text:
        return []
    return split_event(line.ts_ns // 1_000_000, line.text, line.end)


def split_event(ts_ms: int, text: bytes, end: int) -> list[Event]:
    """One event, or several when the text is longer than an event may be; UTF-8 is decoded
    with invalid bytes replaced (CloudWatch stores text), never split inside a character."""
    message = text.decode("utf-8", errors="replace")
    if len(text) <= MAX_EVENT_BYTES // 3 or len(message.encode()) <= MAX_EVENT_BYTES:
        return [Event(ts_ms, message, end)]
    out = []
    while message:
        cut = _cut(message)
        out.append(Event(ts_ms, message[:cut], end))
        message = message[cut:]
    return out


def _cut(message: str) -> int:
    """The longest prefix (in characters) whose UTF-8 encoding fits in an event."""
    cut = min(len(message), MAX_EVENT_BYTES)
    while len(message[:cut].encode()) > MAX_EVENT_BYTES:
        over = len(message[:cut].encode()) - MAX_EVENT_BYTES
        cut -= max(1, over // 4)
    return cut


def events_of(lines: EncodedLines) -> list[Event]:
    """The fast path's lines as events again (when the store wants them one by one)."""
    out = []
    for raw in lines.data.split(b"\n")[:-1]:
        ts, _, rest = raw.partition(b"\t")
        message = rest.partition(b"\t")[2]
        if b"\\" in message:
            message = message.replace(b"\\\\", b"\\")
        out.append(Event(int(ts), message.decode("utf-8", errors="replace"), lines.end))
    return out


def in_time_order(events: list[Event]) -> list[tuple[int, str]]:
    """(timestamp ms, message) sorted by time, ties in arrival order (PutLogEvents needs the order)."""
    return [(ts, message) for ts, message, _ in sorted(events, key=itemgetter(0))]
