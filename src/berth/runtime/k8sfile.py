"""The k8s-file log format conmon writes, parsed without doing any I/O.

One record per line: `<RFC3339Nano with offset> <stdout|stderr> <F|P> <text>\\n`, e.g.
`2026-11-29T17:06:10.466481358+00:00 stdout F hi`. `P` marks a partial record (the text had no
newline yet); the following records of the same stream up to an `F` complete it. Such a run of
records (P... F) is one logical line, a *group*; it carries its first record's time and comes out
when its `F` is read. Records are addressed by their byte offset in the file.

Two machines, fed bytes by the I/O layer (logs.py), keep memory bounded whatever the log's size:

    finder = TailFinder(lines=2, size=file_size)          # fed backwards, block by block
    while not finder.done:
        finder.feed(block_ending_at(finder.position))
    parser = LogParser(finder.result())                   # fed forwards from result().offset
    for chunk in chunks_from(parser.position):
        lines = parser.feed(chunk)

`LogParser` holds one unterminated record and, per stream, one join buffer of at most
`MAX_JOIN` bytes (a longer group is passed on in pieces). `TailFinder` keeps no text beyond the
one record split between two blocks, only a few offsets per line still to be counted
(O(lines), not O(file)).
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

STDOUT, STDERR = 1, 2
_STREAMS = {b"stdout": STDOUT, b"stderr": STDERR}
MAX_RECORD = 1 << 20  # a longer record is malformed (conmon writes at most ~8 KiB of text per record)
MAX_JOIN = 1 << 20  # a group growing past this is passed on in pieces (e.g. hours of "\r" progress)
LOOKBACK = 256 * 1024  # how far back from the end a follower's TailFinder looks for a line being written
_PENDING = -1  # `end` of a group whose F is not written yet


@dataclass(frozen=True)
class LogLine:
    ts_ns: int  # unix time in nanoseconds (of the group's first record)
    stream: int
    text: bytes  # a complete line including "\n"; a piece of an over-long one has no "\n"
    continued: bool = False  # True for the second and later pieces of an over-long line


@dataclass(frozen=True)
class Record:
    ts_ns: int
    stream: int
    partial: bool
    text: bytes


def parse_record(line: bytes) -> Record | None:
    """Parse one k8s-file line (without its trailing newline); None if malformed."""
    if len(line) > MAX_RECORD:
        return None
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAMS:
        return None
    try:
        ts_ns = parse_timestamp(parts[0].decode("ascii"))
    except ValueError:
        return None
    text = parts[3] if len(parts) == 4 else b""
    return Record(ts_ns, _STREAMS[parts[1]], parts[2] == b"P", text)


def parse_timestamp(text: str) -> int:
    """RFC3339 with up to nanosecond precision -> unix nanoseconds."""
    if len(text) < 20 or text[10] != "T":
        raise ValueError(f"bad timestamp {text!r}")
    seconds, rest = text[:19], text[19:]
    frac = ""
    if rest.startswith("."):
        offset = rest[1:].lstrip("0123456789")  # the hot path of a backward scan: no Python loop
        frac, rest = rest[1:len(rest) - len(offset)], offset
    nanos = int((frac + "000000000")[:9]) if frac else 0
    return _epoch_seconds(seconds, rest or "Z") * 1_000_000_000 + nanos


@lru_cache(maxsize=4096)
def _epoch_seconds(seconds: str, offset: str) -> int:
    offset = "+00:00" if offset in ("Z", "z") else offset
    return int(dt.datetime.fromisoformat(seconds + offset).timestamp())


def format_timestamp(ts_ns: int) -> str:
    """Docker's fixed-width RFC3339Nano in UTC: 2006-01-02T15:04:05.000000000Z."""
    secs, nanos = divmod(ts_ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


@dataclass(frozen=True)
class TimeWindow:
    """since/until as inclusive unix nanoseconds; 0 leaves that side open."""

    since_ns: int = 0
    until_ns: int = 0

    @classmethod
    def of(cls, since: float, until: float) -> TimeWindow:
        return cls(int(since * 1e9), int(until * 1e9))

    def admits(self, ts_ns: int) -> bool:
        if self.since_ns and ts_ns < self.since_ns:
            return False
        return not (self.until_ns and ts_ns > self.until_ns)


@dataclass(frozen=True)
class TailStart:
    """Where forward reading starts so that only the tail comes out.

    Groups that start at `first` or later belong to the tail; of those starting earlier, only the
    ones in `keep` (at most one per stream: the group that straddles `first`). `offset` is the
    earliest record of all of them. A reader that does not follow can stop at `stop`: no line
    the window admits ends later. The default (everything) reads the whole file.
    """

    offset: int = 0
    first: int = 0
    keep: frozenset[int] = frozenset()
    stop: int | None = None

    def wants(self, group_start: int) -> bool:
        return group_start >= self.first or group_start in self.keep


EVERYTHING = TailStart()


@dataclass
class _Joining:
    """A group being read forwards: its first record and the text so far."""

    stream: int
    ts_ns: int
    wanted: bool
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    continued: bool = False

    def take(self, end: bytes) -> LogLine:
        line = LogLine(self.ts_ns, self.stream, b"".join(self.chunks) + end, self.continued)
        self.chunks, self.size, self.continued = [], 0, True
        return line


class LogParser:
    """Forward parser: feed consecutive chunks of the file from `start.offset`; get lines back.

    Bytes after the last newline wait for the next chunk (conmon may be writing that record).
    A record longer than MAX_RECORD is skipped as malformed, as parse_record does.
    """

    def __init__(self, start: TailStart = EVERYTHING) -> None:
        self._start = start
        self._buffer = b""
        self._buffer_at = start.offset  # file offset of self._buffer[0]
        self._discarding = False  # inside an over-long record, up to its newline
        self._joining: dict[int, _Joining] = {}

    @property
    def position(self) -> int:
        """File offset just past everything fed so far."""
        return self._buffer_at + len(self._buffer)

    def feed(self, data: bytes) -> list[LogLine]:
        out: list[LogLine] = []
        if self._discarding:
            newline = data.find(b"\n")
            self._buffer_at += len(data) if newline < 0 else newline + 1
            if newline < 0:
                return out
            data, self._discarding = data[newline + 1:], False
        buf = self._buffer + data if self._buffer else data
        pos = self._buffer_at
        last = buf.rfind(b"\n")
        if last >= 0:
            for raw in buf[:last].split(b"\n"):
                self._record(raw, pos, out)
                pos += len(raw) + 1
        self._buffer, self._buffer_at = buf[last + 1:], pos
        if len(self._buffer) > MAX_RECORD:
            self._buffer_at += len(self._buffer)
            self._buffer, self._discarding = b"", True
        return out

    def _record(self, raw: bytes, pos: int, out: list[LogLine]) -> None:
        record = parse_record(raw)
        if record is None:
            return
        group = self._joining.get(record.stream)
        if group is None:
            wanted = self._start.wants(pos)
            if not record.partial:  # the common case: a whole line in one record
                if wanted:
                    out.append(LogLine(record.ts_ns, record.stream, record.text + b"\n"))
                return
            group = self._joining[record.stream] = _Joining(record.stream, record.ts_ns, wanted)
        if group.wanted:
            group.chunks.append(record.text)
            group.size += len(record.text)
        if not record.partial:
            del self._joining[record.stream]
            if group.wanted:
                out.append(group.take(b"\n"))
        elif group.size >= MAX_JOIN:
            out.append(group.take(b""))


@dataclass
class _Group:
    """A group met while reading backwards: known from its F (`end`) back to `start`."""

    stream: int
    end: int  # offset of its F record, or _PENDING
    after: int  # offset just past its F record
    start: int  # offset of its earliest record found so far
    ts_ns: int  # that record's time
    closed: bool = False  # True once the record before `start` is known not to belong to it
    matches: bool = False


@dataclass
class _Run:
    """Consecutive closed groups outside the time window, folded into one queue entry."""

    last: dict[int, int]  # stream -> start of the run's latest group of that stream
    closed: bool = True


class TailFinder:
    """Backward scan for the TailStart of the last `lines` lines that the window admits.

    Feed blocks that end at `position` (each one just before the previous) until `done`, then
    take `result()`. The unterminated record at the end of the file (being written) is ignored;
    the last logical line counts only once its F is written. Lines are counted as Docker does:
    a group of P records and their F is one line.

    Lines are ordered by their F record. Going backwards, a group opens at its F and closes at
    the previous F of its stream, so its start and time (needed for the window) are known only
    then. Groups wait in `_queue` in F order until every earlier-opened one is closed; there are
    at most two open at a time, and closed ones outside the window are folded, so the queue holds
    O(lines) entries.

    A group of P records after the last F of its stream is still being written: a follower must
    start at its first record so that it comes out whole once its F arrives. Such a group is
    looked for in the last `lookback` bytes (and anywhere the scan goes anyway) when following;
    `lookback` 0 means not following, and such a group never comes out. To be sure there is
    none, the scan would have to reach the file start whenever a stream has no record near the
    end, so an older one is left to come out as its remaining part only, as Docker does.
    """

    def __init__(self, lines: int, size: int, window: TimeWindow = TimeWindow(), lookback: int = 0) -> None:
        self.position = size  # file offset where the next block must end
        self._lookback = lookback
        self._scan_end: int | None = None  # just past the last complete record
        self._lines = lines
        self._window = window
        self._carry = b""  # the end of a line that starts before `position` (up to its "\n")
        self._skipping = True  # inside a line not to parse: the unterminated last one, an over-long one
        self._first: int | None = None  # TailStart.first once found
        self._open: dict[int, _Group] = {}
        self._final_seen: set[int] = set()  # streams whose last F has been met
        self._queue: collections.deque[_Group | _Run] = collections.deque()
        self._queued_matches = 0  # closed groups in the queue that the window admits
        self._count = 0  # lines found so far (popped from the queue)
        self._last: dict[int, int] = {}  # stream -> start of its last popped group
        self._straddling: dict[int, int] = {}  # self._last when the target line was popped
        self._earliest: tuple[int, dict[int, int]] | None = None  # the same for the last line found
        self._pending_starts: list[int] = []
        self._stop: int | None = None  # just past the last line the window admits

    @property
    def done(self) -> bool:
        if self.position == 0:
            return True
        if self._first is None or self._open or self._scan_end is None:
            return False
        return self.position <= self._scan_end - self._lookback

    def feed(self, data: bytes) -> None:
        """Process `data`, the bytes of the file in [position - len(data), position)."""
        offset = self.position - len(data)
        self.position = offset
        if self._skipping:
            newline = data.rfind(b"\n")
            if newline >= 0:
                data, self._skipping = data[:newline + 1], False
                self._found_end(offset + newline + 1)
        if not self._skipping:
            self._block(data + self._carry, offset)
        if offset == 0:
            self._at_file_start()

    def result(self) -> TailStart:
        if self._first is None:
            return EVERYTHING  # no complete record at all
        starts = [*self._straddling.values(), *self._pending_starts, *(g.start for g in self._open.values())]
        keep = frozenset(start for start in starts if start < self._first)
        return TailStart(min(keep, default=self._first), self._first, keep, self._stop)

    def _found_end(self, end: int) -> None:
        if self._scan_end is not None:
            return  # the end of an over-long line, not of the file
        self._scan_end = end
        if self._lines <= 0:
            self._found(end, {})  # no old line wanted; only one still being joined

    def _at_file_start(self) -> None:
        """The start of the file closes every group; if fewer lines than asked for were found,
        the tail begins at the earliest one (at the end of the file if there is none)."""
        while self._open:
            self._close(next(iter(self._open.values())))
        if self._first is None and self._earliest is not None:
            self._found(*self._earliest)
        elif self._first is None and self._scan_end is not None:
            self._found(self._scan_end, {})

    def _block(self, buf: bytes, offset: int) -> None:
        head = 0 if offset == 0 else buf.find(b"\n") + 1
        self._carry = buf[:head]
        if len(self._carry) > MAX_RECORD + 1:  # over-long: skip back to the line before it
            self._carry, self._skipping = b"", True
        raws = buf[head:-1].split(b"\n") if len(buf) > head else []
        pos = offset + len(buf) - 1  # the final "\n"
        for raw in reversed(raws):
            pos -= len(raw)
            record = parse_record(raw)
            if record is not None:
                self._record(record, pos, pos + len(raw) + 1)
            pos -= 1

    def _record(self, record: Record, pos: int, after: int) -> None:
        group = self._open.get(record.stream)
        if group is not None:
            if record.partial:
                group.start, group.ts_ns = pos, record.ts_ns
                return
            self._close(group)  # an F ends the line before: `group` starts just after it
        if not record.partial:
            self._final_seen.add(record.stream)
            if self._tracking():
                group = self._open[record.stream] = _Group(record.stream, pos, after, pos, record.ts_ns)
                self._queue.append(group)
        elif record.stream not in self._final_seen and self._lookback:
            self._open[record.stream] = _Group(record.stream, _PENDING, after, pos, record.ts_ns)

    def _tracking(self) -> bool:
        """Whether a newly met line could still be the target (else its F order puts it too early)."""
        return self._first is None and self._count + self._queued_matches < self._lines

    def _close(self, group: _Group) -> None:
        del self._open[group.stream]
        group.closed = True
        if group.end == _PENDING:
            self._pending_starts.append(group.start)
            return
        group.matches = self._window.admits(group.ts_ns)
        if group.matches:
            self._queued_matches += 1
        elif len(self._queue) > 1 and self._queue[-1] is group:
            self._fold(group)
        self._drain()

    def _fold(self, group: _Group) -> None:
        self._queue.pop()
        previous = self._queue[-1]
        if isinstance(previous, _Run):
            previous.last[group.stream] = group.start
        else:
            self._queue.append(_Run({group.stream: group.start}))

    def _drain(self) -> None:
        while self._queue and self._queue[0].closed:
            entry = self._queue.popleft()
            if isinstance(entry, _Run):
                self._last.update(entry.last)
                continue
            self._last[entry.stream] = entry.start
            if entry.matches:
                self._queued_matches -= 1
                self._count += 1
                self._stop = entry.after if self._stop is None else self._stop
                self._earliest = (entry.end, dict(self._last))
                if self._count >= self._lines:
                    self._found(*self._earliest)
                    return

    def _found(self, end: int, straddling: dict[int, int]) -> None:
        """The target line ends at `end`: later lines are all popped; only P-only groups still matter."""
        self._first, self._straddling = end, straddling
        self._queue.clear()
        self._open = {s: g for s, g in self._open.items() if g.end == _PENDING}
