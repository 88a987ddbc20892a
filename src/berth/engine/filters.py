"""Checks for Docker's `filters` query values (pure), with moby's wording.

moby refuses a filter it does not know and a value it cannot read (400 `invalid filter 'k=v'`)
rather than ignoring it: a prune whose filter was silently dropped would delete everything.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from berth.errors import InvalidArgument

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|m|s|ms))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def matches(filters: Mapping[str, list[str]], one: Callable[[str, str], bool]) -> bool:
    """moby's filters.Args rule: the values given for one key are alternatives (any may hold),
    except `label`, where every value must hold (MatchKVList): `-f label=a -f label=b` selects
    what carries both, and a prune with two labels deletes nothing that has only one."""
    for key, values in filters.items():
        if not values:
            continue
        hold = all if key == "label" else any
        if not hold(one(key, value) for value in values):
            return False
    return True


def label_matches(labels: Mapping[str, str], spec: str) -> bool:
    """One `label` filter value: `key` (present) or `key=value` (present with that value)."""
    key, eq, value = spec.partition("=")
    return key in labels and (not eq or labels[key] == value)


def check_keys(filters: Mapping[str, list[str]], allowed: Collection[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")


def check_values(filters: Mapping[str, list[str]], key: str, valid: Callable[[str], bool]) -> None:
    for value in filters.get(key, []):
        if not valid(value):
            raise InvalidArgument(f"invalid filter '{key}={value}'")


def is_bool(value: str) -> bool:
    """moby's bool filter values (`dangling=true`)."""
    return value.lower() in ("true", "false", "1", "0")


def timestamp(value: str, now: Callable[[], float] = time.time) -> float:
    """Unix seconds of an `until`/`since` value: seconds (fractional allowed), RFC3339, a date,
    or a Go duration counted back from now (`10m`, `24h`); InvalidArgument otherwise."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = _duration_ago(text, now) if _DURATION.match(text) else _rfc3339(text)
    if not math.isfinite(seconds) or abs(seconds) > 1e13:
        raise InvalidArgument(f"invalid timestamp {value!r}")
    return seconds


def _duration_ago(text: str, now: Callable[[], float]) -> float:
    return now() - sum(float(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _rfc3339(text: str) -> float:
    candidate = text if "T" in text else text + "T00:00:00Z"
    try:
        stamp = datetime.fromisoformat(candidate.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidArgument(f"invalid timestamp {text!r}") from err
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()
