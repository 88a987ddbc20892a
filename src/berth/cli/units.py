"""Parsing of the value syntaxes Docker flags accept: memory sizes, CPU counts, durations, times."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RAM_RE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d")


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: `64m` -> 67108864, `1.5g`, `512` (bytes); binary multiples.

    Raises:
        ValueError: `invalid size: '<text>'`, Docker's wording.
    """
    match = _RAM_RE.match(text)
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    try:
        number = float(match.group(1))
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    unit = (match.group(2) or "").lower()
    return int(number * _BINARY.get(unit, 1))


def nano_cpus(text: str) -> int:
    """`--cpus 1.5` -> NanoCpus 1500000000.

    Raises:
        ValueError: the value is not a non-negative decimal number.
    """
    try:
        cpus = float(text)
    except ValueError:
        raise ValueError(f"failed to parse {text} as a rational number") from None
    if cpus < 0 or cpus != cpus:
        raise ValueError(f"invalid value {text} for cpus")
    return round(cpus * 1e9)


def go_duration_seconds(text: str) -> float | None:
    """Parse a Go duration (`90s`, `1h30m`, `1.5h`); None if `text` is not one."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    return sign * sum(float(n) * _DURATION_SECONDS[u] for n, u in parts)


def timestamp_param(text: str, now_unix: float) -> str:
    """Docker's GetTimestamp for `--since`/`--until`: relative duration, RFC 3339 or unix seconds.

    Returns the `seconds[.nanoseconds]` string the API expects.

    Raises:
        ValueError: none of the accepted forms matched.
    """
    relative = go_duration_seconds(text)
    if relative is not None:
        return _unix_string(now_unix - relative)
    if re.fullmatch(r"\d+(\.\d{1,9})?", text):
        return text
    return _unix_string(_parse_time(text).timestamp())


def _parse_time(text: str) -> datetime:
    normal = text[:-1] + "+00:00" if text.endswith("Z") else text
    for fmt in _TIME_FORMATS:
        try:
            parsed = datetime.strptime(normal, fmt)
        except ValueError:
            continue
        # A timestamp without a zone is local time, as in Docker.
        return parsed if parsed.tzinfo else parsed.astimezone()
    raise ValueError(f"failed to parse value as time or duration: \"{text}\"")


def _unix_string(seconds: float) -> str:
    whole = int(seconds // 1)
    nanos = int(round((seconds - whole) * 1e9))
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, 0
    return f"{whole}.{nanos:09d}"


def utc_now() -> float:
    """Wall-clock seconds, one place to patch in tests."""
    return datetime.now(UTC).timestamp()
