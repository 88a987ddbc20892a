"""Typed, path-aware reads of the JSON a RegisterTaskDefinition request carries.

The request arrives as decoded JSON from any client, not only from botocore (which checks types
before sending): a raw HTTP caller can put a string where a list belongs. Every read here checks
the JSON type and, when it is wrong, raises ClientException naming the member's full path
(`containerDefinitions[0].portMappings[1].containerPort`), in botocore's own wording, so no
malformed request ever surfaces as a Python exception. JSON null counts as absent, as in AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from berth.ecs._errors import ClientError

JSONObject = Mapping[str, Any]


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def type_error(path: str, value: object, expected: str) -> ClientError:
    shown = repr(value)
    if len(shown) > 60:  # a message, not an echo of a whole document
        shown = shown[:57] + "..."
    where = f"parameter {path}" if path else "the request"  # the request body itself is not a map
    return ClientError(f"Invalid type for {where}, value: {shown}, type: {json_type(value)}, valid types: {expected}")


def _is_int(value: object) -> bool:
    # bool is a subclass of int in Python but a different JSON type.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Obj:
    """A JSON object being read, with its path for error messages."""

    value: JSONObject
    path: str

    @classmethod
    def of(cls, value: object, path: str) -> Obj:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise type_error(path, value, "map")
        return cls(value, path)

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> Any:
        return self.value.get(key)

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def str_(self, key: str) -> str | None:
        value = self.value.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise type_error(self.at(key), value, "string")
        return value

    def int_(self, key: str) -> int | None:
        value = self.value.get(key)
        if value is None:
            return None
        if not _is_int(value):
            raise type_error(self.at(key), value, "integer")
        return int(value)

    def bool_(self, key: str) -> bool | None:
        value = self.value.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise type_error(self.at(key), value, "boolean")
        return value

    def strs(self, key: str) -> tuple[str, ...] | None:
        value = self.value.get(key)
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise type_error(self.at(key), value, "list")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise type_error(f"{self.at(key)}[{i}]", item, "string")
        return tuple(value)

    def obj(self, key: str) -> Obj | None:
        value = self.value.get(key)
        return None if value is None else Obj.of(value, self.at(key))

    def objs(self, key: str) -> tuple[Obj, ...]:
        value = self.value.get(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise type_error(self.at(key), value, "list")
        return tuple(Obj.of(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value))

    def str_map(self, key: str) -> tuple[tuple[str, str], ...]:
        """A JSON map of string to string (dockerLabels, log options), in the order sent."""
        value = self.value.get(key)
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            raise type_error(self.at(key), value, "map")
        for k, v in value.items():
            if not isinstance(k, str):
                raise type_error(self.at(key), k, "string")
            if not isinstance(v, str):
                raise type_error(f"{self.at(key)}.{k}", v, "string")
        return tuple(value.items())
