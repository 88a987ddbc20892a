"""Host clean-up that runs after the client has its answer, on workers of its own at low priority.

`docker stop` answers once the container has exited and `docker rm` once its record is gone; the
network teardown (CNI DEL, rules, namespace) and the host clean-up (runtime delete, rootfs unmount,
files) follow in the background. After a 50-replica `docker-compose stop` that is 50 teardowns
queued at once: on asyncio's default executor they would take all of its threads (which the
requests' own blocking calls need too) and, with the plugins and iptables they run, both CPUs
while compose sends its next requests. Here they get two threads of their own, and those threads
(and every process they start, which inherits it) run at a lower CPU priority (nice 10), so the
requests being answered win the CPU whenever both want it. Nothing waits on this work except the
next use of the same container or network, which awaits it explicitly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

WORKERS = 2
NICENESS = 10


def _lower_priority(niceness: int) -> None:
    """Runs first in each worker thread: Linux keeps a nice value per thread (its TID)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except OSError as err:  # e.g. a sandbox without the right: the work still runs, at normal priority
        log.debug("background worker keeps its priority: %s", err)


class Background:
    """A small low-priority executor for work nobody is waiting on yet."""

    def __init__(self, *, workers: int = WORKERS, niceness: int = NICENESS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="berth-cleanup",
                                        initializer=_lower_priority, initargs=(niceness,))

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        """Finish what was queued (callers await their tasks first) and end the threads."""
        self._pool.shutdown(wait=True)
