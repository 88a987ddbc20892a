"""Tasks: placement and launch (RunTask, StartTask, the service scheduler), StopTask, queries,
and the agent side of the boundary (assignments and state reports).

A launched task is a record in PROVISIONING on a container instance; the instance's agent picks
it up, runs its containers and reports each state change, which `apply_report` folds into the
record. Stopping is a desired-status change the agent acts on.
"""

from __future__ import annotations

import builtins
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from berth import scheduler
from berth.ecs import _model as m
from berth.ecs._agentlink import TaskAssignment, TaskReport
from berth.ecs._arns import Scope, child_id
from berth.ecs._context import Context
from berth.ecs._errors import InvalidParameter
from berth.ecs._taskdef import TaskDefinitionSpec

log = logging.getLogger("berth.ecs")

# Placement failure reasons as ECS writes them in `failures[]`.
_FAILURE_REASONS = {scheduler.REASON_DISTINCT_INSTANCE: "RESOURCE:DISTINCT_INSTANCE"}


@dataclass(frozen=True)
class LaunchFailure:
    arn: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class LaunchRequest:
    cluster: m.Cluster
    taskdef: m.TaskDefinition
    count: int = 1
    group: str = ""
    started_by: str = ""
    launch_type: str = "EC2"
    capacity_provider: str = ""
    overrides: tuple[m.ContainerOverride, ...] = ()
    task_role_arn: str = ""
    execution_role_arn: str = ""
    cpu: str = ""
    memory: str = ""
    constraints: tuple[tuple[str, str], ...] = ()
    strategies: tuple[tuple[str, str], ...] = ()
    network: m.AwsVpcConfiguration | None = None
    tags: tuple[m.Tag, ...] = ()
    service_arn: str = ""
    deployment_id: str = ""
    client_token: str = ""
    instances: tuple[str, ...] | None = None    # StartTask: exactly these instances, no scheduler
    enable_execute_command: bool = False


def instance_prefix(cluster: m.Cluster) -> str:
    return cluster.arn.replace(":cluster/", ":container-instance/", 1) + "/"


def task_prefix(cluster: m.Cluster) -> str:
    return cluster.arn.replace(":cluster/", ":task/", 1) + "/"


def live(task: m.Task) -> bool:
    """Holds resources on its instance: not STOPPED yet."""
    return task.last_status != "STOPPED"


class TaskOps:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = ctx.repo

    # --- placement and launch ---------------------------------------------------------------

    def snapshot(self, cluster: m.Cluster) -> scheduler.ClusterSnapshot:
        instances = self.repo.list(m.ContainerInstance, instance_prefix(cluster))
        tasks = [t for t in self.repo.list(m.Task, task_prefix(cluster)) if live(t)]
        snaps = []
        for inst in instances:
            mine = [t for t in tasks if t.container_instance_arn == inst.arn]
            ports: set[tuple[int, str]] = {(p, "tcp") for p in inst.reserved_ports}
            for t in mine:
                ports.update(t.reserved_ports)
                for c in t.containers:
                    ports.update((b.host_port, b.protocol) for b in c.network_bindings if b.host_port)
            snaps.append(scheduler.InstanceSnapshot(
                arn=inst.arn, instance_id=inst.ec2_instance_id, status=inst.status,
                agent_connected=inst.agent_connected, cpu=inst.cpu, memory=inst.memory,
                cpu_used=sum(t.reserved_cpu for t in mine), memory_used=sum(t.reserved_memory for t in mine),
                ports_used=frozenset(ports), attributes=inst.attribute_map(), agent_version=inst.agent_version,
                registered_at=inst.registered_at, task_groups=tuple(t.group for t in mine)))
        return scheduler.ClusterSnapshot(tuple(snaps))

    def launch(self, req: LaunchRequest) -> tuple[list[m.Task], list[LaunchFailure]]:
        """Place `req.count` tasks and write them (PROVISIONING) for the agents to run."""
        spec = self.repo.spec(req.taskdef)
        cpu = _units(req.cpu) if req.cpu else spec.reserved_cpu()
        memory = _units(req.memory) if req.memory else _reserved_memory(spec, req.overrides)
        ports = spec.fixed_host_ports()
        request = scheduler.TaskRequest(
            cpu=cpu, memory=memory, ports=ports, group=req.group,
            required_attributes=tuple((a, None) for a in _required_attributes(spec)),
            constraints=tuple(scheduler.Constraint(t, e or None) for t, e in req.constraints)
            + tuple(scheduler.Constraint(c.type, c.expression) for c in spec.placement_constraints),
            strategies=tuple(scheduler.Strategy(t, f or None) for t, f in req.strategies), count=req.count)
        with self.ctx.placement_lock:
            snapshot = self.snapshot(req.cluster)
            if req.instances is not None:
                plan = _start_plan(snapshot, request, req.instances)
            else:
                if not snapshot.instances:
                    raise InvalidParameter("No Container Instances were found in your cluster.")
                plan = scheduler.place(snapshot, request, self.ctx.rng)
            tasks = [self._new_task(req, spec, p.instance_arn, cpu, memory, ports) for p in plan.placements]
            for task in tasks:
                self.repo.create(m.Task, task.arn, task)
        failures = [LaunchFailure(f.arn, _FAILURE_REASONS.get(f.reason, f.reason), f.detail) for f in plan.failures]
        return tasks, failures

    def _new_task(self, req: LaunchRequest, spec: TaskDefinitionSpec, instance_arn: str, cpu: int,
                  memory: int, ports: tuple[tuple[int, str], ...]) -> m.Task:
        task_id = self.ctx.new_id()
        cluster = req.cluster
        arn = task_prefix(cluster) + task_id
        scope = Scope(cluster.region, cluster.account)
        containers = tuple(
            m.TaskContainer(name=c.name, arn=scope.arn(f"container/{cluster.name}/{task_id}/{self.ctx.new_id()[:32]}"),
                            image=c.image, cpu=c.cpu, memory=c.memory, memory_reservation=c.memory_reservation,
                            essential=c.essential)
            for c in spec.containers)
        instance = self.repo.get(m.ContainerInstance, instance_arn)
        return m.Task(
            arn=arn, cluster_arn=cluster.arn, task_definition_arn=req.taskdef.arn, created_at=self.ctx.clock(),
            container_instance_arn=instance_arn, group=req.group or f"family:{spec.family}",
            started_by=req.started_by, launch_type=req.launch_type, capacity_provider=req.capacity_provider,
            containers=containers, overrides=req.overrides,
            task_role_arn=req.task_role_arn or (spec.task_role_arn or ""),
            execution_role_arn=req.execution_role_arn or (spec.execution_role_arn or ""),
            cpu=req.cpu or (str(spec.cpu) if spec.cpu else ""),
            memory=req.memory or (str(spec.memory) if spec.memory else ""),
            tags=req.tags, service_arn=req.service_arn, deployment_id=req.deployment_id,
            client_token=req.client_token, enable_execute_command=req.enable_execute_command,
            platform_version="1.4.0" if req.launch_type == "FARGATE" else "",
            availability_zone=(instance.attribute_map().get("ecs.availability-zone") or "") if instance else "",
            network_mode=spec.network_mode, reserved_cpu=cpu, reserved_memory=memory, reserved_ports=ports,
            placement_constraints=req.constraints, placement_strategy=req.strategies,
            eni_id=f"eni-{task_id[:17]}" if spec.network_mode == "awsvpc" else "",
            subnet_id=req.network.subnets[0] if req.network and req.network.subnets else "",
            security_groups=req.network.security_groups if req.network else ())

    # --- stop -------------------------------------------------------------------------------

    def request_stop(self, task_arn: str, stop_code: str, reason: str) -> m.Task | None:
        """Desired status STOPPED; the agent does the rest. A task already stopping keeps its
        first reason (ECS reports why it was first asked to stop)."""
        now = self.ctx.clock()

        def change(task: m.Task) -> m.Task | None:
            if task.desired_status == "STOPPED":
                return None
            return replace(task, desired_status="STOPPED", stop_code=task.stop_code or stop_code,
                           stopped_reason=task.stopped_reason or reason, stopping_at=task.stopping_at or now,
                           version=task.version + 1)

        # What was written, not a read after it: the agents run on while a controller pass (on its
        # own thread) stops tasks, and one may already have moved this task past RUNNING; the
        # service event counts the tasks that were RUNNING when they were told to stop.
        return self.repo.update(m.Task, task_arn, change) or self.repo.get(m.Task, task_arn)

    def find(self, scope: Scope, cluster: m.Cluster, ref: str, field: str = "task") -> m.Task | None:
        task_id = child_id(ref, "task", cluster.name, field)
        return self.repo.get(m.Task, task_prefix(cluster) + task_id)

    def list(self, cluster: m.Cluster) -> list[m.Task]:
        return self.repo.list(m.Task, task_prefix(cluster))

    # --- the agent side -----------------------------------------------------------------------

    def assignments(self, instance_arn: str, cluster_name: str) -> builtins.list[TaskAssignment]:
        cluster_arn = instance_arn.replace(":container-instance/", ":cluster/", 1).rsplit("/", 1)[0]
        prefix = cluster_arn.replace(":cluster/", ":task/", 1) + "/"
        out = []
        for task in self.repo.list(m.Task, prefix):
            if task.container_instance_arn != instance_arn:
                continue
            taskdef = self.repo.get(m.TaskDefinition, task.task_definition_arn)
            if taskdef is None:
                continue
            out.append(TaskAssignment(task=task, definition_params=dict(taskdef.params), family=taskdef.family,
                                      revision=taskdef.revision, cluster_name=cluster_name))
        return out

    def apply_report(self, report: TaskReport) -> m.Task | None:
        """Fold an agent's report into the task record (newer sequence numbers only; states only
        move forward)."""

        def change(task: m.Task) -> m.Task | None:
            if report.seq <= task.agent_seq:
                return None
            status = report.last_status
            if m.state_index(status) < m.state_index(task.last_status):
                status = task.last_status
            by_name = {c.name: c for c in report.containers}
            containers = tuple(_merge_container(c, by_name.get(c.name)) for c in task.containers)
            stopped = status == "STOPPED"
            return replace(
                task, agent_seq=report.seq, last_status=status, containers=containers,
                health_status=report.health_status,
                pull_started_at=report.pull_started_at or task.pull_started_at,
                pull_stopped_at=report.pull_stopped_at or task.pull_stopped_at,
                started_at=report.started_at or task.started_at,
                connectivity_at=task.connectivity_at or report.started_at,
                stopping_at=task.stopping_at or report.stopping_at,
                stopped_at=task.stopped_at or report.stopped_at,
                execution_stopped_at=task.execution_stopped_at or (report.stopped_at if stopped else None),
                desired_status="STOPPED" if stopped or report.stop_code else task.desired_status,
                stop_code=task.stop_code or report.stop_code,
                stopped_reason=task.stopped_reason or report.stopped_reason,
                private_ip=report.private_ip or task.private_ip,
                reached_running=task.reached_running or status == "RUNNING",
                unhealthy_since=(task.unhealthy_since or self.ctx.clock()) if report.health_status == "UNHEALTHY"
                else None,
                version=task.version + 1)

        return self.repo.update(m.Task, report.task_arn, change)

    def expire_stopped(self, tasks: Iterable[m.Task]) -> builtins.list[str]:
        """Forget STOPPED tasks older than the retention period; returns their ARNs."""
        horizon = self.ctx.clock() - self.ctx.stopped_task_retention
        gone = []
        for task in tasks:
            if task.last_status == "STOPPED" and (task.stopped_at or task.created_at) < horizon:
                self.repo.delete(m.Task, task.arn)
                gone.append(task.arn)
        return gone


def _merge_container(current: m.TaskContainer, report: object) -> m.TaskContainer:
    from berth.ecs._agentlink import ContainerReport

    if not isinstance(report, ContainerReport):
        return current
    status = report.last_status
    order = ("PENDING", "RUNNING", "STOPPED")
    if status in order and current.last_status in order and order.index(status) < order.index(current.last_status):
        status = current.last_status
    return replace(current, runtime_id=report.runtime_id or current.runtime_id, last_status=status,
                   exit_code=report.exit_code if report.exit_code is not None else current.exit_code,
                   reason=report.reason or current.reason,
                   network_bindings=report.network_bindings or current.network_bindings,
                   health_status=report.health_status, image_digest=report.image_digest or current.image_digest)


def _start_plan(snapshot: scheduler.ClusterSnapshot, request: scheduler.TaskRequest,
                instances: tuple[str, ...]) -> scheduler.Plan:
    """StartTask: one task on each named instance, checked for resources but never moved."""
    placements: list[scheduler.Placement] = []
    failures: list[scheduler.PlacementFailure] = []
    by_arn = {i.arn: i for i in snapshot.instances}
    for arn in instances:
        inst = by_arn.get(arn)
        if inst is None:
            failures.append(scheduler.PlacementFailure(arn, "MISSING"))
            continue
        single = scheduler.place(scheduler.ClusterSnapshot((inst,)), replace(request, count=1, strategies=()),
                                 random.Random(0))  # one candidate: nothing to choose
        placements.extend(single.placements)
        failures.extend(single.failures)
    return scheduler.Plan(tuple(placements), tuple(failures))


def _units(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def _reserved_memory(spec: TaskDefinitionSpec, overrides: tuple[m.ContainerOverride, ...]) -> int:
    if spec.memory:
        return spec.memory
    by_name = {o.name: o for o in overrides}
    total = 0
    for c in spec.containers:
        o = by_name.get(c.name)
        memory = (o.memory if o and o.memory else None) or c.memory
        reservation = (o.memory_reservation if o and o.memory_reservation else None) or c.memory_reservation
        total += memory if memory else (reservation or 0)
    return total


def _required_attributes(spec: TaskDefinitionSpec) -> tuple[str, ...]:
    """Attributes an instance must have to run the task (ecs.capability.* of what it uses)."""
    return ()


Listener = Callable[[], None]
