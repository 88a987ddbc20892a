"""The service scheduler's decisions, as a pure function (aws-apis.md §2.4).

    decision = decide(Observed(service, tasks, instances, has_health_check, now, healthy_after))

From a service record and what its tasks are doing, `decide` says which tasks to launch and
which to stop, and returns the service record as it should be written back (deployment states,
failure counters, events). Level-triggered: the same observation gives the same decision, so the
loop that applies it (service_controller.py) can run it after every event and on a timer.

Rules, per reconcile:
1. Tasks that turned UNHEALTHY after the grace period are stopped (replacement follows from 3):
   their essential containers' health checks, or (load-balanced services) a target the load
   balancer's health checks mark `unhealthy` ("Task failed ELB health checks in (target-group …)").
2. Newly STOPPED tasks are counted once (their ids are remembered): failures to start feed the
   start throttle and the circuit breaker; crashes after RUNNING feed berth's crash back-off.
3. The PRIMARY deployment is brought to the desired count within `maximumPercent`; extra tasks
   are stopped (pending ones first).
4. Tasks of older deployments (and tasks on DRAINING instances) are stopped while the healthy
   count stays at or above `minimumHealthyPercent`; a deployment with no task left is dropped
   (a FAILED one only once the rollback away from it has completed).
5. The circuit breaker fails the PRIMARY after `threshold` failed tasks, and rolls back to the
   last COMPLETED deployment when asked to. Rollback deployments are not judged by it
   (`had_running_at_start`), so a rollback never loops.
6. One deployment at the desired count, all healthy: COMPLETED, "has reached a steady state";
   the loop is woken when a RUNNING task turns healthy (`started_at + healthy_after`).
7. A DRAINING (deleted) service turns INACTIVE once every task of it is STOPPED.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from berth.controllers.targets import SERVING, TargetStatus
from berth.ecs import model as m

START_FAILURE_CODES = ("TaskFailedToStart",)
SCHEDULER_CODES = ("ServiceSchedulerInitiated", "UserInitiated")
THROTTLE_MAX = 27 * 60.0          # ECS's longest back-off for tasks failing to start
CRASH_BACKOFF_MAX = 300.0         # berth's longest back-off for tasks crashing after RUNNING
CRASH_QUICK = 60.0                # a task that ran shorter than this before dying counts as a crash loop
SEEN_MAX = 500
MAX_EVENTS = 100                  # ECS keeps a service's latest 100 events


@dataclass(frozen=True)
class Observed:
    service: m.Service
    tasks: tuple[m.Task, ...]                    # every task of the service the store still holds
    instances: tuple[m.ContainerInstance, ...]   # the cluster's instances (DAEMON, DRAINING)
    has_health_check: Mapping[str, bool]         # task definition ARN → an essential container has one
    now: float
    healthy_after: float = 40.0
    # load-balanced services: task ARN → its targets as the load balancer sees them (RUNNING tasks);
    # None when berth manages no targets (no load balancer wired): tasks are judged as without one
    target_health: Mapping[str, tuple[TargetStatus, ...]] | None = None

    def load_balanced(self) -> bool:
        return self.target_health is not None and any(lb.target_group_arn for lb in self.service.load_balancers)


@dataclass(frozen=True)
class Launch:
    deployment_id: str
    task_definition: str
    count: int
    instance_arn: str = ""                       # DAEMON: this instance


@dataclass(frozen=True)
class Stop:
    task_arn: str
    stop_code: str
    reason: str


@dataclass(frozen=True)
class Decision:
    service: m.Service
    launches: tuple[Launch, ...] = ()
    stops: tuple[Stop, ...] = ()
    wake_at: float | None = None                 # when a timed condition changes next


def circuit_threshold(desired: int) -> int:
    return min(200, max(3, math.ceil(desired * 0.5)))


def short_id(task_arn: str) -> str:
    return task_arn.rsplit("/", 1)[-1]


class _Builder:
    """Accumulates one reconcile's outcome."""

    def __init__(self, obs: Observed) -> None:
        self.obs = obs
        self.service = obs.service
        self.launches: list[Launch] = []
        self.stops: list[Stop] = []
        self.stopping: set[str] = set()
        self.wake: list[float] = []
        self.events: list[str] = []

    def stop(self, task: m.Task, code: str, reason: str) -> None:
        if task.arn not in self.stopping:
            self.stopping.add(task.arn)
            self.stops.append(Stop(task.arn, code, reason))

    def event(self, text: str) -> None:
        self.events.append(f"(service {self.service.name}) {text}")

    def wake_at(self, when: float) -> None:
        if when > self.obs.now:
            self.wake.append(when)


def healthy(task: m.Task, obs: Observed) -> bool:
    if task.last_status != "RUNNING" or task.desired_status != "RUNNING":
        return False
    if obs.load_balanced():
        # the target is healthy (every target of it), and the container too if it has a check
        targets = (obs.target_health or {}).get(task.arn, ())
        if not targets or any(t.state not in SERVING for t in targets):
            return False
        return (not obs.has_health_check.get(task.task_definition_arn)) or task.health_status == "HEALTHY"
    if obs.has_health_check.get(task.task_definition_arn):
        return task.health_status == "HEALTHY"
    return task.started_at is not None and obs.now - task.started_at >= obs.healthy_after


def decide(obs: Observed) -> Decision:
    b = _Builder(obs)
    s = obs.service
    active = [t for t in obs.tasks if t.desired_status == "RUNNING" and t.last_status != "STOPPED"]
    _account_stops(b, obs)
    s = b.service
    desired = s.desired_count if s.status == "ACTIVE" else 0

    # 1. unhealthy after the grace period
    for task in active:
        if task.last_status == "RUNNING" and task.health_status == "UNHEALTHY":
            grace_end = (task.started_at or obs.now) + s.health_check_grace_period
            if obs.now >= grace_end:
                b.stop(task, "ServiceSchedulerInitiated", "Task failed container health checks")
            else:
                b.wake_at(grace_end)
    if obs.load_balanced():
        for task in active:
            failing = [t for t in (obs.target_health or {}).get(task.arn, ()) if t.state == "unhealthy"]
            if task.last_status != "RUNNING" or task.arn in b.stopping or not failing:
                continue
            grace_end = (task.started_at or obs.now) + s.health_check_grace_period
            if obs.now < grace_end:
                b.wake_at(grace_end)
                continue
            b.stop(task, "ServiceSchedulerInitiated",
                   f"Task failed ELB health checks in (target-group {failing[0].target_group_arn})")
            for t in failing:
                b.event(f"(port {t.port}) is unhealthy in (target-group {t.target_group_arn}) due to "
                        f"(reason Health checks failed).")
    remaining = [t for t in active if t.arn not in b.stopping]

    if s.scheduling_strategy == "DAEMON":
        _daemon(b, obs, remaining)
    else:
        _replica(b, obs, remaining, desired)
    return _finish(b, obs)


def _account_stops(b: _Builder, obs: Observed) -> None:
    """Count each newly STOPPED task once: start failures, crashes, breaker failures."""
    s = b.service
    seen = set(s.seen_stopped)
    new_seen = []
    primary = s.primary()
    start_failures, crashes, breaker_failed = s.start_failures, s.crash_restarts, 0
    not_before = s.launch_not_before
    for task in sorted(obs.tasks, key=lambda t: t.stopped_at or 0.0):
        if task.last_status != "STOPPED" or task.task_id in seen or task.created_at < s.created_at:
            continue  # counted already, or a task of an earlier service of that name
        new_seen.append(task.task_id)
        if task.stop_code in SCHEDULER_CODES and "health" not in task.stopped_reason:
            continue
        ran = (task.stopped_at or obs.now) - (task.started_at or task.stopped_at or obs.now)
        exits = ", ".join(f"{c.name} exit code {c.exit_code}" for c in task.containers if c.exit_code is not None)
        if not task.reached_running:
            start_failures += 1
            delay = min(THROTTLE_MAX, 2.0 ** min(start_failures - 1, 20)) if start_failures > 1 else 0.0
            if start_failures >= 3:
                b.event("is unable to consistently start tasks successfully. For more information, see the "
                        "Troubleshooting section of the Amazon ECS Developer Guide.")
            b.event(f"task {task.task_id} failed to start: {task.stopped_reason or 'stopped'}"
                    + (f"; next launch in {delay:.0f} s" if delay else ""))
            not_before = max(not_before, obs.now + delay)
        else:
            start_failures = 0
            if ran < CRASH_QUICK:
                crashes += 1
            else:
                crashes = 1
            delay = min(CRASH_BACKOFF_MAX, 2.0 ** (crashes - 2)) if crashes > 1 else 0.0
            b.event(f"task {task.task_id} stopped after running {ran:.0f} s: "
                    f"{task.stopped_reason or 'stopped'}" + (f" ({exits})" if exits else "")
                    + (f"; starting a replacement in {delay:.0f} s (crash back-off: {crashes} in a row)"
                       if delay else "; starting a replacement"))
            not_before = max(not_before, obs.now + delay)
        if primary is not None and task.deployment_id == primary.id:
            breaker_failed += 1
    if not new_seen:
        return
    seen_all = (s.seen_stopped + tuple(new_seen))[-SEEN_MAX:]
    deployments = tuple(replace(d, failed_tasks=d.failed_tasks + breaker_failed) if primary is not None
                        and d.id == primary.id else d for d in s.deployments)
    b.service = replace(s, start_failures=start_failures, crash_restarts=crashes, launch_not_before=not_before,
                        deployments=deployments, seen_stopped=seen_all)


def _replica(b: _Builder, obs: Observed, active: list[m.Task], desired: int) -> None:
    s = b.service
    primary = s.primary()
    if primary is None:
        for task in active:
            b.stop(task, "ServiceSchedulerInitiated", "Service is being deleted")
        return
    cfg = s.deployment_configuration
    max_total = math.floor(desired * cfg.maximum_percent / 100)
    min_healthy = math.ceil(desired * cfg.minimum_healthy_percent / 100)

    # 5. circuit breaker (before launching more of a deployment that keeps failing); a rollback
    # makes a new PRIMARY, so which tasks are "mine" is decided after it
    primary = _circuit_breaker(b, obs, primary, desired)
    s = b.service
    # tasks on DRAINING (or deregistered) instances are replaced like an old deployment's: the
    # replacements start first within maximumPercent, then they stop within minimumHealthyPercent
    usable = {i.arn for i in obs.instances if i.status == "ACTIVE"}
    retiring = {t.arn for t in active if t.container_instance_arn and t.container_instance_arn not in usable}
    mine = [t for t in active if t.deployment_id == primary.id and t.arn not in retiring]
    old = [t for t in active if t.deployment_id != primary.id or t.arn in retiring]

    # 3. the primary toward the desired count
    need = desired - len(mine)
    if need > 0 and primary.rollout_state != "FAILED":
        room = max(0, max_total - len(active)) if old else need
        count = min(need, room)
        if count > 0:
            if obs.now >= s.launch_not_before:
                b.launches.append(Launch(primary.id, primary.task_definition, count))
            else:
                b.wake_at(s.launch_not_before)
    elif need < 0:
        extra = sorted(mine, key=lambda t: (t.last_status == "RUNNING", healthy(t, obs), t.created_at))
        for task in extra[:-need]:
            b.stop(task, "ServiceSchedulerInitiated",
                   f"Scaling activity initiated by (deployment {primary.id})")

    # 4. old deployments drain while enough tasks stay healthy
    healthy_now = sum(1 for t in active if healthy(t, obs) and t.arn not in b.stopping)
    for task in sorted(old, key=lambda t: (healthy(t, obs), t.created_at)):
        if task.arn in b.stopping:
            continue
        reason = ("Container instance is draining" if task.arn in retiring
                  else f"Scaling activity initiated by (deployment {primary.id})")
        if healthy(task, obs):
            if healthy_now - 1 >= min_healthy:
                healthy_now -= 1
                b.stop(task, "ServiceSchedulerInitiated", reason)
        elif task.last_status != "RUNNING" or task.health_status == "UNHEALTHY":
            b.stop(task, "ServiceSchedulerInitiated", reason)  # not serving: nothing to keep it for
        elif min_healthy == 0:
            b.stop(task, "ServiceSchedulerInitiated", reason)  # still warming up, and nothing needs it


def _circuit_breaker(b: _Builder, obs: Observed, primary: m.Deployment, desired: int) -> m.Deployment:
    s = b.service
    breaker = s.deployment_configuration.circuit_breaker
    if not breaker.enable or primary.rollout_state != "IN_PROGRESS" or primary.had_running_at_start:
        return primary
    if primary.failed_tasks < circuit_threshold(desired):
        return primary
    failed = replace(primary, rollout_state="FAILED", updated_at=obs.now,
                     rollout_state_reason="ECS deployment circuit breaker: tasks failed to start.")
    b.event(f"(deployment {primary.id}) deployment failed: tasks failed to start.")
    deployments = tuple(failed if d.id == primary.id else d for d in s.deployments)
    target = next((d for d in s.deployments if d.id != primary.id and d.rollout_state == "COMPLETED"), None)
    if breaker.rollback and target is not None:
        now = obs.now
        rollback = m.Deployment(id=_rollback_id(primary.id), task_definition=target.task_definition,
                                created_at=now, updated_at=now, desired_count=s.desired_count,
                                launch_type=target.launch_type,
                                capacity_provider_strategy=target.capacity_provider_strategy,
                                network=target.network, rollback_of=primary.id, had_running_at_start=True,
                                rollout_state_reason=f"ECS deployment circuit breaker: rolling back to "
                                                     f"deploymentId {target.id}.")
        deployments = (rollback,) + tuple(replace(d, status="ACTIVE") for d in deployments)
        b.event(f"(deployment {primary.id}) deployment failed: rolling back to deployment {target.id}.")
        b.service = replace(s, deployments=deployments, task_definition=target.task_definition,
                            start_failures=0, crash_restarts=0, launch_not_before=0.0)
        return rollback
    b.service = replace(s, deployments=deployments)
    return failed


def _rollback_id(failed_id: str) -> str:
    digits = "".join(c for c in failed_id if c.isdigit())
    return "ecs-svc/" + str((int(digits or "0") * 7 + 1) % 10**19).zfill(19)


def _daemon(b: _Builder, obs: Observed, active: list[m.Task]) -> None:
    """One task per ACTIVE, connected instance; old deployments replaced instance by instance."""
    s = b.service
    primary = s.primary()
    eligible = [i for i in obs.instances if i.status == "ACTIVE" and i.agent_connected]
    eligible_arns = {i.arn for i in eligible}
    for task in active:
        if task.container_instance_arn not in eligible_arns or primary is None or s.status != "ACTIVE":
            b.stop(task, "ServiceSchedulerInitiated", "Daemon service task is no longer needed on this instance")
    if primary is None or s.status != "ACTIVE":
        return
    for inst in eligible:
        here = [t for t in active if t.container_instance_arn == inst.arn and t.arn not in b.stopping]
        if any(t.deployment_id == primary.id for t in here):
            for extra in [t for t in here if t.deployment_id != primary.id]:
                b.stop(extra, "ServiceSchedulerInitiated", f"Scaling activity initiated by (deployment {primary.id})")
            continue
        if here:  # maximumPercent 100: the old task goes first
            for old in here:
                b.stop(old, "ServiceSchedulerInitiated", f"Scaling activity initiated by (deployment {primary.id})")
            continue
        if obs.now >= s.launch_not_before:
            b.launches.append(Launch(primary.id, primary.task_definition, 1, inst.arn))
        else:
            b.wake_at(s.launch_not_before)


def _finish(b: _Builder, obs: Observed) -> Decision:
    s = b.service
    active = [t for t in obs.tasks if t.desired_status == "RUNNING" and t.last_status != "STOPPED"
              and t.arn not in b.stopping]
    by_dep: dict[str, int] = {}
    for t in active:
        by_dep[t.deployment_id] = by_dep.get(t.deployment_id, 0) + 1
        if (t.last_status == "RUNNING" and t.started_at is not None and not obs.load_balanced()
                and not obs.has_health_check.get(t.task_definition_arn)):
            b.wake_at(t.started_at + obs.healthy_after)  # it turns healthy then: the steady state may follow
    primary = s.primary()
    connected = {i.arn for i in obs.instances if i.agent_connected}
    # tasks not STOPPED yet, including those told to stop (a task on a disconnected instance
    # will never report back, so it does not hold its deployment)
    lingering: dict[str, int] = {}
    for t in obs.tasks:
        if t.last_status != "STOPPED" and (t.desired_status == "RUNNING" or t.container_instance_arn in connected):
            lingering[t.deployment_id] = lingering.get(t.deployment_id, 0) + 1

    def keep(d: m.Deployment) -> bool:
        # older deployments go once their last task has STOPPED (the services-stable waiter wants
        # exactly one, and its old containers are gone by then), except a FAILED one while the
        # rollback away from it is under way
        return (d.status == "PRIMARY" or lingering.get(d.id, 0) > 0
                or (primary is not None and primary.rollback_of == d.id and primary.rollout_state == "IN_PROGRESS"))

    deployments = tuple(d for d in s.deployments if keep(d))
    desired = s.desired_count if s.status == "ACTIVE" else 0
    if s.scheduling_strategy == "DAEMON" and s.status == "ACTIVE":
        desired = sum(1 for i in obs.instances if i.status == "ACTIVE" and i.agent_connected)
        s = replace(s, desired_count=desired)
    steady = (primary is not None and not b.launches and not b.stops
              and all(lingering.get(d.id, 0) == 0 for d in deployments if d.id != primary.id)
              and by_dep.get(primary.id, 0) == desired
              and all(healthy(t, obs) for t in active if t.deployment_id == primary.id))
    if primary is not None:
        new_primary = replace(primary, desired_count=desired)
        if steady and primary.rollout_state == "IN_PROGRESS":
            new_primary = replace(new_primary, rollout_state="COMPLETED", updated_at=obs.now,
                                  rollout_state_reason=f"ECS deployment {primary.id} completed.")
            b.event(f"(deployment {primary.id}) deployment completed.")
        deployments = tuple(new_primary if d.id == primary.id else d for d in deployments
                            if not steady or d.id == primary.id)
    if steady and (s.last_steady_at == 0.0 or s.last_steady_at < _last_change(s)):
        b.event("has reached a steady state.")
        s = replace(s, last_steady_at=obs.now)
    if steady and s.start_failures:
        s = replace(s, start_failures=0)  # tasks start again: the throttle starts over
    if not steady and s.last_steady_at:
        s = replace(s, last_steady_at=0.0)
    gone = [t for t in obs.tasks if t.last_status == "STOPPED" or (
        t.desired_status == "STOPPED" and t.arn not in b.stopping and t.container_instance_arn not in connected)]
    if s.status == "DRAINING" and not b.launches and len(gone) == len(obs.tasks):
        s = replace(s, status="INACTIVE", deployments=())   # deleted, and every task of it stopped
        deployments = ()
    events = tuple(m.ServiceEvent(id=f"{int(obs.now * 1000)}-{i}", created_at=obs.now, message=text)
                   for i, text in enumerate(reversed(b.events)))
    s = replace(s, deployments=deployments, events=(events + s.events)[:MAX_EVENTS])
    wake = min(b.wake) if b.wake else None
    return Decision(service=s, launches=tuple(b.launches), stops=tuple(b.stops), wake_at=wake)


def _last_change(s: m.Service) -> float:
    return max([d.updated_at for d in s.deployments] + [s.created_at])
