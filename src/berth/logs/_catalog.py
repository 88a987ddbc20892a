"""Log group and log stream metadata as control-plane records (their events live in segments).

Kinds and keys in the shared `ObjectStore`::

    logs.group   "<account>/<region>/<group name>"                 → LogGroup
    logs.stream  "<account>/<region>/<group name>:<stream name>"   → LogStream

A group name never holds ':', so `"<account>/<region>/<group>:"` is exactly the prefix of the
group's streams. Records change rarely (create, delete, tags, retention); a stream's event
counters come from its segments, not from here.

Creating a stream rewrites its group record in the same batch (same value, version checked) and
deleting a group deletes it and its streams in one batch with every version checked, so a stream
created while its group is deleted makes the delete retry: no stream outlives its group.
"""

from __future__ import annotations

from collections.abc import Callable

from berth.logs._model import LogGroup, LogStream
from berth.state import Delete, ObjectStore, Put, VersionConflict
from berth.state.codec import decode, encode

GROUP = "logs.group"
STREAM = "logs.stream"
_RETRIES = 50


def group_key(account: str, region: str, name: str) -> str:
    return f"{account}/{region}/{name}"


def stream_key(account: str, region: str, group: str, name: str) -> str:
    return f"{account}/{region}/{group}:{name}"


class Catalog:
    """Typed access to the logs records of an ObjectStore."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    # groups

    def create_group(self, group: LogGroup) -> bool:
        """False when a group of that name exists."""
        try:
            self._store.put(GROUP, group_key(group.account, group.region, group.name), encode(group),
                            expected_version=0)
        except VersionConflict:
            return False
        return True

    def group(self, account: str, region: str, name: str) -> LogGroup | None:
        record = self._store.get(GROUP, group_key(account, region, name))
        return None if record is None else decode(LogGroup, record.value)

    def groups(self, account: str, region: str, prefix: str = "") -> list[LogGroup]:
        """The groups of one account and region (whose names start with `prefix`), by name."""
        return [decode(LogGroup, r.value) for r in self._store.list(GROUP, group_key(account, region, prefix))]

    def all_groups(self) -> list[LogGroup]:
        """Every group of every account and region."""
        return [decode(LogGroup, r.value) for r in self._store.list(GROUP)]

    def update_group(self, account: str, region: str, name: str,
                     change: Callable[[LogGroup], LogGroup]) -> LogGroup | None:
        """Apply `change` and write it back unless someone wrote in between (then retry);
        None when the group is absent."""
        key = group_key(account, region, name)
        for _ in range(_RETRIES):
            record = self._store.get(GROUP, key)
            if record is None:
                return None
            new = change(decode(LogGroup, record.value))
            try:
                self._store.put(GROUP, key, encode(new), expected_version=record.version)
            except VersionConflict:
                continue
            return new
        raise VersionConflict(GROUP, key, 0, 0)

    def delete_group(self, account: str, region: str, name: str) -> list[LogStream] | None:
        """Delete the group and its streams at once; the streams deleted, None when absent."""
        key = group_key(account, region, name)
        for _ in range(_RETRIES):
            record = self._store.get(GROUP, key)
            if record is None:
                return None
            streams = self._store.list(STREAM, stream_key(account, region, name, ""))
            ops: list[Put | Delete] = [Delete(GROUP, key, expected_version=record.version)]
            ops += [Delete(STREAM, s.key, expected_version=s.version) for s in streams]
            try:
                self._store.apply(ops)
            except VersionConflict:
                continue
            return [decode(LogStream, s.value) for s in streams]
        raise VersionConflict(GROUP, key, 0, 0)

    # streams

    def create_stream(self, stream: LogStream) -> bool | None:
        """True when created, False when it exists, None when its group does not."""
        gkey = group_key(stream.account, stream.region, stream.group)
        skey = stream_key(stream.account, stream.region, stream.group, stream.name)
        for _ in range(_RETRIES):
            group = self._store.get(GROUP, gkey)
            if group is None:
                return None
            if self._store.get(STREAM, skey) is not None:
                return False
            try:
                self._store.apply([Put(GROUP, gkey, group.value, expected_version=group.version),
                                   Put(STREAM, skey, encode(stream), expected_version=0)])
            except VersionConflict:
                continue
            return True
        raise VersionConflict(STREAM, skey, 0, 0)

    def stream(self, account: str, region: str, group: str, name: str) -> LogStream | None:
        record = self._store.get(STREAM, stream_key(account, region, group, name))
        return None if record is None else decode(LogStream, record.value)

    def streams(self, account: str, region: str, group: str, prefix: str = "") -> list[LogStream]:
        """The group's streams (whose names start with `prefix`), by name."""
        return [decode(LogStream, r.value) for r in self._store.list(STREAM, stream_key(account, region, group, prefix))]

    def delete_stream(self, account: str, region: str, group: str, name: str) -> LogStream | None:
        key = stream_key(account, region, group, name)
        record = self._store.get(STREAM, key)
        if record is None or not self._store.delete(STREAM, key, expected_version=record.version):
            return None
        return decode(LogStream, record.value)

    def storage_ids(self) -> set[str]:
        """Every stream's storage id (any account or region): the directories to keep."""
        return {str(r.value.get("storage_id", "")) for r in self._store.list(STREAM)}
