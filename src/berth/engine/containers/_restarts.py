"""Restart-policy scheduling: which exits lead to a restart, and when (the policy rules themselves
are pure functions in restart_policy.py).

Per container it keeps the pending restart task (status `restarting` while it sleeps through the
back-off), the last back-off delay, and moby's ExitOnNext flag (a stop, or a kill with SIGKILL or
the stop signal, makes the next exit final). The restart itself runs under the container's lock
through the `relaunch` callback, which ContainerService provides.

The back-off is waited out through `sleep` (asyncio.sleep unless a test passes a fake clock's),
and the 10 s reset rule reads the run's recorded StartedAt/FinishedAt, so no decision here reads
the wall clock itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from berth.engine.containers._model import Container, ContainerRepository
from berth.engine.containers._restart_policy import next_delay, policy_of, should_restart, starts_with_daemon
from berth.engine.timers import Sleep

Relaunch = Callable[[str], Awaitable[None]]   # called with the container's lock held


class RestartScheduler:
    def __init__(self, *, repo: ContainerRepository, lock: Callable[[str], asyncio.Lock],
                 relaunch: Relaunch, sleep: Sleep = asyncio.sleep) -> None:
        self._repo = repo
        self._lock = lock
        self._relaunch = relaunch
        self._sleep = sleep
        self._pending: dict[str, asyncio.Task[None]] = {}   # restarts sleeping through back-off
        self._backoff: dict[str, float] = {}                 # last restart delay per container
        self._exit_on_next: set[str] = set()                 # stop/kill: the next exit is final

    def exit_on_next(self, container_id: str) -> None:
        """The container's next exit leads to no policy restart."""
        self._exit_on_next.add(container_id)

    def after_exit(self, container: Container, code: int) -> bool:
        """Schedule a restart if the policy wants one for this exit; True if it did."""
        if not self._wants_restart(container, code):
            return False
        run_seconds = _seconds_between(container.state.started_at, container.state.finished_at)
        delay = next_delay(self._backoff.get(container.id, 0.0), run_seconds)
        self._backoff[container.id] = delay
        self._schedule(container, delay)
        return True

    def start_with_daemon(self, settled: set[str]) -> None:
        """Restart policies at daemon start: `always`/`unless-stopped` containers run again
        (`settled`: the containers restore already handled)."""
        for container in self._repo.all():
            if container.id in settled or container.id in self._pending:
                continue
            policy = policy_of(container.host_config)
            if container.state.status == "restarting" or (
                    container.state.status == "exited"
                    and starts_with_daemon(policy, manually_stopped=container.manually_stopped)):
                self._schedule(container, 0)

    def cancel(self, container_id: str) -> None:
        task = self._pending.pop(container_id, None)
        if task is not None:
            task.cancel()

    def reset(self, container_id: str) -> None:
        """A manual start: no pending restart, and the back-off starts over."""
        self.cancel(container_id)
        self._backoff.pop(container_id, None)

    def forget(self, container_id: str) -> None:
        """The container is gone."""
        self._backoff.pop(container_id, None)
        self._exit_on_next.discard(container_id)

    def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()

    def _wants_restart(self, container: Container, code: int) -> bool:
        if container.id in self._exit_on_next:
            self._exit_on_next.discard(container.id)
            return False
        return should_restart(policy_of(container.host_config), exit_code=code,
                              manually_stopped=container.manually_stopped,
                              restart_count=container.restart_count)

    def _schedule(self, container: Container, delay: float) -> None:
        container.state.status = "restarting"
        self._repo.save(container)
        self._pending[container.id] = asyncio.create_task(self._restart_later(container.id, delay))

    async def _restart_later(self, container_id: str, delay: float) -> None:
        await self._sleep(delay)
        async with self._lock(container_id):
            self._pending.pop(container_id, None)
            await self._relaunch(container_id)


def _seconds_between(start: str, end: str) -> float:
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (b - a).total_seconds())
