"""A few spare, fully attached bridge namespaces made ahead of time.

Creating the netns and running bridge + portmap + firewall ADD costs ≈ 50 ms on the hot path of
`docker run`. A spare is exactly such an attachment, made in the background under its own CNI
container id (`spare-<hex>`) and without ports. attach() claims one (≈ 1 ms; plus a portmap ADD
if ports are published) and the filler makes the next. The claimed attachment keeps the spare's
CNI id, so DEL later sees the same id as ADD did (chain names and leases derive from it).

Spares are ordinary attachment records, so after a crash cleanup_stale removes them like any
other leftover.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from typing import TypeVar

from berth.errors import BerthError

log = logging.getLogger(__name__)
T = TypeVar("T")

SPARE_PREFIX = "spare-"
BACKGROUND_NICE = 10  # CFS weight 110 vs 1024: background iptables work yields to starts


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Make the calling thread (and the processes it forks, e.g. CNI plugins) nicer. Linux
    keeps nice per thread, so the rest of the daemon is unaffected."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as err:
        log.debug("cannot lower the priority of %s: %s", threading.current_thread().name, err)


def run_at_low_priority(fn: Callable[[], T]) -> T:
    """Run `fn` in a short-lived thread with lowered priority and wait for it."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        lower_thread_priority()
        try:
            outcome.append(fn())
        except BaseException as err:  # noqa: BLE001 (re-raised in the caller's thread)
            failure.append(err)

    worker = threading.Thread(target=body, name="berth-net-background")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


class SparePool:
    """Keeps up to `size` spares made by `make(cni_id)`; thread-safe."""

    def __init__(self, size: int, make: Callable[[str], None]) -> None:
        self._size = size
        self._make = make
        self._lock = threading.Lock()
        self._spares: list[str] = []
        self._filler: threading.Thread | None = None
        self._closed = False

    def take(self) -> str | None:
        """A spare's CNI id, or None when the pool is empty (the caller attaches directly)."""
        with self._lock:
            return self._spares.pop(0) if self._spares else None

    def ready(self) -> int:
        """How many spares are ready now."""
        with self._lock:
            return len(self._spares)

    def refill(self) -> None:
        """Start the background filler unless it runs already or the pool is full."""
        with self._lock:
            if self._closed or self._filler is not None or len(self._spares) >= self._size:
                return
            self._filler = threading.Thread(target=self._fill, name="berth-netpool", daemon=True)
            self._filler.start()

    def close(self) -> list[str]:
        """Stop filling (waits for the spare being made) and return the unclaimed spares."""
        with self._lock:
            self._closed = True
            filler = self._filler
        if filler is not None:
            filler.join()
        with self._lock:
            spares, self._spares = self._spares, []
        return spares

    def _fill(self) -> None:
        lower_thread_priority()  # spares are made for later; starting containers come first
        try:
            while self._wanted():
                cni_id = SPARE_PREFIX + secrets.token_hex(8)
                self._make(cni_id)
                with self._lock:
                    self._spares.append(cni_id)
        except BerthError as err:
            log.warning("cannot prepare a spare network namespace: %s", err)
        finally:
            with self._lock:
                self._filler = None

    def _wanted(self) -> bool:
        with self._lock:
            return not self._closed and len(self._spares) < self._size
