"""The engine's timers run on an injected `sleep`, so tests drive them with a fake clock
(berth.engine.testing.ManualClock) instead of waiting in real time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

Sleep = Callable[[float], Awaitable[None]]   # waits the given seconds: asyncio.sleep, or a test clock's
T = TypeVar("T")


async def within(work: Awaitable[T], seconds: float, sleep: Sleep) -> T:
    """asyncio.wait_for(work, seconds) timed by `sleep`: the result, or asyncio.TimeoutError once
    the sleep ends first; `work` is cancelled (and awaited) on a timeout or a cancellation."""
    task = asyncio.ensure_future(work)
    timer = asyncio.ensure_future(sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _cancel(task)
        raise
    finally:
        timer.cancel()
    if task.done():
        return task.result()
    await _cancel(task)
    raise asyncio.TimeoutError


async def _cancel(task: asyncio.Future[Any]) -> None:
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: it failed while being cancelled, and nobody wants its result
