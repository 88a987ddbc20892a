"""ELBv2 records as the control-plane store keeps them (one record per ARN).

Kinds: `elb.lb` (LoadBalancer), `elb.tg` (TargetGroup), `elb.targets` (the registrations of one
target group, keyed by its ARN), `elb.listener` (Listener), `elb.rule` (Rule; the default rule of
a listener is its `default_actions`, described as the rule "default").
"""

from __future__ import annotations

from dataclasses import dataclass, field

LB = "elb.lb"
TG = "elb.tg"
TARGETS = "elb.targets"
LISTENER = "elb.listener"
RULE = "elb.rule"


@dataclass(frozen=True)
class LoadBalancer:
    arn: str
    name: str
    id: str
    type: str                                  # application | network
    scheme: str                                # internet-facing | internal
    dns_name: str
    created: float
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    ip_address_type: str = "ipv4"
    vpc_id: str = ""
    state: str = "active"
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthSettings:
    enabled: bool = True
    protocol: str = "HTTP"
    port: str = "traffic-port"
    path: str = "/"
    interval: int = 30
    timeout: int = 5
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    id: str
    target_type: str                           # instance | ip
    protocol: str                              # HTTP | TCP
    port: int
    vpc_id: str
    health: HealthSettings
    created: float
    protocol_version: str = ""                 # HTTP1 for HTTP groups
    ip_address_type: str = "ipv4"
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Registration:
    id: str                                    # instance id or IP, as registered
    port: int
    address: str                               # where the proxy connects
    registered_at: float
    availability_zone: str = ""
    draining_until: float | None = None        # deregistered: gone after this time


@dataclass(frozen=True)
class Targets:
    target_group_arn: str
    targets: tuple[Registration, ...] = ()


@dataclass(frozen=True)
class WeightedGroup:
    target_group_arn: str
    weight: int = 1


@dataclass(frozen=True)
class ActionSpec:
    type: str                                  # forward | fixed-response | redirect
    order: int = 1
    target_group_arn: str = ""                 # forward to one group (the short form)
    groups: tuple[WeightedGroup, ...] = ()     # forward: every group with its weight
    stickiness_enabled: bool = False
    stickiness_seconds: int = 0
    status_code: str = ""                      # fixed-response: "200"; redirect: HTTP_301 | HTTP_302
    content_type: str = ""
    body: str | None = None
    redirect: dict[str, str] = field(default_factory=dict)   # Protocol, Host, Port, Path, Query

    def group_arns(self) -> tuple[str, ...]:
        return tuple(g.target_group_arn for g in self.groups)


@dataclass(frozen=True)
class Listener:
    arn: str
    id: str
    load_balancer_arn: str
    port: int
    protocol: str                              # HTTP | HTTPS (application), TCP | TLS (network)
    default_actions: tuple[ActionSpec, ...]
    tags: dict[str, str] = field(default_factory=dict)
    certificates: tuple[str, ...] = ()         # HTTPS | TLS: CertificateArn values (file:///path.pem), default first
    ssl_policy: str = ""                       # HTTPS | TLS: recorded (HAProxy's own TLS defaults apply)


@dataclass(frozen=True)
class ConditionSpec:
    field: str
    values: tuple[str, ...] = ()
    header_name: str = ""                      # http-header
    pairs: tuple[tuple[str, str], ...] = ()    # query-string: (key or "", value)


@dataclass(frozen=True)
class Rule:
    arn: str
    id: str
    listener_arn: str
    priority: int
    conditions: tuple[ConditionSpec, ...]
    actions: tuple[ActionSpec, ...]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetHealthInfo:
    """One row of DescribeTargetHealth."""

    id: str
    port: int
    state: str
    reason: str = ""
    description: str = ""
    health_check_port: str = ""
    availability_zone: str = ""


@dataclass(frozen=True)
class DefaultRule:
    """A listener's default rule as DescribeRules shows it."""

    arn: str
    listener_arn: str
    actions: tuple[ActionSpec, ...]
