"""Reading ECS request members: typed getters whose errors name the member, as ECS does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.ecs._errors import InvalidParameter

Params = Mapping[str, Any]


def opt_str(params: Params, key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{key} must be a string.")
    return value


def req_str(params: Params, key: str) -> str:
    value = opt_str(params, key)
    if not value:
        raise InvalidParameter(f"{key} can not be blank.")
    return value


def opt_int(params: Params, key: str, lo: int | None = None, hi: int | None = None) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParameter(f"{key} must be an integer.")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else (
            f"at least {lo}" if lo is not None else f"at most {hi}")
        raise InvalidParameter(f"{key} must be {bounds}. Value: {value}.")
    return value


def opt_bool(params: Params, key: str) -> bool | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidParameter(f"{key} must be a boolean.")
    return value


def str_list(params: Params, key: str, max_items: int | None = None) -> list[str] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"{key} must be a list of strings.")
    if max_items is not None and len(value) > max_items:
        raise InvalidParameter(f"{key} can have at most {max_items} items.")
    return list(value)


def obj_list(params: Params, key: str) -> list[dict[str, Any]]:
    value = params.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidParameter(f"{key} must be a list of objects.")
    return list(value)


def obj(params: Params, key: str) -> dict[str, Any] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParameter(f"{key} must be an object.")
    return value


def one_of(value: str | None, key: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidParameter(f"{key} must be one of: {', '.join(allowed)}. Value: {value!r}.")
    return value
