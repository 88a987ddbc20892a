"""Reading events back: GetLogEvents (one stream, forward/backward tokens) and FilterLogEvents
(a group, interleaved by time, filter patterns, a time budget and the long poll `aws logs tail
--follow` needs).

Positions are event keys (timestamp, segment, offset; for a group also the stream name), so a
token stays valid while the stream grows: "f/<key>" reads the events after the key, "b/<key>"
those before it. At the end of a stream GetLogEvents answers the forward token it was given, as
AWS does.

FilterLogEvents and `aws logs tail --follow`. The CLI polls FilterLogEvents, re-polls at once
while an answer carries a nextToken and otherwise sleeps 5 s. So an answer to a request with
`interleaved: true` (what `aws logs tail` sends; other callers leave this deprecated flag out)
whose scan reached the present (no endTime, or one in the future) carries a position token when
the group was written within the last ACTIVE_WINDOW seconds and the token chain started less
than CHAIN_MAX seconds ago;
a call carrying a token that finds nothing new waits up to LONG_POLL seconds (in its worker
thread, at most LONG_POLLERS at once) for the group's next write and scans again. A quiet group
gets no token, so a paginator (`aws logs tail` without --follow) ends; on a group written
without pause it ends after CHAIN_MAX.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from berth.logs._catalog import group_key
from berth.logs._errors import InvalidParameter
from berth.logs._model import Event, Key, LogStream
from berth.logs._pattern import Pattern, parse_pattern
from berth.logs._segments import Row, backward, forward, lazy_merge, message_of, scan_forward
from berth.logs._service import EVENT_OVERHEAD, LogsService

MAX_EVENTS = 10_000
MAX_RESPONSE_BYTES = 1_048_576
END_TS = 10**19 - 1  # past every timestamp (the store's keys have at most 19 digits)
FILTER_BUDGET = 1.0  # s of scanning per FilterLogEvents call before it answers with a token
ACTIVE_WINDOW = 5.0  # s since the group's last write during which the scan's end keeps a token
CHAIN_MAX = 120.0  # s a token chain keeps following new events
LONG_POLL = 0.9  # s a call with a token waits for new events
LONG_POLLERS = 3  # calls waiting at once (each holds a worker thread)
_POLL_SLOTS = threading.BoundedSemaphore(LONG_POLLERS)
BAD_TOKEN = "The specified nextToken is invalid."


# --- GetLogEvents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    events: list[Event]
    forward: str
    backward: str


def _key_token(direction: str, key: Key) -> str:
    ts, seg, off = key
    return f"{direction}/{ts:020d}{seg:010d}{off + 1:020d}"


def _parse_key_token(token: str) -> tuple[str, Key]:
    if not isinstance(token, str) or len(token) != 52 or token[:2] not in ("f/", "b/") or not token[2:].isdigit():
        raise InvalidParameter(BAD_TOKEN)
    digits = token[2:]
    return token[0], (int(digits[:20]), int(digits[20:30]), int(digits[30:]) - 1)


def get_events(logs: LogsService, stream: LogStream, *, start: int | None = None, end: int | None = None,
               token: str | None = None, limit: int | None = None, from_head: bool = False) -> Page:
    """One page of a stream's events in [start, end) (ms), ascending.

    Raises:
        InvalidParameter: a bad token, limit or time range.
    """
    size = _limit(limit)
    low, high = _range(start, end, inclusive_end=False)
    if token:
        direction, key = _parse_key_token(token)
    else:
        direction = "f" if from_head else "b"
        key = (low, 0, -1) if from_head else (END_TS, 0, 0)
    views = logs.stream_views(stream)
    if direction == "f":
        rows = _take(forward(views, key, low, high), size)
        if not rows:
            return Page([], token or _key_token("f", key), _key_token("b", (key[0], key[1], key[2] + 1)))
    else:
        rows = _take(backward(views, key, low, high), size)
        rows.reverse()
        if not rows:
            return Page([], _key_token("f", (low, 0, -1) if not token else (key[0], key[1], key[2] - 1)),
                        token or _key_token("b", key))
    first, last = rows[0], rows[-1]
    return Page([Event(r[0], message_of(r[4]), r[3]) for r in rows],
                _key_token("f", (last[0], last[1], last[2])), _key_token("b", (first[0], first[1], first[2])))


def _take(rows: Iterator[Row], limit: int) -> list[Row]:
    out: list[Row] = []
    size = 0
    for row in rows:
        size += len(row[4]) + EVENT_OVERHEAD
        if out and size > MAX_RESPONSE_BYTES:
            break
        out.append(row)
        if len(out) >= limit:
            break
    return out


def _limit(limit: int | None) -> int:
    if limit is None:
        return MAX_EVENTS
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_EVENTS:
        raise InvalidParameter(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                               f"constraint: Member must have value between 1 and {MAX_EVENTS}")
    return limit


def _range(start: int | None, end: int | None, *, inclusive_end: bool) -> tuple[int, int]:
    for name, value in (("startTime", start), ("endTime", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidParameter(f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy "
                                   "constraint: Member must have value greater than or equal to 0")
    low = start or 0
    high = END_TS if end is None else min(end + (1 if inclusive_end else 0), END_TS)
    if end is not None and start is not None and end < start:
        raise InvalidParameter("startTime must be less than or equal to endTime")
    return low, high


# --- FilterLogEvents ---------------------------------------------------------------------------

# (timestamp, stream name, segment, offset): the order of a group's events
GroupKey = tuple[int, str, int, int]


@dataclass(frozen=True)
class Found:
    stream: str
    event_id: str
    event: Event


@dataclass(frozen=True)
class FilterPage:
    events: list[Found]
    next_token: str | None


@dataclass(frozen=True)
class _Token:
    after: GroupKey | None
    chain_started: int  # ms (wall clock) of the chain's first call
    polls: int  # makes each token of a chain differ (botocore refuses the same token twice)


def _encode_token(t: _Token) -> str:
    body = {"k": list(t.after) if t.after else None, "h": t.chain_started, "n": t.polls}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def _decode_token(token: str) -> _Token:
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        k = body["k"]
        after = None if k is None else (int(k[0]), str(k[1]), int(k[2]), int(k[3]))
        return _Token(after, int(body["h"]), int(body["n"]))
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error, UnicodeDecodeError) as err:
        raise InvalidParameter(BAD_TOKEN) from err


@dataclass(frozen=True)
class FilterQuery:
    streams: Sequence[LogStream]
    start: int | None = None
    end: int | None = None
    pattern: str | None = None
    token: str | None = None
    limit: int | None = None
    follow: bool = False  # the request said interleaved=true, as `aws logs tail` does


def filter_events(logs: LogsService, account: str, region: str, group: str, query: FilterQuery, *,
                  budget: float = FILTER_BUDGET, clock: Callable[[], float] = time.monotonic) -> FilterPage:
    """Matching events of `query.streams`, interleaved by time (see the module docstring for
    tokens and the long poll).

    Raises:
        InvalidFilterPattern, InvalidParameter.
    """
    pattern = parse_pattern(query.pattern)
    size = _limit(query.limit)
    low, high = _range(query.start, query.end, inclusive_end=True)
    token = _decode_token(query.token) if query.token else _Token(None, logs.now_ms(), 0)
    activity_key = group_key(account, region, group)
    writes, _ = logs.activity.state(activity_key)
    scan = _Scan(logs, query.streams, pattern, low, high, size)
    found, after, exhausted = scan.run(token.after, clock() + budget, clock)
    open_ended = query.end is None or query.end >= logs.now_ms()
    if not exhausted:
        return FilterPage(found, _encode_token(_Token(after, token.chain_started, token.polls + 1)))
    if not query.follow or not open_ended or not _following(logs, activity_key, token):
        return FilterPage(found, None)
    if not found and query.token and _POLL_SLOTS.acquire(blocking=False):
        try:
            if logs.activity.wait(activity_key, writes, LONG_POLL):
                found, after, exhausted = scan.run(token.after, clock() + budget, clock)
        finally:
            _POLL_SLOTS.release()
    return FilterPage(found, _encode_token(_Token(after, token.chain_started, token.polls + 1)))


def _following(logs: LogsService, activity_key: str, token: _Token) -> bool:
    """Whether the end of a scan keeps a token: the group was written lately and the chain is young."""
    _, last_write = logs.activity.state(activity_key)
    if last_write is None or time.monotonic() - last_write > ACTIVE_WINDOW:
        return False
    return logs.now_ms() - token.chain_started < CHAIN_MAX * 1000


def _acceptor(pattern: Pattern) -> Callable[[bytes], bool] | None:
    """Whether a stored message matches: the quick check of its bytes first, then the pattern."""
    if not pattern.text.strip():
        return None
    test, quick = pattern.matches, pattern.quick
    if quick is None:
        return lambda raw: test(message_of(raw))
    return lambda raw: quick(raw) and test(message_of(raw))


# a merged row: (timestamp, stream, segment, offset, ingestion time (-1: a marker), message, storage number)
_Item = tuple[int, str, int, int, int, bytes, int]


class _Scan:
    """One FilterLogEvents scan over the group's segments, merged in GroupKey order."""

    def __init__(self, logs: LogsService, streams: Sequence[LogStream], pattern: Pattern, low: int, high: int,
                 limit: int) -> None:
        self.logs = logs
        self.streams = streams
        self.pattern = pattern
        self.low, self.high, self.limit = low, high, limit

    def run(self, after: GroupKey | None, deadline: float,
            clock: Callable[[], float]) -> tuple[list[Found], GroupKey | None, bool]:
        """(events, the key to continue after, whether the scan reached the end)."""
        found: list[Found] = []
        size = 0
        last = after
        for ts, name, seg, off, ingest, raw, sid in lazy_merge(self._sources(after), _itself):
            key = (ts, name, seg, off)
            if ingest < 0:  # a marker between chunks
                last = key
                if clock() > deadline:
                    return found, last, False
                continue
            message = message_of(raw)
            found.append(Found(name, _event_id(ts, sid, seg, off), Event(ts, message, ingest)))
            last = key
            size += len(raw) + EVENT_OVERHEAD
            if len(found) >= self.limit or size >= MAX_RESPONSE_BYTES:
                return found, last, False
        return found, last, True

    def _sources(self, after: GroupKey | None) -> list[tuple[int, Callable[[], Iterator[_Item]]]]:
        """(first possible timestamp, open) of every segment of every stream, for lazy_merge."""
        accept = _acceptor(self.pattern)
        sources: list[tuple[int, Callable[[], Iterator[_Item]]]] = []
        for stream in self.streams:
            bound = _stream_bound(after, stream.name)
            sid = _storage_number(stream.storage_id)
            for view in self.logs.stream_views(stream):
                if view.last_ts < max(self.low, bound[0]) or view.first_ts >= self.high:
                    continue
                rows = functools.partial(scan_forward, view, bound, self.low, self.high, self.pattern.needles, accept)
                sources.append((max(view.first_ts, self.low, bound[0]), functools.partial(_named, rows, stream.name, sid)))
        return sources



def _itself(item: _Item) -> _Item:
    return item


def _named(rows: Callable[[], Iterator[Row]], name: str, sid: int) -> Iterator[_Item]:
    for ts, seg, off, ingest, raw in rows():
        yield ts, name, seg, off, ingest, raw, sid


def _stream_bound(after: GroupKey | None, stream: str) -> Key:
    """`after` in one stream's key order: its events with (ts, stream, seg, off) > after."""
    if after is None:
        return (0, 0, -1)
    ts, name, seg, off = after
    if stream < name:
        return (ts, 2**62, 2**62)
    if stream == name:
        return (ts, seg, off)
    return (ts, -1, -1)


def _storage_number(storage_id: str) -> int:
    try:
        return int(storage_id[:8], 16)
    except ValueError:
        return 0


def _event_id(ts: int, sid: int, seg: int, off: int) -> str:
    """56 digits, as AWS's event ids, unique in the group."""
    return f"{ts:020d}{sid % 10**10:010d}{seg % 10**6:06d}{off:020d}"
