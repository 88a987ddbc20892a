"""The service controller: a level-triggered reconcile loop, in the style of the Kubernetes
ReplicaSet controller. It is woken by every task or service change in the store (and by a
periodic resync), observes each service, asks `service_logic.decide` what to do, and applies the
decision: the service record (put-if-version), task stops, task launches, events.

For services with load balancers (and a `TargetRegistry`: the daemon's adapter over ELBv2), each
pass first registers RUNNING tasks as targets and deregisters stopping ones (controllers/targets.py),
then hands the target health to `decide`.

It also expires STOPPED tasks past the retention period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from berth.controllers.service_logic import Decision, Launch, Observed, decide, short_id
from berth.controllers.targets import TargetRegistry, TargetSync
from berth.ecs import EcsService, LaunchRequest
from berth.ecs import model as m
from berth.state.codec import encode
from berth.state import Change, VersionConflict

log = logging.getLogger("berth.controllers")

# With no placementStrategy, ECS spreads a service's tasks across availability zones, then instances.
DEFAULT_STRATEGIES = (("spread", "attribute:ecs.availability-zone"), ("spread", "instanceId"))


class ServiceController:
    def __init__(self, ecs: EcsService, *, clock: Callable[[], float] = time.time, resync: float = 5.0,
                 targets: TargetRegistry | None = None) -> None:
        self.ecs = ecs
        self.repo = ecs.repo
        self.clock = clock
        self.targets = TargetSync(self.repo, targets, clock) if targets is not None else None
        self.resync = resync
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unwatch: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_wake: float | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unwatch = self.repo.store.watch(self._on_change, [m.TASK, m.SERVICE, m.INSTANCE])
        self._task = asyncio.create_task(self._run(), name="ecs-service-controller")

    async def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _on_change(self, change: Change) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while True:
            timeout = self.resync
            if self._next_wake is not None:
                timeout = max(0.01, min(timeout, self._next_wake - self.clock()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await asyncio.to_thread(self.reconcile_all)  # off the loop: the agents and APIs go on
            except Exception:  # noqa: BLE001 - one bad pass must not end the controller
                log.exception("service reconcile failed")
            await asyncio.sleep(0)  # let a burst of changes coalesce into the next pass

    # --- one pass -------------------------------------------------------------------------------

    def reconcile_all(self) -> None:
        now = self.clock()
        wakes: list[float] = []
        retention = self.ecs.ctx.stopped_task_retention
        clusters = self.repo.list(m.Cluster)
        for cluster in clusters:
            if cluster.status != "ACTIVE":
                continue
            tasks = self.ecs.tasks.list(cluster)
            instances = tuple(i for i in self.repo.list(m.ContainerInstance, _instance_prefix(cluster))
                              if i.status != "INACTIVE")
            for service in self.ecs.services.list(cluster):
                if service.status == "INACTIVE":
                    continue
                wake = self.reconcile(cluster, service, tasks, instances, now)
                if wake is not None:
                    wakes.append(wake)
            # STOPPED tasks past the retention period go (and the agents then remove their
            # containers); the loop wakes when the next one is due
            self.ecs.tasks.expire_stopped(tasks)
            due = [(t.stopped_at or t.created_at) + retention for t in tasks if t.last_status == "STOPPED"]
            wakes.extend(when for when in due if when > now)
        self._next_wake = min(wakes) if wakes else None

    def reconcile(self, cluster: m.Cluster, service: m.Service, cluster_tasks: list[m.Task],
                  instances: tuple[m.ContainerInstance, ...], now: float) -> float | None:
        found = self.repo.get_versioned(m.Service, service.arn)
        if found is None:
            return None
        service, version = found
        group = f"service:{service.name}"
        tasks = tuple(t for t in cluster_tasks if t.group == group)
        health = {}
        for arn in {t.task_definition_arn for t in tasks} | {d.task_definition for d in service.deployments}:
            taskdef = self.repo.get(m.TaskDefinition, arn)
            if taskdef is not None:
                spec = self.repo.spec(taskdef)
                health[arn] = any(c.health_check is not None and c.essential for c in spec.containers)
        target_health = None
        target_events: list[str] = []
        target_wake = None
        if self.targets is not None:
            found_targets = self.targets.reconcile(service, tasks, instances)
            target_health, target_events, target_wake = (found_targets.health, found_targets.events,
                                                         found_targets.wake_at)
        decision = decide(Observed(service, tasks, instances, health, now, self.ecs.ctx.healthy_after,
                                   target_health))
        if decision.service != service:
            try:
                self.repo.store.put(m.SERVICE, service.arn, encode(decision.service), expected_version=version)
            except VersionConflict:
                if target_events:
                    self._add_events(service.arn, target_events)
                return now  # someone updated the service meanwhile: decide again with what they wrote
        self._apply(cluster, decision, target_events)
        wakes = [w for w in (decision.wake_at, target_wake) if w is not None]
        return min(wakes) if wakes else None

    def _apply(self, cluster: m.Cluster, decision: Decision, target_events: list[str] | None = None) -> None:
        service = decision.service
        stopped = []
        for stop in decision.stops:
            task = self.ecs.tasks.request_stop(stop.task_arn, stop.stop_code, stop.reason)
            if task is not None:
                stopped.append(task)
        events = list(target_events or ())
        running_stopped = [t for t in stopped if t.last_status == "RUNNING"]
        if running_stopped:
            events.append(f"(service {service.name}) has stopped {len(running_stopped)} running tasks: "
                          + " ".join(f"(task {t.task_id})." for t in running_stopped))
        for launch in decision.launches:
            events.extend(self._launch(cluster, service, launch))
        if events:
            self._add_events(service.arn, events)

    def _launch(self, cluster: m.Cluster, service: m.Service, launch: Launch) -> list[str]:
        taskdef = self.repo.get(m.TaskDefinition, launch.task_definition)
        if taskdef is None:
            return [f"(service {service.name}) was unable to start tasks: its task definition "
                    f"{launch.task_definition} no longer exists."]
        deployment = next((d for d in service.deployments if d.id == launch.deployment_id), None)
        launch_type, provider = "EC2", ""
        if deployment is not None:
            if deployment.capacity_provider_strategy:
                launch_type, provider, _ = self.ecs.resolve_launch(cluster, None, [
                    {"capacityProvider": i.capacity_provider, "weight": i.weight, "base": i.base}
                    for i in deployment.capacity_provider_strategy])
            elif deployment.launch_type:
                launch_type = deployment.launch_type
        strategies = service.placement_strategy or (DEFAULT_STRATEGIES if launch_type != "FARGATE" else ())
        request = LaunchRequest(
            cluster=cluster, taskdef=taskdef, count=launch.count, group=f"service:{service.name}",
            started_by=launch.deployment_id, launch_type=launch_type, capacity_provider=provider,
            constraints=service.placement_constraints, strategies=strategies,
            network=deployment.network if deployment else service.network,
            tags=service.tags if service.propagate_tags == "SERVICE" else (),
            service_arn=service.arn, deployment_id=launch.deployment_id,
            instances=(launch.instance_arn,) if launch.instance_arn else None,
            enable_execute_command=service.enable_execute_command)
        try:
            tasks, failures = self.ecs.tasks.launch(request)
        except Exception as err:  # noqa: BLE001 - becomes a service event, as ECS reports it
            return [f"(service {service.name}) was unable to place a task: {err}"]
        events = []
        if tasks and self.targets is not None:
            self.targets.mark_launched(service, tasks)
        if tasks:
            events.append(f"(service {service.name}) has started {len(tasks)} tasks: "
                          + " ".join(f"(task {short_id(t.arn)})." for t in tasks))
        if failures:
            worst = failures[0]
            what = {"RESOURCE:MEMORY": "insufficient memory available", "RESOURCE:CPU": "insufficient CPU units available",
                    "RESOURCE:PORTS": "no available ports", "RESOURCE:PORTS_UDP": "no available UDP ports",
                    "AGENT": "no connected agent", "ATTRIBUTE": "none of the required attributes",
                    }.get(worst.reason, worst.reason)
            instance = worst.arn.rsplit("/", 1)[-1] if worst.arn else "(none)"
            events.append(f"(service {service.name}) was unable to place a task because no container instance met "
                          f"all of its requirements. The closest matching (container-instance {instance}) has "
                          f"{what}. For more information, see the Troubleshooting section.")
        return events

    def _add_events(self, service_arn: str, messages: list[str]) -> None:
        now = self.clock()

        def change(s: m.Service) -> m.Service | None:
            fresh = [text for text in messages
                     if not (text.startswith(f"(service {s.name}) was unable to place") and s.events
                             and s.events[0].message == text)  # ECS suppresses repeats
                     and not (text.startswith(f"(service {s.name}) failed to register targets")
                              and any(e.message == text for e in s.events[:10]))]
            if not fresh:
                return None
            new = tuple(m.ServiceEvent(id=f"{int(now * 1000)}-e{i}", created_at=now, message=text)
                        for i, text in enumerate(reversed(fresh)))
            return replace(s, events=(new + s.events)[:100])

        self.repo.update(m.Service, service_arn, change)


def _instance_prefix(cluster: m.Cluster) -> str:
    return cluster.arn.replace(":cluster/", ":container-instance/", 1) + "/"
