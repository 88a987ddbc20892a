"""The previous version kept ECR repositories in an `ecr_repositories` table of state.db; the first
start of this one moves them into the control-plane store (one atomic batch), drops the table, and
finds every repository with its tags, policies and mutability. Running it again changes nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from berth.ecr import EcrService, EcrTokens, ImageTagAlreadyExists, import_legacy_repositories
from berth.ecr.testing import MemoryImages
from berth.state import Database, Delete, MemoryStore, ObjectStore, Put, Record, SqliteStore

# The DDL and row layout of berth.ecr._store before the move, verbatim.
OLD_SCHEMA = """
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
LIFECYCLE = json.dumps({"rules": [{"rulePriority": 1, "action": {"type": "expire"}, "selection": {
    "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}}]})
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "pull", "Effect": "Allow",
                                                             "Principal": "*", "Action": ["ecr:BatchGetImage"]}]})
OLD_ROWS = [
    ("team/app", "123456789012", "eu-west-1", 1_700_000_123.25, "IMMUTABLE_WITH_EXCLUSION",
     json.dumps([{"filterType": "WILDCARD", "filter": "dev-*"}]), 1,
     json.dumps({"encryptionType": "KMS", "kmsKey": "arn:aws:kms:eu-west-1:123456789012:key/k"}),
     json.dumps({"team": "a", "cost-centre": "42"}), LIFECYCLE, POLICY),
    ("plain", "210987654321", "us-east-1", 1_700_000_000.0, "MUTABLE", "[]", 0,
     json.dumps({"encryptionType": "AES256"}), "{}", None, None),
    ("locked", "123456789012", "us-east-1", 1_700_000_001.5, "IMMUTABLE", "[]", 0,
     json.dumps({"encryptionType": "AES256"}), json.dumps({"ünï": "cödé"}), None, None),
]


def old_database(path: Path) -> None:
    """A state.db as the previous version left it (plus a table of another package)."""
    db = Database(path)
    db.ensure_schema(OLD_SCHEMA + "CREATE TABLE IF NOT EXISTS other_pkg (x TEXT);")
    for row in OLD_ROWS:
        db.execute("INSERT INTO ecr_repositories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    db.execute("INSERT INTO other_pkg VALUES ('untouched')")
    db.close()


def tables(db: Database) -> set[str]:
    return {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


def check_repositories(ecr: EcrService, plain_tags: dict[str, str] | None = None) -> None:
    assert [r.name for r in ecr.repositories()] == ["locked", "plain", "team/app"]
    app = ecr.repository("team/app")
    assert app.arn == "arn:aws:ecr:eu-west-1:123456789012:repository/team/app"
    assert app.created_at == 1_700_000_123.25
    assert (app.mutability, app.mutability_exclusions) == (
        "IMMUTABLE_WITH_EXCLUSION", ({"filterType": "WILDCARD", "filter": "dev-*"},))
    assert app.scan_on_push is True
    assert app.encryption == {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:eu-west-1:123456789012:key/k"}
    assert app.tags == {"team": "a", "cost-centre": "42"}
    assert ecr.lifecycle_policy("team/app").lifecycle_policy == LIFECYCLE
    assert ecr.repository_policy("team/app").repository_policy == POLICY
    plain = ecr.repository("plain")
    assert (plain.registry_id, plain.region, plain.mutability, plain.scan_on_push, plain.tags,
            plain.lifecycle_policy, plain.repository_policy) == ("210987654321", "us-east-1", "MUTABLE", False,
                                                                 plain_tags or {}, None, None)
    assert ecr.repository("locked").tags == {"ünï": "cödé"}


def test_old_table_moves_into_the_store_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old_database(path)

    db = Database(path)
    store = SqliteStore(db)
    assert import_legacy_repositories(db, store) == 3
    assert "ecr_repositories" not in tables(db)
    assert db.query("SELECT x FROM other_pkg")[0]["x"] == "untouched"
    assert store.revision() == 3                              # one batch, three records
    images = MemoryImages()
    ecr = EcrService(store, images, EcrTokens(b"k" * 32), "127.0.0.1:5000")
    check_repositories(ecr)
    # the immutability carried over is enforced
    images.push("locked", "v1", b'{"layers": []}')
    with pytest.raises(ImageTagAlreadyExists):
        images.push("locked", "v1", b'{"layers": [], "x": 1}')
    ecr.tag_resource(ecr.repository("plain").arn, {"new": "tag"})
    db.close()

    # the next start: nothing to import, nothing lost, later changes kept
    db = Database(path)
    store = SqliteStore(db)
    assert import_legacy_repositories(db, store) == 0
    ecr = EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")
    check_repositories(ecr, plain_tags={"new": "tag"})
    assert store.revision() == 4
    db.close()


def test_a_start_interrupted_between_copy_and_drop_finishes_the_job(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old_database(path)
    db = Database(path)
    store = SqliteStore(db)
    # as if an earlier start copied "plain" (and it was changed since), then stopped before the drop
    store.put("ecr.repository", "plain", {"name": "plain", "registry_id": "210987654321", "region": "us-east-1",
                                          "created_at": 1_700_000_000.0, "tags": {"changed": "later"}})
    assert import_legacy_repositories(db, store) == 2
    assert "ecr_repositories" not in tables(db)
    ecr = EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000")
    assert [r.name for r in ecr.repositories()] == ["locked", "plain", "team/app"]
    assert ecr.repository("plain").tags == {"changed": "later"}   # the store's record wins
    assert ecr.repository("team/app").tags == {"team": "a", "cost-centre": "42"}
    db.close()


class _FailingApply:
    """A store whose batches fail (a full disk, a lost connection)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def get(self, kind: str, key: str) -> Record | None:
        return self.inner.get(kind, key)

    def apply(self, ops: Sequence[Put | Delete]) -> list[Record | None]:
        raise OSError("disk full")


def test_a_failed_copy_keeps_the_old_table_for_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old_database(path)
    db = Database(path)
    store = MemoryStore()
    with pytest.raises(OSError):
        import_legacy_repositories(db, _FailingApply(store))  # type: ignore[arg-type]
    assert "ecr_repositories" in tables(db) and store.list("ecr.repository") == []
    assert import_legacy_repositories(db, store) == 3          # the fake store works the same way
    check_repositories(EcrService(store, MemoryImages(), EcrTokens(b"k" * 32), "127.0.0.1:5000"))
    db.close()


def test_a_database_without_the_old_table_is_left_alone(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = SqliteStore(db)
    before = tables(db)
    assert import_legacy_repositories(db, store) == 0
    assert tables(db) == before and store.revision() == 0
    db.close()
