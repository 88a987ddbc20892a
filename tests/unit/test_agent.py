"""The host agent against an in-memory engine and an in-memory control plane: task states in
order, dependsOn, essential exits, stops, pull failures, adoption after a restart, retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from berth.agent import Agent, AgentConfig, host_resources
from berth.agent import _specs as sp
from berth.agent._engine import ContainerSpec
from berth.agent.testing import MemoryEngine
from berth.ecs import Context, EcsService, LocalControlPlane, Repo, Scope, TaskReport
from berth.ecs import model as m
from berth.state import MemoryStore

REGION, ACCOUNT = "us-east-1", "123456789012"
SCOPE = Scope(REGION, ACCOUNT)


class RecordingControl(LocalControlPlane):
    def __init__(self, ecs: EcsService) -> None:
        super().__init__(ecs, REGION, ACCOUNT)
        self.reports: list[TaskReport] = []

    def report(self, report: TaskReport) -> None:
        self.reports.append(report)
        super().report(report)


class Harness:
    def __init__(self, retention: float = 3600.0, engine: MemoryEngine | None = None,
                 store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.ctx = Context(Repo(self.store), stopped_task_retention=retention)
        self.ecs = EcsService(self.ctx)
        self.engine = engine or MemoryEngine()
        self.control = RecordingControl(self.ecs)
        self.agent: Agent | None = None

    async def start(self) -> Agent:
        self.agent = Agent(self.control, self.engine, AgentConfig(
            cluster="default", agent_id="host-a", resources=host_resources(cpu=4096, memory=4096), resync=0.2))
        await self.agent.start()
        return self.agent

    async def close(self) -> None:
        if self.agent is not None:
            await self.agent.close()
            self.agent = None

    def register(self, containers: list[dict[str, Any]], **extra: Any) -> m.TaskDefinition:
        return self.ecs.register_task_definition(SCOPE, {"family": extra.pop("family", "web"),
                                                         "containerDefinitions": containers, **extra})

    def run(self, **params: Any) -> m.Task:
        tasks, failures = self.ecs.run_task(SCOPE, {"cluster": "default", "taskDefinition": "web", **params})
        assert not failures, failures
        return tasks[0]

    def task(self, arn: str) -> m.Task:
        found = self.ctx.repo.get(m.Task, arn)
        assert found is not None
        return found

    def statuses(self, arn: str) -> list[str]:
        out: list[str] = []
        for r in self.control.reports:
            if r.task_arn == arn and (not out or out[-1] != r.last_status):
                out.append(r.last_status)
        return out

    def stop(self, arn: str, reason: str | None = None) -> None:
        params = {"cluster": "default", "task": arn}
        if reason:
            params["reason"] = reason
        self.ecs.stop_task(SCOPE, params)

    async def until_status(self, arn: str, status: str, timeout: float = 3.0) -> m.Task:
        await until(lambda: self.task(arn).last_status == status, timeout,
                    lambda: f"task is {self.task(arn).last_status}, not {status}: {self.task(arn)}")
        return self.task(arn)

    async def run_until(self, containers: list[dict[str, Any]], status: str = "RUNNING", timeout: float = 3.0,
                        **extra: Any) -> m.Task:
        """Register `containers` (family web, `extra` for the task definition), run one task and wait
        until it is `status`."""
        self.register(containers, **extra)
        return await self.until_status(self.run().arn, status, timeout)

    async def stop_and_wait(self, arn: str, reason: str | None = None) -> m.Task:
        self.stop(arn, reason)
        return await self.until_status(arn, "STOPPED")


async def until(check: Callable[[], bool], timeout: float = 3.0, what: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(what() if what else "condition not met in time")
        await asyncio.sleep(0.005)


def scenario(body: Callable[[Harness], Awaitable[None]], **kw: Any) -> None:
    async def go() -> None:
        h = Harness(**kw)
        try:
            await body(h)
        finally:
            await h.close()
    asyncio.run(go())


def box(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "memory": 64, **extra}


# --- the life of a task ---------------------------------------------------------------------

def test_states_in_order_with_timestamps_and_user_stop() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        h.register([box("app", portMappings=[{"containerPort": 80}])])
        task = h.run()
        assert task.last_status == "PROVISIONING"
        running = await h.until_status(task.arn, "RUNNING")
        assert h.statuses(task.arn) == ["PENDING", "ACTIVATING", "RUNNING"]
        assert running.pull_started_at and running.pull_stopped_at and running.started_at
        assert running.created_at <= running.pull_started_at <= running.pull_stopped_at <= running.started_at
        (app,) = running.containers
        assert app.last_status == "RUNNING" and app.runtime_id == h.engine.find("app").id
        assert [(b.container_port, b.host_port) for b in app.network_bindings] == [(80, 32768)]

        stopped = await h.stop_and_wait(task.arn, "done here")
        assert h.statuses(task.arn) == ["PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING",
                                        "DEPROVISIONING", "STOPPED"]
        assert stopped.stop_code == "UserInitiated" and stopped.stopped_reason == "done here"
        assert stopped.desired_status == "STOPPED"
        assert stopped.started_at <= stopped.stopping_at <= stopped.stopped_at  # type: ignore[operator]
        assert stopped.execution_stopped_at
        assert stopped.containers[0].last_status == "STOPPED" and stopped.containers[0].exit_code == 143
        # the containers stay (docker logs / inspect) until the task is forgotten
        assert h.engine.find("app").state == "exited"
    scenario(body)


def test_stop_without_reason_says_task_stopped_by_user() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app")])
        stopped = await h.stop_and_wait(task.arn)
        assert (stopped.stop_code, stopped.stopped_reason) == ("UserInitiated", "Task stopped by user")
    scenario(body)


def test_stop_timeout_is_passed_to_the_engine() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app", stopTimeout=7), box("side", essential=False)])
        await h.stop_and_wait(task.arn)
        assert h.engine.find("app").stop_timeouts == [7]
        assert h.engine.find("side").stop_timeouts == [30]
    scenario(body)


def test_essential_exit_stops_the_task_with_every_exit_code() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app"), box("side", essential=False)])
        h.engine.exit(h.engine.find("app").id, 3)
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.stop_code == "EssentialContainerExited"
        assert stopped.stopped_reason == "Essential container in task exited"
        codes = {c.name: c.exit_code for c in stopped.containers}
        assert codes == {"app": 3, "side": 143}
        assert all(c.last_status == "STOPPED" for c in stopped.containers)
    scenario(body)


def test_non_essential_exit_keeps_the_task_running() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app"), box("job", essential=False)])
        h.engine.exit(h.engine.find("job").id, 0)
        await until(lambda: next(c for c in h.task(task.arn).containers if c.name == "job").exit_code == 0)
        current = h.task(task.arn)
        assert current.last_status == "RUNNING" and current.desired_status == "RUNNING"
        job = next(c for c in current.containers if c.name == "job")
        assert job.last_status == "STOPPED"
        assert next(c for c in current.containers if c.name == "app").last_status == "RUNNING"
    scenario(body)


def test_oom_kill_is_reported_on_the_container() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app")])
        h.engine.exit(h.engine.find("app").id, 137, oom=True)
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.containers[0].exit_code == 137
        assert stopped.containers[0].reason.startswith("OutOfMemoryError")
    scenario(body)


# --- dependsOn ------------------------------------------------------------------------------

def test_depends_on_start_starts_in_order() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        await h.run_until([box("side", dependsOn=[{"containerName": "web", "condition": "START"}]), box("web")])
        assert h.engine.started == ["web", "side"]
    scenario(body)


def test_depends_on_complete_waits_for_the_exit_whatever_its_code() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        h.register([box("init", essential=False), box("app", dependsOn=[{"containerName": "init",
                                                                          "condition": "COMPLETE"}])])
        task = h.run()
        await until(lambda: h.engine.started == ["init"])
        await asyncio.sleep(0.05)
        assert h.task(task.arn).last_status == "ACTIVATING" and h.engine.started == ["init"]
        h.engine.exit(h.engine.find("init").id, 5)
        running = await h.until_status(task.arn, "RUNNING")
        assert h.engine.started == ["init", "app"]
        assert {c.name: c.exit_code for c in running.containers}["init"] == 5
    scenario(body)


def test_depends_on_success_starts_after_a_zero_exit() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        h.engine.exit_on_start["init"] = 0
        await h.run_until([box("init", essential=False), box("app", dependsOn=[{"containerName": "init",
                                                                                 "condition": "SUCCESS"}])])
        assert h.engine.started == ["init", "app"]
    scenario(body)


def test_depends_on_success_with_a_non_zero_exit_fails_the_task() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        h.register([box("migrate", essential=False),
                     box("app", dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}])])
        task = h.run()
        await until(lambda: h.engine.started == ["migrate"])
        h.engine.exit(h.engine.find("migrate").id, 2)
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.stop_code == "TaskFailedToStart"
        assert "migrate" in stopped.stopped_reason and "2" in stopped.stopped_reason
        assert h.engine.started == ["migrate"]
        assert {c.name: c.exit_code for c in stopped.containers}["migrate"] == 2
        assert {c.name: c.last_status for c in stopped.containers}["app"] == "STOPPED"
        assert not stopped.reached_running
    scenario(body)


def test_depends_on_healthy_waits_for_the_health_check() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        probe = {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 3}
        h.register([box("db", healthCheck=probe),
                     box("app", dependsOn=[{"containerName": "db", "condition": "HEALTHY"}])])
        task = h.run()
        await until(lambda: h.engine.started == ["db"])
        await asyncio.sleep(0.05)
        assert h.task(task.arn).last_status == "ACTIVATING"
        h.engine.set_health(h.engine.find("db").id, "healthy")
        running = await h.until_status(task.arn, "RUNNING")
        assert h.engine.started == ["db", "app"]
        await until(lambda: h.task(task.arn).health_status == "HEALTHY")
        assert {c.name: c.health_status for c in h.task(task.arn).containers}["db"] == "HEALTHY"
        del running
    scenario(body)


def test_depends_on_healthy_with_an_unhealthy_container_fails_the_task() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        probe = {"command": ["CMD-SHELL", "false"], "interval": 5, "timeout": 2, "retries": 1}
        h.register([box("db", healthCheck=probe),
                     box("app", dependsOn=[{"containerName": "db", "condition": "HEALTHY"}])])
        task = h.run()
        await until(lambda: h.engine.started == ["db"])
        h.engine.set_health(h.engine.find("db").id, "unhealthy")
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.stop_code == "TaskFailedToStart" and "db" in stopped.stopped_reason
    scenario(body)


def test_task_health_follows_essential_health_checks() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        probe = {"command": ["CMD-SHELL", "true"]}
        task = await h.run_until([box("app", healthCheck=probe)])
        assert h.task(task.arn).health_status == "UNKNOWN"
        app = h.engine.find("app").id
        h.engine.set_health(app, "healthy")
        await until(lambda: h.task(task.arn).health_status == "HEALTHY")
        h.engine.set_health(app, "unhealthy")
        await until(lambda: h.task(task.arn).health_status == "UNHEALTHY")
        assert h.task(task.arn).last_status == "RUNNING"   # ECS stops it only for a service
    scenario(body)


def test_stop_while_waiting_on_a_dependency() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        h.register([box("init", essential=False), box("app", dependsOn=[{"containerName": "init",
                                                                          "condition": "SUCCESS"}])])
        task = h.run()
        await until(lambda: h.engine.started == ["init"])
        stopped = await h.stop_and_wait(task.arn)
        assert stopped.stop_code == "UserInitiated"
        assert {c.name: c.exit_code for c in stopped.containers}["init"] == 143
    scenario(body)


# --- start failures ---------------------------------------------------------------------------

def test_missing_image_stops_with_cannot_pull_container_error() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = stopped = await h.run_until([box("app", image="nosuch/image:1")], "STOPPED")
        assert stopped.stop_code == "TaskFailedToStart"
        assert stopped.stopped_reason.startswith("CannotPullContainerError")
        assert "nosuch/image:1" in stopped.stopped_reason
        assert stopped.containers[0].reason.startswith("CannotPullContainerError")
        assert stopped.containers[0].last_status == "STOPPED"
        assert stopped.pull_started_at and stopped.pull_stopped_at and not stopped.started_at
        assert h.engine.containers == {}
        assert h.statuses(task.arn)[0] == "PENDING" and h.statuses(task.arn)[-1] == "STOPPED"
    scenario(body)


def test_unsupported_log_driver_is_refused_at_run_time() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        stopped = await h.run_until([box("app", logConfiguration={"logDriver": "syslog", "options": {}})],
                                    "STOPPED")
        assert stopped.stop_code == "TaskFailedToStart"
        assert "syslog" in stopped.stopped_reason and "berth" in stopped.stopped_reason
        assert stopped.stopped_reason.startswith("CannotCreateContainerError")
        assert h.engine.containers == {}
    scenario(body)


def test_start_error_stops_the_task_and_the_containers_already_started() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        h.engine.fail_start["side"] = "OCI runtime create failed: exec: nope: not found"
        stopped = await h.run_until([box("web"), box("side", dependsOn=[{"containerName": "web",
                                                                          "condition": "START"}])], "STOPPED")
        assert stopped.stop_code == "TaskFailedToStart"
        assert stopped.stopped_reason.startswith("CannotStartContainerError")
        assert h.engine.find("web").state == "exited"
        codes = {c.name: (c.last_status, c.exit_code) for c in stopped.containers}
        assert codes["web"] == ("STOPPED", 143)
        assert codes["side"][0] == "STOPPED"
    scenario(body)


def test_missing_environment_file_fails_the_task() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        stopped = await h.run_until([box("app", environmentFiles=[{"value": "/nonexistent/berth.env", "type": "s3"}])],
                                    "STOPPED")
        assert stopped.stop_code == "TaskFailedToStart"
        assert "/nonexistent/berth.env" in stopped.stopped_reason
    scenario(body)


# --- awsvpc ------------------------------------------------------------------------------------

def test_awsvpc_task_runs_in_the_pause_container_namespace() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        h.register([box("app", portMappings=[{"containerPort": 80}]), box("side")], networkMode="awsvpc")
        task = h.run(networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
        running = await h.until_status(task.arn, "RUNNING")
        pause = h.engine.find(sp.PAUSE_NAME)
        assert pause.state == "running" and pause.spec.network_mode == "bridge"
        for name in ("app", "side"):
            assert h.engine.find(name).spec.network_mode == f"container:{pause.id}"
            assert h.engine.find(name).spec.ports == ()
        assert running.private_ip == pause.ip_address != ""
        assert running.containers[0].network_bindings == ()
        await h.stop_and_wait(task.arn)
        assert h.engine.find(sp.PAUSE_NAME).state == "exited"
    scenario(body)


# --- adoption after a restart ------------------------------------------------------------------

def test_restart_adopts_running_containers_without_duplicates() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app"), box("side", essential=False)])
        before = {c.id for c in h.engine.of_task(task.arn)}
        await h.close()
        # a new agent (the restarted daemon) on the same store and engine
        await h.start()
        await asyncio.sleep(0.2)
        assert {c.id for c in h.engine.of_task(task.arn)} == before
        assert h.task(task.arn).last_status == "RUNNING"
        assert len(h.engine.started) == 2
        # and it still manages it
        h.engine.exit(h.engine.find("app").id, 1)
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.stop_code == "EssentialContainerExited"
    scenario(body)


def test_restart_reports_a_container_that_died_while_down() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app"), box("side", essential=False)])
        await h.close()
        h.engine.exit(h.engine.find("app").id, 137, notify=False)
        await h.start()
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.stop_code == "EssentialContainerExited"
        codes = {c.name: c.exit_code for c in stopped.containers}
        assert codes == {"app": 137, "side": 143}
        assert len(h.engine.started) == 2   # nothing restarted
    scenario(body)


def test_restart_adopts_a_task_whose_every_container_died() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app")])
        await h.close()
        h.engine.exit(h.engine.find("app").id, 9, notify=False)
        await h.start()
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.containers[0].exit_code == 9
        assert len(h.engine.started) == 1
    scenario(body)


def test_restart_removes_containers_of_unknown_tasks() -> None:
    async def body(h: Harness) -> None:
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/default/0123456789abcdef"
        labels = {sp.LABEL_CLUSTER: "default", sp.LABEL_TASK: arn, sp.LABEL_CONTAINER: "app",
                  sp.LABEL_FAMILY: "web", sp.LABEL_VERSION: "1", sp.LABEL_AGENT: "host-a"}
        orphan = h.engine.add_running(ContainerSpec(name="ecs-web-1-app-00", image="busybox", labels=labels))
        other = h.engine.add_running(ContainerSpec(name="ecs-web-1-app-01", image="busybox",
                                                   labels={**labels, sp.LABEL_AGENT: "host-b"}))
        plain = h.engine.add_running(ContainerSpec(name="mine", image="busybox"))
        await h.start()
        assert orphan not in h.engine.containers
        assert other in h.engine.containers and plain in h.engine.containers   # not this agent's
    scenario(body)


def test_restart_of_a_task_stopped_before_it_ran_does_not_start_it() -> None:
    async def body(h: Harness) -> None:
        h.register([box("app")])
        agent = await h.start()
        await h.close()
        h.ecs.set_agent_connected(agent.instance_arn, True)   # as it is after a SIGKILL
        task = h.run()
        h.stop(task.arn)
        await h.start()
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.stop_code == "UserInitiated"
        assert h.engine.started == []
    scenario(body)


# --- retention -----------------------------------------------------------------------------------

def test_expired_stopped_task_loses_its_containers_and_volumes() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app", mountPoints=[{"sourceVolume": "scratch", "containerPath": "/data"}])],
                                 volumes=[{"name": "scratch"}])
        volume = f"ecs-{task.task_id}-scratch"
        assert volume in h.engine.volumes
        await h.stop_and_wait(task.arn)
        assert h.engine.of_task(task.arn) and volume in h.engine.volumes
        h.ctx.stopped_task_retention = 0.0
        await asyncio.sleep(0.01)
        assert h.ecs.tasks.expire_stopped(h.ecs.tasks.list(h.ctx.cluster(SCOPE, "default"))) == [task.arn]
        await until(lambda: not h.engine.of_task(task.arn) and volume not in h.engine.volumes)
    scenario(body)


def test_stopped_task_within_retention_keeps_its_containers() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app")])
        await h.stop_and_wait(task.arn)
        assert h.ecs.tasks.expire_stopped(h.ecs.tasks.list(h.ctx.cluster(SCOPE, "default"))) == []
        await asyncio.sleep(0.3)
        assert h.engine.of_task(task.arn)
    scenario(body)


def test_many_tasks_each_get_their_own_containers() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        h.register([box("app", portMappings=[{"containerPort": 80}])])
        tasks, failures = h.ecs.run_task(SCOPE, {"cluster": "default", "taskDefinition": "web", "count": 5})
        assert not failures
        for t in tasks:
            await h.until_status(t.arn, "RUNNING")
        ports = {h.task(t.arn).containers[0].network_bindings[0].host_port for t in tasks}
        assert len(ports) == 5
        assert len(h.engine.containers) == 5
    scenario(body)


@pytest.mark.parametrize("condition", ["COMPLETE", "SUCCESS"])
def test_essential_dependency_that_completes_does_not_count_as_exit_before_running(condition: str) -> None:
    # an init container marked non-essential; its exit is expected
    async def body(h: Harness) -> None:
        await h.start()
        h.engine.exit_on_start["init"] = 0
        task = await h.run_until([box("init", essential=False), box("app", dependsOn=[{"containerName": "init",
                                                                                        "condition": condition}])])
        await asyncio.sleep(0.05)
        assert h.task(task.arn).last_status == "RUNNING"
    scenario(body)


def test_stop_stops_dependents_before_their_dependencies() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("proxy", dependsOn=[{"containerName": "app", "condition": "START"}]),
                                  box("app", links=["db"]), box("db"), box("other")])
        await h.stop_and_wait(task.arn)
        order = h.engine.stopped
        assert order.index("proxy") < order.index("app") < order.index("db")
        assert sorted(order) == ["app", "db", "other", "proxy"]
    scenario(body)


def test_essential_exit_while_others_wait_on_a_condition_stops_the_task() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        probe = {"command": ["CMD-SHELL", "true"]}
        h.register([box("web"), box("db", healthCheck=probe, essential=False),
                    box("app", dependsOn=[{"containerName": "db", "condition": "HEALTHY"}])])
        task = h.run()
        await until(lambda: sorted(h.engine.started) == ["db", "web"])
        h.engine.exit(h.engine.find("web").id, 4)
        stopped = await h.until_status(task.arn, "STOPPED")
        assert (stopped.stop_code, stopped.stopped_reason) == ("EssentialContainerExited",
                                                               "Essential container in task exited")
        assert {c.name: c.exit_code for c in stopped.containers}["web"] == 4
        assert "app" not in h.engine.started
    scenario(body)


def test_dependency_start_timeout() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        stopped = await h.run_until([box("init", essential=False, startTimeout=1),
                                     box("app", dependsOn=[{"containerName": "init", "condition": "COMPLETE"}])],
                                    "STOPPED", timeout=5)
        assert stopped.stop_code == "TaskFailedToStart"
        assert stopped.stopped_reason.startswith("DependencyTimeout") and "init" in stopped.stopped_reason
        assert h.engine.started == ["init"]
    scenario(body)


def test_a_bad_second_container_fails_the_task_before_anything_is_created() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        stopped = await h.run_until([box("web"), box("side", dependsOn=[{"containerName": "web", "condition": "START"}],
                                                     logConfiguration={"logDriver": "splunk", "options": {}})],
                                    "STOPPED")
        assert stopped.stop_code == "TaskFailedToStart" and "splunk" in stopped.stopped_reason
        assert h.engine.containers == {}
    scenario(body)


def test_restart_reports_a_container_removed_while_down() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app"), box("side", essential=False)])
        await h.close()
        await h.engine.remove(h.engine.find("app").id)
        await h.start()
        stopped = await h.until_status(task.arn, "STOPPED")
        assert stopped.stop_code == "EssentialContainerExited"
        assert {c.name: c.exit_code for c in stopped.containers}["side"] == 143
        assert len(h.engine.started) == 2      # not started again
    scenario(body)


def test_a_container_event_wakes_only_its_task() -> None:
    async def body(h: Harness) -> None:
        agent = await h.start()
        h.register([box("app")])
        one, two = h.run(), h.run()
        await h.until_status(one.arn, "RUNNING")
        await h.until_status(two.arn, "RUNNING")
        runners = agent._runners
        for r in runners.values():
            r.wake.clear()
        cid = h.engine.find("app", one.arn).id
        h.engine.set_health(cid, "")
        assert runners[one.arn].wake.is_set() and not runners[two.arn].wake.is_set()
    scenario(body)


def test_restart_removes_the_volumes_of_a_task_that_expired_while_down() -> None:
    async def body(h: Harness) -> None:
        await h.start()
        task = await h.run_until([box("app", mountPoints=[{"sourceVolume": "scratch", "containerPath": "/data"}])],
                                 volumes=[{"name": "scratch"}, {"name": "keep", "dockerVolumeConfiguration": {
                                     "scope": "shared", "autoprovision": True}}])
        volume = f"ecs-{task.task_id}-scratch"
        assert h.engine.find("app").labels[sp.LABEL_VOLUMES] == volume
        assert {volume, "keep"} <= set(h.engine.volumes)
        await h.stop_and_wait(task.arn)
        await h.close()
        h.ctx.stopped_task_retention = 0.0
        await asyncio.sleep(0.01)
        assert h.ecs.tasks.expire_stopped(h.ecs.tasks.list(h.ctx.cluster(SCOPE, "default"))) == [task.arn]
        await h.start()
        assert not h.engine.of_task(task.arn)
        assert volume not in h.engine.volumes and "keep" in h.engine.volumes
    scenario(body)
