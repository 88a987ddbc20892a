"""The `awslogs` log driver's options: validated at create as dockerd validates them, and turned
into an AwslogsConfig (group, stream, region, mode, multiline pattern) when the container starts.

Pure: no I/O. Messages are dockerd's word for word (moby daemon/logger/factory.go
`ValidateLogOpts` and daemon/logger/awslogs `ValidateLogOpt`), since clients show them as they are.

    validate_log_config("awslogs", {"awslogs-group": "g"})       # at create; InvalidArgument
    cfg = awslogs_config(options, container_id=..., name=..., image=..., default_region="us-east-1")

berth extension: `awslogs-stream-prefix` (an ECS option, which dockerd refuses) is accepted by
`docker run` too and names the stream `<prefix>/<container id>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from berth.errors import InvalidArgument

DRIVER = "awslogs"
GROUP, STREAM, PREFIX = "awslogs-group", "awslogs-stream", "awslogs-stream-prefix"
CREATE_GROUP, CREATE_STREAM, REGION = "awslogs-create-group", "awslogs-create-stream", "awslogs-region"
DATETIME_FORMAT, MULTILINE_PATTERN = "awslogs-datetime-format", "awslogs-multiline-pattern"
FORCE_FLUSH, MAX_BUFFERED = "awslogs-force-flush-interval-seconds", "awslogs-max-buffered-events"
MODE, MAX_BUFFER_SIZE = "mode", "max-buffer-size"
# Accepted for compatibility and otherwise ignored: berth ships to its own store, with its own
# flush timing (a line reaches the store within ~0.1 s, not every 5 s).
_IGNORED = ("awslogs-endpoint", "awslogs-credentials-endpoint", FORCE_FLUSH, MAX_BUFFERED, "awslogs-format")
_KNOWN = frozenset({GROUP, STREAM, PREFIX, CREATE_GROUP, CREATE_STREAM, REGION, DATETIME_FORMAT,
                    MULTILINE_PATTERN, "tag", *_IGNORED})
_BUILTIN = frozenset({MODE, MAX_BUFFER_SIZE})  # moby filters these out before the driver's validator
DEFAULT_MAX_BUFFER = 1 << 20  # moby's logger.DefaultMaxBufferSize for mode=non-blocking
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def validate_log_config(driver: str, options: Mapping[str, str], registered: tuple[str, ...]) -> None:
    """moby's ValidateLogOpts: mode and max-buffer-size for every driver but `none`, then that the
    driver exists, then the driver's own options (awslogs only: berth logs the rest to k8s-file)."""
    if driver == "none":
        return
    mode = options.get(MODE, "")
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidArgument(f"logger: logging mode not supported: {mode}")
    if MAX_BUFFER_SIZE in options:
        if mode != "non-blocking":
            raise InvalidArgument("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
        ram_in_bytes(options[MAX_BUFFER_SIZE])
    if driver not in registered:
        raise InvalidArgument(f"logger: no log driver named '{driver}' is registered")
    if driver == DRIVER:
        validate_awslogs({k: v for k, v in options.items() if k not in _BUILTIN})


def validate_awslogs(options: Mapping[str, str]) -> None:
    """moby's awslogs ValidateLogOpt (plus `awslogs-stream-prefix`, see the module doc)."""
    for key in sorted(options):
        if key not in _KNOWN:
            raise InvalidArgument(f"unknown log opt '{key}' for {DRIVER} log driver")
    if not options.get(GROUP):
        raise InvalidArgument(f"must specify a value for log opt '{GROUP}'")
    for key in (CREATE_GROUP, CREATE_STREAM):
        if options.get(key):
            _must_bool(key, options[key])
    for key in (FORCE_FLUSH, MAX_BUFFERED):
        value = options.get(key, "")
        if value and not (value.lstrip("+-").isdigit() and int(value) > 0):
            raise InvalidArgument(f"must specify a positive integer for log opt '{key}': {value}")
    if DATETIME_FORMAT in options and MULTILINE_PATTERN in options:
        raise InvalidArgument(f"you cannot configure log opt '{DATETIME_FORMAT}' and '{MULTILINE_PATTERN}' "
                              "at the same time")


def _must_bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgument(f"must specify valid value for log opt '{key}': "
                          f'strconv.ParseBool: parsing "{value}": invalid syntax')


_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes (binary multiples: 4m = 4 MiB), with moby's error wording."""
    match = _SIZE.match(text)
    if match is None:
        raise InvalidArgument(f"error parsing option max-buffer-size: invalid size: '{text}'")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


# moby's strftimeToRegex: awslogs-datetime-format becomes the pattern a new event starts with.
_STRFTIME = {
    "%a": r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
    "%A": r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
    "%w": r"[0-6]", "%d": r"(?:0[1-9]|[1,2][0-9]|3[0,1])",
    "%b": r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
    "%B": r"(?:January|February|March|April|May|June|July|August|September|October|November|December)",
    "%m": r"(?:0[1-9]|1[0-2])", "%Y": r"\d{4}", "%y": r"\d{2}", "%H": r"(?:[0,1][0-9]|2[0-3])",
    "%I": r"(?:0[0-9]|1[0-2])", "%p": r"[A,P]M", "%M": r"[0-5][0-9]", "%S": r"[0-5][0-9]",
    "%f": r"\d{6}", "%z": r"[+-]\d{4}", "%Z": r"[A-Z]{1,4}T",
    "%j": r"(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])", "%L": r"\.\d{3}",
}


def multiline_pattern(options: Mapping[str, str]) -> re.Pattern[bytes] | None:
    """The compiled start-of-event pattern, or None (one event per line). Like moby, the pattern
    is searched anywhere in the line (Go's Regexp.Match), not anchored."""
    pattern = options.get(MULTILINE_PATTERN, "")
    datetime_format = options.get(DATETIME_FORMAT, "")
    if datetime_format:
        pattern = re.sub("%.", lambda m: _STRFTIME.get(m.group(0), ""), datetime_format)
    if not pattern:
        return None
    try:
        return re.compile(pattern.encode())
    except re.error as err:
        raise InvalidArgument(f"awslogs could not parse multiline pattern key {pattern!r}: {err}") from err


@dataclass(frozen=True)
class AwslogsConfig:
    group: str
    stream: str
    region: str
    create_group: bool = False
    blocking: bool = True
    max_buffer: int = DEFAULT_MAX_BUFFER  # bytes of unshipped log a non-blocking shipper may fall behind
    multiline: re.Pattern[bytes] | None = None


def awslogs_config(options: Mapping[str, str], *, container_id: str, name: str, image: str,
                   image_id: str = "", default_region: str) -> AwslogsConfig:
    """The driver's settings at container start (options were validated at create)."""
    validate_awslogs({k: v for k, v in options.items() if k not in _BUILTIN})
    if options.get(STREAM):
        stream = options[STREAM]
    elif options.get(PREFIX):
        stream = f"{options[PREFIX]}/{container_id}"
    else:
        stream = log_tag(options.get("tag") or "{{.FullID}}", container_id=container_id, name=name,
                         image=image, image_id=image_id)
    blocking = options.get(MODE, "") != "non-blocking"
    max_buffer = ram_in_bytes(options[MAX_BUFFER_SIZE]) if MAX_BUFFER_SIZE in options else DEFAULT_MAX_BUFFER
    return AwslogsConfig(group=options[GROUP], stream=stream, region=options.get(REGION) or default_region,
                         create_group=_must_bool(CREATE_GROUP, options[CREATE_GROUP]) if options.get(CREATE_GROUP)
                         else False, blocking=blocking, max_buffer=max(1, max_buffer),
                         multiline=multiline_pattern(options))


_TAG_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def log_tag(template: str, *, container_id: str, name: str, image: str, image_id: str) -> str:
    """moby's ParseLogTag for the fields its log-tag template offers."""
    fields = {"ID": container_id[:12], "FullID": container_id, "Name": name.lstrip("/"),
              "ImageID": image_id.removeprefix("sha256:")[:12], "ImageFullID": image_id, "ImageName": image,
              "DaemonName": "docker"}

    def field(match: re.Match[str]) -> str:
        if match.group(1) not in fields:
            raise InvalidArgument(f'template: log-tag:1: can\'t evaluate field {match.group(1)} in type *logger.Info')
        return fields[match.group(1)]

    return _TAG_FIELD.sub(field, template)
