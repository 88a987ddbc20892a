"""ECR repository metadata as control-plane records (images themselves live in the registry).

Each repository is one record of kind `ecr.repository` in the shared `ObjectStore`, keyed by the
repository name. The name, not `<account>/<region>/<name>`, is the identity because berth runs
one registry: `docker push <registry>/<name>` addresses a repository by name alone, so names are
unique across accounts and regions, the registry's tag guard looks a repository up by name, and
DescribeRepositories lists every account's repositories (as before). Listing a namespace
(`team/`) is a prefix scan of the key.

Value (JSON object)::

    {"name", "registry_id", "region", "created_at", "mutability", "mutability_exclusions": [{..}],
     "scan_on_push", "encryption": {..}, "tags": {..}, "lifecycle_policy", "repository_policy",
     "lifecycle_evaluated_at", "scans": {digest: {"status", "description", "completed_at"}}}

Updates are read-modify-write with put-if-version, retried on a conflict, so two writers
changing different fields (tags vs a policy) never lose one another's change.

`import_legacy_repositories` moves the rows of the table the previous version kept
(`ecr_repositories` in state.db) into the store, once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from berth.ecr._model import ImageScan, Repository
from berth.errors import Conflict
from berth.state import Database, ObjectStore, Put, Record, VersionConflict

log = logging.getLogger("berth.ecr")

KIND = "ecr.repository"
LEGACY_TABLE = "ecr_repositories"
_RETRIES = 50


class RepositoryStore:
    """Typed access to the `ecr.repository` records of an ObjectStore."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def insert(self, repo: Repository) -> bool:
        """Create the record; False when a repository of that name exists."""
        try:
            self._store.put(KIND, repo.name, encode(repo), expected_version=0)
        except VersionConflict:
            return False
        return True

    def get(self, name: str) -> Repository | None:
        record = self._store.get(KIND, name)
        return None if record is None else decode(record)

    def all(self, prefix: str = "") -> list[Repository]:
        """Every repository (whose name starts with `prefix`), by name."""
        return [decode(r) for r in self._store.list(KIND, prefix)]

    def delete(self, name: str) -> bool:
        return self._store.delete(KIND, name)

    def update(self, name: str, change: Callable[[Repository], Repository]) -> Repository | None:
        """Apply `change` to the current record and write it back if nobody wrote in between
        (else re-read and retry). None when the repository is absent."""
        for _ in range(_RETRIES):
            record = self._store.get(KIND, name)
            if record is None:
                return None
            current = decode(record)
            new = change(current)
            if new.name != name:
                raise ValueError(f"a repository update cannot rename {name!r} to {new.name!r}")
            if new == current:
                return current
            try:
                self._store.put(KIND, name, encode(new), expected_version=record.version)
            except VersionConflict:
                continue
            return new
        raise Conflict(f"repository {name!r} is being changed concurrently; try again")


def encode(r: Repository) -> dict[str, Any]:
    return {
        "name": r.name, "registry_id": r.registry_id, "region": r.region, "created_at": r.created_at,
        "mutability": r.mutability, "mutability_exclusions": [dict(f) for f in r.mutability_exclusions],
        "scan_on_push": r.scan_on_push, "encryption": dict(r.encryption), "tags": dict(r.tags),
        "lifecycle_policy": r.lifecycle_policy, "repository_policy": r.repository_policy,
        "lifecycle_evaluated_at": r.lifecycle_evaluated_at,
        "scans": {d: {"status": s.status, "description": s.description, "completed_at": s.completed_at}
                  for d, s in r.scans.items()},
    }


def decode(record: Record) -> Repository:
    return _repository(record.value)


def _repository(v: Mapping[str, Any]) -> Repository:
    # Optional fields may be missing from records a later version wrote without them.
    return Repository(
        name=str(v["name"]), registry_id=str(v["registry_id"]), region=str(v["region"]),
        created_at=float(v["created_at"]), mutability=str(v.get("mutability", "MUTABLE")),
        mutability_exclusions=tuple(dict(f) for f in v.get("mutability_exclusions") or ()),
        scan_on_push=bool(v.get("scan_on_push", False)),
        encryption=dict(v.get("encryption") or {"encryptionType": "AES256"}),
        tags=dict(v.get("tags") or {}), lifecycle_policy=v.get("lifecycle_policy"),
        repository_policy=v.get("repository_policy"), lifecycle_evaluated_at=_float_or_none(v.get("lifecycle_evaluated_at")),
        scans={str(d): ImageScan(str(d), str(s["status"]), str(s["description"]), float(s["completed_at"]))
               for d, s in (v.get("scans") or {}).items()})


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


# --- the previous version's table --------------------------------------------------------------


def import_legacy_repositories(db: Database, store: ObjectStore) -> int:
    """Copy the old `ecr_repositories` rows into `store` in one atomic batch, then drop the table.

    Idempotent: without the table it does nothing; a name already in the store (an earlier run
    that stopped between the copy and the drop) keeps its record. Returns how many were copied.
    """
    if not db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_TABLE,)):
        return 0
    rows = db.query(f"SELECT * FROM {LEGACY_TABLE} ORDER BY name")
    repos = [_legacy_repository(row) for row in rows]
    ops = [Put(KIND, r.name, encode(r), expected_version=0) for r in repos if store.get(KIND, r.name) is None]
    if ops:
        store.apply(ops)  # all or nothing: a failure leaves the table for the next start
    db.execute(f"DROP TABLE {LEGACY_TABLE}")
    log.info("moved %d ECR repositories from the %s table into the control-plane store", len(ops), LEGACY_TABLE)
    return len(ops)


def _legacy_repository(row: sqlite3.Row) -> Repository:
    """One row of the old table (name, registry_id, region, created_at, mutability, exclusions,
    scan_on_push, encryption, tags, lifecycle_policy, repository_policy; JSON in the middle)."""
    return Repository(
        name=row["name"], registry_id=row["registry_id"], region=row["region"], created_at=float(row["created_at"]),
        mutability=row["mutability"], mutability_exclusions=tuple(json.loads(row["exclusions"])),
        scan_on_push=bool(row["scan_on_push"]), encryption=json.loads(row["encryption"]),
        tags=json.loads(row["tags"]), lifecycle_policy=row["lifecycle_policy"],
        repository_policy=row["repository_policy"])
