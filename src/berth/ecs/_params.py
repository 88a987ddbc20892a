"""Reading ECS request members: typed getters whose errors name the member, as ECS does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from berth.ecs._errors import InvalidParameter

Params = Mapping[str, Any]
T = TypeVar("T")


def _opt(params: Params, key: str, kind: type[T], what: str) -> T | None:
    """`params[key]` when it is a `kind` (a bool is no int), None when absent or null."""
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidParameter(f"{key} must be {what}.")
    return value


def opt_str(params: Params, key: str) -> str | None:
    return _opt(params, key, str, "a string")


def req_str(params: Params, key: str) -> str:
    value = opt_str(params, key)
    if not value:
        raise InvalidParameter(f"{key} can not be blank.")
    return value


def opt_int(params: Params, key: str, lo: int | None = None, hi: int | None = None) -> int | None:
    value = _opt(params, key, int, "an integer")
    if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else (
            f"at least {lo}" if lo is not None else f"at most {hi}")
        raise InvalidParameter(f"{key} must be {bounds}. Value: {value}.")
    return value


def opt_bool(params: Params, key: str) -> bool | None:
    return _opt(params, key, bool, "a boolean")


def _opt_list(params: Params, key: str, kind: type[T], what: str) -> list[T] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        raise InvalidParameter(f"{key} must be {what}.")
    return list(value)


def str_list(params: Params, key: str, max_items: int | None = None) -> list[str] | None:
    value = _opt_list(params, key, str, "a list of strings")
    if value is not None and max_items is not None and len(value) > max_items:
        raise InvalidParameter(f"{key} can have at most {max_items} items.")
    return value


def obj_list(params: Params, key: str) -> list[dict[str, Any]]:
    return _opt_list(params, key, dict, "a list of objects") or []


def obj(params: Params, key: str) -> dict[str, Any] | None:
    return _opt(params, key, dict, "an object")


def one_of(value: str | None, key: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidParameter(f"{key} must be one of: {', '.join(allowed)}. Value: {value!r}.")
    return value
