"""The control plane ↔ agent boundary: assignments in, state reports (with sequence numbers) out.

An agent serves one container instance. It asks for the tasks assigned to its instance, is woken
when they change, and reports what the containers did. Today both sides live in one process
(`EcsService` implements `ControlPlane` directly); the values below are plain data so that a
later issue can carry them between hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from berth.ecs._model import ContainerInstance, NetworkBinding, Task


@dataclass(frozen=True)
class InstanceResources:
    cpu: int                                   # units, 1024 per core
    memory: int                                # MiB
    attributes: tuple[tuple[str, str | None], ...] = ()
    agent_version: str = ""
    agent_hash: str = ""
    docker_version: str = ""


@dataclass(frozen=True)
class TaskAssignment:
    """A task the control plane wants on the agent's instance, with what the agent needs to run it."""

    task: Task
    definition_params: dict[str, object]       # the task definition as registered (the agent parses it)
    family: str
    revision: int
    cluster_name: str
    credentials_uri: str = ""                  # AWS_CONTAINER_CREDENTIALS_RELATIVE_URI for a task role


@dataclass(frozen=True)
class ContainerReport:
    name: str
    runtime_id: str = ""
    last_status: str = "PENDING"
    exit_code: int | None = None
    reason: str = ""
    network_bindings: tuple[NetworkBinding, ...] = ()
    health_status: str = "UNKNOWN"
    image_digest: str = ""


@dataclass(frozen=True)
class TaskReport:
    task_arn: str
    seq: int                                   # increasing per agent; stale reports are dropped
    last_status: str
    containers: tuple[ContainerReport, ...] = ()
    health_status: str = "UNKNOWN"
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str = ""
    stopped_reason: str = ""
    private_ip: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class ControlPlane(Protocol):
    """What an agent calls on the control plane."""

    def register_agent_instance(self, cluster: str, agent_id: str, resources: InstanceResources
                                ) -> ContainerInstance:
        """Register (or, after an agent restart, find again) the agent's container instance."""

    def set_agent_connected(self, instance_arn: str, connected: bool) -> None: ...

    def assignments(self, instance_arn: str) -> list[TaskAssignment]:
        """Every task on the instance the control plane still knows (desired RUNNING or STOPPED)."""

    def report(self, report: TaskReport) -> None:
        """Apply a state change of one task (ignored when older than the last one applied)."""

    def watch_assignments(self, instance_arn: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback()` (from any thread) when a task of the instance changes; returns unsubscribe."""


class LocalControlPlane:
    """The in-process ControlPlane: an agent in the daemon that also runs the control plane."""

    def __init__(self, ecs: "EcsServiceLike", region: str, account: str) -> None:
        self._ecs = ecs
        self._region = region
        self._account = account

    def register_agent_instance(self, cluster: str, agent_id: str, resources: InstanceResources
                                ) -> ContainerInstance:
        from berth.ecs._arns import Scope

        return self._ecs.register_agent_instance(Scope(self._region, self._account), cluster, agent_id, resources)

    def set_agent_connected(self, instance_arn: str, connected: bool) -> None:
        self._ecs.set_agent_connected(instance_arn, connected)

    def assignments(self, instance_arn: str) -> list[TaskAssignment]:
        return self._ecs.assignments(instance_arn)

    def report(self, report: TaskReport) -> None:
        self._ecs.report(report)

    def watch_assignments(self, instance_arn: str, callback: Callable[[], None]) -> Callable[[], None]:
        return self._ecs.watch_assignments(instance_arn, callback)


class EcsServiceLike(Protocol):
    def register_agent_instance(self, scope: "Scope", cluster: str, agent_id: str,
                                resources: InstanceResources) -> ContainerInstance: ...

    def set_agent_connected(self, instance_arn: str, connected: bool) -> None: ...

    def assignments(self, instance_arn: str) -> list[TaskAssignment]: ...

    def report(self, report: TaskReport) -> Task | None: ...

    def watch_assignments(self, instance_arn: str, callback: Callable[[], None]) -> Callable[[], None]: ...


from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from berth.ecs._arns import Scope
