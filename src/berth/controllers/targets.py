"""Service tasks behind load balancers (aws-apis.md §2.3, §2.4, §3): the target side of the
service controller's pass.

For each service with `loadBalancers`, every task of its primary deployment that is RUNNING (and
desired RUNNING) has one target per load balancer entry registered in its target group — bridge and host mode: an
`instance` target, the container instance's ec2InstanceId on the host port bound for
containerName/containerPort; awsvpc: an `ip` target, the task's address on containerPort. A task
asked to stop (or stopped) has its targets deregistered, and the task record learns when their
deregistration delay ends (`lb_drain_until`): the agent keeps the containers in DEACTIVATING until
then, so in-flight requests finish. A task of an earlier deployment keeps the targets it was
registered with (`lb_targets`), so an UpdateService that changes `loadBalancers` (a new deployment)
registers new tasks in the new groups while the old ones keep serving from the old groups until
the rollout stops them: then they drain, and no target is left in a group the service dropped.

The ELB domain is reached only through `TargetRegistry` (declared here, by the consumer); the
daemon hands in `berth.elb.ecs_targets.ElbTargets`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from berth.ecs import Repo
from berth.ecs import model as m

log = logging.getLogger("berth.controllers")

# target states that let a task count as healthy: `unused` (the group is not behind a listener)
# and `unavailable` (health checks off) mean ELB is not judging it
SERVING = ("healthy", "unused", "unavailable")
PENDING_POLL = 1.0            # while a target is being checked, look again this often
HEALTH_POLL = 2.0             # while targets serve: health changes in the proxy, not in the store


class TargetRegistry(Protocol):
    """What the service controller asks of the load balancer (ELBv2 target groups)."""

    def register(self, target_group_arn: str, targets: Sequence[tuple[str, int]]) -> None:
        """Register (Id, Port) targets; registering a registered (or draining) one is harmless.
        Raises when the group or a target is refused (the message becomes a service event)."""

    def deregister(self, target_group_arn: str, targets: Sequence[tuple[str, int]]) -> int:
        """Deregister those of the targets that are registered and not draining yet; returns how
        many were. An unknown group or target is no error (there is nothing to drain)."""

    def health(self, target_group_arn: str) -> Mapping[tuple[str, int], tuple[str, str]]:
        """(Id, Port) → (state, reason code) of every registered target, as DescribeTargetHealth
        says; empty for an unknown group."""

    def deregistration_delay(self, target_group_arn: str) -> float:
        """The group's `deregistration_delay.timeout_seconds` (0 for an unknown group)."""


@dataclass(frozen=True)
class TargetStatus:
    """One target of a task as the load balancer sees it (for `service_logic.decide`)."""

    target_group_arn: str
    id: str
    port: int
    state: str                     # ELB's state, or "unregistered" (not registered yet)
    reason: str = ""


@dataclass
class TargetPass:
    """What one service's target pass found and did."""

    health: dict[str, tuple[TargetStatus, ...]] = field(default_factory=dict)   # task ARN → its targets
    events: list[str] = field(default_factory=list)
    wake_at: float | None = None


def expected_targets(service: m.Service, task: m.Task, instance_id: str) -> tuple[m.LbTarget, ...] | None:
    """The targets the task should have, one per load balancer entry; None while what they need
    (a bound host port, the task's address) is not known yet."""
    out = []
    for lb in service.load_balancers:
        if not lb.target_group_arn:
            continue  # a Classic Load Balancer name: berth has none
        if task.network_mode == "awsvpc":
            if not task.private_ip:
                return None
            out.append(m.LbTarget(lb.target_group_arn, task.private_ip, lb.container_port))
            continue
        container = next((c for c in task.containers if c.name == lb.container_name), None)
        binding = next((b for b in (container.network_bindings if container else ())
                        if b.container_port == lb.container_port and b.protocol == "tcp" and b.host_port), None)
        if binding is None or not instance_id:
            return None
        out.append(m.LbTarget(lb.target_group_arn, instance_id, binding.host_port))
    return tuple(out)


def _stopping(task: m.Task) -> bool:
    return task.desired_status == "STOPPED" or m.state_index(task.last_status) > m.state_index("RUNNING")


class TargetSync:
    """Registers and deregisters a service's tasks; reads their target health."""

    def __init__(self, repo: Repo, registry: TargetRegistry, clock: Callable[[], float]) -> None:
        self.repo = repo
        self.registry = registry
        self.clock = clock

    def mark_launched(self, service: m.Service, tasks: Sequence[m.Task]) -> None:
        """Tasks just launched for a load-balanced service: the agent will drain them before stopping."""
        if not any(lb.target_group_arn for lb in service.load_balancers):
            return
        for task in tasks:
            self.repo.update(m.Task, task.arn, lambda t: None if t.load_balanced else replace(t, load_balanced=True))

    def reconcile(self, service: m.Service, tasks: Sequence[m.Task],
                  instances: Sequence[m.ContainerInstance]) -> TargetPass:
        out = TargetPass()
        groups = list(dict.fromkeys(lb.target_group_arn for lb in service.load_balancers if lb.target_group_arn))
        mine = [t for t in tasks if t.load_balanced or t.lb_targets or t.last_status == "RUNNING"]
        if not groups and not any(t.lb_targets and t.lb_drain_until is None for t in mine):
            return out
        now = self.clock()
        health: dict[str, Mapping[tuple[str, int], tuple[str, str]]] = {}

        def health_of(tg: str) -> Mapping[tuple[str, int], tuple[str, str]]:
            if tg not in health:
                try:
                    health[tg] = self.registry.health(tg)
                except Exception as err:  # noqa: BLE001 - the pass goes on; the targets look unregistered
                    log.warning("target health of %s: %s", tg, err)
                    health[tg] = {}
            return health[tg]

        instance_ids = {i.arn: i.ec2_instance_id for i in instances}
        primary = service.primary()
        to_register: dict[str, list[m.LbTarget]] = {}
        pending = serving = False
        for task in mine:
            if _stopping(task) or task.last_status != "RUNNING":
                continue
            expected: tuple[m.LbTarget, ...] | None
            earlier = bool(task.lb_targets) and primary is not None and bool(task.deployment_id) and \
                task.deployment_id != primary.id
            if earlier:
                # a task of an earlier deployment keeps the targets it was registered with (the
                # service's loadBalancers may have changed since: UpdateService starts a new
                # deployment then), and is not registered again: they drain when the rollout stops it
                expected = task.lb_targets
            elif not groups:
                continue
            else:
                expected = expected_targets(service, task, instance_ids.get(task.container_instance_arn, ""))
            if expected is None:
                out.health[task.arn] = (TargetStatus("", "", 0, "unregistered"),)
                pending = True
                continue
            statuses = []
            for target in expected:
                state, reason = health_of(target.target_group_arn).get((target.id, target.port),
                                                                       ("unregistered", ""))
                if state in ("unregistered", "draining"):
                    if not earlier:
                        to_register.setdefault(task.arn, []).append(target)
                    state, reason = "unregistered", ""
                statuses.append(TargetStatus(target.target_group_arn, target.id, target.port, state, reason))
                pending = pending or (state not in SERVING + ("unhealthy",) and not earlier)
                serving = True
            out.health[task.arn] = tuple(statuses)
        if to_register:
            self._register(service, tasks, to_register, out)
        for task in mine:
            if _stopping(task) and (task.load_balanced or task.lb_targets) and task.lb_drain_until is None:
                self._deregister(task, out, now)
        if pending or serving:
            out.wake_at = now + (PENDING_POLL if pending else HEALTH_POLL)
        return out

    def _register(self, service: m.Service, tasks: Sequence[m.Task], wanted: dict[str, list[m.LbTarget]],
                  out: TargetPass) -> None:
        delays: dict[str, float] = {}
        for targets in wanted.values():
            for t in targets:
                if t.target_group_arn not in delays:
                    delays[t.target_group_arn] = self._delay(t.target_group_arn)
        # the task record learns its targets first: a stop from now on drains them
        recorded: dict[str, list[m.LbTarget]] = {}
        for arn, targets in wanted.items():
            def change(t: m.Task, targets: list[m.LbTarget] = targets) -> m.Task | None:
                if _stopping(t):
                    return None
                have = set(t.lb_targets)
                add = tuple(x for x in targets if x not in have)
                drain = max([t.lb_drain_seconds] + [delays.get(x.target_group_arn, 0.0) for x in targets])
                if not add and t.load_balanced and drain == t.lb_drain_seconds:
                    return t
                return replace(t, load_balanced=True, lb_targets=t.lb_targets + add, lb_drain_seconds=drain)
            if self.repo.update(m.Task, arn, change) is not None or self._still_running(arn):
                recorded[arn] = targets
        by_group: dict[str, list[m.LbTarget]] = {}
        for targets in recorded.values():
            for t in targets:
                by_group.setdefault(t.target_group_arn, []).append(t)
        for tg, targets in by_group.items():
            pairs = list(dict.fromkeys((t.id, t.port) for t in targets))
            try:
                self.registry.register(tg, pairs)
            except Exception as err:  # noqa: BLE001 - becomes a service event; retried next pass
                out.events.append(f"(service {service.name}) failed to register targets in "
                                  f"(target-group {tg}) with (error {err})")
                continue
            out.events.append(f"(service {service.name}) registered {len(pairs)} targets in (target-group {tg})")

    def _still_running(self, arn: str) -> bool:
        task = self.repo.get(m.Task, arn)
        return task is not None and not _stopping(task)

    def _deregister(self, task: m.Task, out: TargetPass, now: float) -> None:
        by_group: dict[str, list[tuple[str, int]]] = {}
        for t in task.lb_targets:
            by_group.setdefault(t.target_group_arn, []).append((t.id, t.port))
        delay = 0.0
        service = task.group.removeprefix("service:")
        for tg, pairs in by_group.items():
            try:
                count = self.registry.deregister(tg, pairs)
            except Exception as err:  # noqa: BLE001 - retried next pass
                log.warning("could not deregister the targets of task %s from %s: %s", task.arn, tg, err)
                return
            if count:
                delay = max(delay, self._delay(tg))
                out.events.append(f"(service {service}) deregistered {count} targets in (target-group {tg})")
        until = now + delay

        def change(t: m.Task) -> m.Task | None:
            if t.lb_drain_until is not None:
                return None
            return replace(t, lb_drain_until=until)
        self.repo.update(m.Task, task.arn, change)

    def _delay(self, tg: str) -> float:
        try:
            return float(self.registry.deregistration_delay(tg))
        except Exception as err:  # noqa: BLE001
            log.warning("deregistration delay of %s: %s", tg, err)
            return 0.0
