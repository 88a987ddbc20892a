"""ECR repository metadata in the shared Database (images themselves live in the registry).

    ecr_repositories(name PK, registry_id, region, created_at, mutability, exclusions, scan_on_push,
                     encryption, tags, lifecycle_policy, repository_policy)
        exclusions, encryption, tags   JSON
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

from berth.ecr._model import Repository
from berth.state import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS ecr_repositories (
    name              TEXT PRIMARY KEY,
    registry_id       TEXT NOT NULL,
    region            TEXT NOT NULL,
    created_at        REAL NOT NULL,
    mutability        TEXT NOT NULL,
    exclusions        TEXT NOT NULL,
    scan_on_push      INTEGER NOT NULL,
    encryption        TEXT NOT NULL,
    tags              TEXT NOT NULL,
    lifecycle_policy  TEXT,
    repository_policy TEXT
);
"""


class RepositoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)

    def insert(self, repo: Repository) -> bool:
        """False when a repository of that name exists."""
        return self._db.execute(
            "INSERT OR IGNORE INTO ecr_repositories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(repo)) == 1

    def save(self, repo: Repository) -> None:
        self._db.execute("INSERT OR REPLACE INTO ecr_repositories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         _row(repo))

    def get(self, name: str) -> Repository | None:
        rows = self._db.query("SELECT * FROM ecr_repositories WHERE name = ?", (name,))
        return _repo(rows[0]) if rows else None

    def all(self) -> list[Repository]:
        return [_repo(r) for r in self._db.query("SELECT * FROM ecr_repositories ORDER BY name")]

    def delete(self, name: str) -> None:
        self._db.execute("DELETE FROM ecr_repositories WHERE name = ?", (name,))

    def update(self, name: str, **changes: object) -> Repository | None:
        repo = self.get(name)
        if repo is None:
            return None
        repo = replace(repo, **changes)  # type: ignore[arg-type]
        self.save(repo)
        return repo


def _row(r: Repository) -> tuple[object, ...]:
    return (r.name, r.registry_id, r.region, r.created_at, r.mutability, json.dumps(list(r.mutability_exclusions)),
            int(r.scan_on_push), json.dumps(r.encryption), json.dumps(r.tags), r.lifecycle_policy,
            r.repository_policy)


def _repo(row: sqlite3.Row) -> Repository:
    return Repository(
        name=row["name"], registry_id=row["registry_id"], region=row["region"], created_at=row["created_at"],
        mutability=row["mutability"], mutability_exclusions=tuple(json.loads(row["exclusions"])),
        scan_on_push=bool(row["scan_on_push"]), encryption=json.loads(row["encryption"]),
        tags=json.loads(row["tags"]), lifecycle_policy=row["lifecycle_policy"],
        repository_policy=row["repository_policy"])
