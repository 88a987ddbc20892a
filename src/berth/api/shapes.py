"""Type checks for JSON request bodies at the API edge (pure).

Handlers describe what a body may hold (`Struct`, `ListOf`, `MapOf`, scalars) and call `check`
once, so the engine only ever sees the JSON types it expects and a wrong type is the client's
error (400), never a server fault. The rules follow Go's encoding/json, which is what Docker and
AWS servers apply: `null` is always allowed (the zero value), unknown fields are ignored, integers
must be whole numbers that fit their width, and a string is never a number.

    body = check(await req.json(), CONTAINER_CREATE)   # {} for an empty body

Raises `ShapeError` (an InvalidArgument) naming the field, the JSON kind found and the Go type
wanted; each API surface words it its own way (Docker keeps Go's sentence, AWS its exception).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from berth.errors import InvalidArgument


@dataclass(frozen=True)
class Scalar:
    go_type: str
    accepts: Callable[[Any], bool]


@dataclass(frozen=True)
class ListOf:
    item: "Shape"

    @property
    def go_type(self) -> str:
        return "[]" + self.item.go_type


@dataclass(frozen=True)
class MapOf:
    value: "Shape"

    @property
    def go_type(self) -> str:
        return "map[string]" + self.value.go_type


@dataclass(frozen=True)
class Struct:
    go_type: str
    fields: Mapping[str, "Shape"]


Shape = Union[Scalar, ListOf, MapOf, Struct]


def _whole(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


STRING = Scalar("string", lambda v: isinstance(v, str))
BOOL = Scalar("bool", lambda v: isinstance(v, bool))
INT = Scalar("int", _whole(-(1 << 63), (1 << 63) - 1))
INT64 = Scalar("int64", _whole(-(1 << 63), (1 << 63) - 1))
UINT16 = Scalar("uint16", _whole(0, (1 << 16) - 1))
UINT32 = Scalar("uint32", _whole(0, (1 << 32) - 1))
UINT64 = Scalar("uint64", _whole(0, (1 << 64) - 1))
FLOAT64 = Scalar("float64", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                 and math.isfinite(v))
ANY = Scalar("interface {}", lambda v: True)
# Docker's strslice.StrSlice: one string or a list of strings.
STRSLICE = Scalar("strslice.StrSlice", lambda v: isinstance(v, str)
                  or (isinstance(v, list) and all(isinstance(x, str) for x in v)))
EMPTY = Struct("struct {}", {})


class ShapeError(InvalidArgument):
    """A JSON value of the wrong type; `field` is a dotted path ("" for the whole body)."""

    def __init__(self, value: Any, field: str, go_type: str) -> None:
        self.kind = json_kind(value)
        self.field = field
        self.go_type = go_type
        where = f"Go struct field {field}" if field else "Go value"
        super().__init__(f"json: cannot unmarshal {self.kind} into {where} of type {go_type}")


def json_kind(value: Any) -> str:
    """Go's words for a JSON value in its unmarshal errors ("number 1.5", "array", ...)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def check(value: Any, shape: Struct) -> dict[str, Any]:
    """The body as a dict ({} for None) once every field has its type; ShapeError otherwise."""
    if value is None:
        return {}
    _check(value, shape, "")
    return value  # type: ignore[no-any-return]


def _check(value: Any, shape: Shape, path: str) -> None:
    if value is None:
        return
    if isinstance(shape, Scalar):
        if not shape.accepts(value):
            raise ShapeError(value, path, shape.go_type)
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            raise ShapeError(value, path, shape.go_type)
        for item in value:
            _check(item, shape.item, path)
    elif isinstance(shape, MapOf):
        if not isinstance(value, dict):
            raise ShapeError(value, path, shape.go_type)
        for item in value.values():
            _check(item, shape.value, path)
    else:
        if not isinstance(value, dict):
            raise ShapeError(value, path, shape.go_type)
        for name, field_shape in shape.fields.items():
            if name in value:
                _check(value[name], field_shape, f"{path}.{name}" if path else name)
