"""The engine's `awslogs` driver writes through this sink (the LogSink Protocol the driver
declares in berth.engine.awslogs): no sequence tokens, AWS's batch limits applied here."""

from __future__ import annotations

from collections.abc import Sequence

from berth.logs._errors import ResourceAlreadyExists, ResourceNotFound
from berth.logs._service import EVENT_OVERHEAD, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_BATCH_SPAN_MS, LogsService

DEFAULT_ACCOUNT = "123456789012"  # the AWS endpoint's default account (berth.api.aws.DEFAULT_ACCOUNT)


class EngineSink:
    """`prepare` makes the stream (and, when asked, the group); `append` stores events, split
    into batches PutLogEvents would accept. Events too old or too new for the store are left
    out as PutLogEvents leaves them out."""

    def __init__(self, logs: LogsService, account: str = DEFAULT_ACCOUNT) -> None:
        self.logs = logs
        self.account = account

    def prepare(self, group: str, stream: str, *, region: str, create_group: bool) -> None:
        """Raises: ResourceNotFound (a berth NotFound) when the group is missing and not to be
        created; InvalidParameter (an InvalidArgument) for a malformed name."""
        if create_group:
            try:
                self.logs.create_group(self.account, region, group)
            except ResourceAlreadyExists:
                pass
        else:
            self.logs.group(self.account, region, group)
        try:
            self.logs.create_stream(self.account, region, group, stream)
        except ResourceAlreadyExists:
            pass

    def append(self, group: str, stream: str, events: Sequence[tuple[int, str]], *, region: str) -> None:
        """Raises: ResourceNotFound when the group or stream was deleted; InvalidParameter for
        an empty or oversized message (the driver splits those)."""
        ordered = sorted((e for e in events if e[1]), key=lambda e: e[0])  # dockerd drops empty lines
        for batch in batches(ordered):
            self.logs.put_events(self.account, region, group, stream, batch)


    def append_encoded(self, group: str, stream: str, data: bytes, first_ts: int, last_ts: int, *,
                       region: str, ingestion: int) -> bool:
        """Lines already in the store's encoding (LogsService.append_encoded); False when some
        fall outside the store's time bounds (nothing stored: send them as events)."""
        return self.logs.append_encoded(self.account, region, group, stream, data, first_ts, last_ts, ingestion)

    def now_ms(self) -> int:
        """The store's clock (ingestion times)."""
        return self.logs.now_ms()


def batches(events: Sequence[tuple[int, str]]) -> list[Sequence[tuple[int, str]]]:
    """Consecutive runs of sorted events within AWS's per-call limits (count, bytes, 24 h)."""
    out: list[Sequence[tuple[int, str]]] = []
    start, size = 0, 0
    for i, (ts, message) in enumerate(events):
        cost = len(message.encode("utf-8", "replace")) + EVENT_OVERHEAD
        if i > start and (i - start >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES
                          or ts - events[start][0] > MAX_BATCH_SPAN_MS):
            out.append(events[start:i])
            start, size = i, 0
        size += cost
    if start < len(events):
        out.append(events[start:])
    return out


__all__ = ["DEFAULT_ACCOUNT", "EngineSink", "ResourceNotFound", "batches"]
