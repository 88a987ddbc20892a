"""Test kit: a LogsService over an in-memory store and a temporary directory, with a clock the
test moves."""

from __future__ import annotations

from pathlib import Path

from berth.logs._service import LogsService
from berth.state import MemoryStore


class FakeClock:
    """Seconds since the epoch, moved by the test (`advance`)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def memory_logs(root: Path, clock: FakeClock | None = None, **options: int) -> LogsService:
    """A LogsService whose metadata lives in memory and whose segments go under `root`."""
    return LogsService(MemoryStore(), root, clock=clock or FakeClock(), **options)
