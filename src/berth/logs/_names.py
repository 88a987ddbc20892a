"""What CloudWatch Logs accepts as names, retention periods and tags (botocore's logs model)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from berth.logs._errors import InvalidParameter, TooManyTags

_GROUP = re.compile(r"[.\-_/#A-Za-z0-9]+")
_GROUP_PATTERN = re.compile(r"[.\-_/#A-Za-z0-9]*")
_TAG_KEY = re.compile(r"[\w\s.:/=+\-@]+")
_TAG_VALUE = re.compile(r"[\w\s.:/=+\-@]*")
NAME_MAX = 512
MAX_TAGS = 50
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                  2922, 3288, 3653)


def _constraint(value: object, member: str, constraint: str) -> InvalidParameter:
    return InvalidParameter(f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
                            f"constraint: {constraint}")


def _length(value: str, member: str, low: int, high: int) -> None:
    if len(value) < low:
        raise _constraint(value, member, f"Member must have length greater than or equal to {low}")
    if len(value) > high:
        raise _constraint(value, member, f"Member must have length less than or equal to {high}")


def check_group_name(name: object, member: str = "logGroupName") -> str:
    """A log group name: 1-512 of `.-_/#` and ASCII letters and digits.

    Raises:
        InvalidParameter: AWS's validation message.
    """
    if not isinstance(name, str):
        raise InvalidParameter(f"{member} is required")
    _length(name, member, 1, NAME_MAX)
    if not _GROUP.fullmatch(name):
        raise _constraint(name, member, r"Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+")
    return name


def check_group_pattern(text: object, member: str) -> str:
    """The text of logGroupNamePrefix/logGroupNamePattern (may be empty)."""
    if not isinstance(text, str):
        raise InvalidParameter(f"{member} must be a string")
    _length(text, member, 0, NAME_MAX)
    if not _GROUP_PATTERN.fullmatch(text):
        raise _constraint(text, member, r"Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]*")
    return text


def check_stream_name(name: object, member: str = "logStreamName") -> str:
    """A log stream name: 1-512 characters, none of them ':' or '*'.

    Raises:
        InvalidParameter: AWS's validation message.
    """
    if not isinstance(name, str):
        raise InvalidParameter(f"{member} is required")
    _length(name, member, 1, NAME_MAX)
    if ":" in name or "*" in name:
        raise _constraint(name, member, "Member must satisfy regular expression pattern: [^:*]*")
    return name


def check_stream_prefix(text: object, member: str = "logStreamNamePrefix") -> str:
    if not isinstance(text, str):
        raise InvalidParameter(f"{member} must be a string")
    _length(text, member, 1, NAME_MAX)
    if ":" in text or "*" in text:
        raise _constraint(text, member, "Member must satisfy regular expression pattern: [^:*]*")
    return text


def check_retention(days: object) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or days not in RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in RETENTION_DAYS)
        raise _constraint(days, "retentionInDays", f"Member must satisfy enum value set: [{allowed}]")
    return days


def check_tags(tags: Mapping[str, str], member: str = "tags") -> dict[str, str]:
    """Tag keys 1-128 and values 0-256 of letters, digits, spaces and `_.:/=+-@`; at most 50.

    Raises:
        InvalidParameter: a malformed key or value.
    """
    if len(tags) > MAX_TAGS:
        raise _constraint("map", member, f"Member must have length less than or equal to {MAX_TAGS}")
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not _TAG_KEY.fullmatch(key):
            raise _constraint(key, f"{member}.key", "Member must satisfy regular expression pattern: "
                              r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$")
        if not isinstance(value, str) or len(value) > 256 or not _TAG_VALUE.fullmatch(value):
            raise _constraint(value, f"{member}.{key}.member.value", "Member must satisfy regular expression "
                              r"pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$")
    return dict(tags)


def check_tag_keys(keys: Sequence[str], member: str = "tagKeys") -> list[str]:
    for key in keys:
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not _TAG_KEY.fullmatch(key):
            raise _constraint(key, member, r"Member must satisfy regular expression pattern: "
                              r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$")
    return list(keys)


def check_tag_count(total: int, arn: str) -> None:
    if total > MAX_TAGS:
        raise TooManyTags(f"A resource can have no more than {MAX_TAGS} tags: {arn}")
