"""The low-priority workers that run host clean-up after an answer (engine/background.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading

from berth.engine.background import Background


def test_work_runs_off_the_loop_at_a_lower_priority_children_included() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    background = Background(niceness=5)

    def inside() -> tuple[str, int, int]:
        child = subprocess.run(["sh", "-c", "cut -d' ' -f19 /proc/self/stat"], capture_output=True, text=True)
        return (threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
                int(child.stdout))

    async def main() -> tuple[str, int, int]:
        return await background.run(inside)

    try:
        name, nice, child_nice = asyncio.run(main())
    finally:
        background.close()
    assert name.startswith("berth-cleanup")
    assert nice == min(base + 5, 19) and child_nice == nice  # a process it starts inherits the thread's
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller keeps its own


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
