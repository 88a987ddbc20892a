"""Test kit: a clock for the engine's timers that moves only when the test says so.

The engine's timers (RestartScheduler's back-off, the health prober's timeouts) take a
`sleep(seconds)` awaitable; `ManualClock.sleep` returns once `advance` has moved the clock to the
sleep's end, so a test checks both sides of a deadline without real time passing.
"""

from __future__ import annotations

import asyncio

_SLACK = 1e-9   # float sums (0.1 + 0.2) must not leave a timer a hair short of its end


class ManualClock:
    """Seconds since the test began (`clock()`), moved by `advance`."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []   # every sleep asked for, in order
        self._timers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    @property
    def waiting(self) -> int:
        """Sleeps still waiting for the clock (a cancelled sleep is not)."""
        return sum(1 for _, timer in self._timers if not timer.done())

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        timer = asyncio.get_running_loop().create_future()
        self._timers.append((self.now + seconds, timer))
        await timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [entry for entry in self._timers if entry[0] <= self.now + _SLACK]
        for entry in due:
            self._timers.remove(entry)
            if not entry[1].done():
                entry[1].set_result(None)
