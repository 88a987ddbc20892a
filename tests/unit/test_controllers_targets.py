"""ECS services behind ELBv2 target groups: EcsService and ElbService on one MemoryStore with a
MemoryPlane, the service controller with the `ElbTargets` adapter, and a fake agent (reports) or
the real agent on a MemoryEngine. Registration (bridge: instance targets on host ports; awsvpc: ip
targets), deregistration with draining before the containers stop, health gating of deployments,
replacement of tasks failing ELB health checks."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from berth.agent import Agent, AgentConfig, host_resources
from berth.agent import _agent as agent_module
from berth.agent.testing import MemoryEngine
from berth.controllers.service_controller import ServiceController
from berth.controllers.targets import TargetSync, expected_targets
from berth.ecs import (
    ContainerReport, Context, EcsService, InstanceResources, LocalControlPlane, Repo, TaskReport,
)
from berth.ecs import Scope as EcsScope
from berth.ecs import model as m
from berth.elb import ElbService, Scope, backend_name
from berth.elb import errors as elb_errors
from berth.elb import model as em
from berth.elb.ecs_targets import ElbTargets, scope_of
from berth.elb.testing import MemoryPlane
from berth.state import MemoryStore

REGION, ACCOUNT = "us-east-1", "123456789012"
ECS = EcsScope(REGION, ACCOUNT)
ELB = Scope(REGION, ACCOUNT)
T0 = 1_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Env:
    """One control plane: ECS + ELB on one store, the service controller with the adapter."""

    def __init__(self, *, network_mode: str = "bridge", delay: str = "20", grace: int = 0,
                 clock: Callable[[], float] | None = None, load_balanced: bool = True) -> None:
        self.clock: Any = clock or Clock()   # a Clock the test moves, or time.time
        self.store = MemoryStore()
        self.ctx = Context(Repo(self.store), clock=self.clock)
        self.ecs = EcsService(self.ctx)
        self.plane = MemoryPlane()
        self.elb = ElbService(self.store, self.plane, clock=self.clock, resolve_instance=lambda _id: "127.0.0.1")
        self.registry = ElbTargets(self.elb)
        self.controller = ServiceController(self.ecs, clock=self.clock, targets=self.registry)
        self.instance = self.ecs.register_agent_instance(ECS, "default", "agent-1", InstanceResources(
            cpu=4096, memory=4096, attributes=(("ecs.availability-zone", "local-1a"),)))
        self.lb = self.elb.create_load_balancer(ELB, {"Name": "web"})
        self.tg = self.elb.create_target_group(ELB, {
            "Name": "web", "Protocol": "HTTP", "Port": "80",
            "TargetType": "ip" if network_mode == "awsvpc" else "instance"})
        self.elb.modify_target_group_attributes(ELB, {"TargetGroupArn": self.tg.arn, "Attributes": [
            {"Key": "deregistration_delay.timeout_seconds", "Value": delay}]})
        self.elb.create_listener(ELB, {"LoadBalancerArn": self.lb.arn, "Port": "18080", "DefaultActions": [
            {"Type": "forward", "TargetGroupArn": self.tg.arn}]})
        self.network_mode = network_mode
        self.register("web:1")
        params: dict[str, Any] = {
            "cluster": "default", "serviceName": "web", "taskDefinition": "web", "desiredCount": 2,
            "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100}}
        if load_balanced:
            params["loadBalancers"] = [{"targetGroupArn": self.tg.arn, "containerName": "web", "containerPort": 80}]
            params["healthCheckGracePeriodSeconds"] = grace
        if network_mode == "awsvpc":
            params["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
        self.service_arn = self.ecs.create_service(ECS, params).arn
        self.seq = itertools.count(1)
        self.ports = itertools.count(32768)
        self.other_ports = itertools.count(40000)          # container port 8080 (where a definition has it)
        self.ips = itertools.count(10)

    def register(self, label: str) -> m.TaskDefinition:
        extra: dict[str, Any] = {"networkMode": self.network_mode}
        return self.ecs.register_task_definition(ECS, {"family": "web", "containerDefinitions": [
            {"name": "web", "image": f"busybox:{label}", "memory": 64,
             "portMappings": [{"containerPort": 80, "hostPort": 80 if self.network_mode == "awsvpc" else 0}]}],
            **extra})

    # --- reading ---------------------------------------------------------------------------------

    def service(self) -> m.Service:
        found = self.ctx.repo.get(m.Service, self.service_arn)
        assert found is not None
        return found

    def tasks(self) -> list[m.Task]:
        return sorted((t for t in self.ctx.repo.list(m.Task) if t.group == "service:web"), key=lambda t: t.created_at)

    def live(self) -> list[m.Task]:
        return [t for t in self.tasks() if t.desired_status == "RUNNING"]

    def events(self) -> list[str]:
        return [e.message for e in self.service().events]

    def targets(self, tg: str = "") -> dict[tuple[str, int], str]:
        return {(r.id, r.port): r.state
                for r in self.elb.describe_target_health(ELB, {"TargetGroupArn": tg or self.tg.arn})}

    # --- a fake agent ----------------------------------------------------------------------------

    def run(self, task: m.Task) -> m.Task:
        binding = () if self.network_mode == "awsvpc" else (m.NetworkBinding(80, next(self.ports)),
                                                             m.NetworkBinding(8080, next(self.other_ports)))
        ip = f"10.99.0.{next(self.ips)}" if self.network_mode == "awsvpc" else ""
        found = self.ecs.report(TaskReport(
            task.arn, next(self.seq), "RUNNING", started_at=self.clock(), private_ip=ip,
            containers=(ContainerReport("web", "c" + task.task_id, "RUNNING", network_bindings=binding),)))
        assert found is not None
        return found

    def run_all(self) -> None:
        for t in self.tasks():
            if t.last_status == "PROVISIONING" and t.desired_status == "RUNNING":
                self.run(t)

    def finish_stops(self) -> None:
        """Tasks asked to stop whose draining ended stop."""
        for t in self.tasks():
            if t.desired_status == "STOPPED" and t.last_status != "STOPPED":
                self.ecs.report(TaskReport(t.arn, next(self.seq), "STOPPED", stopped_at=self.clock(),
                                           containers=(ContainerReport("web", "c" + t.task_id, "STOPPED", 0),)))

    def set_health(self, task: m.Task, state: str, reason: str = "") -> None:
        for target in task.lb_targets:
            tg = self.elb.describe_target_groups(ELB, {"TargetGroupArns": [target.target_group_arn]}).items[0]
            self.plane.set_health(backend_name(tg), target.id, target.port, state, reason)

    def pass_(self, times: int = 1) -> None:
        for _ in range(times):
            self.controller.reconcile_all()

    def steady(self) -> None:
        """Launch, run, register, and turn every target healthy."""
        self.pass_()
        self.run_all()
        self.pass_()
        for t in self.live():
            self.set_health(t, "healthy")
        self.pass_()


# --- registration -----------------------------------------------------------------------------------

def test_bridge_tasks_register_as_instance_targets_on_their_host_ports() -> None:
    env = Env()
    env.pass_()
    launched = env.tasks()
    assert len(launched) == 2 and all(t.load_balanced for t in launched)   # marked at launch: they will drain
    assert env.targets() == {}                                              # nothing before RUNNING
    env.run_all()
    env.pass_()
    inst = env.instance.ec2_instance_id
    assert env.targets() == {(inst, 32768): "initial", (inst, 32769): "initial"}
    assert [t.lb_targets for t in env.tasks()] == [(m.LbTarget(env.tg.arn, inst, 32768),),
                                                   (m.LbTarget(env.tg.arn, inst, 32769),)]
    assert f"(service web) registered 2 targets in (target-group {env.tg.arn})" in env.events()
    assert env.plane.config is not None and {t.port for t in env.plane.config.backends[0].targets} == {32768, 32769}
    env.pass_(3)    # level-triggered: nothing registered twice
    assert sum("registered" in e for e in env.events()) == 1


def test_awsvpc_tasks_register_as_ip_targets_on_the_container_port() -> None:
    env = Env(network_mode="awsvpc")
    env.pass_()
    env.run_all()
    env.pass_()
    ips = sorted(t.private_ip for t in env.tasks())
    assert sorted(env.targets()) == [(ip, 80) for ip in ips]


def test_targets_gate_the_deployment_until_healthy() -> None:
    env = Env()
    env.pass_()
    env.run_all()
    env.pass_()
    env.clock.now += 100          # far past ECS's 40 s: without a load balancer they would count healthy
    env.pass_()
    assert env.service().deployments[0].rollout_state == "IN_PROGRESS"
    first, second = env.live()
    env.set_health(first, "healthy")
    env.pass_()
    assert env.service().deployments[0].rollout_state == "IN_PROGRESS"
    env.set_health(second, "healthy")
    env.pass_()
    assert env.service().deployments[0].rollout_state == "COMPLETED"
    assert "(service web) has reached a steady state." in env.events()


def test_a_pending_target_makes_the_controller_look_again_soon() -> None:
    env = Env()
    env.pass_()
    env.run_all()
    env.pass_()
    assert env.controller._next_wake is not None and env.controller._next_wake <= env.clock.now + 1.0


def test_a_rolling_deployment_stops_old_tasks_only_once_new_targets_are_healthy() -> None:
    env = Env()
    env.steady()
    old = {t.arn for t in env.live()}
    new_def = env.register("web:2")
    env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "taskDefinition": new_def.arn})
    env.pass_()
    env.run_all()
    env.pass_(2)
    new = [t for t in env.live() if t.arn not in old]
    assert len(new) == 2 and all(t.lb_targets for t in new)
    assert {t.arn for t in env.live()} >= old          # new targets still initial: the old ones serve
    env.set_health(new[0], "healthy")
    env.pass_(2)
    stopped = [t for t in env.tasks() if t.arn in old and t.desired_status == "STOPPED"]
    assert len(stopped) == 1                            # one healthy new task: one old one may go
    assert stopped[0].lb_drain_until == pytest.approx(env.clock.now + 20)
    states = env.targets()
    assert states[(stopped[0].lb_targets[0].id, stopped[0].lb_targets[0].port)] == "draining"
    env.set_health(new[1], "healthy")
    env.pass_(2)
    assert all(t.desired_status == "STOPPED" for t in env.tasks() if t.arn in old)
    assert sum("deregistered 1 targets" in e for e in env.events()) == 2


def test_stopping_deregisters_then_the_task_may_stop_after_the_delay() -> None:
    env = Env(delay="30")
    env.steady()
    env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "desiredCount": 1})
    env.pass_(2)
    (stopping,) = [t for t in env.tasks() if t.desired_status == "STOPPED"]
    target = stopping.lb_targets[0]
    assert stopping.lb_drain_until == pytest.approx(env.clock.now + 30)
    assert env.targets()[(target.id, target.port)] == "draining"
    assert f"(service web) deregistered 1 targets in (target-group {env.tg.arn})" in env.events()
    env.clock.now += 31
    env.elb.tick()                                      # the ELB forgets the target after the delay
    assert (target.id, target.port) not in env.targets()
    env.finish_stops()
    env.pass_(2)
    assert env.service().deployments[0].rollout_state == "COMPLETED"


def test_a_task_stopped_before_it_ran_drains_nothing() -> None:
    env = Env()
    env.pass_()
    env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "desiredCount": 0})
    env.pass_(2)
    assert all(t.desired_status == "STOPPED" and t.lb_drain_until == env.clock.now for t in env.tasks())


def test_a_crashed_task_is_deregistered() -> None:
    env = Env()
    env.steady()
    victim = env.live()[0]
    env.ecs.report(TaskReport(victim.arn, next(env.seq), "DEACTIVATING", stop_code="EssentialContainerExited",
                              stopped_reason="Essential container in task exited"))
    env.pass_()
    found = env.ctx.repo.get(m.Task, victim.arn)
    assert found is not None and found.lb_drain_until == pytest.approx(env.clock.now + 20)
    assert env.targets()[(victim.lb_targets[0].id, victim.lb_targets[0].port)] == "draining"


def test_a_target_failing_health_checks_is_replaced_after_the_grace_period() -> None:
    env = Env(grace=60)
    env.steady()
    victim = env.live()[0]
    env.clock.now += 1
    env.set_health(victim, "unhealthy", "Target.ResponseCodeMismatch")
    env.pass_()
    assert all(t.desired_status == "RUNNING" for t in env.live()) and len(env.live()) == 2   # in the grace period
    assert env.controller._next_wake is not None and env.controller._next_wake <= (victim.started_at or 0) + 60
    env.clock.now = (victim.started_at or 0) + 61
    env.pass_()
    found = env.ctx.repo.get(m.Task, victim.arn)
    assert found is not None and found.desired_status == "STOPPED"
    assert found.stop_code == "ServiceSchedulerInitiated"
    assert found.stopped_reason == f"Task failed ELB health checks in (target-group {env.tg.arn})"
    port = victim.lb_targets[0].port
    assert (f"(service web) (port {port}) is unhealthy in (target-group {env.tg.arn}) due to "
            "(reason Health checks failed).") in env.events()
    env.pass_()
    assert len(env.live()) == 2 and victim.arn not in {t.arn for t in env.live()}   # replaced


def test_a_target_group_that_refuses_registration_becomes_one_event() -> None:
    env = Env()
    env.elb.delete_listener(ELB, {"ListenerArn": env.elb.describe_listeners(
        ELB, {"LoadBalancerArn": env.lb.arn}).items[0].arn})
    env.elb.delete_target_group(ELB, {"TargetGroupArn": env.tg.arn})
    env.pass_()
    env.run_all()
    env.pass_(3)
    failed = [e for e in env.events() if "failed to register targets" in e]
    assert len(failed) == 1 and env.tg.arn in failed[0]
    assert env.service().deployments[0].rollout_state == "IN_PROGRESS"


def test_a_service_without_load_balancers_is_untouched() -> None:
    env = Env(load_balanced=False)
    env.pass_()
    env.run_all()
    env.pass_()
    assert env.targets() == {}
    assert not any(t.load_balanced or t.lb_targets for t in env.tasks())
    env.clock.now += 41
    env.pass_()
    assert env.service().deployments[0].rollout_state == "COMPLETED"


def test_without_a_registry_load_balanced_services_behave_as_before() -> None:
    env = Env()
    env.controller = ServiceController(env.ecs, clock=env.clock)
    env.pass_()
    env.run_all()
    env.clock.now += 41
    env.pass_(2)
    assert env.targets() == {} and not any(t.load_balanced for t in env.tasks())
    assert env.service().deployments[0].rollout_state == "COMPLETED"


def test_expected_targets_wait_for_the_bound_port() -> None:
    env = Env()
    env.pass_()
    task = env.tasks()[0]
    assert expected_targets(env.service(), task, "i-1") is None
    sync = TargetSync(env.ctx.repo, env.registry, env.clock)
    assert sync.reconcile(env.service(), [task], [env.instance]).health == {}


# --- UpdateService changing loadBalancers -----------------------------------------------------------

def _second_group(env: Env, name: str = "web2") -> str:
    tg = env.elb.create_target_group(ELB, {"Name": name, "Protocol": "HTTP", "Port": "80",
                                           "TargetType": "ip" if env.network_mode == "awsvpc" else "instance"})
    env.elb.modify_target_group_attributes(ELB, {"TargetGroupArn": tg.arn, "Attributes": [
        {"Key": "deregistration_delay.timeout_seconds", "Value": "20"}]})
    env.elb.create_listener(ELB, {"LoadBalancerArn": env.lb.arn, "Port": "18081", "DefaultActions": [
        {"Type": "forward", "TargetGroupArn": tg.arn}]})
    return tg.arn


def _finish_rollout(env: Env, old: set[str]) -> list[m.Task]:
    """Run the new tasks, turn their targets healthy, let the old ones drain and stop."""
    env.pass_()
    env.run_all()
    env.pass_(2)
    new = [t for t in env.live() if t.arn not in old]
    assert len(new) == 2
    for t in new:
        env.set_health(t, "healthy")
    env.pass_(2)
    assert all(t.desired_status == "STOPPED" for t in env.tasks() if t.arn in old)
    env.clock.now += 21
    env.elb.tick()
    env.finish_stops()
    env.pass_(2)
    assert env.service().deployments[0].rollout_state == "COMPLETED" and len(env.service().deployments) == 1
    return [t for t in env.live() if t.arn not in old]


def test_update_service_to_another_target_group_moves_every_target() -> None:
    env = Env()
    env.steady()
    tg2 = _second_group(env)
    old = {t.arn for t in env.live()}
    old_targets = {(x.id, x.port) for t in env.live() for x in t.lb_targets}
    env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "loadBalancers": [
        {"targetGroupArn": tg2, "containerName": "web", "containerPort": 80}]})
    assert len(env.service().deployments) == 2          # a new deployment, as ECS starts one
    env.pass_()
    env.run_all()
    env.pass_(2)
    new = [t for t in env.live() if t.arn not in old]
    assert [x.target_group_arn for t in new for x in t.lb_targets] == [tg2, tg2]
    new_targets = {(x.id, x.port) for t in new for x in t.lb_targets}
    # the old tasks keep serving from the old group (never registered in the new one) until replaced
    assert env.targets() == {k: "healthy" for k in old_targets}
    assert env.targets(tg2) == {k: "initial" for k in new_targets}
    assert all(t.desired_status == "RUNNING" for t in env.tasks() if t.arn in old)
    new = _finish_rollout(env, old)
    assert env.targets() == {}                          # nothing left where the service no longer points
    assert env.targets(tg2) == {k: "healthy" for k in new_targets}
    assert sum("deregistered 1 targets in (target-group " + env.tg.arn in e for e in env.events()) == 2


def test_update_service_to_another_container_port_in_the_same_group() -> None:
    env = Env()
    env.steady()
    old = {t.arn for t in env.live()}
    old_targets = {(x.id, x.port) for t in env.live() for x in t.lb_targets}
    assert {p for _, p in old_targets} == {32768, 32769}        # the host ports of container port 80
    new_def = env.ecs.register_task_definition(ECS, {"family": "web", "containerDefinitions": [
        {"name": "web", "image": "busybox:2", "memory": 64,
         "portMappings": [{"containerPort": 80}, {"containerPort": 8080}]}]})
    env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "taskDefinition": new_def.arn,
                                 "loadBalancers": [{"targetGroupArn": env.tg.arn, "containerName": "web",
                                                    "containerPort": 8080}]})
    env.pass_()
    env.run_all()
    env.pass_(2)
    inst = env.instance.ec2_instance_id
    assert env.targets() == {**{k: "healthy" for k in old_targets}, (inst, 40002): "initial", (inst, 40003): "initial"}
    assert all(t.desired_status == "RUNNING" for t in env.tasks() if t.arn in old)
    new = _finish_rollout(env, old)
    assert {(x.id, x.port) for t in new for x in t.lb_targets} == {(inst, 40002), (inst, 40003)}
    assert env.targets() == {(inst, 40002): "healthy", (inst, 40003): "healthy"}     # container port 8080's


def test_update_service_dropping_its_load_balancers_drains_the_old_targets() -> None:
    env = Env()
    env.steady()
    old = {t.arn for t in env.live()}
    env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "loadBalancers": []})
    env.pass_()
    env.run_all()
    env.clock.now += 41                                  # ECS's own health: no load balancer judges them now
    env.pass_(3)
    assert all(t.desired_status == "STOPPED" for t in env.tasks() if t.arn in old)
    assert set(env.targets().values()) == {"draining"}
    assert not any(t.lb_targets for t in env.live())
    env.clock.now += 21
    env.elb.tick()
    env.finish_stops()
    env.pass_(2)
    assert env.targets() == {}
    assert env.service().deployments[0].rollout_state == "COMPLETED"


def test_update_service_with_the_same_load_balancers_starts_no_deployment() -> None:
    env = Env()
    env.steady()
    env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "loadBalancers": [
        {"targetGroupArn": env.tg.arn, "containerName": "web", "containerPort": 80}]})
    assert len(env.service().deployments) == 1


def test_update_service_load_balancers_are_checked_against_the_task_definition() -> None:
    env = Env()
    with pytest.raises(Exception, match="did not have a container port 8080") as info:
        env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "loadBalancers": [
            {"targetGroupArn": env.tg.arn, "containerName": "web", "containerPort": 8080}]})
    assert getattr(info.value, "aws_code", "") == "InvalidParameterException"
    with pytest.raises(Exception, match="does not exist in the task definition"):
        env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "loadBalancers": [
            {"targetGroupArn": env.tg.arn, "containerName": "nope", "containerPort": 80}]})
    assert len(env.service().deployments) == 1 and env.service().load_balancers[0].container_port == 80


# --- the adapter --------------------------------------------------------------------------------------

def test_adapter_scope_and_idempotent_deregistration() -> None:
    env = Env()
    assert scope_of(env.tg.arn) == ELB
    with pytest.raises(elb_errors.ValidationError):
        scope_of("arn:aws:ecs:us-east-1:1:cluster/x")
    env.registry.register(env.tg.arn, [("i-0abc", 31000)])
    assert env.registry.health(env.tg.arn) == {("i-0abc", 31000): ("initial", "Elb.RegistrationInProgress")}
    assert env.registry.deregister(env.tg.arn, [("i-0abc", 31000), ("i-0abc", 31001)]) == 1
    assert env.registry.deregister(env.tg.arn, [("i-0abc", 31000)]) == 0      # draining already
    assert env.registry.deregistration_delay(env.tg.arn) == 20.0
    gone = env.tg.arn.replace(env.tg.id, "0" * len(env.tg.id))
    assert env.registry.health(gone) == {} and env.registry.deregister(gone, [("i-0abc", 1)]) == 0
    assert env.registry.deregistration_delay(gone) == 0.0
    assert isinstance(env.elb.describe_target_health(ELB, {"TargetGroupArn": env.tg.arn})[0], em.TargetHealthInfo)


# --- the agent drains before stopping ------------------------------------------------------------------

async def until(check: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.01)


def test_the_agent_keeps_containers_running_until_the_targets_drained() -> None:
    async def body() -> None:
        env = Env(delay="1", clock=time.time)
        env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "desiredCount": 1})
        engine = MemoryEngine(images=("busybox:web:1",))
        agent = Agent(LocalControlPlane(env.ecs, REGION, ACCOUNT), engine, AgentConfig(
            cluster="default", agent_id="agent-1", resources=host_resources(cpu=4096, memory=4096), resync=0.2))
        await agent.start()
        env.controller.resync = 0.1
        env.controller.start()
        try:
            await until(lambda: any(t.lb_targets for t in env.live()), what="registration")
            (task,) = env.live()
            env.set_health(task, "healthy")
            await until(lambda: env.service().deployments[0].rollout_state == "COMPLETED", what="steady")
            env.ecs.update_service(ECS, {"cluster": "default", "service": "web", "desiredCount": 0})
            await until(lambda: (env.ctx.repo.get(m.Task, task.arn) or task).lb_drain_until is not None,
                        what="deregistration")
            found = env.ctx.repo.get(m.Task, task.arn)
            assert found is not None and found.last_status == "DEACTIVATING"
            drain_until = found.lb_drain_until or 0.0
            assert engine.find("web", task.arn).state == "running"          # serving its in-flight requests
            await until(lambda: engine.find("web", task.arn).state == "exited", what="stop")
            assert time.time() >= drain_until - 0.05
            await until(lambda: (env.ctx.repo.get(m.Task, task.arn) or task).last_status == "STOPPED")
        finally:
            await env.controller.close()
            await agent.close()

    asyncio.run(body())


def test_the_agent_stops_anyway_when_no_controller_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_module, "DRAIN_MARGIN", 0.3)

    async def body() -> None:
        env = Env(clock=time.time)
        engine = MemoryEngine(images=("busybox:web:1",))
        agent = Agent(LocalControlPlane(env.ecs, REGION, ACCOUNT), engine, AgentConfig(
            cluster="default", agent_id="agent-1", resources=host_resources(cpu=4096, memory=4096), resync=0.2))
        await agent.start()
        try:
            env.pass_()          # launches (marked load-balanced); no controller runs after this
            await until(lambda: all(t.last_status == "RUNNING" for t in env.tasks()), what="running")
            task = env.tasks()[0]
            began = time.monotonic()
            env.ecs.tasks.request_stop(task.arn, "UserInitiated", "stop")
            await until(lambda: (env.ctx.repo.get(m.Task, task.arn) or task).last_status == "STOPPED",
                        what="stopped")
            assert 0.25 <= time.monotonic() - began < 3.0      # waited the cap (no delay known + margin)
        finally:
            await agent.close()

    asyncio.run(body())


def test_the_agent_does_not_wait_for_tasks_without_load_balancers() -> None:
    async def body() -> None:
        env = Env(load_balanced=False, clock=time.time)
        engine = MemoryEngine(images=("busybox:web:1",))
        agent = Agent(LocalControlPlane(env.ecs, REGION, ACCOUNT), engine, AgentConfig(
            cluster="default", agent_id="agent-1", resources=host_resources(cpu=4096, memory=4096), resync=0.2))
        await agent.start()
        try:
            env.pass_()
            await until(lambda: all(t.last_status == "RUNNING" for t in env.tasks()), what="running")
            task = env.tasks()[0]
            began = time.monotonic()
            env.ecs.tasks.request_stop(task.arn, "UserInitiated", "stop")
            await until(lambda: (env.ctx.repo.get(m.Task, task.arn) or task).last_status == "STOPPED",
                        what="stopped")
            assert time.monotonic() - began < 0.5
        finally:
            await agent.close()

    asyncio.run(body())
