"""The in-memory ObjectStore: the fake for tests, with the SQLite store's exact semantics.

Values are kept as the same canonical JSON text SqliteStore stores, so both refuse the same
values, both hand out fresh dicts, and a caller mutating its input cannot reach the store.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Sequence

from berth.state.store import (
    Delete,
    Put,
    Record,
    StoreBase,
    WatchHub,
    Write,
    changes_of,
    check_key,
    check_kind,
    check_prefix,
    decode_value,
    plan_writes,
)


class MemoryStore(StoreBase):
    """ObjectStore in a dict, thread-safe behind one lock."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[str, tuple[int, str]]] = {}  # kind -> key -> (version, JSON)
        self._revision = 0
        # Held from planning to publishing, so checks, writes and the watch queue agree.
        self._lock = threading.Lock()
        self._hub = WatchHub()

    def get(self, kind: str, key: str) -> Record | None:
        with self._lock:
            found = self._objects.get(check_kind(kind), {}).get(check_key(key))
        return Record(kind, key, found[0], decode_value(found[1])) if found else None

    def list(self, kind: str, prefix: str = "") -> builtins.list[Record]:
        check_prefix(prefix)
        with self._lock:
            rows = [(k, v) for k, v in self._objects.get(check_kind(kind), {}).items() if k.startswith(prefix)]
        # Python orders str by code point, as SQLite orders UTF-8 bytes.
        return [Record(kind, k, version, decode_value(text)) for k, (version, text) in sorted(rows)]

    def revision(self) -> int:
        with self._lock:
            return self._revision

    def _commit(self, ops: Sequence[Put | Delete]) -> builtins.list[Write | None]:
        with self._lock:
            writes = plan_writes(ops, self._version)
            changes = changes_of(writes, self._revision)
            for w in writes:
                if w is not None:
                    self._write(w)
            if changes:
                self._revision = changes[-1].revision
            self._hub.publish(changes)
        self._hub.deliver()
        return writes

    def _version(self, kind: str, key: str) -> int:
        found = self._objects.get(kind, {}).get(key)
        return found[0] if found else 0

    def _write(self, w: Write) -> None:
        table = self._objects.setdefault(w.kind, {})
        if w.text is None:
            del table[w.key]
            if not table:
                del self._objects[w.kind]
        else:
            table[w.key] = (w.version, w.text)
