"""CloudWatch Logs: log groups, log streams and their events, stored under `<root>/logs/`.

Public surface:

- `LogsService(store, root, clock=...)`: the operations (groups, streams, PutLogEvents rules,
  retention) over the control-plane `ObjectStore` (metadata) and append-only segment files
  with a time index (events; `_segments.py` draws the layout).
- `EngineSink(logs, account=DEFAULT_ACCOUNT)`: what the engine's `awslogs` driver writes to.
- Reads: `get_events(logs, stream, ...) -> Page` (GetLogEvents' forward/backward tokens) and
  `filter_events(logs, account, region, group, FilterQuery(...)) -> FilterPage` (FilterLogEvents:
  interleaved, filter patterns, a time budget, the long poll of `aws logs tail --follow`;
  `_query.py` says exactly how); `parse_pattern` (the filter pattern syntax, `_pattern.py`).
- Name checks as AWS applies them: `check_group_name`, `check_stream_name`, ... .
- The records `LogGroup`, `LogStream`, `StreamStats`, `Event`, `Rejected`; the error kinds
  (each with its AWS `aws_code`).
"""

from berth.logs._errors import (
    BAD_PATTERN, GROUP_NOT_FOUND, STREAM_NOT_FOUND, InvalidFilterPattern, InvalidParameter, LimitExceeded,
    ResourceAlreadyExists, ResourceNotFound, TooManyTags,
)
from berth.logs._model import Event, LogGroup, LogStream, Rejected, StreamStats
from berth.logs._names import check_group_name, check_group_pattern, check_stream_name, check_stream_prefix
from berth.logs._pattern import Pattern, parse_pattern
from berth.logs._query import FilterPage, FilterQuery, Found, Page, filter_events, get_events
from berth.logs._service import LogsService
from berth.logs._sink import DEFAULT_ACCOUNT, EngineSink

__all__ = [
    "BAD_PATTERN", "DEFAULT_ACCOUNT", "EngineSink", "Event", "FilterPage", "FilterQuery", "Found", "GROUP_NOT_FOUND",
    "InvalidFilterPattern", "InvalidParameter", "LimitExceeded", "LogGroup", "LogStream", "LogsService", "Page",
    "Pattern", "Rejected", "ResourceAlreadyExists", "ResourceNotFound", "STREAM_NOT_FOUND", "StreamStats",
    "TooManyTags", "check_group_name", "check_group_pattern", "check_stream_name", "check_stream_prefix",
    "filter_events", "get_events", "parse_pattern",
]
