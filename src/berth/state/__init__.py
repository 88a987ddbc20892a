"""Metadata store: one SQLite database (WAL) under berth's root, and the control-plane
object store (typed, versioned records with watches) with SQLite and in-memory backends."""

from berth.state.db import Database
from berth.state.memory_store import MemoryStore
from berth.state.sqlite_store import SqliteStore
from berth.state.store import Change, Delete, ObjectStore, Put, Record, VersionConflict

__all__ = [
    "Change",
    "Database",
    "Delete",
    "MemoryStore",
    "ObjectStore",
    "Put",
    "Record",
    "SqliteStore",
    "VersionConflict",
]
