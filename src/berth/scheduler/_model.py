"""The scheduler's vocabulary: a frozen cluster snapshot in, a placement plan out.

Everything here is immutable so `place` can be a pure function: the caller (the ECS control
plane) reads its store once, builds a `ClusterSnapshot`, and applies the returned `Plan` itself
(Nomad's plan-then-apply split).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Ports the ECS agent reserves on every container instance (ssh, the Docker daemon, the agent's
# introspection and credential endpoints). Callers fold them into `InstanceSnapshot.ports_used`.
RESERVED_TCP_PORTS: frozenset[tuple[int, str]] = frozenset(
    (port, "tcp") for port in (22, 2375, 2376, 51678, 51679, 51680)
)


@dataclass(frozen=True)
class InstanceSnapshot:
    """One container instance as the scheduler sees it, at the moment of the snapshot."""

    arn: str  # containerInstanceArn
    instance_id: str  # ec2InstanceId-style id; the spread field "instanceId"/"host"
    status: str  # ACTIVE | DRAINING | REGISTERING | ...
    agent_connected: bool
    cpu: int  # registered CPU units (1024 per core)
    memory: int  # registered MiB
    cpu_used: int  # reserved by tasks already placed on it
    memory_used: int
    ports_used: frozenset[tuple[int, str]]  # (host port, "tcp"|"udp"), reserved ports included
    attributes: Mapping[str, str | None]  # None = the attribute exists without a value
    agent_version: str = ""
    registered_at: float = 0.0  # epoch seconds
    task_groups: tuple[str, ...] = ()  # the `group` of every task on it, one entry per task

    @property
    def cpu_remaining(self) -> int:
        return self.cpu - self.cpu_used

    @property
    def memory_remaining(self) -> int:
        return self.memory - self.memory_used


@dataclass(frozen=True)
class ClusterSnapshot:
    instances: tuple[InstanceSnapshot, ...]


@dataclass(frozen=True)
class Constraint:
    """An ECS placementConstraint: `distinctInstance`, or `memberOf` with a cluster query."""

    type: str
    expression: str | None = None


@dataclass(frozen=True)
class Strategy:
    """An ECS placementStrategy: `random`, `spread` (field) or `binpack` (field cpu|memory)."""

    type: str
    field: str | None = None


@dataclass(frozen=True)
class TaskRequest:
    """What one task needs; `count` identical tasks are placed one after another."""

    cpu: int  # units to reserve (0 allowed)
    memory: int  # MiB to reserve; the caller sums the containers' reservations
    ports: tuple[tuple[int, str], ...]  # fixed host ports; dynamic ports need nothing here
    group: str  # "service:web", "family:app"
    required_attributes: tuple[tuple[str, str | None], ...] = ()  # (name, value or None = must exist)
    constraints: tuple[Constraint, ...] = ()
    strategies: tuple[Strategy, ...] = ()  # applied in order; empty = uniform random choice
    count: int = 1


@dataclass(frozen=True)
class Placement:
    instance_arn: str


@dataclass(frozen=True)
class PlacementFailure:
    """Why one container instance could not take the task (AWS's `failures[]` entry).

    `reason` is one of the `REASON_*` constants; `detail` is a human sentence for events/logs.
    """

    arn: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    """The outcome of `place`: the tasks that fit, and, if some did not, why not per instance."""

    placements: tuple[Placement, ...]
    failures: tuple[PlacementFailure, ...]


# Failure reasons, in the order the feasibility checks run (the first failing one is reported).
REASON_INACTIVE = "INACTIVE"  # status is not ACTIVE (DRAINING, REGISTERING, ...)
REASON_AGENT = "AGENT"  # the agent is disconnected
REASON_ATTRIBUTE = "ATTRIBUTE"  # a required attribute or a memberOf expression does not match
# AWS does not document a reason for distinctInstance; we name the constraint that refused.
REASON_DISTINCT_INSTANCE = "CONSTRAINT:distinctInstance"
REASON_CPU = "RESOURCE:CPU"
REASON_MEMORY = "RESOURCE:MEMORY"
REASON_PORTS = "RESOURCE:PORTS"
REASON_PORTS_UDP = "RESOURCE:PORTS_UDP"
REASON_NO_INSTANCES = "NO_INSTANCES"  # the snapshot has no instances at all (arn "")
