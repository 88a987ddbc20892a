"""One conformance suite for every ObjectStore implementation (SqliteStore, MemoryStore),
plus the few SQLite-only promises (durability across reopen, index range scans)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.errors import Conflict, InvalidArgument
from berth.state import (
    Change,
    Database,
    Delete,
    MemoryStore,
    ObjectStore,
    Put,
    Record,
    SqliteStore,
    VersionConflict,
)
from berth.state.sqlite_store import _range_query
from berth.state.store import prefix_upper_bound

ARN = "arn:aws:ecs:us-east-1:000000000000"


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    db = Database(tmp_path / "state.db")
    try:
        yield SqliteStore(db)
    finally:
        db.close()


class Recorder:
    """A watch callback that remembers what it saw, and in which thread."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.threads: list[int] = []

    def __call__(self, change: Change) -> None:
        self.changes.append(change)
        self.threads.append(threading.get_ident())


def test_implementations_satisfy_the_protocol(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    try:
        sqlite: ObjectStore = SqliteStore(db)  # checked by mypy
        memory: ObjectStore = MemoryStore()
        assert isinstance(sqlite, ObjectStore) and isinstance(memory, ObjectStore)
    finally:
        db.close()


def test_version_conflict_is_a_conflict_with_details() -> None:
    err = VersionConflict("task", "t1", 3, 0)
    assert isinstance(err, Conflict)
    assert (err.kind, err.key, err.expected, err.actual) == ("task", "t1", 3, 0)
    assert "absent" in str(err) and "t1" in str(err)


# --- create, get, list ---------------------------------------------------------------------


def test_empty_store(store: ObjectStore) -> None:
    assert store.get("task", "nope") is None
    assert store.list("task") == []
    assert store.revision() == 0


def test_put_creates_at_version_1_and_get_returns_it(store: ObjectStore) -> None:
    rec = store.put("cluster", f"{ARN}:cluster/a", {"status": "ACTIVE", "n": [1, 2], "x": None})
    assert rec == Record("cluster", f"{ARN}:cluster/a", 1, {"status": "ACTIVE", "n": [1, 2], "x": None})
    assert store.get("cluster", f"{ARN}:cluster/a") == rec
    assert store.revision() == 1


def test_every_put_bumps_the_version(store: ObjectStore) -> None:
    for n in range(1, 5):
        assert store.put("service", "s", {"n": n}).version == n
    got = store.get("service", "s")
    assert got is not None and got.version == 4 and got.value == {"n": 4}
    assert store.revision() == 4


def test_kinds_are_separate_namespaces(store: ObjectStore) -> None:
    store.put("task", "k", {"is": "task"})
    store.put("service", "k", {"is": "service"})
    assert [r.value for r in store.list("task")] == [{"is": "task"}]
    assert [r.value for r in store.list("service")] == [{"is": "service"}]
    assert store.get("cluster", "k") is None


KEYS = [
    "a", "ab", "abc", "abd", "ac", "b", "ba", "z",
    "a\U0010ffff", "a\U0010ffffb", "\U0010ffff", "\U0010ffff\U0010ffff",
    "\ud7ffx", "\ue000", "é", "éa", "日本", "日本語", "🐳", "🐳🐳", "a%b", "a_b", "A",
    f"{ARN}:task/c1/1", f"{ARN}:task/c1/2", f"{ARN}:task/c10/1", f"{ARN}:task/c2/1",
]


def test_list_is_sorted_by_key(store: ObjectStore) -> None:
    for key in reversed(KEYS):
        store.put("task", key, {"k": key})
    assert [r.key for r in store.list("task")] == sorted(KEYS)
    assert all(r.value == {"k": r.key} and r.version == 1 for r in store.list("task"))


@pytest.mark.parametrize(
    "prefix",
    ["", "a", "ab", "abc", "abz", "a\U0010ffff", "\U0010ffff", "\ud7ff", "é", "日本", "🐳", "a%", "a_", "A",
     f"{ARN}:task/c1/", f"{ARN}:task/c1", f"{ARN}:task/", "zz"],
)
def test_prefix_listing_is_exact(store: ObjectStore, prefix: str) -> None:
    for key in KEYS:
        store.put("task", key, {})
    assert [r.key for r in store.list("task", prefix)] == sorted(k for k in KEYS if k.startswith(prefix))


def test_cluster_prefix_does_not_match_a_longer_cluster_name(store: ObjectStore) -> None:
    for key in KEYS:
        store.put("task", key, {})
    assert [r.key for r in store.list("task", f"{ARN}:task/c1/")] == [f"{ARN}:task/c1/1", f"{ARN}:task/c1/2"]


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound("ab") == "ac"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\U0010ffff\U0010ffff") is None
    assert prefix_upper_bound("\ud7ff") == "\ue000"  # skips the surrogates UTF-8 cannot hold


# --- expected_version ----------------------------------------------------------------------


def _assert_conflict(err: pytest.ExceptionInfo[VersionConflict], expected: int, actual: int) -> None:
    assert (err.value.kind, err.value.key, err.value.expected, err.value.actual) == ("task", "t", expected, actual)


def test_put_expected_none_upserts(store: ObjectStore) -> None:
    assert store.put("task", "t", {"v": 1}, expected_version=None).version == 1
    assert store.put("task", "t", {"v": 2}, expected_version=None).version == 2


def test_put_expected_zero_creates_only(store: ObjectStore) -> None:
    assert store.put("task", "t", {"v": 1}, expected_version=0).version == 1
    with pytest.raises(VersionConflict) as err:
        store.put("task", "t", {"v": 2}, expected_version=0)
    _assert_conflict(err, 0, 1)


def test_put_expected_n_must_match(store: ObjectStore) -> None:
    store.put("task", "t", {"v": 1})
    store.put("task", "t", {"v": 2})
    assert store.put("task", "t", {"v": 3}, expected_version=2).version == 3
    with pytest.raises(VersionConflict) as err:
        store.put("task", "t", {"v": 4}, expected_version=2)
    _assert_conflict(err, 2, 3)


def test_put_expected_n_on_absent_conflicts_with_actual_0(store: ObjectStore) -> None:
    with pytest.raises(VersionConflict) as err:
        store.put("task", "t", {}, expected_version=1)
    _assert_conflict(err, 1, 0)
    assert store.get("task", "t") is None


def test_conflicts_write_nothing_and_fire_nothing(store: ObjectStore) -> None:
    store.put("task", "t", {"v": 1})
    seen = Recorder()
    store.watch(seen)
    for bad in (0, 2, 7):
        with pytest.raises(VersionConflict):
            store.put("task", "t", {"v": "bad"}, expected_version=bad)
        with pytest.raises(VersionConflict):
            store.delete("task", "t", expected_version=bad)
    assert store.get("task", "t") == Record("task", "t", 1, {"v": 1})
    assert store.revision() == 1
    assert seen.changes == []


def test_delete(store: ObjectStore) -> None:
    assert store.delete("task", "t") is False
    store.put("task", "t", {})
    store.put("task", "t", {})
    assert store.delete("task", "t") is True
    assert store.get("task", "t") is None and store.list("task") == []
    assert store.delete("task", "t") is False
    assert store.put("task", "t", {}).version == 1  # a re-created record starts over


def test_delete_expected_versions(store: ObjectStore) -> None:
    assert store.delete("task", "t", expected_version=0) is False  # absent, as expected
    with pytest.raises(VersionConflict) as err:
        store.delete("task", "t", expected_version=1)
    _assert_conflict(err, 1, 0)
    store.put("task", "t", {})
    with pytest.raises(VersionConflict) as err:
        store.delete("task", "t", expected_version=0)
    _assert_conflict(err, 0, 1)
    with pytest.raises(VersionConflict):
        store.delete("task", "t", expected_version=2)
    assert store.delete("task", "t", expected_version=1) is True
    assert store.get("task", "t") is None


@pytest.mark.parametrize("expected", [-1, True, 1.0, "1"])
def test_bad_expected_version_is_invalid(store: ObjectStore, expected: Any) -> None:
    with pytest.raises(InvalidArgument):
        store.put("task", "t", {}, expected_version=expected)
    with pytest.raises(InvalidArgument):
        store.delete("task", "t", expected_version=expected)
    assert store.revision() == 0


@pytest.mark.parametrize("kind", ["", "has space", "é", "x" * 65, "1abc"])
def test_bad_kind_is_invalid(store: ObjectStore, kind: str) -> None:
    for call in (lambda: store.put(kind, "k", {}), lambda: store.get(kind, "k"), lambda: store.list(kind)):
        with pytest.raises(InvalidArgument):
            call()


@pytest.mark.parametrize("key", ["", "a\x00b", "\ud800"])
def test_bad_key_is_invalid(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidArgument):
        store.put("task", key, {})
    with pytest.raises(InvalidArgument):
        store.get("task", key)
    assert store.revision() == 0


@pytest.mark.parametrize("value", [[1, 2], "text", {"n": float("nan")}, {"s": {1, 2}}, {1: "int key"}, None])
def test_non_json_object_values_are_invalid(store: ObjectStore, value: Any) -> None:
    with pytest.raises(InvalidArgument):
        store.put("task", "t", value)
    assert store.get("task", "t") is None and store.revision() == 0


# --- apply ---------------------------------------------------------------------------------


def test_apply_returns_records_and_nones(store: ObjectStore) -> None:
    store.put("task", "gone", {})
    got = store.apply([Put("task", "a", {"n": 1}), Delete("task", "gone"), Put("service", "s", {"n": 2}, 0)])
    assert got == [Record("task", "a", 1, {"n": 1}), None, Record("service", "s", 1, {"n": 2})]
    assert store.get("task", "gone") is None
    assert store.revision() == 4


def test_apply_is_all_or_nothing(store: ObjectStore) -> None:
    store.put("task", "t", {"v": 1})
    store.put("task", "old", {"v": 1})
    seen = Recorder()
    store.watch(seen)
    ops: list[Put | Delete] = [
        Put("task", "new", {"v": 1}, expected_version=0),
        Delete("task", "old", expected_version=1),
        Put("task", "t", {"v": 2}, expected_version=5),  # the failing check
        Put("task", "later", {"v": 1}),
    ]
    with pytest.raises(VersionConflict) as err:
        store.apply(ops)
    _assert_conflict(err, 5, 1)
    assert store.get("task", "new") is None
    assert store.get("task", "old") == Record("task", "old", 1, {"v": 1})
    assert store.get("task", "later") is None
    assert store.revision() == 2
    assert seen.changes == []


def test_apply_invalid_value_in_a_later_op_writes_nothing(store: ObjectStore) -> None:
    with pytest.raises(InvalidArgument):
        store.apply([Put("task", "a", {}), Put("task", "b", {"bad": object()})])
    with pytest.raises(InvalidArgument):
        store.apply([Put("task", "a", {}), "not an op"])  # type: ignore[list-item]
    assert store.list("task") == [] and store.revision() == 0


def test_apply_ops_see_earlier_ops_in_the_batch(store: ObjectStore) -> None:
    got = store.apply([
        Put("task", "t", {"v": 1}, expected_version=0),
        Put("task", "t", {"v": 2}, expected_version=1),
        Delete("task", "t", expected_version=2),
        Put("task", "t", {"v": 3}, expected_version=0),
    ])
    assert got == [Record("task", "t", 1, {"v": 1}), Record("task", "t", 2, {"v": 2}), None,
                   Record("task", "t", 1, {"v": 3})]
    assert store.get("task", "t") == Record("task", "t", 1, {"v": 3})
    assert store.revision() == 4


def test_empty_apply_changes_nothing(store: ObjectStore) -> None:
    assert store.apply([]) == []
    assert store.revision() == 0


# --- watch ---------------------------------------------------------------------------------


def test_watch_sees_every_change_in_commit_order(store: ObjectStore) -> None:
    seen = Recorder()
    store.watch(seen)
    store.put("task", "a", {})
    store.put("task", "a", {})
    store.apply([Put("service", "s", {}), Delete("task", "a")])
    store.delete("task", "absent")  # no change, no event
    store.delete("service", "s")
    assert seen.changes == [
        Change("task", "a", 1, False, 1),
        Change("task", "a", 2, False, 2),
        Change("service", "s", 1, False, 3),
        Change("task", "a", 2, True, 4),
        Change("service", "s", 1, True, 5),
    ]
    assert store.revision() == 5


def test_callbacks_run_in_the_writing_thread_before_the_write_returns(store: ObjectStore) -> None:
    seen = Recorder()
    store.watch(seen)
    done: list[int] = []

    def write() -> None:
        store.put("task", "t", {})
        done.append(len(seen.changes))  # already delivered when put returns

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(timeout=10)
    assert done == [1]
    assert seen.threads == [writer.ident]


def test_unsubscribe_stops_delivery(store: ObjectStore) -> None:
    seen, other = Recorder(), Recorder()
    stop = store.watch(seen)
    store.watch(other)
    store.put("task", "a", {})
    stop()
    stop()  # idempotent
    store.put("task", "b", {})
    assert [c.key for c in seen.changes] == ["a"]
    assert [c.key for c in other.changes] == ["a", "b"]


def test_kinds_filter(store: ObjectStore) -> None:
    tasks, both, single = Recorder(), Recorder(), Recorder()
    store.watch(tasks, kinds=["task"])
    store.watch(both, kinds={"task", "service"})
    store.watch(single, kinds="service")  # a bare string means that one kind
    store.apply([Put("task", "t", {}), Put("service", "s", {}), Put("cluster", "c", {})])
    assert [(c.kind, c.revision) for c in tasks.changes] == [("task", 1)]
    assert [(c.kind, c.revision) for c in both.changes] == [("task", 1), ("service", 2)]
    assert [(c.kind, c.revision) for c in single.changes] == [("service", 2)]


def test_a_raising_callback_is_logged_and_harms_nothing(
    store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    before, after = Recorder(), Recorder()

    def broken(change: Change) -> None:
        raise RuntimeError("watcher bug")

    store.watch(before)
    store.watch(broken)
    store.watch(after)
    with caplog.at_level(logging.ERROR, logger="berth.state"):
        rec = store.put("task", "t", {"v": 1})
        store.put("task", "u", {"v": 1})
    assert rec.version == 1 and store.get("task", "t") is not None
    assert [c.key for c in before.changes] == ["t", "u"]
    assert [c.key for c in after.changes] == ["t", "u"]
    failures = [r for r in caplog.records if r.name == "berth.state"]
    assert len(failures) == 2 and "watcher bug" in (failures[0].exc_text or "")


def test_a_callback_may_write_and_its_change_follows_in_order(store: ObjectStore) -> None:
    seen = Recorder()

    def echo(change: Change) -> None:
        if change.kind == "task" and not change.deleted:
            store.put("event", change.key, {"task_version": change.version})

    store.watch(echo)
    store.watch(seen)
    store.put("task", "t", {})
    assert [(c.kind, c.revision) for c in seen.changes] == [("task", 1), ("event", 2)]
    assert store.get("event", "t") == Record("event", "t", 1, {"task_version": 1})


# --- copies --------------------------------------------------------------------------------


def test_returned_values_are_copies(store: ObjectStore) -> None:
    value: dict[str, Any] = {"list": [1], "nested": {"a": 1}}
    rec = store.put("task", "t", value)
    value["list"].append(2)
    value["nested"]["a"] = 99
    for got in (rec, store.get("task", "t"), store.list("task")[0], store.apply([Put("task", "u", {"list": [1]})])[0]):
        assert got is not None
        got.value["list"].append("mutated")
        got.value["new"] = 1  # type: ignore[index]
    assert store.get("task", "t") == Record("task", "t", 1, {"list": [1], "nested": {"a": 1}})
    assert store.get("task", "u") == Record("task", "u", 1, {"list": [1]})


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_put_if_version_loses_no_update(store: ObjectStore) -> None:
    threads, increments = 8, 40
    store.put("counter", "c", {"n": 0})
    seen = Recorder()
    store.watch(seen, kinds=["counter"])
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def bump() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(increments):
                while True:
                    cur = store.get("counter", "c")
                    assert cur is not None
                    try:
                        store.put("counter", "c", {"n": cur.value["n"] + 1}, expected_version=cur.version)
                        break
                    except VersionConflict:
                        continue
        except BaseException as err:  # surfaced to the test thread below
            errors.append(err)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not any(w.is_alive() for w in workers) and errors == []
    final = store.get("counter", "c")
    assert final is not None and final.value == {"n": threads * increments}
    assert final.version == threads * increments + 1
    assert store.revision() == threads * increments + 1
    # Every change delivered exactly once, in commit order, from whichever writer drained it.
    assert [c.revision for c in seen.changes] == list(range(2, threads * increments + 2))
    assert [c.version for c in seen.changes] == list(range(2, threads * increments + 2))


# --- SQLite only ---------------------------------------------------------------------------


def test_sqlite_reopen_keeps_records_and_revision(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = SqliteStore(db)
    store.put("task", "t", {"v": "é🐳"})
    store.put("task", "t", {"v": 2})
    store.put("service", "s", {})
    store.delete("service", "s")
    db.close()

    db = Database(tmp_path / "state.db")
    try:
        reopened = SqliteStore(db)
        assert reopened.revision() == 4
        assert reopened.list("task") == [Record("task", "t", 2, {"v": 2})]
        assert reopened.get("service", "s") is None
        assert reopened.put("service", "s", {}) == Record("service", "s", 1, {})
        assert reopened.revision() == 5
    finally:
        db.close()


def test_sqlite_prefix_listing_is_an_index_range(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    try:
        SqliteStore(db)
        sql, params = _range_query("task", f"{ARN}:task/c1/")  # the query list() runs
        plan = " ".join(row["detail"] for row in db.query(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "SEARCH" in plan and "PRIMARY KEY" in plan and "key>? AND key<?" in plan
        assert "TEMP B-TREE" not in plan  # ordered by the index itself, no sort step
    finally:
        db.close()


def test_sqlite_store_shares_the_database_with_other_tables(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    try:
        db.ensure_schema("CREATE TABLE IF NOT EXISTS volumes (name TEXT PRIMARY KEY)")
        store = SqliteStore(db)
        with db.transaction() as conn:
            conn.execute("INSERT INTO volumes (name) VALUES ('v')")
        store.put("task", "t", {})
        assert [r["name"] for r in db.query("SELECT name FROM volumes")] == ["v"]
        assert store.get("task", "t") is not None
    finally:
        db.close()
