"""Docker-style events: a bounded history plus live subscribers (`GET /events`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from berth.engine.filters import label_matches
from berth.engine.filters import matches as matches_filters

Event = dict[str, Any]


class EventBus:
    """Publishes events to every subscriber queue and keeps the last `history` for `since`."""

    def __init__(self, history: int = 1000) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str]) -> None:
        now = time.time_ns()
        event: Event = {
            "Type": type_, "Action": action,
            "Actor": {"ID": actor_id, "Attributes": attributes},
            "scope": "local", "time": now // 1_000_000_000, "timeNano": now,
        }
        if type_ == "container":  # the pre-1.22 fields the CLI still reads for formatting
            event.update({"status": action, "id": actor_id, "from": attributes.get("image", "")})
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def since(self, since_ns: int) -> list[Event]:
        return [e for e in self._history if e["timeNano"] >= since_ns]

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(queue)

    @property
    def listeners(self) -> int:
        """How many `/events` streams are open (Info's NEventsListener)."""
        return len(self._subscribers)


_EVENT_PREFIXES = frozenset({"health_status", "exec_create", "exec_start"})


def matches(event: Event, filters: dict[str, list[str]]) -> bool:
    """Docker event filters: type, event/action, container (id or name), image, label."""
    attrs = event["Actor"]["Attributes"]
    checks: dict[str, Callable[[str], bool]] = {
        "type": lambda v: event["Type"] == v,
        # exact, as moby; a bare health_status / exec_create / exec_start matches every variant
        "event": lambda v: event["Action"] == v or (v in _EVENT_PREFIXES and event["Action"].startswith(v + ":")),
        "container": lambda v: event["Type"] == "container" and (
            event["Actor"]["ID"].startswith(v) or attrs.get("name") == v),
        "image": lambda v: attrs.get("image") == v,
        "label": lambda v: label_matches(attrs, v),
    }
    return matches_filters(filters, lambda key, value: key not in checks or checks[key](value))
