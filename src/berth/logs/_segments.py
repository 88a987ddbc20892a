"""One log stream on disk: append-only segment files with a sparse time index.

Layout::

    <root>/logs/streams/<storage id>/
        00000001.log   one line per event: b"<timestamp>\\t<ingestion time>\\t<message>\\n", the
                       message UTF-8 with "\\" written "\\\\" and a newline "\\n", so a line is
                       exactly one event and a byte search for an (escaped) term finds its line
        00000001.idx   16-byte little-endian (timestamp, offset) pairs: the segment's first line,
                       then the first line after every `index_every` bytes
        00000002.log, 00000002.idx, ...
        next           written only when retention deleted every segment: the next number

Each segment is sorted by timestamp: a batch continues the newest segment only when its first
event is not older than that segment's last event (and the segment is below `segment_bytes`);
an out-of-order batch starts a new segment. A reader therefore binary-searches the index of each
segment for its time range and merges the segments whose ranges overlap, in key order
(timestamp, segment number, offset). Reading the last page of a 1 GB stream reads the tail of
the newest segment, nothing else.

Crash safety: data is appended first, then its index entries. Opening a stream drops index
entries past the end of their segment, scans each segment from its last index entry (at most
`index_every` bytes and one event), re-adds the entries a crash lost and truncates a torn last
line. Nothing is fsynced: an acknowledged batch survives a daemon crash (it is in the page
cache), a host crash may lose the last seconds, as with Docker's json-file logs.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import os
import re
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from berth.errors import Unavailable
from berth.logs._errors import STREAM_NOT_FOUND, ResourceNotFound
from berth.logs._model import Key, StreamStats

SEGMENT_BYTES = 64 * 1024 * 1024
INDEX_EVERY = 64 * 1024
CHUNK = 1 << 20
_ENTRY = struct.Struct("<qq")
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)

# (timestamp, segment number, offset, ingestion time, escaped message)
Row = tuple[int, int, int, int, bytes]
R = TypeVar("R")


def escape(raw: bytes) -> bytes:
    if b"\\" in raw or b"\n" in raw:
        return raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
    return raw


def unescape(raw: bytes) -> bytes:
    if b"\\" not in raw:
        return raw
    return _UNESCAPE.sub(lambda m: b"\n" if m[1] == b"n" else m[1], raw)


def message_of(raw: bytes) -> str:
    return unescape(raw).decode("utf-8", "replace")


def encode_events(events: Sequence[tuple[int, str]], ingestion: int) -> list[bytes]:
    head = f"\t{ingestion}\t".encode()
    return [str(ts).encode() + head + escape(msg.encode("utf-8", "replace")) + b"\n" for ts, msg in events]


def parse_line(line: bytes) -> tuple[int, int, bytes]:
    """(timestamp, ingestion time, escaped message) of one line without its newline.

    Raises:
        ValueError: not a line this module wrote.
    """
    t1 = line.index(b"\t")
    t2 = line.index(b"\t", t1 + 1)
    return int(line[:t1]), int(line[t1 + 1:t2]), line[t2 + 1:]


@dataclass
class _Segment:
    number: int
    size: int = 0
    first_ts: int = 0
    last_ts: int = 0
    last_ingest: int = 0
    index_ts: list[int] = field(default_factory=list)
    index_off: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SegmentView:
    """A reader's snapshot of one segment: its bytes up to `size` never change (append-only),
    and the first `entries` items of the (shared, append-only) index lists are valid."""

    path: Path
    number: int
    size: int
    first_ts: int
    last_ts: int
    index_ts: list[int]
    index_off: list[int]
    entries: int


class StreamLog:
    """The segments of one stream. Thread-safe: appends serialise on a lock; readers work on
    `views()` snapshots without it."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES, index_every: int = INDEX_EVERY) -> None:
        self.dir = directory
        self.segment_bytes = segment_bytes
        self.index_every = index_every
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._next = 1
        self._closed = False
        self._load()

    # --- writing ------------------------------------------------------------------------------

    def append(self, events: Sequence[tuple[int, str]], ingestion: int) -> None:
        """Append (timestamp, message) events, sorted by timestamp, ingested at `ingestion`.

        Raises:
            Unavailable: the disk refused the write (nothing of the batch is kept).
        """
        if not events:
            return
        self.append_encoded(b"".join(encode_events(events, ingestion)), events[0][0], events[-1][0], ingestion)

    def append_encoded(self, data: bytes, first_ts: int, last_ts: int, ingestion: int) -> None:
        """Append whole lines already in this module's encoding (`encode_events`), in time order
        from `first_ts` to `last_ts`: the awslogs driver's path, which makes no object per event.

        Raises:
            Unavailable: the disk refused the write (nothing of the batch is kept).
        """
        if not data:
            return
        with self._lock:
            if self._closed:
                raise ResourceNotFound(STREAM_NOT_FOUND)
            seg = self._segments[-1] if self._segments else None
            if seg is None or seg.size >= self.segment_bytes or first_ts < seg.last_ts:
                seg = self._start_segment()
            self._write(seg, data, first_ts, last_ts, ingestion)

    def _start_segment(self) -> _Segment:
        self.dir.mkdir(parents=True, exist_ok=True)
        seg = _Segment(self._next)
        self._next += 1
        self._segments.append(seg)
        return seg

    def _index_entries(self, seg: _Segment, data: bytes) -> list[tuple[int, int]]:
        """(timestamp, offset) of the lines of `data` that start a new index_every span: the
        first line of a segment, then the first at least index_every bytes past the last entry."""
        entries: list[tuple[int, int]] = []
        last = seg.index_off[-1] if seg.index_off else None
        while True:
            target = seg.size if last is None else last + self.index_every
            rel = target - seg.size
            pos = 0 if rel <= 0 else data.find(b"\n", rel - 1) + 1
            if (rel > 0 and pos == 0) or pos >= len(data):
                return entries
            entries.append((int(data[pos:data.index(b"\t", pos)]), seg.size + pos))
            last = seg.size + pos

    def _write(self, seg: _Segment, data: bytes, first_ts: int, last_ts: int, ingestion: int) -> None:
        entries = self._index_entries(seg, data)
        log_path, idx_path = self._paths(seg.number)
        try:
            _append_all(log_path, data, seg.size)
            try:
                if entries:
                    _append_all(idx_path, b"".join(_ENTRY.pack(t, o) for t, o in entries),
                                len(seg.index_ts) * _ENTRY.size)
            except OSError:
                os.truncate(log_path, seg.size)
                raise
        except OSError as err:
            if seg.size == 0:
                self._segments.pop()
                self._next -= 1
            raise Unavailable(f"cannot write log events: {err.strerror or err}") from err
        if seg.size == 0:
            seg.first_ts = first_ts
        for ts, off in entries:
            seg.index_ts.append(ts)
            seg.index_off.append(off)
        seg.size += len(data)
        seg.last_ts = last_ts
        seg.last_ingest = ingestion

    def _paths(self, number: int) -> tuple[Path, Path]:
        return self.dir / f"{number:08d}.log", self.dir / f"{number:08d}.idx"

    # --- reading ------------------------------------------------------------------------------

    def views(self) -> list[SegmentView]:
        with self._lock:
            return [SegmentView(self._paths(s.number)[0], s.number, s.size, s.first_ts, s.last_ts, s.index_ts,
                                s.index_off, len(s.index_ts)) for s in self._segments if s.size]

    def stats(self) -> StreamStats:
        with self._lock:
            live = [s for s in self._segments if s.size]
            if not live:
                return StreamStats()
            return StreamStats(first_event=min(s.first_ts for s in live), last_event=max(s.last_ts for s in live),
                               last_ingestion=max(s.last_ingest for s in live),
                               stored_bytes=sum(s.size for s in live))

    # --- retention and deletion ---------------------------------------------------------------

    def drop_older_than(self, cutoff: int) -> int:
        """Delete the segments whose every event is older than `cutoff` (ms); the bytes freed."""
        with self._lock:
            old = [s for s in self._segments if s.size and s.last_ts < cutoff]
            if not old:
                return 0
            self._segments = [s for s in self._segments if s not in old]
            if not self._segments:
                _write_small(self.dir / "next", str(self._next))
            paths = [p for s in old for p in self._paths(s.number)]
        for path in paths:
            path.unlink(missing_ok=True)
        return sum(s.size for s in old)

    def destroy(self) -> None:
        """Delete every segment; later appends fail (the stream was deleted)."""
        import shutil

        with self._lock:
            self._closed = True
            self._segments = []
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- recovery -----------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        numbers = sorted(int(p.stem) for p in self.dir.glob("*.log") if p.stem.isdigit())
        for number in numbers:
            seg = self._recover(number)
            if seg is None:
                for path in self._paths(number):
                    path.unlink(missing_ok=True)
            else:
                self._segments.append(seg)
        hint = self.dir / "next"
        saved = int(hint.read_text().strip() or 0) if hint.exists() else 0
        self._next = max([saved, *(n + 1 for n in numbers), 1])

    def _recover(self, number: int) -> _Segment | None:
        log_path, idx_path = self._paths(number)
        size = log_path.stat().st_size
        seg = _Segment(number)
        for ts, off in _read_index(idx_path):
            if off >= size or (seg.index_off and (off <= seg.index_off[-1] or ts < seg.index_ts[-1])):
                break
            seg.index_ts.append(ts)
            seg.index_off.append(off)
        kept = len(seg.index_ts)
        start = seg.index_off[-1] if seg.index_off else 0
        with open(log_path, "rb") as f:
            f.seek(start)
            tail = f.read(size - start)
        end, added = self._scan_tail(seg, start, tail)
        if start + end < size:  # a torn last line (or garbage after the last good one)
            os.truncate(log_path, start + end)
        with open(idx_path, "r+b" if idx_path.exists() else "wb") as f:
            f.truncate(kept * _ENTRY.size)
            f.seek(kept * _ENTRY.size)
            f.write(b"".join(_ENTRY.pack(t, o) for t, o in added))
        seg.size = start + end
        if seg.size == 0 or not seg.index_ts:
            return None
        seg.first_ts = seg.index_ts[0]
        return seg

    def _scan_tail(self, seg: _Segment, start: int, tail: bytes) -> tuple[int, list[tuple[int, int]]]:
        """Walk the lines after the last index entry: the end of the last good line (relative
        to `start`) and the index entries a crash lost (also added to `seg`)."""
        pos, added = 0, list[tuple[int, int]]()
        if seg.index_ts:
            seg.last_ts = seg.index_ts[-1]
        while True:
            nl = tail.find(b"\n", pos)
            if nl < 0:
                return pos, added
            try:
                ts, ingest, _raw = parse_line(tail[pos:nl])
            except ValueError:
                return pos, added
            if seg.index_ts and ts < seg.last_ts:
                return pos, added  # not sorted: not something this module wrote
            offset = start + pos
            if not seg.index_off or (offset - seg.index_off[-1] >= self.index_every and offset > seg.index_off[-1]):
                seg.index_ts.append(ts)
                seg.index_off.append(offset)
                added.append((ts, offset))
            seg.last_ts, seg.last_ingest = ts, ingest
            pos = nl + 1


def _read_index(path: Path) -> list[tuple[int, int]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    whole = len(data) - len(data) % _ENTRY.size
    return [_ENTRY.unpack_from(data, i) for i in range(0, whole, _ENTRY.size)]


def _append_all(path: Path, data: bytes, expected_size: int) -> None:
    """Append `data` at `expected_size` (cutting off anything a failed write left there); on a
    failure the file is cut back, so a batch is written whole or not at all."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size != expected_size:
            os.ftruncate(fd, expected_size)
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.pwrite(fd, view[written:], expected_size + written)
        except OSError:
            os.ftruncate(fd, expected_size)
            raise
    finally:
        os.close(fd)


def _write_small(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- reading a segment -----------------------------------------------------------------------


def _chunks(fd: int, begin: int, finish: int) -> Iterator[tuple[int, bytes, int]]:
    """Line-aligned chunks of [begin, finish) (both line starts): (offset, bytes, end) where
    bytes[:end] is whole lines (the rest, a partial line, is read again with the next chunk)."""
    pos = begin
    while pos < finish:
        want = min(CHUNK, finish - pos)
        data = os.pread(fd, want, pos)
        if not data:
            return
        cut = data.rfind(b"\n") + 1
        while cut == 0 and pos + len(data) < finish:  # one line longer than a chunk
            more = os.pread(fd, min(CHUNK, finish - pos - len(data)), pos + len(data))
            if not more:
                return
            data += more
            cut = data.rfind(b"\n") + 1
        if cut == 0:
            return
        yield pos, data, cut
        pos += cut


def _open(view: SegmentView) -> int | None:
    try:
        return os.open(view.path, os.O_RDONLY)
    except FileNotFoundError:  # retention deleted it after the snapshot
        return None


def _span(view: SegmentView, low_ts: int, high_ts: int) -> tuple[int, int]:
    """Offsets [begin, finish) that hold every line with low_ts <= ts < high_ts (and maybe more)."""
    n = view.entries
    i = bisect.bisect_left(view.index_ts, low_ts, 0, n) - 1
    begin = view.index_off[i] if i >= 0 else 0
    j = bisect.bisect_left(view.index_ts, high_ts, 0, n)
    finish = view.index_off[j] if j < n else view.size
    return begin, finish


def _forward_span(view: SegmentView, after: Key, start: int, end: int) -> tuple[int, int] | None:
    """The byte range of one segment that may hold rows with key > `after` and start <= ts < end
    (None when none can)."""
    low = max(start, after[0])
    if view.last_ts < low or view.first_ts >= end:
        return None
    begin, finish = _span(view, low, end)
    if after[1] == view.number:
        begin = max(begin, after[2])
    return begin, finish


def read_forward(view: SegmentView, after: Key, start: int, end: int) -> Iterator[Row]:
    """The rows of one segment with key > `after` and start <= timestamp < end, in key order."""
    span = _forward_span(view, after, start, end)
    if span is None:
        return
    (begin, finish), low = span, max(start, after[0])
    fd = _open(view)
    if fd is None:
        return
    number = view.number
    try:
        for base, data, cut in _chunks(fd, begin, finish):
            pos = 0
            for line in data[:cut].split(b"\n")[:-1]:
                off = base + pos
                pos += len(line) + 1
                try:
                    ts, ingest, raw = parse_line(line)
                except ValueError:
                    continue
                if ts >= end:
                    return
                if ts < low or (ts, number, off) <= after:
                    continue
                yield ts, number, off, ingest, raw
    finally:
        os.close(fd)


def read_backward(view: SegmentView, before: Key, start: int, end: int) -> Iterator[Row]:
    """The rows of one segment with key < `before` and start <= timestamp < end, newest first."""
    high = min(end - 1, before[0])
    if view.first_ts > high or view.last_ts < start:
        return
    begin, finish = _span(view, start, high + 1)
    if before[1] == view.number:
        finish = min(finish, before[2])
    # chunk starts: index entries (line starts) inside (begin, finish), about CHUNK apart
    lo = bisect.bisect_right(view.index_off, begin, 0, view.entries)
    hi = bisect.bisect_left(view.index_off, finish, 0, view.entries)
    starts = [begin] + view.index_off[lo:hi]
    fd = _open(view)
    if fd is None:
        return
    number = view.number
    try:
        top = finish
        k = len(starts) - 1
        while top > begin and k >= 0:
            while k > 0 and top - starts[k] < CHUNK:
                k -= 1
            bottom = starts[k]
            chunk = os.pread(fd, top - bottom, bottom)
            rows = []
            pos = 0
            for line in chunk.split(b"\n")[:-1]:
                off = bottom + pos
                pos += len(line) + 1
                try:
                    ts, ingest, raw = parse_line(line)
                except ValueError:
                    continue
                if start <= ts < end and (ts, number, off) < before:
                    rows.append((ts, number, off, ingest, raw))
            yield from reversed(rows)
            top = bottom
            k -= 1
    finally:
        os.close(fd)


def lazy_merge(sources: Sequence[tuple[int, Callable[[], Iterator[R]]]], key: Callable[[R], Any]) -> Iterator[R]:
    """Merge sorted iterators by `key`, opening each only when it may hold the next item.

    `sources` are (bound, open): `key` of no item of that source sorts before `(bound,)` (the
    first timestamp of a segment read forward; the negated last one read backward), so a merge
    over many segments reads only those whose time range is reached: the last page of a long
    stream opens its newest segment alone.
    """
    pending = sorted(sources, key=lambda s: s[0], reverse=True)  # pop() takes the lowest bound
    heap: list[tuple[Any, int, R, Iterator[R]]] = []
    counter = 0

    def push(items: Iterator[R]) -> None:
        nonlocal counter
        item = next(items, None)
        if item is not None:
            heapq.heappush(heap, (key(item), counter, item, items))
            counter += 1

    while True:
        while pending and (not heap or (pending[-1][0],) <= heap[0][0]):
            push(pending.pop()[1]())
        if not heap:
            return
        _, _, item, items = heapq.heappop(heap)
        yield item
        push(items)


def _forward_key(row: Row) -> tuple[int, int, int]:
    return row[0], row[1], row[2]


def _backward_key(row: Row) -> tuple[int, int, int]:
    return -row[0], -row[1], -row[2]


def forward(views: Sequence[SegmentView], after: Key, start: int, end: int) -> Iterator[Row]:
    """Every segment's rows after `after` in [start, end), merged in key order."""
    return lazy_merge([(v.first_ts, functools.partial(read_forward, v, after, start, end)) for v in views],
                      _forward_key)


def backward(views: Sequence[SegmentView], before: Key, start: int, end: int) -> Iterator[Row]:
    """Every segment's rows before `before` in [start, end), newest first."""
    return lazy_merge([(-v.last_ts, functools.partial(read_backward, v, before, start, end)) for v in views],
                      _backward_key)


def _candidates(chunk: bytes, cut: int, needles: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """(start, end) of the lines of `chunk[:cut]` holding one of `needles`, in order."""
    found: list[tuple[int, int]] = []
    for needle in needles:
        pos = 0
        while (hit := chunk.find(needle, pos, cut)) >= 0:
            start = chunk.rfind(b"\n", 0, hit) + 1
            end = chunk.find(b"\n", hit, cut)
            found.append((start, end))
            pos = end + 1
    return sorted(set(found)) if len(needles) > 1 else found


def _all_lines(chunk: bytes, cut: int) -> Iterator[tuple[int, int]]:
    pos = 0
    while (end := chunk.find(b"\n", pos, cut)) >= 0:
        yield pos, end
        pos = end + 1


def scan_forward(view: SegmentView, after: Key, start: int, end: int, needles: tuple[bytes, ...] | None,
                 accept: Callable[[bytes], bool] | None) -> Iterator[Row]:
    """The rows of one segment after `after` in [start, end) whose line holds one of `needles`
    (any line when None) and whose escaped message `accept` takes (any when None), in key order.

    After each chunk (about CHUNK bytes) it also yields a marker row `(ts, number, off + 1, -1,
    b"")` keyed just past the chunk's last line, so a merge over many segments can stop
    between chunks at a key every later row exceeds.
    """
    span = _forward_span(view, after, start, end)
    if span is None:
        return
    (begin, finish), low = span, max(start, after[0])
    fd = _open(view)
    if fd is None:
        return
    number = view.number
    try:
        for base, chunk, cut in _chunks(fd, begin, finish):
            lines = _all_lines(chunk, cut) if needles is None else iter(_candidates(chunk, cut, needles))
            for ls, le in lines:
                try:
                    ts, ingest, raw = parse_line(chunk[ls:le])
                except ValueError:
                    continue
                if ts >= end:
                    return
                off = base + ls
                if ts < low or (ts, number, off) <= after:
                    continue
                if accept is None or accept(raw):
                    yield ts, number, off, ingest, raw
            last = chunk.rfind(b"\n", 0, cut - 1) + 1
            try:
                last_ts = int(chunk[last:chunk.index(b"\t", last)])
            except ValueError:
                continue
            if (last_ts, number, base + last + 1) > after:  # a marker never points back
                yield last_ts, number, base + last + 1, -1, b""
    finally:
        os.close(fd)
