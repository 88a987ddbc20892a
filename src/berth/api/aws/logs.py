"""CloudWatch Logs operations on the JSON 1.1 endpoint (`Logs_20140328.*`, signing name `logs`):
parse → LogsService / berth.logs queries → AWS output shapes (botocore's logs 2014-03-28 model).

Timestamps are milliseconds since the epoch, as CloudWatch Logs writes them (unlike ECS).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from berth.api.aws._errors import AwsError
from berth.api.aws._server import AwsContext, JsonService, Operation
from berth.api.shapes import ANY, BOOL, INT, STRING, ListOf, Shape, Struct
from berth.logs import (
    FilterQuery, InvalidParameter, LogGroup, LogsService, LogStream, Rejected, check_group_name, check_group_pattern,
    check_stream_name, check_stream_prefix, filter_events, get_events,
)

TARGET_PREFIX = "Logs_20140328"
SIGNING_NAME = "logs"
DESCRIBE_LIMIT = 50

Params = dict[str, Any]
T = TypeVar("T")

_STRINGS = ListOf(STRING)
# Every input member the handlers read, with its JSON type in the model. `tags` is a map in
# CreateLogGroup/TagLogGroup/TagResource but a list in UntagLogGroup: checked by the handlers.
PARAMS: dict[str, Shape] = {
    "logGroupName": STRING, "logGroupIdentifier": STRING, "logStreamName": STRING, "logGroupNamePrefix": STRING,
    "logGroupNamePattern": STRING, "logStreamNamePrefix": STRING, "logStreamNames": _STRINGS,
    "logGroupIdentifiers": _STRINGS, "orderBy": STRING, "descending": BOOL, "nextToken": STRING, "limit": INT,
    "retentionInDays": INT, "tags": ANY, "tagKeys": _STRINGS, "resourceArn": STRING,
    "logEvents": ListOf(Struct("InputLogEvent", {"timestamp": INT, "message": STRING})),
    "sequenceToken": STRING, "startTime": INT, "endTime": INT, "startFromHead": BOOL, "unmask": BOOL,
    "filterPattern": STRING, "interleaved": BOOL, "kmsKeyId": STRING, "logGroupClass": STRING,
    "deletionProtectionEnabled": BOOL, "includeLinkedAccounts": BOOL, "accountIdentifiers": _STRINGS,
}


def _required(p: Params, key: str) -> Any:
    value = p.get(key)
    if value is None:
        raise InvalidParameter(f"1 validation error detected: Value null at '{key}' failed to satisfy "
                               "constraint: Member must not be null")
    return value


def _tag_map(p: Params, key: str = "tags") -> dict[str, str]:
    tags = p.get(key)
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise AwsError("SerializationException", f"Unable to parse {key}: expected map[string]string")
    return tags


def _tag_list(p: Params, key: str) -> list[str]:
    keys = _required(p, key)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise AwsError("SerializationException", f"Unable to parse {key}: expected []string")
    if not keys:
        raise InvalidParameter(f"1 validation error detected: Value '[]' at '{key}' failed to satisfy constraint: "
                               "Member must have length greater than or equal to 1")
    return keys


def _tags_required(p: Params, key: str = "tags") -> dict[str, str]:
    tags = _tag_map(p, key)
    if not tags:
        raise InvalidParameter(f"1 validation error detected: Value at '{key}' failed to satisfy constraint: "
                               "Member must have length greater than or equal to 1")
    return tags


def _describe_limit(p: Params) -> int:
    limit: int = p.get("limit", DESCRIBE_LIMIT)
    if not 1 <= limit <= DESCRIBE_LIMIT:
        raise InvalidParameter(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                               f"constraint: Member must have value between 1 and {DESCRIBE_LIMIT}")
    return limit


def _position(p: Params) -> tuple[str, str]:
    token = p.get("nextToken")
    if not token:
        return "", ""
    try:
        kind, sep, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise InvalidParameter("The specified nextToken is invalid.") from err
    if not sep or kind not in ("n", "i") or (kind == "i" and not value.isdigit()):
        raise InvalidParameter("The specified nextToken is invalid.")
    return kind, value


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _page(items: Sequence[T], p: Params, name: Callable[[T], str]) -> tuple[list[T], str | None]:
    """A Describe* page in name order: `limit` 1-50 (default 50); the token names the last item
    returned, so a page stays right when items come and go between calls."""
    limit = _describe_limit(p)
    kind, value = _position(p)
    start = 0
    if kind == "n":
        start = next((i for i, item in enumerate(items) if name(item) > value), len(items))
    elif kind == "i":
        start = int(value)
    chunk = list(items[start:start + limit])
    if start + limit >= len(items) or not chunk:
        return chunk, None
    return chunk, _token(f"n:{name(chunk[-1])}")


def _indexed_page(items: Sequence[T], p: Params) -> tuple[list[T], str | None]:
    """A page of an order that is not by name (DescribeLogStreams by LastEventTime, descending)."""
    limit = _describe_limit(p)
    kind, value = _position(p)
    start = int(value) if kind == "i" else 0
    chunk = list(items[start:start + limit])
    return chunk, _token(f"i:{start + limit}") if start + limit < len(items) else None


class LogsHandlers:
    """One method per operation: parse, call the service, shape the output."""

    def __init__(self, logs: LogsService) -> None:
        self.logs = logs

    # shapes

    def group(self, g: LogGroup) -> dict[str, Any]:
        out: dict[str, Any] = {
            "logGroupName": g.name, "creationTime": g.created, "metricFilterCount": 0, "arn": f"{g.arn}:*",
            "storedBytes": self.logs.stored_bytes(g), "logGroupClass": g.log_group_class, "logGroupArn": g.arn,
            "deletionProtectionEnabled": g.deletion_protection}
        if g.retention_days is not None:
            out["retentionInDays"] = g.retention_days
        if g.kms_key_id:
            out["kmsKeyId"] = g.kms_key_id
        return out

    def stream(self, s: LogStream) -> dict[str, Any]:
        stats = self.logs.stream_stats(s)
        out: dict[str, Any] = {"logStreamName": s.name, "creationTime": s.created, "arn": s.arn, "storedBytes": 0}
        if stats.first_event is not None:
            out["firstEventTimestamp"] = stats.first_event
            out["lastEventTimestamp"] = stats.last_event
            out["lastIngestionTime"] = stats.last_ingestion
            out["uploadSequenceToken"] = _sequence_token(stats.last_ingestion or 0)
        return out

    def _group_of(self, p: Params, ctx: AwsContext) -> tuple[str, str, str]:
        """(account, region, name) from logGroupName or logGroupIdentifier (a name or an ARN)."""
        name, ident = p.get("logGroupName"), p.get("logGroupIdentifier")
        if name is not None and ident is not None:
            raise InvalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if ident is not None and ident.startswith("arn:"):
            g = self.logs.group_by_arn(ident)
            return g.account, g.region, g.name
        if ident is not None:
            return ctx.account, ctx.region, ident
        if name is None:
            raise InvalidParameter("Should provide either name or ARN of the log group.")
        return ctx.account, ctx.region, name

    # groups

    def CreateLogGroup(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.logs.create_group(ctx.account, ctx.region, _required(p, "logGroupName"), tags=_tag_map(p),
                               kms_key_id=p.get("kmsKeyId") or "", log_group_class=p.get("logGroupClass") or "STANDARD",
                               deletion_protection=bool(p.get("deletionProtectionEnabled")))
        return {}

    def DescribeLogGroups(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        prefix, pattern = p.get("logGroupNamePrefix"), p.get("logGroupNamePattern")
        if prefix is not None and pattern is not None:
            raise InvalidParameter("LogGroup name prefix and LogGroup name pattern are mutually exclusive "
                                   "parameters.")
        groups = self.logs.groups(
            ctx.account, ctx.region,
            prefix=check_group_pattern(prefix, "logGroupNamePrefix") if prefix is not None else "",
            pattern=check_group_pattern(pattern, "logGroupNamePattern") if pattern is not None else "")
        wanted = p.get("logGroupIdentifiers")
        if wanted:
            keep = {w.rsplit(":log-group:", 1)[-1].removesuffix(":*") for w in wanted}
            groups = [g for g in groups if g.name in keep]
        klass = p.get("logGroupClass")
        if klass:
            groups = [g for g in groups if g.log_group_class == klass]
        chunk, token = _page(groups, p, lambda g: g.name)
        out: dict[str, Any] = {"logGroups": [self.group(g) for g in chunk]}
        if token:
            out["nextToken"] = token
        return out

    def DeleteLogGroup(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.logs.delete_group(ctx.account, ctx.region, _required(p, "logGroupName"))
        return {}

    def PutRetentionPolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.logs.put_retention(ctx.account, ctx.region, _required(p, "logGroupName"), _required(p, "retentionInDays"))
        return {}

    def DeleteRetentionPolicy(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.logs.delete_retention(ctx.account, ctx.region, _required(p, "logGroupName"))
        return {}

    # tags

    def TagLogGroup(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.logs.tag_group(ctx.account, ctx.region, _required(p, "logGroupName"), _tags_required(p))
        return {}

    def UntagLogGroup(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.logs.untag_group(ctx.account, ctx.region, _required(p, "logGroupName"), _tag_list(p, "tags"))
        return {}

    def ListTagsLogGroup(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"tags": dict(self.logs.group(ctx.account, ctx.region, _required(p, "logGroupName")).tags)}

    def TagResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        g = self.logs.group_by_arn(_required(p, "resourceArn"))
        self.logs.tag_group(g.account, g.region, g.name, _tags_required(p))
        return {}

    def UntagResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        g = self.logs.group_by_arn(_required(p, "resourceArn"))
        self.logs.untag_group(g.account, g.region, g.name, _tag_list(p, "tagKeys"))
        return {}

    def ListTagsForResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"tags": dict(self.logs.group_by_arn(_required(p, "resourceArn")).tags)}

    # streams

    def CreateLogStream(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.logs.create_stream(ctx.account, ctx.region, _required(p, "logGroupName"), _required(p, "logStreamName"))
        return {}

    def DeleteLogStream(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.logs.delete_stream(ctx.account, ctx.region, _required(p, "logGroupName"), _required(p, "logStreamName"))
        return {}

    def DescribeLogStreams(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        account, region, group = self._group_of(p, ctx)
        order = p.get("orderBy") or "LogStreamName"
        if order not in ("LogStreamName", "LastEventTime"):
            raise InvalidParameter(f"1 validation error detected: Value '{order}' at 'orderBy' failed to satisfy "
                                   "constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]")
        prefix = p.get("logStreamNamePrefix")
        if prefix is not None and order == "LastEventTime":
            raise InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        check_group_name(group)
        streams = self.logs.streams(account, region, group,
                                    prefix=check_stream_prefix(prefix) if prefix is not None else "")
        descending = bool(p.get("descending"))
        if order == "LastEventTime":
            last = {s.storage_id: self.logs.stream_stats(s).last_event or 0 for s in streams}
            streams.sort(key=lambda s: (last[s.storage_id], s.name), reverse=descending)
            chunk, token = _indexed_page(streams, p)
        elif descending:
            streams.reverse()
            chunk, token = _indexed_page(streams, p)
        else:
            chunk, token = _page(streams, p, lambda s: s.name)
        out: dict[str, Any] = {"logStreams": [self.stream(s) for s in chunk]}
        if token:
            out["nextToken"] = token
        return out

    # events

    def PutLogEvents(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        raw = _required(p, "logEvents")
        events = [(e.get("timestamp"), e.get("message")) for e in raw]
        for i, (ts, message) in enumerate(events):
            for member, value in (("timestamp", ts), ("message", message)):
                if value is None:
                    raise InvalidParameter(f"1 validation error detected: Value null at 'logEvents.{i + 1}.member."
                                           f"{member}' failed to satisfy constraint: Member must not be null")
        rejected = self.logs.put_events(ctx.account, ctx.region, _required(p, "logGroupName"),
                                        _required(p, "logStreamName"), events)
        out: dict[str, Any] = {"nextSequenceToken": _sequence_token(self.logs.now_ms())}
        if rejected:
            out["rejectedLogEventsInfo"] = _rejected(rejected)
        return out

    def GetLogEvents(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        account, region, group = self._group_of(p, ctx)
        stream = self.logs.stream(account, region, group, _required(p, "logStreamName"))
        page = get_events(self.logs, stream, start=p.get("startTime"), end=p.get("endTime"),
                          token=p.get("nextToken"), limit=p.get("limit"), from_head=bool(p.get("startFromHead")))
        return {"events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
                           for e in page.events],
                "nextForwardToken": page.forward, "nextBackwardToken": page.backward}

    def FilterLogEvents(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        account, region, group = self._group_of(p, ctx)
        wanted, prefix = p.get("logStreamNames"), p.get("logStreamNamePrefix")
        if wanted is not None and prefix is not None:
            raise InvalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        if wanted is not None and not 1 <= len(wanted) <= 100:
            raise InvalidParameter("1 validation error detected: Value at 'logStreamNames' failed to satisfy "
                                   "constraint: Member must have length between 1 and 100")
        check_group_name(group)
        streams = self.logs.streams(account, region, group,
                                    prefix=check_stream_prefix(prefix) if prefix is not None else "")
        if wanted is not None:
            keep = {check_stream_name(w, "logStreamNames") for w in wanted}
            streams = [s for s in streams if s.name in keep]
        page = filter_events(self.logs, account, region, group, FilterQuery(
            streams, start=p.get("startTime"), end=p.get("endTime"), pattern=p.get("filterPattern"),
            token=p.get("nextToken"), limit=p.get("limit"), follow=p.get("interleaved") is True))
        out: dict[str, Any] = {
            "events": [{"logStreamName": f.stream, "timestamp": f.event.timestamp, "message": f.event.message,
                        "ingestionTime": f.event.ingestion_time, "eventId": f.event_id} for f in page.events],
            "searchedLogStreams": []}
        if page.next_token:
            out["nextToken"] = page.next_token
        return out


def _rejected(r: Rejected) -> dict[str, int]:
    out = {}
    if r.too_old_end is not None:
        out["tooOldLogEventEndIndex"] = r.too_old_end
    if r.expired_end is not None:
        out["expiredLogEventEndIndex"] = r.expired_end
    if r.too_new_start is not None:
        out["tooNewLogEventStartIndex"] = r.too_new_start
    return out


def _sequence_token(ms: int) -> str:
    """Sequence tokens are accepted and ignored (as AWS does since 2023); one is still returned."""
    return f"{ms:056d}"


def logs_service(logs: LogsService) -> JsonService:
    """The CloudWatch Logs JsonService: every public CamelCase method of LogsHandlers."""
    handlers = LogsHandlers(logs)
    operations: dict[str, Operation] = {}
    for name in dir(handlers):
        if name[:1].isupper():
            method: Callable[[Params, AwsContext], dict[str, Any]] = getattr(handlers, name)
            operations[name] = method
    return JsonService(TARGET_PREFIX, SIGNING_NAME, operations, PARAMS)
