"""What every part of the ECS service layer shares: the store, a clock, randomness, events."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from berth.ecs import _model as m
from berth.ecs._arns import Scope, cluster_name
from berth.ecs._errors import ClusterNotFound, InvalidParameter
from berth.ecs._repo import Repo

Clock = Callable[[], float]


@dataclass
class Context:
    repo: Repo
    clock: Clock = time.time
    rng: random.Random = field(default_factory=random.Random)
    # Placement reads the cluster and writes tasks; one placement at a time keeps two RunTasks
    # from both taking the last free memory of an instance (one control-plane process).
    placement_lock: threading.Lock = field(default_factory=threading.Lock)
    token_lock: threading.Lock = field(default_factory=threading.Lock)   # RunTask clientToken dedup
    stopped_task_retention: float = 3600.0     # seconds a STOPPED task stays describable
    # ECS counts a service task without health checks healthy this long after RUNNING.
    healthy_after: float = 40.0

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def cluster(self, scope: Scope, ref: str | None) -> m.Cluster:
        """The ACTIVE cluster a request names (default: `default`)."""
        name = cluster_name(ref)
        found = self.repo.get(m.Cluster, scope.arn(f"cluster/{name}"))
        if found is None or found.status != "ACTIVE":
            raise ClusterNotFound()
        return found


def tags_in(value: object, field_name: str = "tags") -> tuple[m.Tag, ...]:
    """ECS's tag list `[{"key": .., "value": ..}]`, validated."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParameter(f"{field_name} must be a list of key/value pairs.")
    if len(value) > 50:
        raise InvalidParameter(f"{field_name}: a resource can have at most 50 tags.")
    tags = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
            raise InvalidParameter(f"{field_name}: every tag needs a non-empty 'key'.")
        key, val = item["key"], item.get("value", "")
        if not isinstance(val, str) or len(key) > 128 or len(val) > 256:
            raise InvalidParameter(f"{field_name}: tag {key!r} has an invalid key or value.")
        if key.lower().startswith("aws:"):
            raise InvalidParameter(f"{field_name}: tag keys may not start with 'aws:'.")
        tags.append(m.Tag(key, val))
    return tuple(tags)


def merge_tags(old: tuple[m.Tag, ...], new: tuple[m.Tag, ...]) -> tuple[m.Tag, ...]:
    merged = {t.key: t.value for t in old}
    merged.update({t.key: t.value for t in new})
    if len(merged) > 50:
        raise InvalidParameter("tags: a resource can have at most 50 tags.")
    return tuple(m.Tag(k, v) for k, v in merged.items())
