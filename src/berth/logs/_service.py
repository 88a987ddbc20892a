"""The CloudWatch Logs operations over the catalog (ObjectStore) and the segment files.

    logs = LogsService(store, root / "logs")
    logs.create_group(account, region, "/ecs/web")
    logs.create_stream(account, region, "/ecs/web", "web/app/0123")
    logs.put_events(account, region, "/ecs/web", "web/app/0123", [(ts_ms, "hello")])

Every method validates its input before it changes anything, so a refused call writes nothing.
Reads (GetLogEvents, FilterLogEvents) live in `_query.py` and work on `stream_views`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from berth.logs import _names as names
from berth.logs._catalog import Catalog, group_key, stream_key
from berth.logs._errors import (
    GROUP_EXISTS, GROUP_NOT_FOUND, STREAM_EXISTS, STREAM_NOT_FOUND, InvalidParameter, ResourceAlreadyExists,
    ResourceNotFound,
)
from berth.logs._model import LogGroup, LogStream, Rejected, StreamStats
from berth.logs._segments import INDEX_EVERY, SEGMENT_BYTES, SegmentView, StreamLog
from berth.state import ObjectStore

log = logging.getLogger("berth.logs")

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
TOO_OLD_MS = 14 * 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
LOG_GROUP_CLASSES = ("STANDARD", "INFREQUENT_ACCESS", "DELIVERY", "ESSENTIALS")


class Activity:
    """When each group was last written, and a condition long-polling readers wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._writes: dict[str, tuple[int, float]] = {}

    def wrote(self, key: str) -> None:
        with self._cond:
            count = self._writes.get(key, (0, 0.0))[0]
            self._writes[key] = (count + 1, time.monotonic())
            self._cond.notify_all()

    def state(self, key: str) -> tuple[int, float | None]:
        """(writes so far, monotonic time of the last) since this daemon started."""
        with self._cond:
            count, when = self._writes.get(key, (0, 0.0))
        return count, (when if count else None)

    def wait(self, key: str, count: int, timeout: float) -> bool:
        """Wait until the group has had more than `count` writes; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._writes.get(key, (0, 0.0))[0] != count, timeout)


class LogsService:
    """Log groups, streams and events of every account and region (`account`/`region` come
    from the caller's credential scope)."""

    def __init__(self, store: ObjectStore, root: Path, *, clock: Callable[[], float] = time.time,
                 segment_bytes: int = SEGMENT_BYTES, index_every: int = INDEX_EVERY) -> None:
        self.catalog = Catalog(store)
        self.root = root
        self._streams_dir = root / "streams"
        self._clock = clock
        self._segment_bytes = segment_bytes
        self._index_every = index_every
        self._logs: dict[str, StreamLog] = {}  # storage id → its segments, opened on first use
        self._live: dict[str, tuple[LogStream, StreamLog]] = {}  # stream key → the stream, for appends
        self._lock = threading.Lock()
        self.activity = Activity()

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def recover(self) -> int:
        """Delete stream directories no stream record names (a crash during a delete); the
        number removed. Call once at start, before serving."""
        import shutil

        if not self._streams_dir.is_dir():
            return 0
        keep = self.catalog.storage_ids()
        removed = 0
        for path in self._streams_dir.iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        if removed:
            log.info("logs: removed %d orphaned stream directories", removed)
        return removed

    # --- groups -------------------------------------------------------------------------------

    def create_group(self, account: str, region: str, name: str, *, tags: Mapping[str, str] | None = None,
                     kms_key_id: str = "", log_group_class: str = "STANDARD",
                     deletion_protection: bool = False) -> LogGroup:
        """Raises: InvalidParameter, ResourceAlreadyExists."""
        names.check_group_name(name)
        clean_tags = names.check_tags(tags or {})
        if log_group_class not in LOG_GROUP_CLASSES:
            raise InvalidParameter(f"1 validation error detected: Value '{log_group_class}' at 'logGroupClass' "
                                   f"failed to satisfy constraint: Member must satisfy enum value set: "
                                   f"[{', '.join(LOG_GROUP_CLASSES)}]")
        if len(kms_key_id) > 256:
            raise InvalidParameter("1 validation error detected: Value at 'kmsKeyId' failed to satisfy "
                                   "constraint: Member must have length less than or equal to 256")
        group = LogGroup(name, account, region, self.now_ms(), tags=clean_tags, kms_key_id=kms_key_id,
                         log_group_class=log_group_class, deletion_protection=deletion_protection)
        if not self.catalog.create_group(group):
            raise ResourceAlreadyExists(GROUP_EXISTS)
        return group

    def group(self, account: str, region: str, name: str) -> LogGroup:
        """Raises: InvalidParameter (a malformed name), ResourceNotFound."""
        names.check_group_name(name)
        group = self.catalog.group(account, region, name)
        if group is None:
            raise ResourceNotFound(GROUP_NOT_FOUND)
        return group

    def groups(self, account: str, region: str, *, prefix: str = "", pattern: str = "") -> list[LogGroup]:
        """Groups by name: those starting with `prefix`, or containing `pattern` (case-insensitive,
        as DescribeLogGroups' logGroupNamePattern)."""
        found = self.catalog.groups(account, region, prefix)
        if pattern:
            low = pattern.lower()
            found = [g for g in found if low in g.name.lower()]
        return found

    def stored_bytes(self, group: LogGroup) -> int:
        return sum(self.stream_stats(s).stored_bytes
                   for s in self.catalog.streams(group.account, group.region, group.name))

    def delete_group(self, account: str, region: str, name: str) -> None:
        """Raises: InvalidParameter, ResourceNotFound."""
        group = self.group(account, region, name)
        if group.deletion_protection:
            raise InvalidParameter("Log group deletion is blocked because deletion protection is enabled.")
        streams = self.catalog.delete_group(account, region, name)
        if streams is None:
            raise ResourceNotFound(GROUP_NOT_FOUND)
        for stream in streams:
            self._drop(stream)

    def put_retention(self, account: str, region: str, name: str, days: object) -> LogGroup:
        names.check_group_name(name)
        clean = names.check_retention(days)
        return self._update(account, region, name, lambda g: replace(g, retention_days=clean))

    def delete_retention(self, account: str, region: str, name: str) -> LogGroup:
        names.check_group_name(name)
        return self._update(account, region, name, lambda g: replace(g, retention_days=None))

    def tag_group(self, account: str, region: str, name: str, tags: Mapping[str, str]) -> LogGroup:
        names.check_group_name(name)
        clean = names.check_tags(tags)

        def add(g: LogGroup) -> LogGroup:
            merged = {**g.tags, **clean}
            names.check_tag_count(len(merged), g.arn)
            return replace(g, tags=merged)

        return self._update(account, region, name, add)

    def untag_group(self, account: str, region: str, name: str, keys: Sequence[str]) -> LogGroup:
        names.check_group_name(name)
        drop = set(names.check_tag_keys(keys))
        return self._update(account, region, name,
                            lambda g: replace(g, tags={k: v for k, v in g.tags.items() if k not in drop}))

    def group_by_arn(self, arn: str) -> LogGroup:
        """The group an ARN `arn:aws:logs:<region>:<account>:log-group:<name>[:*]` names.

        Raises:
            InvalidParameter: not a log group ARN; ResourceNotFound: no such group.
        """
        account, region, name = _parse_group_arn(arn)
        group = self.catalog.group(account, region, name)
        if group is None:
            raise ResourceNotFound(GROUP_NOT_FOUND)
        return group

    def _update(self, account: str, region: str, name: str, change: Callable[[LogGroup], LogGroup]) -> LogGroup:
        group = self.catalog.update_group(account, region, name, change)
        if group is None:
            raise ResourceNotFound(GROUP_NOT_FOUND)
        return group

    # --- streams ------------------------------------------------------------------------------

    def create_stream(self, account: str, region: str, group: str, name: str) -> LogStream:
        """Raises: InvalidParameter, ResourceNotFound (no group), ResourceAlreadyExists."""
        names.check_group_name(group)
        names.check_stream_name(name)
        stream = LogStream(group, name, account, region, self.now_ms(), uuid.uuid4().hex)
        created = self.catalog.create_stream(stream)
        if created is None:
            raise ResourceNotFound(GROUP_NOT_FOUND)
        if not created:
            raise ResourceAlreadyExists(STREAM_EXISTS)
        return stream

    def stream(self, account: str, region: str, group: str, name: str) -> LogStream:
        """Raises: InvalidParameter, ResourceNotFound (group first, then stream)."""
        names.check_stream_name(name)
        found = self.catalog.stream(account, region, group, name)
        if found is None:
            self.group(account, region, group)
            raise ResourceNotFound(STREAM_NOT_FOUND)
        return found

    def streams(self, account: str, region: str, group: str, *, prefix: str = "") -> list[LogStream]:
        """The group's streams by name. Raises: ResourceNotFound (no group)."""
        self.group(account, region, group)
        return self.catalog.streams(account, region, group, prefix)

    def delete_stream(self, account: str, region: str, group: str, name: str) -> None:
        names.check_group_name(group)
        names.check_stream_name(name)
        stream = self.catalog.delete_stream(account, region, group, name)
        if stream is None:
            self.group(account, region, group)
            raise ResourceNotFound(STREAM_NOT_FOUND)
        self._drop(stream)

    def stream_stats(self, stream: LogStream) -> StreamStats:
        return self._log(stream).stats()

    def stream_views(self, stream: LogStream) -> list[SegmentView]:
        return self._log(stream).views()

    def _log(self, stream: LogStream) -> StreamLog:
        with self._lock:
            found = self._logs.get(stream.storage_id)
            if found is None:
                found = StreamLog(self._streams_dir / stream.storage_id, segment_bytes=self._segment_bytes,
                                  index_every=self._index_every)
                self._logs[stream.storage_id] = found
            return found

    def _drop(self, stream: LogStream) -> None:
        with self._lock:
            self._live.pop(stream_key(stream.account, stream.region, stream.group, stream.name), None)
            found = self._logs.pop(stream.storage_id, None)
        (found or StreamLog(self._streams_dir / stream.storage_id)).destroy()

    # --- events -------------------------------------------------------------------------------

    def put_events(self, account: str, region: str, group: str, stream: str,
                   events: Sequence[tuple[int, str]]) -> Rejected:
        """Store a PutLogEvents batch: (timestamp ms, message) in chronological order.

        Events more than 14 days old, older than the group's retention or more than 2 h ahead
        are left out and reported (AWS's rejectedLogEventsInfo); the rest is stored at once.

        Raises:
            InvalidParameter: a malformed batch (count, size, order, span, empty message).
            ResourceNotFound: no such group or stream.
        """
        names.check_group_name(group)
        names.check_stream_name(stream)
        check_batch(events)
        target, segments = self._stream_for_append(account, region, group, stream)
        now = self.now_ms()
        retention = self.catalog.group(account, region, group)
        if retention is None:
            raise ResourceNotFound(GROUP_NOT_FOUND)
        rejected = classify(events, now, retention.retention_days)
        first = max(rejected.too_old_end or 0, rejected.expired_end or 0)
        last = len(events) if rejected.too_new_start is None else rejected.too_new_start
        accepted = events[first:last]
        if accepted:
            segments.append(accepted, now)
            self.activity.wrote(group_key(account, region, group))
        return rejected

    def append_encoded(self, account: str, region: str, group: str, stream: str, data: bytes,
                       first_ts: int, last_ts: int, ingestion: int) -> bool:
        """Store whole lines already in the segment encoding (berth.logs._segments), in time order
        from first_ts to last_ts: the awslogs driver's path. False, with nothing stored, when
        some of them fall outside what the store keeps (too old, expired, too far ahead): the
        caller then sends them as events, which PutLogEvents' rules sort out one by one.

        Raises:
            ResourceNotFound: no such group or stream.
        """
        _, segments = self._stream_for_append(account, region, group, stream)
        now = self.now_ms()
        found = self.catalog.group(account, region, group)
        if found is None:
            raise ResourceNotFound(GROUP_NOT_FOUND)
        oldest = now - min(TOO_OLD_MS, found.retention_days * DAY_MS if found.retention_days else TOO_OLD_MS)
        if first_ts < oldest or last_ts > now + TOO_NEW_MS:
            return False
        segments.append_encoded(data, first_ts, last_ts, ingestion)
        self.activity.wrote(group_key(account, region, group))
        return True

    def _stream_for_append(self, account: str, region: str, group: str, name: str) -> tuple[LogStream, StreamLog]:
        key = stream_key(account, region, group, name)
        with self._lock:
            live = self._live.get(key)
        if live is not None:
            return live
        stream = self.stream(account, region, group, name)
        segments = self._log(stream)
        with self._lock:
            self._live[key] = (stream, segments)
        return stream, segments

    # --- retention ----------------------------------------------------------------------------

    def apply_retention(self) -> int:
        """Delete the segments older than their group's retention; the bytes freed. The daemon
        calls this periodically (AWS deletes expired events within days, berth on each sweep)."""
        freed = 0
        now = self.now_ms()
        for group in self.catalog.all_groups():
            if group.retention_days is None:
                continue
            cutoff = now - group.retention_days * DAY_MS
            for stream in self.catalog.streams(group.account, group.region, group.name):
                freed += self._log(stream).drop_older_than(cutoff)
        return freed


def check_batch(events: Sequence[tuple[int, str]]) -> None:
    """AWS's batch rules: 1-10,000 events, ≤ 1,048,576 bytes counting 26 per event, messages of
    at least one character, chronological order, spanning at most 24 h.

    Raises:
        InvalidParameter: with AWS's message.
    """
    if not events:
        raise InvalidParameter("1 validation error detected: Value '[]' at 'logEvents' failed to satisfy "
                               "constraint: Member must have length greater than or equal to 1")
    if len(events) > MAX_BATCH_EVENTS:
        raise InvalidParameter("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: "
                               f"Member must have length less than or equal to {MAX_BATCH_EVENTS}")
    size = 0
    previous = -1
    for i, (ts, message) in enumerate(events):
        if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
            raise InvalidParameter(f"1 validation error detected: Value '{ts}' at 'logEvents.{i + 1}.member."
                                   "timestamp' failed to satisfy constraint: Member must have value greater "
                                   "than or equal to 0")
        if not isinstance(message, str) or not message:
            raise InvalidParameter(f"1 validation error detected: Value '' at 'logEvents.{i + 1}.member.message' "
                                   "failed to satisfy constraint: Member must have length greater than or "
                                   "equal to 1")
        if ts < previous:
            raise InvalidParameter("Log events in a single PutLogEvents request must be in chronological order.")
        previous = ts
        size += len(message.encode("utf-8", "replace")) + EVENT_OVERHEAD
    if size > MAX_BATCH_BYTES:
        raise InvalidParameter(f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
    if events[-1][0] - events[0][0] > MAX_BATCH_SPAN_MS:
        raise InvalidParameter("The batch of log events in a single PutLogEvents request cannot span more "
                               "than 24 hours.")


def classify(events: Sequence[tuple[int, str]], now: int, retention_days: int | None) -> Rejected:
    """Which events of a sorted batch AWS leaves out, as index ranges."""
    import bisect

    stamps = [ts for ts, _ in events]
    too_old = bisect.bisect_left(stamps, now - TOO_OLD_MS)
    expired = bisect.bisect_left(stamps, now - retention_days * DAY_MS) if retention_days else 0
    too_new = bisect.bisect_right(stamps, now + TOO_NEW_MS)
    return Rejected(too_old_end=too_old or None, expired_end=expired or None,
                    too_new_start=too_new if too_new < len(stamps) else None)


def _parse_group_arn(arn: str) -> tuple[str, str, str]:
    parts = arn.split(":", 6) if isinstance(arn, str) else []
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "logs" or parts[5] != "log-group":
        raise InvalidParameter(f"Invalid resource arn: {arn}" if isinstance(arn, str) else "resourceArn is required")
    name = parts[6]
    if name.endswith(":*"):
        name = name[:-2]
    names.check_group_name(name, "resourceArn")
    return parts[4], parts[3], name
