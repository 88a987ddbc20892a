"""Which registry blobs hold which local layers (dockerd's "v2 metadata").

Layers are stored uncompressed; a registry holds them compressed under another digest. Recording
`diff_id → (digest, registry, repository)` on every pull and push lets a push skip a layer the
registry already has ("Layer already exists") or mount it from a sibling repository without
compressing anything.

    distribution_blobs(diff_id, digest, media_type, size, registry, repository, seen_at)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from berth.state import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS distribution_blobs (
    diff_id    TEXT NOT NULL,
    digest     TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    registry   TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen_at    REAL NOT NULL,
    PRIMARY KEY (diff_id, digest, registry, repository)
);
"""


@dataclass(frozen=True)
class RemoteBlob:
    diff_id: str
    digest: str
    media_type: str
    size: int
    registry: str      # "127.0.0.1:5000"
    repository: str    # "bob/cats" (the path within the registry)


class BlobIndex:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)

    def record(self, blob: RemoteBlob) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO distribution_blobs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (blob.diff_id, blob.digest, blob.media_type, blob.size, blob.registry, blob.repository,
             time.time()))

    def forget(self, digest: str, registry: str, repository: str) -> None:
        self._db.execute("DELETE FROM distribution_blobs WHERE digest = ? AND registry = ? AND repository = ?",
                         (digest, registry, repository))

    def lookup(self, diff_id: str) -> list[RemoteBlob]:
        """Known remote copies of a layer, most recently seen first."""
        rows = self._db.query("SELECT * FROM distribution_blobs WHERE diff_id = ? ORDER BY seen_at DESC",
                              (diff_id,))
        return [RemoteBlob(r["diff_id"], r["digest"], r["media_type"], int(r["size"]), r["registry"],
                           r["repository"]) for r in rows]
