"""timers.within: asyncio.wait_for on an injected clock (berth.engine.testing.ManualClock)."""

from __future__ import annotations

import asyncio

import pytest

from berth.engine.testing import ManualClock
from berth.engine.timers import within


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


class Work:
    """An awaitable the test ends (`finish`/`fail`), recording whether it was cancelled."""

    def __init__(self) -> None:
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.cancelled = False

    async def run(self) -> str:
        try:
            return await self.future
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def test_the_result_comes_back_and_the_timer_is_called_off() -> None:
    async def main() -> None:
        clock, work = ManualClock(), Work()
        waiter = asyncio.create_task(within(work.run(), 5, clock.sleep))
        await turns()
        clock.advance(4.999)
        work.future.set_result("done")
        assert await waiter == "done"
        await turns()
        assert clock.waiting == 0 and not work.cancelled
    asyncio.run(main())


def test_a_timeout_cancels_the_work_exactly_at_the_deadline() -> None:
    async def main() -> None:
        clock, work = ManualClock(), Work()
        waiter = asyncio.create_task(within(work.run(), 5, clock.sleep))
        await turns()
        clock.advance(4.999)
        await turns()
        assert not waiter.done()
        clock.advance(0.001)
        with pytest.raises(asyncio.TimeoutError):
            await waiter
        assert work.cancelled
    asyncio.run(main())


def test_the_works_error_comes_back() -> None:
    async def main() -> None:
        clock, work = ManualClock(), Work()
        waiter = asyncio.create_task(within(work.run(), 5, clock.sleep))
        await turns()
        work.future.set_exception(OSError("gone"))
        with pytest.raises(OSError, match="gone"):
            await waiter
    asyncio.run(main())


def test_cancelling_the_wait_cancels_the_work_and_the_timer() -> None:
    async def main() -> None:
        clock, work = ManualClock(), Work()
        waiter = asyncio.create_task(within(work.run(), 5, clock.sleep))
        await turns()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await turns()
        assert work.cancelled and clock.waiting == 0
    asyncio.run(main())
