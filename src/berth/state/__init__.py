"""Metadata store: one SQLite database (WAL) under berth's root."""

from berth.state.db import Database

__all__ = ["Database"]
