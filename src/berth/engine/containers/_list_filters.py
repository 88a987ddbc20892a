"""`docker ps` filters: which keys and values are valid, and whether a container matches. Pure."""

from __future__ import annotations

from berth.engine import filters as filters_mod
from berth.engine import health
from berth.engine.containers._model import Container
from berth.errors import InvalidArgument

LIST_FILTERS = ("ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label",
                "name", "network", "publish", "since", "status", "volume")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def check_list_filters(filters: dict[str, list[str]]) -> None:
    """moby's keys for `docker ps -f`, a known status and a numeric exit code."""
    filters_mod.check_keys(filters, LIST_FILTERS)
    filters_mod.check_values(filters, "status", lambda v: v in STATUSES)
    filters_mod.check_values(filters, "exited", lambda v: v.lstrip("-").isdigit())
    for value in filters.get("health", []):
        if value not in health.FILTER_VALUES:
            raise InvalidArgument(f"Unrecognised filter value for health: {value}")


def matches_filters(c: Container, filters: dict[str, list[str]]) -> bool:
    """`docker ps -f`: id, name, status, label, ancestor, exited, health."""
    def one(key: str, value: str) -> bool:
        if key == "id":
            return c.id.startswith(value)
        if key == "name":
            return value.lstrip("/") in c.name
        if key == "status":
            return c.state.status == value
        if key == "label":
            return filters_mod.label_matches(c.config.labels, value)
        if key == "ancestor":
            return value in (c.image, c.image_id) or c.image_id.startswith("sha256:" + value)
        if key == "exited":
            return c.state.status == "exited" and str(c.state.exit_code) == value
        if key == "health":
            return health.filter_status(health.shown(c.health, probed=c.state.status == "running")) == value
        return True
    return filters_mod.matches(filters, one)
