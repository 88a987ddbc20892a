"""The ObjectStore on berth's SQLite database (state.db), beside the other subsystems' tables.

Two tables: `store_objects` keyed by (kind, key), clustered on that key (WITHOUT ROWID) so a
prefix listing is one index range scan, and `store_revision`, a one-row counter that makes
revisions survive a restart. Every statement goes through `Database`, sharing its connection
and lock; writes run inside `Database.transaction()` (BEGIN IMMEDIATE), so the version checks
and the writes see the same snapshot.

Watches are per instance: open one SqliteStore per Database and share it, or a second
instance's writes will not reach the first one's watchers (their revisions still interleave
correctly, as the counter lives in the database).
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Sequence

from berth.state.db import Database
from berth.state.store import (
    Change,
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
    prefix_upper_bound,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_objects (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO store_revision (id, revision) VALUES (1, 0);
"""


class SqliteStore(StoreBase):
    """ObjectStore over a `Database`; thread-safe (see the module docstring for watches)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(_SCHEMA)
        # Held from BEGIN to publishing the changes, so the watch queue is in commit order;
        # always taken before the Database lock, never inside it.
        self._write_lock = threading.Lock()
        self._hub = WatchHub()

    def get(self, kind: str, key: str) -> Record | None:
        rows = self._db.query(
            "SELECT version, value FROM store_objects WHERE kind = ? AND key = ?",
            (check_kind(kind), check_key(key)),
        )
        return Record(kind, key, rows[0]["version"], decode_value(rows[0]["value"])) if rows else None

    def list(self, kind: str, prefix: str = "") -> builtins.list[Record]:
        sql, params = _range_query(check_kind(kind), check_prefix(prefix))
        return [Record(kind, row["key"], row["version"], decode_value(row["value"])) for row in self._db.query(sql, params)]

    def revision(self) -> int:
        return int(self._db.query("SELECT revision FROM store_revision WHERE id = 1")[0]["revision"])

    def _commit(self, ops: Sequence[Put | Delete]) -> builtins.list[Write | None]:
        with self._write_lock:
            with self._db.transaction() as conn:
                writes = plan_writes(ops, lambda kind, key: _version(conn, kind, key))
                changes = _write(conn, writes)
            self._hub.publish(changes)
        self._hub.deliver()
        return writes


def _version(conn: sqlite3.Connection, kind: str, key: str) -> int:
    row = conn.execute("SELECT version FROM store_objects WHERE kind = ? AND key = ?", (kind, key)).fetchone()
    return int(row[0]) if row else 0


def _write(conn: sqlite3.Connection, writes: Sequence[Write | None]) -> builtins.list[Change]:
    """Apply planned writes and advance the revision counter; returns the Changes."""
    last = int(conn.execute("SELECT revision FROM store_revision WHERE id = 1").fetchone()[0])
    changes = changes_of(writes, last)
    if not changes:
        return changes
    for w in writes:
        if w is None:
            continue
        if w.text is None:
            conn.execute("DELETE FROM store_objects WHERE kind = ? AND key = ?", (w.kind, w.key))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO store_objects (kind, key, version, value) VALUES (?, ?, ?, ?)",
                (w.kind, w.key, w.version, w.text),
            )
    conn.execute("UPDATE store_revision SET revision = ? WHERE id = 1", (changes[-1].revision,))
    return changes


def _range_query(kind: str, prefix: str) -> tuple[str, tuple[str, ...]]:
    """A key-range scan of the primary key, not LIKE (see `prefix_upper_bound`)."""
    select = "SELECT key, version, value FROM store_objects WHERE kind = ?"
    upper = prefix_upper_bound(prefix)
    if upper is None:  # no prefix (or only U+10FFFF): everything from the prefix up
        return f"{select} AND key >= ? ORDER BY key", (kind, prefix)
    return f"{select} AND key >= ? AND key < ? ORDER BY key", (kind, prefix, upper)
