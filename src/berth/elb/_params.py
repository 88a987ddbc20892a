"""Reading ELBv2 request members (Query-protocol values arrive as text): typed getters whose
errors are ValidationError naming the member, as ELB words them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.elb._errors import ValidationError

Params = Mapping[str, Any]


def opt_str(params: Params, key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be a string")
    return value


def req_str(params: Params, key: str) -> str:
    value = opt_str(params, key)
    if not value:
        raise ValidationError(f"1 validation error detected: Value null at '{_lower(key)}' failed to satisfy "
                              "constraint: Member must not be null")
    return value


def opt_int(params: Params, key: str, lo: int, hi: int) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError(f"{key} must be an integer")
    try:
        number = int(value)
    except ValueError:
        raise ValidationError(f"{key} must be an integer, not {value!r}") from None
    if not lo <= number <= hi:
        raise ValidationError(f"1 validation error detected: Value '{number}' at '{_lower(key)}' failed to satisfy "
                              f"constraint: Member must have value between {lo} and {hi}")
    return number


def opt_bool(params: Params, key: str) -> bool | None:
    value = params.get(key)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValidationError(f"{key} must be true or false, not {value!r}")


def str_list(params: Params, key: str, max_items: int | None = None) -> list[str] | None:
    value = params.get(key)
    if value is None:
        return None
    if value == "":  # the Query protocol sends an empty list as `Key=`
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{key} must be a list of strings")
    if max_items is not None and len(value) > max_items:
        raise ValidationError(f"1 validation error detected: Value at '{_lower(key)}' failed to satisfy "
                              f"constraint: Member must have length less than or equal to {max_items}")
    return list(value)


def obj_list(params: Params, key: str) -> list[Mapping[str, Any]]:
    value = params.get(key)
    if value is None or value == "":
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ValidationError(f"{key} must be a list of structures")
    return list(value)


def obj(params: Params, key: str) -> Mapping[str, Any] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{key} must be a structure")
    return value


def one_of(value: str | None, key: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise ValidationError(f"1 validation error detected: Value '{value}' at '{_lower(key)}' failed to satisfy "
                              f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]")
    return value


def _lower(key: str) -> str:
    return key[:1].lower() + key[1:]
