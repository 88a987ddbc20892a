"""The service scheduler's pure decisions (berth.controllers.service_logic.decide).

Most tests step a small simulated world: launched tasks become RUNNING one tick later (or fail to
start, or crash, as the test says), tasks asked to stop are STOPPED one tick later, and time
advances by `tick` seconds per step; the decision is re-run after every change, as the controller
does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from berth.controllers.service_logic import (
    CRASH_BACKOFF_MAX, Decision, Observed, circuit_threshold, decide, healthy,
)
from berth.controllers.targets import TargetStatus
from berth.ecs import model as m

ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
CLUSTER = f"{ACCOUNT}:cluster/default"
GOOD = f"{ACCOUNT}:task-definition/web:1"
NEW = f"{ACCOUNT}:task-definition/web:2"
BAD = f"{ACCOUNT}:task-definition/web:3"
T0 = 1_000_000.0


def instance(n: int, status: str = "ACTIVE", connected: bool = True) -> m.ContainerInstance:
    return m.ContainerInstance(arn=f"{ACCOUNT}:container-instance/default/i{n}", cluster_arn=CLUSTER,
                               ec2_instance_id=f"i-{n:017x}", registered_at=T0 - 100, cpu=2048, memory=4096,
                               status=status, agent_connected=connected)


def deployment(dep_id: str, taskdef: str = GOOD, *, state: str = "IN_PROGRESS", status: str = "PRIMARY",
               at: float = T0) -> m.Deployment:
    return m.Deployment(id=dep_id, task_definition=taskdef, created_at=at, updated_at=at, status=status,
                        rollout_state=state)


def service(desired: int = 3, *, minimum: int = 100, maximum: int = 200, breaker: bool = False,
            rollback: bool = False, strategy: str = "REPLICA", grace: int = 0) -> m.Service:
    return m.Service(
        arn=f"{ACCOUNT}:service/default/web", name="web", cluster_arn=CLUSTER, created_at=T0 - 1000,
        task_definition=GOOD, desired_count=desired, scheduling_strategy=strategy, health_check_grace_period=grace,
        deployment_configuration=m.DeploymentConfiguration(maximum, minimum, m.CircuitBreaker(breaker, rollback)),
        deployments=(deployment("ecs-svc/1000000000000000001", at=T0 - 1000),))


def task(n: int | str, dep: str, *, taskdef: str = GOOD, status: str = "RUNNING", started: float | None = None,
         inst: int = 1, created: float | None = None, **kw: object) -> m.Task:
    created = T0 - 500 if created is None else created
    if status == "RUNNING" and started is None:
        started = created + 1
    return m.Task(arn=f"{ACCOUNT}:task/default/{n}", cluster_arn=CLUSTER, task_definition_arn=taskdef,
                  created_at=created, container_instance_arn=instance(inst).arn, group="service:web",
                  deployment_id=dep, last_status=status, started_at=started,
                  reached_running=status == "RUNNING" or bool(kw.pop("reached_running", False)), **kw)  # type: ignore[arg-type]


def messages(s: m.Service) -> list[str]:
    return [e.message for e in s.events]


# --- the simulated world ------------------------------------------------------------------------

Fate = Callable[[m.Task], str]   # what a launched task does: "run" | "fail" (never RUNNING) | "crash" (dies after RUNNING)


@dataclass
class World:
    svc: m.Service
    instances: list[m.ContainerInstance] = field(default_factory=lambda: [instance(1), instance(2)])
    now: float = T0
    healthy_after: float = 40.0
    health: dict[str, bool] = field(default_factory=dict)
    fate: Fate = lambda t: "run"
    tasks: dict[str, m.Task] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    last: Decision | None = None
    history: list[Decision] = field(default_factory=list)

    def observe(self) -> Observed:
        return Observed(self.svc, tuple(self.tasks.values()), tuple(self.instances), self.health, self.now,
                        self.healthy_after)

    def reconcile(self) -> Decision:
        d = decide(self.observe())
        self.last = d
        self.history.append(d)
        self.svc = d.service
        for stop in d.stops:
            t = self.tasks[stop.task_arn]
            self.tasks[t.arn] = replace(t, desired_status="STOPPED", stop_code=t.stop_code or stop.stop_code,
                                        stopped_reason=t.stopped_reason or stop.reason, stopping_at=self.now)
        for launch in d.launches:
            eligible = [i for i in self.instances if i.status == "ACTIVE" and i.agent_connected]
            for k in range(launch.count):
                inst = launch.instance_arn or eligible[k % len(eligible)].arn
                n = next(self.ids)
                self.tasks[f"new{n}"] = m.Task(
                    arn=f"{ACCOUNT}:task/default/new{n}", cluster_arn=CLUSTER,
                    task_definition_arn=launch.task_definition, created_at=self.now, container_instance_arn=inst,
                    group="service:web", deployment_id=launch.deployment_id)
        self.tasks = {t.arn: t for t in self.tasks.values()}
        return d

    def advance(self, dt: float) -> None:
        """Time passes: tasks move one step along their fate."""
        self.now += dt
        for arn, t in list(self.tasks.items()):
            if t.last_status == "STOPPED":
                continue
            if t.desired_status == "STOPPED":
                self.tasks[arn] = replace(t, last_status="STOPPED", stopped_at=self.now)
                continue
            fate = self.fate(t)
            if t.last_status == "PROVISIONING":
                if fate == "fail":
                    self.tasks[arn] = replace(t, last_status="STOPPED", desired_status="STOPPED",
                                              stop_code="TaskFailedToStart", stopped_at=self.now,
                                              stopped_reason="CannotPullContainerError: no such image")
                else:
                    self.tasks[arn] = replace(t, last_status="RUNNING", started_at=self.now, reached_running=True)
            elif t.last_status == "RUNNING" and fate == "crash":
                self.tasks[arn] = replace(
                    t, last_status="STOPPED", desired_status="STOPPED", stop_code="EssentialContainerExited",
                    stopped_at=self.now, stopped_reason="Essential container in task exited",
                    containers=(m.TaskContainer(name="web", arn=t.arn + "/c", image="busybox", exit_code=1,
                                                last_status="STOPPED"),))

    def step(self, dt: float = 1.0) -> Decision:
        self.advance(dt)
        return self.reconcile()

    def live(self) -> list[m.Task]:
        return [t for t in self.tasks.values() if t.desired_status == "RUNNING" and t.last_status != "STOPPED"]

    def running(self) -> list[m.Task]:
        return [t for t in self.tasks.values() if t.last_status == "RUNNING"]

    def healthy_running(self) -> int:
        obs = self.observe()
        return sum(1 for t in self.tasks.values() if healthy(t, obs))

    def settle(self, steps: int = 200, dt: float = 1.0, check: Callable[[World], None] | None = None) -> None:
        """Step until the service is steady (one deployment, COMPLETED, nothing to do)."""
        for _ in range(steps):
            d = self.step(dt)
            if check is not None:
                check(self)
            if (len(self.svc.deployments) == 1 and self.svc.deployments[0].rollout_state == "COMPLETED"
                    and not d.launches and not d.stops and len(self.live()) == self.svc.desired_count
                    and all(t.last_status == "RUNNING" for t in self.live())):
                return
        raise AssertionError(f"not steady after {steps} steps: {self.svc.deployments} {messages(self.svc)[:5]}")


def steady_world(desired: int = 3, **kw: object) -> World:
    w = World(service(desired, **kw))  # type: ignore[arg-type]
    w.reconcile()
    w.settle()
    return w


def update(w: World, taskdef: str, dep_id: str = "ecs-svc/2000000000000000002") -> None:
    """What UpdateService writes for a new task definition revision."""
    old = tuple(replace(d, status="ACTIVE", updated_at=w.now) for d in w.svc.deployments)
    w.svc = replace(w.svc, task_definition=taskdef, deployments=(deployment(dep_id, taskdef, at=w.now),) + old,
                    start_failures=0, launch_not_before=0.0, crash_restarts=0)


# --- desired count and replacement ----------------------------------------------------------------

def test_a_new_service_launches_its_desired_count_and_completes_once_healthy() -> None:
    w = World(service(3), healthy_after=40.0)
    d = w.reconcile()
    assert [(x.task_definition, x.count) for x in d.launches] == [(GOOD, 3)]
    d = w.step(1.0)   # RUNNING now, healthy 40 s later: the loop must wake then
    assert not d.launches and not d.stops
    assert d.wake_at == pytest.approx(w.now + 40.0)
    assert w.svc.deployments[0].rollout_state == "IN_PROGRESS"
    assert "has reached a steady state" not in " ".join(messages(w.svc))
    w.now = d.wake_at
    d = w.reconcile()
    dep = w.svc.deployments[0]
    assert dep.rollout_state == "COMPLETED" and dep.rollout_state_reason == f"ECS deployment {dep.id} completed."
    assert sorted(messages(w.svc)) == sorted([f"(service web) (deployment {dep.id}) deployment completed.",
                                              "(service web) has reached a steady state."])
    assert d.wake_at is None


def test_steady_state_event_and_completed_only_once() -> None:
    w = steady_world()
    before = list(w.svc.events)
    for _ in range(5):
        w.step(10.0)
    assert w.svc.events == tuple(before)
    assert sum("has reached a steady state" in x for x in messages(w.svc)) == 1
    assert sum("deployment completed" in x for x in messages(w.svc)) == 1


def test_a_stopped_task_is_replaced_by_a_new_one_at_once() -> None:
    w = steady_world()
    victim = w.live()[0]
    w.tasks[victim.arn] = replace(victim, last_status="STOPPED", desired_status="STOPPED", stopped_at=w.now,
                                  stop_code="EssentialContainerExited",
                                  stopped_reason="Essential container in task exited",
                                  containers=(m.TaskContainer("web", "c", "busybox", exit_code=137),))
    d = w.reconcile()
    assert [x.count for x in d.launches] == [1]
    text = messages(w.svc)[0]
    assert f"task {victim.task_id} stopped after running" in text
    assert "Essential container in task exited" in text and "web exit code 137" in text
    assert text.endswith("starting a replacement")
    # counted once: the next pass neither launches again nor repeats the event
    d = w.reconcile()
    assert not d.launches and messages(w.svc)[0] == text


def test_tasks_stopped_by_the_scheduler_or_a_user_are_not_failures() -> None:
    w = steady_world()
    victim = w.live()[0]
    w.tasks[victim.arn] = replace(victim, last_status="STOPPED", desired_status="STOPPED", stopped_at=w.now,
                                  stop_code="UserInitiated", stopped_reason="Task stopped by user")
    d = w.reconcile()
    assert [x.count for x in d.launches] == [1]
    assert w.svc.crash_restarts == 0 and w.svc.start_failures == 0 and w.svc.deployments[0].failed_tasks == 0


def test_scale_up_and_down_stops_pending_tasks_first() -> None:
    w = steady_world()
    w.svc = replace(w.svc, desired_count=5)
    d = w.reconcile()
    assert [x.count for x in d.launches] == [2]
    pending = {t.arn for t in w.live() if t.last_status == "PROVISIONING"}
    assert len(pending) == 2
    w.svc = replace(w.svc, desired_count=1)
    d = w.reconcile()
    stopped = [s.task_arn for s in d.stops]
    assert len(stopped) == 4 and set(stopped[:2]) == pending
    assert all(s.stop_code == "ServiceSchedulerInitiated" and s.reason.startswith("Scaling activity initiated by")
               for s in d.stops)
    w.settle()
    assert len(w.live()) == 1


def test_scale_to_zero_is_steady() -> None:
    w = steady_world()
    w.svc = replace(w.svc, desired_count=0)
    w.reconcile()
    w.step()
    d = w.step()
    assert not w.live() and not d.launches and not d.stops
    assert len(w.svc.deployments) == 1


# --- rolling deployments -------------------------------------------------------------------------

@pytest.mark.parametrize(("minimum", "maximum", "desired", "floor", "ceiling"), [
    (100, 200, 3, 3, 6), (50, 100, 3, 2, 3), (50, 200, 4, 2, 8), (0, 100, 2, 0, 2)])
def test_rolling_deployment_respects_minimum_healthy_and_maximum_percent(
        minimum: int, maximum: int, desired: int, floor: int, ceiling: int) -> None:
    w = steady_world(desired, minimum=minimum, maximum=maximum)
    w.healthy_after = 3.0
    update(w, NEW)
    lows = []

    def check(world: World) -> None:
        lows.append(world.healthy_running())
        assert world.healthy_running() >= floor, "too few healthy tasks during the rollout"
        assert len(world.live()) <= ceiling, "more tasks than maximumPercent allows"

    w.reconcile()
    check(w)
    w.settle(check=check)
    assert min(lows) == floor or floor == 0   # the bound is used, not just respected by doing nothing
    assert [d.task_definition for d in w.svc.deployments] == [NEW]
    assert w.svc.deployments[0].rollout_state == "COMPLETED"
    assert {t.task_definition_arn for t in w.live()} == {NEW} and len(w.live()) == desired
    assert sum("has reached a steady state" in x for x in messages(w.svc)) == 2


def test_old_deployment_is_dropped_once_its_last_task_is_stopped() -> None:
    w = steady_world()
    w.healthy_after = 1.0
    update(w, NEW)
    seen_two = False
    for _ in range(50):
        w.step()
        # not STOPPED yet, told to stop or not: an old deployment is listed until its last task has
        # stopped (its containers are gone when services-stable returns)
        live_old = [t for t in w.tasks.values() if t.task_definition_arn == GOOD and t.last_status != "STOPPED"]
        if len(w.svc.deployments) == 2:
            seen_two = True
            assert live_old, "an ACTIVE deployment with no task left must go (services-stable wants one)"
        else:
            assert not live_old, "the old deployment went while its tasks were still stopping"
        if len(w.svc.deployments) == 1 and w.svc.deployments[0].rollout_state == "COMPLETED":
            break
    assert seen_two and len(w.svc.deployments) == 1


def test_old_tasks_still_warming_up_are_kept_until_healthy() -> None:
    w = World(service(3), healthy_after=40.0)
    w.reconcile()
    w.step()          # 3 RUNNING, not yet healthy
    update(w, NEW)
    d = w.reconcile()
    assert [x.count for x in d.launches] == [3] and not d.stops
    assert len(w.running()) == 3


# --- circuit breaker -----------------------------------------------------------------------------

def test_circuit_threshold_is_half_the_desired_count_clamped() -> None:
    assert [circuit_threshold(n) for n in (0, 1, 3, 6, 7, 8, 10, 399, 400, 5000)] == [3, 3, 3, 3, 4, 4, 5, 200, 200, 200]


def _bad_world(desired: int = 3, rollback: bool = True, fate: str = "fail") -> World:
    w = steady_world(desired, breaker=True, rollback=rollback)
    w.healthy_after = 1.0
    w.fate = lambda t: fate if t.task_definition_arn == BAD else "run"
    update(w, BAD, "ecs-svc/3000000000000000003")
    return w


@pytest.mark.parametrize("fate", ["fail", "crash"])
def test_circuit_breaker_fails_the_rollout_and_rolls_back(fate: str) -> None:
    w = _bad_world(fate=fate)
    bad_id = "ecs-svc/3000000000000000003"
    good_id = w.svc.deployments[1].id
    seen_failed = None
    w.reconcile()
    for _ in range(100):
        w.step()
        assert len([t for t in w.running() if t.task_definition_arn == GOOD]) >= 3 or seen_failed
        failed = [d for d in w.svc.deployments if d.id == bad_id and d.rollout_state == "FAILED"]
        if failed and seen_failed is None:
            seen_failed = failed[0]
            primary = w.svc.primary()
            assert primary is not None and primary.task_definition == GOOD and primary.rollback_of == bad_id
            assert failed[0].status == "ACTIVE" and failed[0].failed_tasks >= 3
            assert failed[0].rollout_state_reason == "ECS deployment circuit breaker: tasks failed to start."
            assert w.svc.task_definition == GOOD
        if seen_failed and len(w.svc.deployments) == 1 and w.svc.deployments[0].rollout_state == "COMPLETED":
            break
    assert seen_failed is not None and seen_failed.failed_tasks == circuit_threshold(3)
    assert [d.task_definition for d in w.svc.deployments] == [GOOD]
    assert len([t for t in w.live() if t.last_status == "RUNNING" and t.task_definition_arn == GOOD]) == 3
    text = "\n".join(messages(w.svc))
    assert f"(deployment {bad_id}) deployment failed: tasks failed to start." in text
    assert f"rolling back to deployment {good_id}" in text
    bad_launched = sum(1 for t in w.tasks.values() if t.task_definition_arn == BAD)
    assert bad_launched == 3, "nothing more launched for the failed deployment"


def test_failed_deployment_without_rollback_launches_nothing_more() -> None:
    w = _bad_world(rollback=False)
    w.reconcile()
    for _ in range(40):
        w.step(5.0)
    primary = w.svc.primary()
    assert primary is not None and primary.task_definition == BAD and primary.rollout_state == "FAILED"
    assert sum(1 for t in w.tasks.values() if t.task_definition_arn == BAD) == 3
    assert len([t for t in w.running() if t.task_definition_arn == GOOD]) == 3   # the old ones keep serving
    assert not w.last or not w.last.launches


def test_breaker_threshold_scales_with_desired_count() -> None:
    w = _bad_world(desired=10)
    w.reconcile()
    counts = []
    for _ in range(200):
        w.step(5.0)
        bad = next(d for d in w.svc.deployments if d.task_definition == BAD) if any(
            d.task_definition == BAD for d in w.svc.deployments) else None
        if bad is not None:
            counts.append((bad.failed_tasks, bad.rollout_state))
            if bad.rollout_state == "FAILED":
                break
    assert counts[-1] == (5, "FAILED") or counts[-1][0] >= 5 and counts[-1][1] == "FAILED"
    assert all(state == "IN_PROGRESS" for n, state in counts if n < 5)


def test_breaker_is_off_unless_enabled() -> None:
    w = steady_world()
    w.fate = lambda t: "fail" if t.task_definition_arn == BAD else "run"
    update(w, BAD)
    w.reconcile()
    for _ in range(30):
        w.step(30.0)
    primary = w.svc.primary()
    assert primary is not None and primary.rollout_state == "IN_PROGRESS" and primary.failed_tasks >= 3


# --- throttles and back-offs ---------------------------------------------------------------------

def test_tasks_that_never_start_are_throttled_with_ecs_event() -> None:
    w = World(service(1), fate=lambda t: "fail")
    launch_times = [w.now]
    w.reconcile()
    for _ in range(400):
        d = w.step(0.5)
        if d.launches:
            launch_times.append(w.now)
        if len(launch_times) >= 7:
            break
    # fails 0.5 s after each launch; the first is relaunched at once, then 2, 4, 8, ... s later
    gaps = [b - a for a, b in itertools.pairwise(launch_times)]
    assert gaps == [0.5, 2.5, 4.5, 8.5, 16.5, 32.5], gaps
    text = messages(w.svc)
    assert any(x == "(service web) is unable to consistently start tasks successfully. For more information, "
                    "see the Troubleshooting section of the Amazon ECS Developer Guide." for x in text)
    assert any("failed to start: CannotPullContainerError" in x and "next launch in" in x for x in text)


def test_throttle_wakes_the_loop_when_launching_may_resume() -> None:
    w = World(service(1), fate=lambda t: "fail")
    w.reconcile()
    w.step(0.1)       # the first failure: relaunched at once
    d = w.step(0.1)   # the second: 2 s
    assert not d.launches and w.svc.start_failures == 2
    assert d.wake_at == pytest.approx(w.now + 2.0) and w.svc.launch_not_before == pytest.approx(w.now + 2.0)
    w.now += 1.9
    assert not w.reconcile().launches
    w.now += 0.1
    assert w.reconcile().launches


def test_crash_back_off_first_immediate_then_exponential() -> None:
    w = World(service(1), healthy_after=1.0)
    w.reconcile()
    w.settle()
    delays = []
    for _ in range(5):
        victim = w.live()[0]
        w.advance(2.0)
        w.tasks[victim.arn] = replace(victim, last_status="STOPPED", desired_status="STOPPED", stopped_at=w.now,
                                      stop_code="EssentialContainerExited",
                                      stopped_reason="Essential container in task exited")
        d = w.reconcile()
        if d.launches:
            delays.append(0.0)
        else:
            assert d.wake_at is not None
            delays.append(d.wake_at - w.now)
            w.now = d.wake_at
            assert w.reconcile().launches
        w.step()                     # the replacement runs
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0]
    text = messages(w.svc)
    assert any("starting a replacement in 8 s (crash back-off: 5 in a row)" in x for x in text)
    assert CRASH_BACKOFF_MAX >= 8


def test_a_task_that_ran_long_resets_the_crash_back_off() -> None:
    w = World(service(1), healthy_after=1.0)
    w.reconcile()
    w.settle()
    w.svc = replace(w.svc, crash_restarts=6)
    victim = w.live()[0]
    w.advance(3600.0)
    w.tasks[victim.arn] = replace(victim, last_status="STOPPED", desired_status="STOPPED", stopped_at=w.now,
                                  stop_code="EssentialContainerExited", stopped_reason="Essential container in task exited")
    assert w.reconcile().launches


# --- health ---------------------------------------------------------------------------------------

def test_unhealthy_tasks_are_replaced_after_the_grace_period_only() -> None:
    w = World(service(1, grace=30), health={GOOD: True})
    w.reconcile()
    w.step()
    t = w.live()[0]
    assert t.started_at == w.now
    w.tasks[t.arn] = replace(t, health_status="UNHEALTHY")
    d = w.reconcile()
    assert not d.stops and d.wake_at == pytest.approx(t.started_at + 30)
    w.now = t.started_at + 29.5
    assert not w.reconcile().stops
    w.now = t.started_at + 30
    d = w.reconcile()
    assert [(s.task_arn, s.reason) for s in d.stops] == [(t.arn, "Task failed container health checks")]
    assert [x.count for x in d.launches] == [1]


def test_health_checked_tasks_are_healthy_only_when_healthy() -> None:
    w = World(service(1), health={GOOD: True})
    w.reconcile()
    w.step(100.0)
    d = w.step(100.0)
    assert w.svc.deployments[0].rollout_state == "IN_PROGRESS" and d.wake_at is None
    t = w.live()[0]
    w.tasks[t.arn] = replace(t, health_status="HEALTHY")
    w.reconcile()
    assert w.svc.deployments[0].rollout_state == "COMPLETED"


# --- instances --------------------------------------------------------------------------------------

def test_tasks_on_a_draining_instance_are_replaced_within_the_deployment_bounds() -> None:
    w = World(service(2), instances=[instance(1), instance(2)], healthy_after=2.0)
    w.reconcile()
    w.settle()
    on_first = [t for t in w.live() if t.container_instance_arn == instance(1).arn]
    assert on_first
    w.instances = [instance(1, "DRAINING"), instance(2)]
    d = w.reconcile()
    assert [x.count for x in d.launches] == [len(on_first)] and not d.stops   # replacements first (max 200 %)

    def check(world: World) -> None:
        assert world.healthy_running() >= 2

    w.settle(check=check)
    assert all(t.container_instance_arn == instance(2).arn for t in w.live())
    stopped = [t for t in w.tasks.values() if t.arn in {x.arn for x in on_first}]
    assert all(t.stopped_reason == "Container instance is draining" for t in stopped)


# --- DAEMON -------------------------------------------------------------------------------------------

def test_daemon_runs_one_task_per_active_connected_instance() -> None:
    w = World(service(0, strategy="DAEMON", minimum=0, maximum=100),
              instances=[instance(1), instance(2), instance(3, connected=False)], healthy_after=1.0)
    d = w.reconcile()
    assert sorted(x.instance_arn for x in d.launches) == [instance(1).arn, instance(2).arn]
    assert all(x.count == 1 for x in d.launches)
    w.settle()
    assert w.svc.desired_count == 2
    # a new deployment replaces the task on each instance
    update(w, NEW)
    d = w.reconcile()
    assert len(d.stops) == 2 and not d.launches
    d = w.reconcile()
    assert sorted(x.instance_arn for x in d.launches) == [instance(1).arn, instance(2).arn]
    w.settle()
    assert {t.task_definition_arn for t in w.live()} == {NEW}
    # a DRAINING instance loses its daemon task
    w.instances = [instance(1, "DRAINING"), instance(2), instance(3, connected=False)]
    d = w.reconcile()
    assert [w.tasks[s.task_arn].container_instance_arn for s in d.stops] == [instance(1).arn]
    w.settle()
    assert w.svc.desired_count == 1 and len(w.live()) == 1


# --- deletion ----------------------------------------------------------------------------------------

def test_draining_service_stops_its_tasks_then_turns_inactive() -> None:
    w = steady_world()
    w.svc = replace(w.svc, status="DRAINING", desired_count=0)
    d = w.reconcile()
    assert len(d.stops) == 3 and not d.launches
    assert w.svc.status == "DRAINING", "INACTIVE only once the tasks are stopped"
    w.step()
    assert w.svc.status == "INACTIVE" and w.svc.deployments == ()
    assert all(t.last_status == "STOPPED" for t in w.tasks.values())


# --- events -----------------------------------------------------------------------------------------

def test_events_are_newest_first_and_capped_at_100() -> None:
    old = tuple(m.ServiceEvent(id=f"old{i}", created_at=T0 - 1000 + i, message=f"(service web) old {i}")
                for i in reversed(range(100)))   # stored newest first
    w = World(replace(service(1), events=old))
    w.reconcile()
    w.step()
    victim = w.live()[0]
    w.tasks[victim.arn] = replace(victim, last_status="STOPPED", desired_status="STOPPED", stopped_at=w.now,
                                  stop_code="EssentialContainerExited", stopped_reason="boom")
    w.reconcile()
    assert len(w.svc.events) == 100
    assert "stopped after running" in w.svc.events[0].message
    assert w.svc.events[-1].id == "old1"   # the oldest ones fell off
    times = [e.created_at for e in w.svc.events]
    assert times == sorted(times, reverse=True)


def test_stopped_tasks_of_an_earlier_service_of_that_name_are_not_counted() -> None:
    svc = replace(service(1), created_at=T0)
    ghost = task("ghost", "ecs-svc/0", status="STOPPED", created=T0 - 50, stop_code="EssentialContainerExited",
                 stopped_reason="Essential container in task exited", reached_running=True, stopped_at=T0 - 10)
    w = World(svc, tasks={ghost.arn: ghost})
    d = w.reconcile()
    assert [x.count for x in d.launches] == [1]
    assert w.svc.crash_restarts == 0 and not any("stopped after running" in x for x in messages(w.svc))


def test_decide_is_level_triggered() -> None:
    w = steady_world()
    obs = w.observe()
    assert decide(obs) == decide(obs)


# --- load-balanced services: target health (controllers/targets.py feeds it) ----------------------------

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


def lb_service(desired: int = 2, **kw: object) -> m.Service:
    return replace(service(desired, **kw),  # type: ignore[arg-type]
                   load_balancers=(m.LoadBalancer(TG, "", "web", 80),))


@dataclass
class LbWorld(World):
    """The world with a load balancer: each RUNNING task has one target whose state the test sets
    (default `initial`, as a freshly registered target)."""

    targets: dict[str, str] = field(default_factory=dict)     # task ARN → target state

    def observe(self) -> Observed:
        health = {t.arn: (TargetStatus(TG, "i-1", 32768 + i, self.targets.get(t.arn, "initial")),)
                  for i, t in enumerate(self.tasks.values()) if t.last_status == "RUNNING"}
        return replace(super().observe(), target_health=health)

    def set_all(self, state: str) -> None:
        for t in self.live():
            self.targets[t.arn] = state


def test_with_a_load_balancer_a_task_is_healthy_only_once_its_target_is() -> None:
    w = LbWorld(lb_service())
    w.reconcile()
    w.step()
    w.now += 100                                      # no 40 s rule behind a load balancer
    d = w.reconcile()
    assert w.healthy_running() == 0 and w.svc.deployments[0].rollout_state == "IN_PROGRESS"
    assert d.wake_at is None                          # the target pass polls health, not a timer here
    w.set_all("healthy")
    w.reconcile()
    assert w.healthy_running() == 2 and w.svc.deployments[0].rollout_state == "COMPLETED"
    assert "(service web) has reached a steady state." in messages(w.svc)


@pytest.mark.parametrize("state", ["unused", "unavailable"])
def test_a_target_elb_does_not_judge_counts_as_healthy(state: str) -> None:
    w = LbWorld(lb_service(1))
    w.reconcile()
    w.step()
    w.set_all(state)
    w.reconcile()
    assert w.svc.deployments[0].rollout_state == "COMPLETED"


def test_with_a_load_balancer_and_a_container_check_both_must_be_healthy() -> None:
    w = LbWorld(lb_service(1), health={GOOD: True})
    w.reconcile()
    w.step()
    w.set_all("healthy")
    assert w.healthy_running() == 0                   # container health still UNKNOWN
    (t,) = w.live()
    w.tasks[t.arn] = replace(t, health_status="HEALTHY")
    assert w.healthy_running() == 1


def test_no_target_health_means_no_load_balancer_integration() -> None:
    obs = replace(LbWorld(lb_service(1)).observe(), target_health=None)
    t = task(1, "ecs-svc/1000000000000000001", started=T0 - 100)
    assert healthy(t, replace(obs, tasks=(t,)))       # the 40 s rule, as before


def test_a_rolling_deployment_keeps_old_tasks_until_new_targets_are_healthy() -> None:
    w = LbWorld(lb_service(2))
    w.reconcile()
    w.step()
    w.set_all("healthy")
    w.settle()
    old = {t.arn for t in w.live()}
    update(w, NEW)
    w.reconcile()
    for _ in range(5):
        w.step(30.0)                                  # new targets stay `initial`
        assert {t.arn for t in w.live()} >= old
    for t in w.live():
        if t.arn not in old:
            w.targets[t.arn] = "healthy"
    w.settle()
    assert not old & {t.arn for t in w.live()}


def test_an_unhealthy_target_is_replaced_after_the_grace_period() -> None:
    w = LbWorld(lb_service(2, grace=60))
    w.reconcile()
    w.step()
    w.set_all("healthy")
    w.settle()
    victim = w.live()[0]
    w.targets[victim.arn] = "unhealthy"
    started = victim.started_at or 0.0
    assert w.now < started + 60
    d = w.reconcile()
    assert not d.stops and d.wake_at == pytest.approx(started + 60)
    w.now = started + 60
    d = w.reconcile()
    assert [(s.task_arn, s.stop_code, s.reason) for s in d.stops] == [
        (victim.arn, "ServiceSchedulerInitiated", f"Task failed ELB health checks in (target-group {TG})")]
    assert any(x.startswith("(service web) (port ") and x.endswith(
        f"is unhealthy in (target-group {TG}) due to (reason Health checks failed).") for x in messages(w.svc))
    w.step()
    assert len(w.live()) == 2 and victim.arn not in {t.arn for t in w.live()}   # replaced


def test_an_unhealthy_target_within_the_grace_period_is_kept() -> None:
    w = LbWorld(lb_service(1, grace=300))
    w.reconcile()
    w.step()
    (t,) = w.live()
    w.targets[t.arn] = "unhealthy"
    d = w.reconcile()
    assert not d.stops and d.wake_at == pytest.approx((t.started_at or 0) + 300)
