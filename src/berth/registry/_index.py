"""Registry metadata in SQLite: repositories, blob links, manifests, tags and referrers.

Blob bytes live in BlobStorage; this index says which repository may see which blob, what each
manifest references, and where tags point. Tables:

    repositories(name)                         a repository exists once something was pushed to it
    blobs(digest, size)                        every committed blob (layers, configs, manifests)
    repo_blobs(repo, digest, linked)           blob visible in repo; `linked` refreshed on use (GC grace)
    manifests(repo, digest, media_type, ...)   one row per manifest in a repo (+ subject for referrers)
    manifest_refs(repo, digest, child, kind)   blobs ("blob") and manifests ("manifest") a manifest uses
    tags(repo, tag, digest)

Publishing a blob and inserting its row happen in one transaction (`publish_blob`), and garbage
collection runs in one transaction too, so a collector never sees a blob half-committed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from berth.state import Database

TOUCH_INTERVAL = 60.0  # seconds between refreshes of a blob link's `linked` time on use

SCHEMA = """
CREATE TABLE IF NOT EXISTS registry_repositories (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS registry_blobs (digest TEXT PRIMARY KEY, size INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS registry_repo_blobs (
  repo TEXT NOT NULL, digest TEXT NOT NULL, linked REAL NOT NULL, PRIMARY KEY (repo, digest));
CREATE TABLE IF NOT EXISTS registry_manifests (
  repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL,
  subject TEXT, artifact_type TEXT, annotations TEXT NOT NULL, created REAL NOT NULL,
  PRIMARY KEY (repo, digest));
CREATE INDEX IF NOT EXISTS registry_manifests_subject ON registry_manifests (repo, subject);
CREATE TABLE IF NOT EXISTS registry_manifest_refs (
  repo TEXT NOT NULL, digest TEXT NOT NULL, child TEXT NOT NULL, kind TEXT NOT NULL,
  PRIMARY KEY (repo, digest, child));
CREATE INDEX IF NOT EXISTS registry_manifest_refs_child ON registry_manifest_refs (child);
CREATE TABLE IF NOT EXISTS registry_tags (
  repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, updated REAL NOT NULL,
  PRIMARY KEY (repo, tag));
CREATE INDEX IF NOT EXISTS registry_tags_digest ON registry_tags (repo, digest);
"""


@dataclass(frozen=True)
class ManifestRow:
    repo: str
    digest: str
    media_type: str
    size: int
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str]


@dataclass(frozen=True)
class NewManifest:
    repo: str
    digest: str
    media_type: str
    size: int
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, Any]
    blobs: tuple[str, ...]
    manifests: tuple[str, ...]


def _manifest(row: sqlite3.Row) -> ManifestRow:
    return ManifestRow(row["repo"], row["digest"], row["media_type"], row["size"], row["subject"],
                       row["artifact_type"], json.loads(row["annotations"]))


class RegistryIndex:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)

    # -- repositories ------------------------------------------------------------------------
    def repository_exists(self, name: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM registry_repositories WHERE name = ?", (name,)))

    def create_repository(self, name: str) -> bool:
        """Create `name`; False when it existed already."""
        return self.db.execute("INSERT OR IGNORE INTO registry_repositories VALUES (?, ?)",
                               (name, self.clock())) == 1

    def delete_repository(self, name: str) -> None:
        with self.db.transaction() as conn:
            for table in ("registry_repo_blobs", "registry_manifests", "registry_manifest_refs", "registry_tags"):
                conn.execute(f"DELETE FROM {table} WHERE repo = ?", (name,))  # noqa: S608 - fixed names
            conn.execute("DELETE FROM registry_repositories WHERE name = ?", (name,))

    def repositories(self, n: int | None, last: str | None) -> list[str]:
        return self._page("SELECT name FROM registry_repositories WHERE name > ? ORDER BY name", (), n, last)

    # -- blobs -------------------------------------------------------------------------------
    def publish_blob(self, repo: str | None, digest: str, size: int, publish: Callable[[], Any]) -> None:
        """Run `publish` (the storage rename) and record the blob, atomically w.r.t. GC."""
        now = self.clock()
        with self.db.transaction() as conn:
            publish()
            conn.execute("INSERT OR IGNORE INTO registry_blobs VALUES (?, ?, ?)", (digest, size, now))
            if repo is not None:
                self._link(conn, repo, digest, now)

    def _link(self, conn: sqlite3.Connection, repo: str, digest: str, now: float) -> None:
        conn.execute("INSERT OR IGNORE INTO registry_repositories VALUES (?, ?)", (repo, now))
        conn.execute("INSERT INTO registry_repo_blobs VALUES (?, ?, ?) "
                     "ON CONFLICT (repo, digest) DO UPDATE SET linked = excluded.linked", (repo, digest, now))

    def link_blob(self, repo: str, digest: str) -> bool:
        """Make a committed blob visible in `repo`; False when the blob is not committed."""
        with self.db.transaction() as conn:
            if not conn.execute("SELECT 1 FROM registry_blobs WHERE digest = ?", (digest,)).fetchone():
                return False
            self._link(conn, repo, digest, self.clock())
            return True

    def blob_linked(self, repo: str, digest: str, touch: bool = False) -> bool:
        """Whether `digest` is visible in `repo`; `touch` refreshes the link's GC grace window.

        A client that found a blob with HEAD will reference it in a manifest soon. The refresh is
        written at most once a minute per link, so pulls stay read-only in the common case.
        """
        rows = self.db.query("SELECT linked FROM registry_repo_blobs WHERE repo = ? AND digest = ?", (repo, digest))
        if not rows:
            return False
        now = self.clock()
        if touch and rows[0]["linked"] < now - TOUCH_INTERVAL:
            self.db.execute("UPDATE registry_repo_blobs SET linked = ? WHERE repo = ? AND digest = ?", (now, repo, digest))
        return True

    def unlink_blob(self, repo: str, digest: str) -> bool:
        return self.db.execute("DELETE FROM registry_repo_blobs WHERE repo = ? AND digest = ?", (repo, digest)) == 1

    def blob_committed(self, digest: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM registry_blobs WHERE digest = ?", (digest,)))

    # -- manifests ---------------------------------------------------------------------------
    def missing_references(self, repo: str, blobs: tuple[str, ...], manifests: tuple[str, ...]) -> list[str]:
        missing = [d for d in dict.fromkeys(blobs) if not self.blob_linked(repo, d)]
        missing += [d for d in dict.fromkeys(manifests) if self.manifest(repo, d) is None]
        return missing

    def put_manifest(self, m: NewManifest, tags: Sequence[str] = (),
                     missing: Callable[[], list[str]] = lambda: []) -> list[str]:
        """Record a manifest (and its tags) unless references are missing; returns the missing digests.

        The reference check runs inside the write transaction so GC cannot remove a blob between
        the check and the insert.
        """
        now = self.clock()
        with self.db.transaction() as conn:
            absent = missing()
            if absent:
                return absent
            conn.execute("INSERT OR IGNORE INTO registry_repositories VALUES (?, ?)", (m.repo, now))
            conn.execute("INSERT OR REPLACE INTO registry_manifests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (m.repo, m.digest, m.media_type, m.size, m.subject, m.artifact_type,
                          json.dumps(m.annotations), now))
            conn.execute("DELETE FROM registry_manifest_refs WHERE repo = ? AND digest = ?", (m.repo, m.digest))
            conn.executemany("INSERT OR IGNORE INTO registry_manifest_refs VALUES (?, ?, ?, ?)",
                             [(m.repo, m.digest, b, "blob") for b in m.blobs]
                             + [(m.repo, m.digest, c, "manifest") for c in m.manifests])
            conn.executemany("INSERT OR REPLACE INTO registry_tags VALUES (?, ?, ?, ?)",
                             [(m.repo, tag, m.digest, now) for tag in tags])
        return []

    def manifest(self, repo: str, digest: str) -> ManifestRow | None:
        rows = self.db.query("SELECT * FROM registry_manifests WHERE repo = ? AND digest = ?", (repo, digest))
        return _manifest(rows[0]) if rows else None

    def delete_manifest(self, repo: str, digest: str) -> bool:
        with self.db.transaction() as conn:
            gone = conn.execute("DELETE FROM registry_manifests WHERE repo = ? AND digest = ?", (repo, digest)).rowcount
            conn.execute("DELETE FROM registry_manifest_refs WHERE repo = ? AND digest = ?", (repo, digest))
            conn.execute("DELETE FROM registry_tags WHERE repo = ? AND digest = ?", (repo, digest))
        return gone == 1

    def referrers(self, repo: str, subject: str) -> list[ManifestRow]:
        rows = self.db.query("SELECT * FROM registry_manifests WHERE repo = ? AND subject = ? ORDER BY created, digest",
                             (repo, subject))
        return [_manifest(r) for r in rows]

    def manifests_in(self, repo: str) -> list[tuple[ManifestRow, float]]:
        """Every manifest of `repo` with the time it was pushed, oldest first (ECR's DescribeImages)."""
        rows = self.db.query("SELECT * FROM registry_manifests WHERE repo = ? ORDER BY created, digest", (repo,))
        return [(_manifest(r), float(r["created"])) for r in rows]

    # -- tags --------------------------------------------------------------------------------
    def resolve_tag(self, repo: str, tag: str) -> str | None:
        rows = self.db.query("SELECT digest FROM registry_tags WHERE repo = ? AND tag = ?", (repo, tag))
        return rows[0]["digest"] if rows else None

    def delete_tag(self, repo: str, tag: str) -> bool:
        return self.db.execute("DELETE FROM registry_tags WHERE repo = ? AND tag = ?", (repo, tag)) == 1

    def tags(self, repo: str, n: int | None, last: str | None) -> list[str]:
        return self._page("SELECT tag FROM registry_tags WHERE repo = ? AND tag > ? ORDER BY tag", (repo,), n, last)

    def tags_of(self, repo: str, digest: str) -> list[str]:
        rows = self.db.query("SELECT tag FROM registry_tags WHERE repo = ? AND digest = ? ORDER BY tag", (repo, digest))
        return [r["tag"] for r in rows]

    def _page(self, sql: str, params: tuple[Any, ...], n: int | None, last: str | None) -> list[str]:
        limit = -1 if n is None else n
        rows = self.db.query(sql + " LIMIT ?", (*params, last or "", limit))
        return [r[0] for r in rows]
