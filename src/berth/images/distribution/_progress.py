"""Progress events of pulls and pushes, in Docker's vocabulary, and a throttled byte counter.

The orchestrators emit `Progress` values; the engine renders them as Docker JSON messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    status: str                  # "Pulling fs layer", "Downloading", "Pushed", "Digest: sha256:..."
    id: str = ""                 # short layer id, or the tag for "Pulling from"; "" for plain status
    current: int | None = None
    total: int | None = None
    aux: dict[str, Any] | None = field(default=None)


Reporter = Callable[[Progress], None]


def ignore(_: Progress) -> None:
    """A Reporter that drops everything."""


class Meter:
    """Counts bytes for one layer and reports at most every `interval` seconds (plus the end)."""

    def __init__(self, report: Reporter, layer_id: str, status: str, total: int | None,
                 interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self._report = report
        self._id = layer_id
        self._status = status
        self._total = total
        self._interval = interval
        self._clock = clock
        self._last = -interval
        self.current = 0

    def add(self, n: int) -> None:
        self.current += n
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._emit()

    def done(self) -> None:
        self._emit()

    def _emit(self) -> None:
        self._report(Progress(self._status, self._id, self.current, self._total))
