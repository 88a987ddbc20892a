"""Frozen dataclasses ↔ JSON objects: how typed control-plane records (ECS, ELB) are kept in the ObjectStore.

The records of this package are frozen dataclasses whose fields are str/int/float/bool/None,
nested records, tuples of those, and str-keyed dicts. `encode` turns one into a JSON object;
`decode` rebuilds it from its type hints, so the store never holds pickles and a field added
later decodes from an old record through its default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(cls: type[T], data: Mapping[str, Any]) -> T:
    hints = _hints(cls)  # type: ignore[arg-type]  # dataclass types are hashable
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _value(hints[f.name], data[f.name])
    return cls(**kwargs)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v) for v in value)
        return tuple(_value(a, v) for a, v in zip(args, value))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        args = typing.get_args(hint)
        inner = args[1] if len(args) == 2 else Any
        return {k: _value(inner, v) for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return decode(hint, value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value
