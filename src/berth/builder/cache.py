"""The build cache: step key -> the image that step produced, in the shared Database.

    build_cache(key, image_id, created_at)      one row per (key, image): a rebuild with --no-cache
                                                or another --cache-from source adds a row
        key       sha256 over (parent image id, instruction, content checksum of COPY/ADD
                  sources, build args in scope); see `step_key`
        image_id  the step's result; a hit counts only while that image still exists

Entries whose image was deleted are dropped lazily (on lookup) or by `prune`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping

from berth.state import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key        TEXT NOT NULL,
    image_id   TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (key, image_id)
);
CREATE INDEX IF NOT EXISTS build_cache_by_image ON build_cache(image_id);
"""


def step_key(parent: str, instruction: str, checksum: str = "", args: Mapping[str, str] | None = None) -> str:
    payload = json.dumps([parent, instruction, checksum, sorted((args or {}).items())])
    return hashlib.sha256(payload.encode()).hexdigest()


class BuildCache:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)

    def lookup(self, key: str, exists: Callable[[str], bool], allowed: Collection[str] | None = None) -> str | None:
        """The newest image stored under `key` that still `exists` (and is `allowed`, if given)."""
        rows = self._db.query("SELECT image_id FROM build_cache WHERE key = ? ORDER BY created_at DESC", (key,))
        for row in rows:
            image_id = str(row["image_id"])
            if not exists(image_id):
                self._db.execute("DELETE FROM build_cache WHERE key = ? AND image_id = ?", (key, image_id))
            elif allowed is None or image_id in allowed:
                return image_id
        return None

    def store(self, key: str, image_id: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO build_cache(key, image_id, created_at) VALUES (?, ?, ?)",
            (key, image_id, time.time()))

    def clear(self, older_than: float | None = None) -> list[str]:
        """`docker builder prune`: forget every entry (created before `older_than`, if given);
        returns the keys dropped. The images stay: `docker image prune` decides about them."""
        cutoff = float("inf") if older_than is None else older_than
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT DISTINCT key FROM build_cache WHERE created_at < ?", (cutoff,)).fetchall()
            conn.execute("DELETE FROM build_cache WHERE created_at < ?", (cutoff,))
        return [str(r[0]) for r in rows]

    def prune(self, exists: Callable[[str], bool]) -> int:
        """Drop entries whose image is gone; returns how many."""
        rows = self._db.query("SELECT key, image_id FROM build_cache")
        stale = [(r["key"], r["image_id"]) for r in rows if not exists(str(r["image_id"]))]
        for key, image_id in stale:
            self._db.execute("DELETE FROM build_cache WHERE key = ? AND image_id = ?", (key, image_id))
        return len(stale)
