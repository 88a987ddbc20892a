"""The control-plane object store: typed records with versions, atomic batches and watches.

ECS keeps its clusters, task definitions, tasks, services and container instances here. The
store knows nothing about them: a record is a JSON object filed under a `kind` ("task") and a
`key` unique within that kind (ECS uses ARNs, so listing by a key prefix lists one cluster).

Vocabulary and lifecycle of one record::

    absent --put--> version 1 --put--> version 2 --put--> ... --delete--> absent
                                                                      (a later put starts at 1)

- **version** is the record's optimistic-concurrency token. A writer reads a record, changes
  it, and writes it back with `expected_version=record.version`; if someone else wrote in the
  meantime the write raises `VersionConflict` and changes nothing, and the writer retries from
  a fresh read. `expected_version=0` means "create only", `None` means "write unconditionally".
- **revision** is store-wide: every committed record change gets the next revision, so the
  changes a watcher sees are totally ordered, and `revision()` names the state a reader saw.
- **apply** commits a batch atomically: every check passes or nothing is written. Within a
  batch each operation sees the earlier ones (a Put creating a key followed by a Put with
  `expected_version=1` on it is valid).
- **watch** callbacks run synchronously after commit, once per changed record, in commit order
  (possibly in another writer's thread; see `WatchHub`).

Example::

    rec = store.put("cluster", arn, {"status": "ACTIVE"}, expected_version=0)
    while True:                      # the read-modify-write loop every controller uses
        cur = store.get("cluster", arn)
        try:
            store.put("cluster", arn, {**cur.value, "status": "INACTIVE"}, expected_version=cur.version)
            break
        except VersionConflict:
            continue

This module holds the interface, the shared value types and what both implementations share
(validation, JSON encoding, batch planning, watch fan-out, and `StoreBase`: the writes and
watches over a batch commit), so their semantics cannot drift.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from berth.errors import Conflict, InvalidArgument

log = logging.getLogger("berth.state")

# Kinds name tables of records; keep them short, ascii and boring.
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


@dataclass(frozen=True)
class Record:
    """One stored object. `value` is a fresh dict the caller may mutate freely."""

    kind: str
    key: str
    version: int
    value: Mapping[str, Any]


@dataclass(frozen=True)
class Change:
    """One committed record change, as watchers see it."""

    kind: str
    key: str
    version: int  # the new version; for a delete, the version that was deleted
    deleted: bool
    revision: int  # store-wide, strictly increasing per changed record


@dataclass(frozen=True)
class Put:
    kind: str
    key: str
    value: Mapping[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class Delete:
    kind: str
    key: str
    expected_version: int | None = None


class VersionConflict(Conflict):
    """A write named a version the record is not at. `actual` 0 means the record is absent."""

    def __init__(self, kind: str, key: str, expected: int, actual: int) -> None:
        found = "it is absent" if actual == 0 else f"it is at version {actual}"
        wanted = "it to be absent" if expected == 0 else f"version {expected}"
        super().__init__(f"{kind} {key!r} changed: expected {wanted} but {found}")
        self.kind = kind
        self.key = key
        self.expected = expected
        self.actual = actual


@runtime_checkable
class ObjectStore(Protocol):
    """Typed records with versions, atomic batches and watches (see the module docstring).

    Raises: `VersionConflict` when an `expected_version` does not match (nothing is written);
    `InvalidArgument` for a malformed kind, key, value or operation.
    """

    def get(self, kind: str, key: str) -> Record | None:
        """The record, or None when absent."""
        ...

    def list(self, kind: str, prefix: str = "") -> builtins.list[Record]:
        """Every record of `kind` whose key starts with `prefix`, sorted by key (code points)."""
        ...

    def put(
        self, kind: str, key: str, value: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Record:
        """Create or replace; None: unconditional, 0: create only, n > 0: must be at version n."""
        ...

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> bool:
        """Remove; False when already absent (and no non-zero version was expected)."""
        ...

    def apply(self, ops: Sequence[Put | Delete]) -> builtins.list[Record | None]:
        """Commit every op or none; the new Record for each Put, None for each Delete."""
        ...

    def watch(
        self, callback: Callable[[Change], None], kinds: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call `callback` for every later change (of `kinds`, or all); returns unsubscribe."""
        ...

    def revision(self) -> int:
        """The last committed revision; 0 for an empty store."""
        ...


# --- validation and encoding ---------------------------------------------------------------


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise InvalidArgument(f"invalid record kind {kind!r}: want 1-64 ascii letters, digits, '_.-'")
    return kind


def check_key(key: str) -> str:
    """Keys are compared as code points; SQLite compares UTF-8 bytes, which orders the same
    only for text UTF-8 can encode, so lone surrogates are refused (and NUL, which C APIs cut)."""
    if not isinstance(key, str) or not key or "\x00" in key:
        raise InvalidArgument(f"invalid record key {key!r}: want a non-empty string without NUL")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidArgument(f"invalid record key {key!r}: not encodable as UTF-8") from err
    return key


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise InvalidArgument(f"invalid key prefix {prefix!r}")
    return prefix if prefix == "" else check_key(prefix)


def check_expected(expected: int | None) -> int | None:
    # bool is an int; True as a version is surely a mistake.
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int) or expected < 0):
        raise InvalidArgument(f"invalid expected_version {expected!r}: want None or an int >= 0")
    return expected


def encode_value(value: Mapping[str, Any]) -> str:
    """Canonical JSON text of a JSON object; refuses what would not round-trip."""
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"record value must be a JSON object, not {type(value).__name__}")
    if not all(isinstance(k, str) for k in value):
        raise InvalidArgument("record value keys must be strings")
    try:
        return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InvalidArgument(f"record value is not JSON: {err}") from err


def decode_value(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict), "stored record value is not a JSON object"
    return value


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix` (None: no bound).

    Lets a prefix listing be the index range `prefix <= key < bound` instead of LIKE, whose
    `%`/`_` wildcards and case folding would need escaping. Trailing U+10FFFF cannot be
    incremented, so it is dropped and the previous character is incremented instead.
    """
    chars = builtins.list(prefix)
    while chars and ord(chars[-1]) == _MAX_CODE_POINT:
        chars.pop()
    if not chars:
        return None
    nxt = ord(chars[-1]) + 1
    chars[-1] = chr(_SURROGATES.stop if nxt in _SURROGATES else nxt)
    return "".join(chars)


# --- batch planning --------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One planned row change: a put (`text` set) or a delete (`text` None)."""

    kind: str
    key: str
    version: int  # the new version; for a delete, the version being deleted
    text: str | None


def plan_writes(ops: Sequence[Put | Delete], current: Callable[[str, str], int]) -> builtins.list[Write | None]:
    """Check every op against the store (`current(kind, key)`: version, 0 when absent) as
    changed by the ops before it, and return one Write per op (None: delete of an absent key).

    Raises VersionConflict or InvalidArgument before anything is written, so the caller can
    run this inside its transaction and only then write.
    """
    staged: dict[tuple[str, str], int] = {}
    planned: builtins.list[Write | None] = []
    for op in ops:
        if not isinstance(op, (Put, Delete)):
            raise InvalidArgument(f"not a store operation: {op!r}")
        ident = (check_kind(op.kind), check_key(op.key))
        actual = staged[ident] if ident in staged else current(*ident)
        expected = check_expected(op.expected_version)
        if isinstance(op, Put):
            text = encode_value(op.value)
            if expected is not None and expected != actual:
                raise VersionConflict(op.kind, op.key, expected, actual)
            staged[ident] = actual + 1
            planned.append(Write(op.kind, op.key, actual + 1, text))
        else:
            if expected is not None and expected != actual:
                raise VersionConflict(op.kind, op.key, expected, actual)
            staged[ident] = 0
            planned.append(Write(op.kind, op.key, actual, None) if actual else None)
    return planned


def record_of(write: Write) -> Record:
    assert write.text is not None
    return Record(write.kind, write.key, write.version, decode_value(write.text))


def changes_of(writes: Iterable[Write | None], last_revision: int) -> builtins.list[Change]:
    """The Changes for committed writes, numbered from `last_revision + 1`."""
    done = [w for w in writes if w is not None]
    return [
        Change(w.kind, w.key, w.version, w.text is None, last_revision + i)
        for i, w in enumerate(done, start=1)
    ]


# --- watches ---------------------------------------------------------------------------------


class _Subscription:
    def __init__(self, callback: Callable[[Change], None], kinds: frozenset[str] | None) -> None:
        self.callback = callback
        self.kinds = kinds
        self.active = True

    def wants(self, change: Change) -> bool:
        return self.active and (self.kinds is None or change.kind in self.kinds)


class WatchHub:
    """Fans committed changes out to callbacks, in commit order.

    A store calls `publish` while it still holds its write lock (so the queue order is the
    commit order) and `deliver` after releasing it. One thread at a time drains the queue;
    a writer that finds another one draining waits for it, and by then its own changes have
    been delivered. So when a write returns, its callbacks have run, though perhaps in another
    writer's thread. Callbacks run under no store lock and may read or write the store; a
    write from inside a callback is delivered after that callback returns, not nested in it.
    """

    def __init__(self) -> None:
        self._subs: builtins.list[_Subscription] = []
        self._subs_lock = threading.Lock()
        self._queue: deque[tuple[Change, tuple[_Subscription, ...]]] = deque()
        self._drain_lock = threading.Lock()
        self._local = threading.local()

    def subscribe(self, callback: Callable[[Change], None], kinds: Iterable[str] | None) -> Callable[[], None]:
        if not callable(callback):
            raise InvalidArgument("watch callback is not callable")
        # A bare string is an Iterable[str] of characters; nobody means that.
        wanted = None if kinds is None else frozenset(check_kind(k) for k in ([kinds] if isinstance(kinds, str) else kinds))
        sub = _Subscription(callback, wanted)
        with self._subs_lock:
            self._subs.append(sub)

        def unsubscribe() -> None:
            sub.active = False
            with self._subs_lock:
                if sub in self._subs:
                    self._subs.remove(sub)

        return unsubscribe

    def publish(self, changes: Iterable[Change]) -> None:
        with self._subs_lock:
            subs = tuple(self._subs)
        for change in changes:
            targets = tuple(s for s in subs if s.wants(change))
            if targets:
                self._queue.append((change, targets))

    def deliver(self) -> None:
        if getattr(self._local, "draining", False):
            return  # a write from inside a callback: the outer drain loop delivers it next
        with self._drain_lock:
            self._local.draining = True
            try:
                while self._queue:
                    change, targets = self._queue.popleft()
                    for sub in targets:
                        if sub.active:  # unsubscribed since commit: stop at once
                            _call(sub.callback, change)
            finally:
                self._local.draining = False


def _call(callback: Callable[[Change], None], change: Change) -> None:
    try:
        callback(change)
    except Exception:
        # A broken watcher must not fail the write (already committed) or starve the others.
        log.exception("state watch callback %r failed on %s %r", callback, change.kind, change.key)


# --- the shared half of a store ----------------------------------------------------------------


class StoreBase:
    """put, delete, apply and watch, as both stores have them: over the subclass's `_commit`,
    which checks and writes a batch atomically (`plan_writes`), then publishes its changes to
    `_hub` and delivers them."""

    _hub: WatchHub

    def _commit(self, ops: Sequence[Put | Delete]) -> builtins.list[Write | None]:
        raise NotImplementedError

    def put(
        self, kind: str, key: str, value: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Record:
        (write,) = self._commit([Put(kind, key, value, expected_version)])
        assert write is not None
        return record_of(write)

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> bool:
        (write,) = self._commit([Delete(kind, key, expected_version)])
        return write is not None

    def apply(self, ops: Sequence[Put | Delete]) -> builtins.list[Record | None]:
        writes = self._commit(ops)
        return [record_of(w) if w is not None and w.text is not None else None for w in writes]

    def watch(
        self, callback: Callable[[Change], None], kinds: Iterable[str] | None = None
    ) -> Callable[[], None]:
        return self._hub.subscribe(callback, kinds)
