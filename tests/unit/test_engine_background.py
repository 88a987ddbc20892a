"""The worker threads that run host clean-up after an answer (engine/background.py)."""

from __future__ import annotations

import asyncio
import threading
import time

from berth.engine.background import Background


def test_work_runs_off_the_loop_two_at_a_time() -> None:
    background = Background()
    running, most = 0, 0
    lock = threading.Lock()

    def work() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)  # a teardown's subprocess, standing still for a moment
        with lock:
            running -= 1
        return threading.current_thread().name

    async def main() -> list[str]:
        loop_thread = threading.current_thread().name
        names = await asyncio.gather(*(background.run(work) for _ in range(6)))
        assert loop_thread not in names
        return list(names)

    try:
        names = asyncio.run(main())
    finally:
        background.close()
    assert all(name.startswith("berth-cleanup") for name in names)
    assert most == 2


def test_errors_reach_the_awaiting_task() -> None:
    background = Background()

    def broken() -> None:
        raise OSError("gone")

    async def main() -> str:
        try:
            await background.run(broken)
        except OSError as err:
            return str(err)
        return "no error"

    try:
        assert asyncio.run(main()) == "gone"
    finally:
        background.close()
