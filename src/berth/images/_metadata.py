"""The image index in the shared Database: images, their references, and layer sizes.

Tables (prefixed `image_` where a bare name could collide with the registry's own tables):

    images(id, config, created, size, layers, parent, added_at)
        id       "sha256:<hex>" of the config blob; config is its text (the blob keeps the bytes)
        layers   JSON list of diff_ids, lowest first
    image_tags(reference, repository, image_id, tagged_at)
        reference  normalised: "docker.io/library/busybox:latest" or "<repo>@sha256:<hex>"
    image_layers(diff_id, size)
        size       sum of the layer's regular-file sizes
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from berth.state import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id        TEXT PRIMARY KEY,
    config    TEXT NOT NULL,
    created   TEXT NOT NULL,
    size      INTEGER NOT NULL,
    layers    TEXT NOT NULL,
    parent    TEXT NOT NULL DEFAULT '',
    added_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_tags (
    reference  TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tagged_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS image_tags_by_image ON image_tags(image_id);
CREATE TABLE IF NOT EXISTS image_layers (
    diff_id TEXT PRIMARY KEY,
    size    INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class ImageRow:
    id: str
    config: str
    created: str
    size: int
    layers: tuple[str, ...]
    parent: str
    added_at: str


@dataclass(frozen=True)
class TagRow:
    reference: str
    repository: str
    image_id: str
    tagged_at: str


class ImageIndex:
    """SQL for the image tables; callers pass a connection from `db.transaction()` to write."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    # reads

    def image(self, image_id: str) -> ImageRow | None:
        rows = self.db.query("SELECT * FROM images WHERE id = ?", (image_id,))
        return _image_row(rows[0]) if rows else None

    def images(self) -> list[ImageRow]:
        return [_image_row(r) for r in self.db.query("SELECT * FROM images ORDER BY added_at, id")]

    def ids_with_prefix(self, hex_prefix: str) -> list[str]:
        pattern = "sha256:" + hex_prefix.replace("%", "").replace("_", "") + "%"
        return [r["id"] for r in self.db.query("SELECT id FROM images WHERE id LIKE ?", (pattern,))]

    def children(self, image_id: str) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM images WHERE parent = ?", (image_id,))]

    def tag_target(self, reference: str) -> str | None:
        rows = self.db.query("SELECT image_id FROM image_tags WHERE reference = ?", (reference,))
        return str(rows[0]["image_id"]) if rows else None

    def tags(self, image_id: str | None = None) -> list[TagRow]:
        if image_id is None:
            rows = self.db.query("SELECT * FROM image_tags ORDER BY reference")
        else:
            rows = self.db.query(
                "SELECT * FROM image_tags WHERE image_id = ? ORDER BY reference", (image_id,)
            )
        return [TagRow(r["reference"], r["repository"], r["image_id"], r["tagged_at"]) for r in rows]

    def layer_size(self, diff_id: str) -> int:
        rows = self.db.query("SELECT size FROM image_layers WHERE diff_id = ?", (diff_id,))
        return int(rows[0]["size"]) if rows else 0

    # writes (inside a transaction)

    @staticmethod
    def insert_layer(conn: sqlite3.Connection, diff_id: str, size: int) -> None:
        conn.execute("INSERT OR IGNORE INTO image_layers(diff_id, size) VALUES (?, ?)", (diff_id, size))

    @staticmethod
    def insert_image(conn: sqlite3.Connection, row: ImageRow) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO images(id, config, created, size, layers, parent, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.id, row.config, row.created, row.size, json.dumps(list(row.layers)), row.parent,
             row.added_at),
        )

    @staticmethod
    def set_tag(conn: sqlite3.Connection, tag: TagRow) -> str | None:
        """Point a reference at an image; returns the image it pointed at before, if another."""
        old = conn.execute(
            "SELECT image_id FROM image_tags WHERE reference = ?", (tag.reference,)
        ).fetchone()
        conn.execute(
            "INSERT OR REPLACE INTO image_tags(reference, repository, image_id, tagged_at)"
            " VALUES (?, ?, ?, ?)",
            (tag.reference, tag.repository, tag.image_id, tag.tagged_at),
        )
        if old is not None and old["image_id"] != tag.image_id:
            return str(old["image_id"])
        return None

    @staticmethod
    def remove_tag(conn: sqlite3.Connection, reference: str) -> bool:
        return conn.execute("DELETE FROM image_tags WHERE reference = ?", (reference,)).rowcount > 0

    @staticmethod
    def delete_image(conn: sqlite3.Connection, image_id: str) -> list[str]:
        """Delete an image row; returns the diff_ids no remaining image uses (rows removed too)."""
        row = conn.execute("SELECT layers FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            return []
        conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
        still_used = {d for r in conn.execute("SELECT layers FROM images") for d in json.loads(r[0])}
        orphans = [d for d in dict.fromkeys(json.loads(row["layers"])) if d not in still_used]
        for diff_id in orphans:
            conn.execute("DELETE FROM image_layers WHERE diff_id = ?", (diff_id,))
        return orphans


def _image_row(r: sqlite3.Row) -> ImageRow:
    return ImageRow(
        id=r["id"], config=r["config"], created=r["created"], size=int(r["size"]),
        layers=tuple(json.loads(r["layers"])), parent=r["parent"], added_at=r["added_at"],
    )
