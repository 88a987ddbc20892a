"""Watching running containers for their exit, and everything that waits on one.

Per container it keeps:
- a monitor task (while the container runs) that waits for the runtime's exit code and hands it
  to the `on_exit` callback. The monitor never takes the container's lock: `stop` and `rm -f`
  wait for the exit while holding it.
- an `exited` event, armed at launch and set once the exit has been recorded;
- the futures of `docker wait` callers (next exit, removal);
- the background network teardown that follows an exit (CNI DEL takes ≈100–200 ms of iptables
  calls, so it runs after the container is reported exited; a later start waits for it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

from berth.engine.background import Background
from berth.engine.containers._model import Container
from berth.runtime import Runtime

log = logging.getLogger(__name__)

OnExit = Callable[[str, int], Awaitable[None]]
_Waiters = dict[str, list[asyncio.Future[Container]]]


class NetworkDetacher(Protocol):
    """berth.engine.networks.NetworkService: the network teardown after an exit (blocking)."""

    def detach(self, container_id: str) -> None: ...


class ExitTracker:
    def __init__(self, *, runtime: Runtime, network: NetworkDetacher, background: Background) -> None:
        self._runtime = runtime
        self._network = network
        self._background = background
        self._exited: dict[str, asyncio.Event] = {}
        self._exit_waiters: _Waiters = {}
        self._removed_waiters: _Waiters = {}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._detaching: dict[str, asyncio.Task[None]] = {}

    # --- the exit itself ---------------------------------------------------------------------------
    def arm(self, container_id: str) -> None:
        """A run begins: `exited` is unset until its exit is recorded."""
        self._exited[container_id] = asyncio.Event()

    def watch(self, container_id: str, on_exit: OnExit) -> None:
        self._monitors[container_id] = asyncio.create_task(self._monitor(container_id, on_exit))

    def unwatch(self, container_id: str) -> None:
        """The exit is being handled (by the monitor, or by restore for a container found dead)."""
        self._monitors.pop(container_id, None)

    async def _monitor(self, container_id: str, on_exit: OnExit) -> None:
        try:
            code = await self._runtime.wait_exit(container_id)
        except asyncio.CancelledError:
            return
        except Exception:  # noqa: BLE001 - a monitor must never die silently
            log.exception("waiting for container %s failed", container_id[:12])
            code = 255
        await on_exit(container_id, code)

    def exited(self, container_id: str) -> asyncio.Event:
        """Set once the current run's exit is recorded (stop and kill wait on it)."""
        return self._exited.setdefault(container_id, asyncio.Event())

    def notify_exit(self, container: Container) -> None:
        """The exit (or a failed start) is recorded: wake `stop`, `kill` and `docker wait`."""
        self.exited(container.id).set()
        _resolve(self._exit_waiters, container)

    def notify_removed(self, container: Container) -> None:
        self._exited.pop(container.id, None)
        _resolve(self._exit_waiters, container)  # Docker ends every wait condition on removal
        _resolve(self._removed_waiters, container)

    # --- docker wait -------------------------------------------------------------------------------
    def next_exit(self, container_id: str) -> asyncio.Future[Container]:
        return _add(self._exit_waiters, container_id)

    def removal(self, container_id: str) -> asyncio.Future[Container]:
        return _add(self._removed_waiters, container_id)

    # --- background network teardown ---------------------------------------------------------------
    def detach_network_later(self, container_id: str) -> None:
        self._detaching[container_id] = asyncio.create_task(self._detach_network(container_id))

    def detaching(self, container_id: str) -> bool:
        return container_id in self._detaching

    async def network_detached(self, container_id: str) -> None:
        """Wait for a pending background teardown, if there is one."""
        pending = self._detaching.get(container_id)
        if pending is not None:
            await pending

    async def _detach_network(self, container_id: str) -> None:
        try:
            await self._background.run(partial(self._network.detach, container_id))
        except Exception:  # noqa: BLE001 - logged; cleanup_stale retries at next start
            log.exception("network teardown of %s failed", container_id[:12])
        finally:
            self._detaching.pop(container_id, None)

    async def close(self) -> None:
        """Stop watching (containers keep running under conmon); finish pending teardowns."""
        for task in list(self._monitors.values()):
            task.cancel()
        if self._detaching:
            await asyncio.gather(*self._detaching.values(), return_exceptions=True)


def _add(waiters: _Waiters, container_id: str) -> asyncio.Future[Container]:
    future: asyncio.Future[Container] = asyncio.get_running_loop().create_future()
    waiters.setdefault(container_id, []).append(future)
    return future


def _resolve(waiters: _Waiters, container: Container) -> None:
    for future in waiters.pop(container.id, []):
        if not future.done():
            future.set_result(container)
