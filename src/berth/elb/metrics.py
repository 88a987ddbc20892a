"""ELB metrics: HAProxy's `show stat` rows → Prometheus samples → text exposition format.

Pure: rows, the names of what the rows are about (`Names`, from the ELB records) and the
targets' health in, samples out; `render` writes the text format (HELP/TYPE lines, escaped
labels) and `parse` reads it back (for `berth elb top`).

What is exported, honestly named:
- counters straight from HAProxy (`*_total`): connections, HTTP requests, HTTP responses by
  class (`code` = 1xx..5xx, other). They restart from 0 when HAProxy reloads (a listener or
  rule change); Prometheus's rate() treats that as a counter reset.
- `berth_elb_target_response_time_average_seconds` (and connect/total time) are GAUGES of
  HAProxy's `rtime`/`ctime`/`ttime`: averages over the target's last 1024 requests. HAProxy 2.6
  keeps no percentiles, so no quantiles are exported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from berth.elb import _model as m
from berth.state.codec import decode
from berth.elb._config import backend_name, frontend_name
from berth.elb._plane import PlaneConfig, TargetHealth
from berth.elb.haproxy._render import server_name
from berth.state import ObjectStore
from berth.types.prometheus import (  # noqa: F401 - re-exported: the format lives in types
    Labels, ParseError, Sample, escape_help, escape_label, format_value, parse,
)



@dataclass(frozen=True)
class Family:
    name: str
    type: str          # counter | gauge
    help: str


_LISTENER = ("load_balancer", "listener_port", "listener")
_TARGET = ("target_group", "target", "port")

FAMILIES: tuple[Family, ...] = (
    Family("berth_elb_listener_connections_total", "counter", "Connections accepted by the listener."),
    Family("berth_elb_listener_requests_total", "counter", "HTTP requests received by the listener."),
    Family("berth_elb_listener_http_responses_total", "counter",
           "HTTP responses the listener sent, by status class (code=1xx..5xx, other)."),
    Family("berth_elb_listener_request_errors_total", "counter", "Requests the listener could not parse or refused."),
    Family("berth_elb_listener_current_connections", "gauge", "Connections open on the listener now."),
    Family("berth_elb_target_connections_total", "counter", "Connections the load balancer opened to the target."),
    Family("berth_elb_target_requests_total", "counter", "HTTP requests sent to the target."),
    Family("berth_elb_target_http_responses_total", "counter",
           "HTTP responses from the target, by status class (code=1xx..5xx, other)."),
    Family("berth_elb_target_connection_errors_total", "counter", "Failed connections to the target."),
    Family("berth_elb_target_response_errors_total", "counter", "Responses from the target aborted or invalid."),
    Family("berth_elb_target_current_connections", "gauge", "Connections open to the target now."),
    Family("berth_elb_target_response_time_average_seconds", "gauge",
           "Average time to the target's response headers over its last 1024 requests (HAProxy rtime; not a "
           "percentile)."),
    Family("berth_elb_target_connect_time_average_seconds", "gauge",
           "Average connect time over the target's last 1024 connections (HAProxy ctime)."),
    Family("berth_elb_target_total_time_average_seconds", "gauge",
           "Average total session time over the target's last 1024 requests (HAProxy ttime)."),
    Family("berth_elb_target_healthy", "gauge", "1 when the target's health checks pass, else 0."),
    Family("berth_elb_target_health", "gauge", "1 for the target's ELB health state (state label)."),
)
_TYPES = {f.name: f for f in FAMILIES}

_CODES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")


@dataclass(frozen=True)
class ListenerName:
    load_balancer: str     # the load balancer's name
    arn: str               # the listener's ARN
    port: int


@dataclass(frozen=True)
class Names:
    """What HAProxy's proxy and server names stand for."""

    listeners: Mapping[str, ListenerName]               # frontend "ln-<id>" → the listener
    groups: Mapping[str, str]                           # backend "tg-<id>" → the target group's name
    targets: Mapping[tuple[str, str], tuple[str, int]]  # (backend, server name) → (target id, port)


def names_for(lbs: Iterable[m.LoadBalancer], listeners: Iterable[m.Listener], groups: Iterable[m.TargetGroup],
              config: PlaneConfig) -> Names:
    lb_names = {lb.arn: lb.name for lb in lbs}
    return Names(
        listeners={frontend_name(ln): ListenerName(lb_names.get(ln.load_balancer_arn, ""), ln.arn, ln.port)
                   for ln in listeners},
        groups={backend_name(tg): tg.name for tg in groups},
        targets={(b.name, server_name(t)): (t.id, t.port) for b in config.backends for t in b.targets})


def names_from_store(store: ObjectStore, config: PlaneConfig) -> Names:
    """`names_for` over the records in the control-plane store."""
    lbs = [decode(m.LoadBalancer, r.value) for r in store.list(m.LB)]
    listeners = [decode(m.Listener, r.value) for r in store.list(m.LISTENER)]
    groups = [decode(m.TargetGroup, r.value) for r in store.list(m.TG)]
    return names_for(lbs, listeners, groups, config)


def _number(row: Mapping[str, str], field: str) -> float | None:
    text = (row.get(field) or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def samples(rows: Iterable[Mapping[str, str]], names: Names,
            health: Mapping[tuple[str, str, int], TargetHealth] | None = None) -> list[Sample]:
    """The samples of the rows berth knows (its listeners' frontends, its target groups' servers);
    HAProxy's own proxies (stats, unnamed backends) are left out."""
    out: list[Sample] = []

    def add(name: str, labels: Labels, row: Mapping[str, str], field: str, scale: float = 1.0) -> None:
        value = _number(row, field)
        if value is not None:
            out.append(Sample(name, labels, value * scale))

    for row in rows:
        px, sv = row.get("pxname", ""), row.get("svname", "")
        if sv == "FRONTEND":
            ln = names.listeners.get(px)
            if ln is None:
                continue
            labels: Labels = (("load_balancer", ln.load_balancer), ("listener_port", str(ln.port)),
                              ("listener", ln.arn))
            add("berth_elb_listener_connections_total", labels, row, "stot")
            add("berth_elb_listener_requests_total", labels, row, "req_tot")
            for code in _CODES:
                add("berth_elb_listener_http_responses_total", (*labels, ("code", code)), row, f"hrsp_{code}")
            add("berth_elb_listener_request_errors_total", labels, row, "ereq")
            add("berth_elb_listener_current_connections", labels, row, "scur")
        elif sv != "BACKEND":
            group = names.groups.get(px)
            target = names.targets.get((px, sv))
            if group is None or target is None:
                continue
            labels = (("target_group", group), ("target", target[0]), ("port", str(target[1])))
            add("berth_elb_target_connections_total", labels, row, "stot")
            add("berth_elb_target_requests_total", labels, row, "req_tot")
            for code in _CODES:
                add("berth_elb_target_http_responses_total", (*labels, ("code", code)), row, f"hrsp_{code}")
            add("berth_elb_target_connection_errors_total", labels, row, "econ")
            add("berth_elb_target_response_errors_total", labels, row, "eresp")
            add("berth_elb_target_current_connections", labels, row, "scur")
            add("berth_elb_target_response_time_average_seconds", labels, row, "rtime", 0.001)
            add("berth_elb_target_connect_time_average_seconds", labels, row, "ctime", 0.001)
            add("berth_elb_target_total_time_average_seconds", labels, row, "ttime", 0.001)
            th = (health or {}).get((px, target[0], target[1]))
            state = th.state if th is not None else _state_of(row.get("status", ""))
            out.append(Sample("berth_elb_target_healthy", labels, 1.0 if state == "healthy" else 0.0))
            out.append(Sample("berth_elb_target_health", (*labels, ("state", state)), 1.0))
    return out


def _state_of(status: str) -> str:
    """HAProxy's server status without berth's health view: UP → healthy, DOWN → unhealthy."""
    if status.startswith("UP"):
        return "healthy"
    if status.startswith("DOWN"):
        return "unhealthy"
    if status.startswith("DRAIN") or status.startswith("NOLB"):
        return "draining"
    if status == "no check":
        return "unavailable"
    return "initial"


# --- text exposition format -------------------------------------------------------------------


def render(items: Sequence[Sample]) -> str:
    """Prometheus text format 0.0.4: every family berth knows gets its HELP and TYPE (also when
    empty), its samples follow; unknown names come last, typed untyped."""
    by_name: dict[str, list[Sample]] = {}
    for s in items:
        by_name.setdefault(s.name, []).append(s)
    lines: list[str] = []
    names = [f.name for f in FAMILIES] + sorted(n for n in by_name if n not in _TYPES)
    for name in names:
        family = _TYPES.get(name)
        if family is not None:
            lines.append(f"# HELP {name} {escape_help(family.help)}")
            lines.append(f"# TYPE {name} {family.type}")
        else:
            lines.append(f"# TYPE {name} untyped")
        for s in by_name.get(name, []):
            labels = ",".join(f'{k}="{escape_label(v)}"' for k, v in s.labels)
            lines.append(f"{name}{{{labels}}} {format_value(s.value)}" if labels else
                         f"{name} {format_value(s.value)}")
    return "\n".join(lines) + "\n"


