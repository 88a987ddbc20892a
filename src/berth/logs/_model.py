"""Log groups, log streams and events as typed records (wire shapes live in api/aws/logs.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# An event's place in a stream: (timestamp ms, segment number, byte offset of its line). Every
# event has a distinct key; a stream reads in key order, which is timestamp order.
Key = tuple[int, int, int]


@dataclass(frozen=True)
class LogGroup:
    name: str
    account: str
    region: str
    created: int  # ms since the epoch
    retention_days: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    kms_key_id: str = ""
    log_group_class: str = "STANDARD"
    deletion_protection: bool = False

    @property
    def arn(self) -> str:
        """The ARN without the trailing `:*` (logGroupArn, the tagging APIs' resourceArn)."""
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.name}"


@dataclass(frozen=True)
class LogStream:
    group: str
    name: str
    account: str
    region: str
    created: int
    storage_id: str  # the directory of its segments; a re-created stream gets a new one

    @property
    def arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.group}:log-stream:{self.name}"


@dataclass(frozen=True)
class StreamStats:
    """What a stream's segments say about it (no event: every field None, 0 bytes)."""

    first_event: int | None = None
    last_event: int | None = None
    last_ingestion: int | None = None
    stored_bytes: int = 0


@dataclass(frozen=True)
class Event:
    timestamp: int
    message: str
    ingestion_time: int


@dataclass(frozen=True)
class StreamEvent:
    """An event read back, with the stream it came from and its key there."""

    stream: str
    key: Key
    event: Event


@dataclass(frozen=True)
class Rejected:
    """PutLogEvents' rejectedLogEventsInfo: half-open index ranges of the batch left out."""

    too_old_end: int | None = None  # events [0, too_old_end) are older than 14 days
    expired_end: int | None = None  # events [0, expired_end) are older than the retention
    too_new_start: int | None = None  # events [too_new_start, n) are more than 2 h ahead

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.too_old_end, self.expired_end, self.too_new_start))
