"""Typed records in the control-plane `ObjectStore`.

    kind "ssm.parameter"   key "<account>:<region>:<name>"   value: Parameter (all its versions)
    kind "secretsmanager.secret"  key "<account>:<region>:<name>"  value: Secret (all its versions)

Neither names (a-zA-Z0-9_.-/ and /_+=.@-) nor accounts and regions contain ":", so a key
prefix `<account>:<region>:/app/` lists one hierarchy. Values in records are sealed.

Updates are read-modify-write with put-if-version, retried on a conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from berth.secrets._errors import TooManyUpdates
from berth.state import ObjectStore, VersionConflict
from berth.state import codec

T = TypeVar("T")
_RETRIES = 50


def key(account: str, region: str, name: str) -> str:
    return f"{account}:{region}:{name}"


class Records(Generic[T]):
    def __init__(self, store: ObjectStore, kind: str, cls: type[T]) -> None:
        self._store = store
        self._kind = kind
        self._cls = cls

    def get(self, k: str) -> T | None:
        record = self._store.get(self._kind, k)
        return None if record is None else codec.decode(self._cls, record.value)

    def list(self, prefix: str) -> list[T]:
        return [codec.decode(self._cls, r.value) for r in self._store.list(self._kind, prefix)]

    def create(self, k: str, value: T) -> bool:
        """False when the key exists."""
        try:
            self._store.put(self._kind, k, codec.encode(value), expected_version=0)
        except VersionConflict:
            return False
        return True

    def delete(self, k: str) -> bool:
        return self._store.delete(self._kind, k)

    def update(self, k: str, change: Callable[[T], T | None]) -> T | None:
        """Apply `change` to the current value and write it back if nobody wrote in between (else
        re-read and retry). `change` returning None deletes the record. Returns the new value
        (None when absent or deleted). Errors `change` raises propagate and nothing is written."""
        for _ in range(_RETRIES):
            record = self._store.get(self._kind, k)
            if record is None:
                return None
            new = change(codec.decode(self._cls, record.value))
            try:
                if new is None:
                    self._store.delete(self._kind, k, expected_version=record.version)
                else:
                    self._store.put(self._kind, k, codec.encode(new), expected_version=record.version)
            except VersionConflict:
                continue
            return new
        raise TooManyUpdates("There are concurrent updates for a resource that supports one update at a time.")
