"""Host clean-up that runs after the client has its answer, on two worker threads of its own.

`docker stop` answers once the container has exited and `docker rm` once its record is gone; the
network teardown (CNI DEL, rules, namespace) and the host clean-up (runtime delete, rootfs unmount,
files) follow in the background. After a 50-replica `docker-compose stop` that is 50 teardowns
queued at once: on asyncio's default executor they would take all of its threads (which the
requests' own blocking calls need) and, with the plugins and iptables they run, both CPUs while
compose sends its next requests. Here at most two run at a time. Nothing waits on this work except
the next use of the same container or network, which awaits it explicitly.

(They are not given a lower CPU priority: a deprioritised thread preempted while it holds the GIL
stalls the event loop until it runs again. Tried at nice 10: `docker-compose rm` was no faster
than with two threads at normal priority, and the starts that followed a mass removal in
bench/density.py were slower.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WORKERS = 2


class Background:
    """A small executor for work nobody is waiting on yet."""

    def __init__(self, *, workers: int = WORKERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="berth-cleanup")

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        """Finish what was queued (callers await their tasks first) and end the threads."""
        self._pool.shutdown(wait=True)
