"""What the ELBv2 domain asks of its data plane (declared here, by the consumer).

The domain turns load balancers, listeners, rules and target groups into one frozen
`PlaneConfig`; the data plane (`berth.elb.haproxy`, one HAProxy in master-worker mode per daemon)
makes the proxy match it — targets through the runtime API without a reload, listener and rule
changes through a seamless reload — and reports what its health checks see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HealthCheck:
    protocol: str = "HTTP"                 # HTTP | HTTPS | TCP
    port: str = "traffic-port"             # "traffic-port" or a port number as text
    path: str = "/"
    interval: int = 30                     # seconds
    timeout: int = 5                       # seconds
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"                   # HTTP codes: "200", "200,202", "200-299"
    enabled: bool = True


@dataclass(frozen=True)
class Target:
    id: str                                # instance id or IP, as registered
    address: str                           # where the proxy connects (an IP)
    port: int
    weight: int = 1
    draining: bool = False                 # deregistered: no new requests, in-flight ones finish


@dataclass(frozen=True)
class Backend:
    """A target group as the proxy sees it."""

    name: str                              # stable, proxy-safe (e.g. "tg-<id>")
    protocol: str                          # HTTP | TCP
    targets: tuple[Target, ...]
    health: HealthCheck
    algorithm: str = "round_robin"         # round_robin | least_outstanding_requests
    slow_start: int = 0                    # seconds
    stickiness_seconds: int = 0            # 0 = off (lb_cookie duration otherwise)


@dataclass(frozen=True)
class Condition:
    field: str                             # path-pattern | host-header | http-header | http-request-method | query-string | source-ip
    values: tuple[str, ...]                # ELB wildcards (* and ?) as given
    header_name: str = ""                  # http-header only
    query_pairs: tuple[tuple[str, str], ...] = ()   # query-string only: (key or "", value)


@dataclass(frozen=True)
class Action:
    type: str                              # forward | fixed-response | redirect
    forward: tuple[tuple[str, int], ...] = ()   # (backend name, weight)
    stickiness_seconds: int = 0            # target-group stickiness of a weighted forward
    status_code: str = ""                  # fixed-response / redirect (HTTP_301 | HTTP_302)
    content_type: str = ""
    body: str = ""
    redirect: Mapping[str, str] | None = None   # Protocol, Host, Port, Path, Query (ELB's #{...} placeholders)


@dataclass(frozen=True)
class Rule:
    priority: int
    conditions: tuple[Condition, ...]
    action: Action


@dataclass(frozen=True)
class Frontend:
    """A listener."""

    name: str                              # stable, proxy-safe (e.g. "ln-<id>")
    bind: str                              # address
    port: int
    protocol: str                          # HTTP | HTTPS | TCP | TLS
    rules: tuple[Rule, ...]                # by priority
    default: Action
    certificate: str = ""                  # HTTPS | TLS: a PEM file (certificate + private key) to terminate TLS with


@dataclass(frozen=True)
class PlaneConfig:
    frontends: tuple[Frontend, ...] = ()
    backends: tuple[Backend, ...] = ()


@dataclass(frozen=True)
class TargetHealth:
    """What the proxy's checks say about one target of one backend."""

    state: str                             # initial | healthy | unhealthy | draining | unused
    reason: str = ""                       # ELB reason code, e.g. Target.ResponseCodeMismatch
    description: str = ""


class DataPlane(Protocol):
    def apply(self, config: PlaneConfig) -> None:
        """Make the proxy serve `config` (runtime API for target changes, seamless reload for
        the rest). Raises berth errors on failure; the previous config keeps serving."""

    def health(self) -> Mapping[tuple[str, str, int], TargetHealth]:
        """(backend name, target id, port) → its health as the proxy's checks see it now."""

    def port_free(self, bind: str, port: int) -> bool:
        """Whether a new listener could bind there (not taken by another process)."""
