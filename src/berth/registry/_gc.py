"""Garbage collection: remove blobs nothing references, without racing pushes in flight.

Roots: every manifest (its own bytes), every blob a manifest references, and every blob
linked into a repository within the last `grace` seconds (a push uploads layers first and the
manifest last, and a client that found a blob with HEAD refreshes its link). Links older than
that which no manifest uses are dropped; then every committed blob outside the roots, and every
blob file with no index row, goes.

The whole pass runs in one write transaction of the index. Publishing a blob takes the same
lock (`RegistryIndex.publish_blob`), so an upload commits either before the pass (and is
protected by the grace window) or after it; there is no moment where the collector deletes a
file that a publisher just renamed into place. It is safe to run while the daemon serves,
from the daemon or from `berth registry gc` in another process (SQLite locks across processes).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

from berth.registry._index import RegistryIndex
from berth.registry._storage import FilesystemStorage
from berth.types import Digest


@dataclass
class GcReport:
    blobs_removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    links_removed: int = 0
    manifests_removed: list[str] = field(default_factory=list)
    uploads_removed: int = 0


def _untagged(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Manifests with no tag, no parent index in their repo, and no subject present there."""
    return [(r[0], r[1]) for r in conn.execute("""
        SELECT m.repo, m.digest FROM registry_manifests m
        WHERE NOT EXISTS (SELECT 1 FROM registry_tags t WHERE t.repo = m.repo AND t.digest = m.digest)
          AND NOT EXISTS (SELECT 1 FROM registry_manifest_refs r
                          WHERE r.repo = m.repo AND r.child = m.digest AND r.kind = 'manifest')
          AND NOT EXISTS (SELECT 1 FROM registry_manifests s WHERE s.repo = m.repo AND s.digest = m.subject)""")]


def _delete_untagged(conn: sqlite3.Connection, report: GcReport) -> None:
    # Repeat: removing an untagged index can leave its children untagged and unreferenced.
    while victims := _untagged(conn):
        for repo, digest in victims:
            report.manifests_removed.append(f"{repo}@{digest}")
            conn.execute("DELETE FROM registry_manifests WHERE repo = ? AND digest = ?", (repo, digest))
            conn.execute("DELETE FROM registry_manifest_refs WHERE repo = ? AND digest = ?", (repo, digest))


def _drop_stale_links(conn: sqlite3.Connection, cutoff: float) -> int:
    return conn.execute("""DELETE FROM registry_repo_blobs WHERE linked < ?
        AND NOT EXISTS (SELECT 1 FROM registry_manifest_refs r
                        WHERE r.repo = registry_repo_blobs.repo AND r.child = registry_repo_blobs.digest)
        AND NOT EXISTS (SELECT 1 FROM registry_manifests m
                        WHERE m.repo = registry_repo_blobs.repo AND m.digest = registry_repo_blobs.digest)""",
                        (cutoff,)).rowcount


class _DryRun(Exception):  # noqa: N818 - rolls the transaction back after a dry run
    pass


def _unreferenced(conn: sqlite3.Connection, cutoff: float) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in conn.execute("""
        SELECT b.digest, b.size FROM registry_blobs b WHERE b.created < ?
          AND NOT EXISTS (SELECT 1 FROM registry_manifests m WHERE m.digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM registry_manifest_refs r WHERE r.child = b.digest)
          AND NOT EXISTS (SELECT 1 FROM registry_repo_blobs l WHERE l.digest = b.digest)""", (cutoff,))]


def _sweep(conn: sqlite3.Connection, storage: FilesystemStorage, cutoff: float, report: GcReport, *,
           delete_untagged: bool, dry_run: bool) -> None:
    if delete_untagged:
        _delete_untagged(conn, report)
    report.links_removed = _drop_stale_links(conn, cutoff)
    for digest, size in _unreferenced(conn, cutoff):
        report.blobs_removed.append(digest)
        report.bytes_freed += size
        conn.execute("DELETE FROM registry_blobs WHERE digest = ?", (digest,))
        if not dry_run:
            storage.delete(Digest(digest))
    known = {r[0] for r in conn.execute("SELECT digest FROM registry_blobs")}
    for stored in storage.digests():
        if str(stored) not in known and str(stored) not in report.blobs_removed and storage.mtime(stored) < cutoff:
            report.blobs_removed.append(str(stored))
            if not dry_run:
                storage.delete(stored)


def collect_garbage(storage: FilesystemStorage, index: RegistryIndex, *, grace: float = 3600,
                    delete_untagged: bool = False, dry_run: bool = False, now: float | None = None) -> GcReport:
    """One collection pass; see the module docstring. `dry_run` reports without deleting."""
    now = time.time() if now is None else now
    cutoff = now - grace
    report = GcReport()
    try:
        with index.db.transaction() as conn:
            _sweep(conn, storage, cutoff, report, delete_untagged=delete_untagged, dry_run=dry_run)
            if dry_run:
                raise _DryRun  # the row deletions above only served to count what would go
    except _DryRun:
        pass
    # Upload files outlive their (in-memory) session only after a crash; leave a wide margin so
    # an idle but live session of a running daemon is never cut.
    for ingest_id in storage.stale_ingests(now - 2 * grace):
        report.uploads_removed += 1
        if not dry_run:
            storage.remove_ingest(ingest_id)
    return report
