"""Typed access to the control-plane store: records in, records out, optimistic updates."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from berth.ecs import _model as m
from berth.state.codec import decode, encode
from berth.ecs._taskdef import TaskDefinitionSpec, parse_task_definition
from berth.errors import Conflict
from berth.state import ObjectStore, Record, VersionConflict

T = TypeVar("T")

_KINDS: dict[type[Any], str] = {
    m.Cluster: m.CLUSTER, m.ContainerInstance: m.INSTANCE, m.TaskDefinition: m.TASKDEF, m.Task: m.TASK,
    m.Service: m.SERVICE,
}
_RETRIES = 50
_CACHE_MAX = 50_000


class Repo:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._specs: dict[str, TaskDefinitionSpec] = {}
        self._specs_lock = threading.Lock()
        # (kind, key) → (version, record): the controllers and agents list every task of a cluster
        # on each pass; a record is decoded again only when its version moved.
        self._decoded: dict[tuple[str, str], tuple[int, Any]] = {}
        self._decoded_lock = threading.Lock()

    def _decode(self, cls: type[T], record: Record) -> T:
        cache_key = (record.kind, record.key)
        with self._decoded_lock:
            hit = self._decoded.get(cache_key)
        if hit is not None and hit[0] == record.version:
            value: T = hit[1]
            return value
        decoded = decode(cls, record.value)
        with self._decoded_lock:
            if len(self._decoded) >= _CACHE_MAX:
                self._decoded.clear()
            self._decoded[cache_key] = (record.version, decoded)
        return decoded

    def get(self, cls: type[T], key: str) -> T | None:
        record = self.store.get(_KINDS[cls], key)
        return None if record is None else self._decode(cls, record)

    def get_versioned(self, cls: type[T], key: str) -> tuple[T, int] | None:
        record = self.store.get(_KINDS[cls], key)
        return None if record is None else (self._decode(cls, record), record.version)

    def list(self, cls: type[T], prefix: str = "") -> list[T]:
        return [self._decode(cls, r) for r in self.store.list(_KINDS[cls], prefix)]

    def create(self, cls: type[T], key: str, value: T) -> T:
        """Write a new record; VersionConflict when the key exists."""
        self.store.put(_KINDS[cls], key, encode(value), expected_version=0)
        return value

    def put(self, cls: type[T], key: str, value: T) -> T:
        self.store.put(_KINDS[cls], key, encode(value))
        return value

    def delete(self, cls: type[Any], key: str) -> bool:
        return self.store.delete(_KINDS[cls], key)

    def update(self, cls: type[T], key: str, change: Callable[[T], T | None]) -> T | None:
        """Read-modify-write with put-if-version, retried on conflicts. `change` returns the new
        value, or None to leave the record as it is; returns what was written (or None when the
        record is absent or unchanged)."""
        for _ in range(_RETRIES):
            found = self.get_versioned(cls, key)
            if found is None:
                return None
            current, version = found
            new = change(current)
            if new is None or new == current:
                return None
            try:
                self.store.put(_KINDS[cls], key, encode(new), expected_version=version)
            except VersionConflict:
                continue
            return new
        raise Conflict(f"{key} is being changed concurrently; try again")

    def spec(self, taskdef: m.TaskDefinition) -> TaskDefinitionSpec:
        """The parsed task definition (validated at registration; parsed once per ARN)."""
        with self._specs_lock:
            spec = self._specs.get(taskdef.arn)
        if spec is None:
            spec = parse_task_definition(taskdef.params)
            with self._specs_lock:
                self._specs[taskdef.arn] = spec
        return spec
