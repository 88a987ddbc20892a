"""ECS across daemon restarts (issue 9, "State and restarts").

A daemon SIGKILLed with a 3-task service running, one of whose containers dies while it is down,
comes back with exactly 3 RUNNING tasks, the dead one STOPPED with its exit code, no container of
a task it does not know and, once everything is gone, no leaked netns, mount or conmon. A SIGTERM
restart keeps the container instance and adopts the running tasks. STOPPED tasks are forgotten
(and their containers removed) after `--ecs-task-retention`.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

from tests.helpers import BerthDaemon, api, conmons_under, mounts_under, running_aws_daemon, wait_for, wait_task

pytestmark = pytest.mark.root

boto3 = pytest.importorskip("boto3")

T = TypeVar("T")
LABEL_TASK = "com.amazonaws.ecs.task-arn"
# Sleeps; exits 0 on SIGTERM (so stops are quick) and 7 on SIGUSR1 (a death with a telling exit code).
SLEEPER = {"family": "sleeper", "containerDefinitions": [
    {"name": "main", "image": "busybox", "essential": True, "memory": 32, "stopTimeout": 5,
     "command": ["sh", "-c", "trap 'exit 0' TERM; trap 'exit 7' USR1; sleep 3600 & wait"]}]}


class Ecs:
    """A private daemon with its AWS endpoint on a port that stays the same across restarts."""

    def __init__(self, daemon: BerthDaemon) -> None:
        self.daemon = daemon

    def client(self) -> Any:
        return self.daemon.aws_client("ecs")

    def tasks(self, **kw: Any) -> list[dict[str, Any]]:
        ecs = self.client()
        arns = ecs.list_tasks(cluster="default", **kw)["taskArns"]
        return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []

    def running(self, **kw: Any) -> list[dict[str, Any]]:
        return [t for t in self.tasks(desiredStatus="RUNNING", **kw) if t["lastStatus"] == "RUNNING"]

    def containers(self) -> list[dict[str, Any]]:
        """Every engine container carrying an ECS task label, as `docker inspect` shows it."""
        ids = self.daemon.docker("ps", "-aq", "--filter", f"label={LABEL_TASK}", check=True).stdout.split()
        if not ids:
            return []
        return json.loads(self.daemon.docker("inspect", *ids, check=True).stdout)

    def instance_arns(self) -> list[str]:
        return self.client().list_container_instances(cluster="default")["containerInstanceArns"]


def _netns_files(d: BerthDaemon) -> list[str]:
    netns = d.run_root / "netns"
    if not netns.exists():
        return []
    return sorted(p.name for p in netns.rglob("*") if p.is_file() and not p.name.startswith("spare-"))


def _all_netns(d: BerthDaemon) -> list[str]:
    netns = d.run_root / "netns"
    return sorted(p.name for p in netns.rglob("*") if p.is_file()) if netns.exists() else []


@pytest.fixture()
def ecs_daemon() -> Iterator[Ecs]:
    with running_aws_daemon("--ecs-healthy-after", "1") as d:
        yield Ecs(d)


def _start_service(e: Ecs, name: str, count: int) -> list[dict[str, Any]]:
    ecs = e.client()
    ecs.register_task_definition(**SLEEPER)
    ecs.create_service(cluster="default", serviceName=name, taskDefinition="sleeper", desiredCount=count)
    return wait_for(f"{count} RUNNING tasks of {name}", lambda: _exactly(e.running(serviceName=name), count))


def _exactly(items: list[T], count: int) -> list[T] | None:
    return items if len(items) == count else None


def test_sigkill_with_a_container_dying_meanwhile(ecs_daemon: Ecs) -> None:
    e = ecs_daemon
    before = _start_service(e, "web", 3)
    before_arns = {t["taskArn"] for t in before}
    instance = e.instance_arns()
    by_task = {c["Config"]["Labels"][LABEL_TASK]: c for c in e.containers()}
    assert set(by_task) == before_arns
    victim_arn = sorted(before_arns)[0]
    victim = by_task[victim_arn]
    pid = victim["State"]["Pid"]
    assert pid > 0

    netns_before = _all_netns(e.daemon)
    e.daemon.kill()  # SIGKILL: the agent and the controller get no chance to clean up
    os.kill(pid, signal.SIGUSR1)  # the container dies (exit code 7) while nobody watches
    wait_for("the container's process to be gone", lambda: not os.path.exists(f"/proc/{pid}") or None, timeout=10)
    e.daemon.start()

    # exactly 3 RUNNING again: the two survivors adopted, one replacement
    after = wait_for("3 RUNNING tasks after the restart", lambda: (
        r if len(r := e.running(serviceName="web")) == 3 and victim_arn not in {t["taskArn"] for t in r} else None))
    after_arns = {t["taskArn"] for t in after}
    assert len(after_arns & before_arns) == 2, "the survivors must be adopted, not replaced"
    assert e.instance_arns() == instance

    dead = wait_task(e.client(), victim_arn, "STOPPED")
    assert dead["desiredStatus"] == "STOPPED"
    assert dead["stopCode"] == "EssentialContainerExited"
    assert dead["stoppedReason"] == "Essential container in task exited"
    assert [c["exitCode"] for c in dead["containers"]] == [7]

    # one container per task, none of a task the control plane does not know, nothing duplicated
    known = {t["taskArn"] for t in e.tasks()} | {t["taskArn"] for t in e.tasks(desiredStatus="STOPPED")}
    labelled = [c["Config"]["Labels"][LABEL_TASK] for c in e.containers()]
    assert set(labelled) <= known
    running_containers = [c["Config"]["Labels"][LABEL_TASK] for c in e.containers() if c["State"]["Running"]]
    assert sorted(running_containers) == sorted(after_arns)
    assert len(e.tasks(desiredStatus="RUNNING")) == 3
    # no monitor or network namespace left of the dead container, none twice for a survivor: as
    # many namespaces (the containers' and the daemon's spares) as before the crash
    wait_for("one conmon per running container and the namespaces of before",
             lambda: len(conmons_under(e.daemon.base)) == 3 and len(_all_netns(e.daemon)) == len(netns_before),
             timeout=10)
    # the service saw it: the replacement is in its events
    service = e.client().describe_services(cluster="default", services=["web"])["services"][0]
    assert service["runningCount"] == 3 and service["desiredCount"] == 3
    messages = [ev["message"] for ev in service["events"]]
    victim_id = victim_arn.rsplit("/", 1)[-1]
    assert any(victim_id in text and "Essential container in task exited" in text and "exit code 7" in text
               for text in messages), messages
    assert any(text.startswith("(service web) has started 1 tasks") for text in messages), messages

    # everything goes: service, tasks, containers, and nothing leaks
    ecs = e.client()
    ecs.delete_service(cluster="default", service="web", force=True)
    wait_for("no RUNNING tasks", lambda: not e.tasks(desiredStatus="RUNNING") or None)
    wait_for("every task STOPPED", lambda: all(t["lastStatus"] == "STOPPED" for t in e.tasks(desiredStatus="STOPPED"))
             or None)
    e.daemon.remove_all_containers()
    wait_for("no conmon", lambda: not conmons_under(e.daemon.base) or None, timeout=15)
    # the netns goes with its container's teardown, which the daemon finishes just after the reply
    wait_for("no netns left", lambda: not _netns_files(e.daemon) or None, timeout=10)
    assert [m for m in mounts_under(e.daemon.base) if "/containers/" in m] == []


def test_sigkill_while_tasks_are_starting(ecs_daemon: Ecs) -> None:
    """The daemon dies while it starts a service's containers (one created, maybe its process
    already started, its record not yet saying so): they all come up, none counts as failed."""
    e = ecs_daemon
    ecs = e.client()
    ecs.register_task_definition(**SLEEPER)
    ecs.create_service(cluster="default", serviceName="starting", taskDefinition="sleeper", desiredCount=3)
    query = "/containers/json?all=1&filters=" + urllib.parse.quote(json.dumps({"status": ["created"]}))
    wait_for("a task container being started", lambda: api(e.daemon.sock, "GET", query)[1], timeout=10, every=0.005)
    e.daemon.kill()
    e.daemon.start()

    running = wait_for("3 RUNNING tasks", lambda: _exactly(e.running(serviceName="starting"), 3))
    assert [t.get("stoppedReason") for t in e.tasks(desiredStatus="STOPPED")] == []
    containers = e.containers()
    assert sorted(c["Config"]["Labels"][LABEL_TASK] for c in containers) == sorted(t["taskArn"] for t in running)
    assert all(c["State"]["Running"] for c in containers)
    wait_for("one conmon per task container", lambda: len(conmons_under(e.daemon.base)) == 3, timeout=10)


def test_sigterm_keeps_the_instance_and_adopts_tasks(ecs_daemon: Ecs) -> None:
    e = ecs_daemon
    ecs = e.client()
    ecs.register_task_definition(**SLEEPER)
    [instance] = e.instance_arns()
    done = ecs.run_task(cluster="default", taskDefinition="sleeper")["tasks"][0]["taskArn"]
    run = ecs.run_task(cluster="default", taskDefinition="sleeper")
    assert run["failures"] == []
    arn = run["tasks"][0]["taskArn"]
    wait_for("both tasks RUNNING", lambda: len(e.running()) == 2)
    ecs.stop_task(cluster="default", task=done)
    wait_for("one task STOPPED", lambda: e.tasks(desiredStatus="STOPPED") and
             e.tasks(desiredStatus="STOPPED")[0]["lastStatus"] == "STOPPED")
    containers = {c["Config"]["Labels"][LABEL_TASK]: c["Id"] for c in e.containers()}
    assert set(containers) == {arn, done}, "a STOPPED task keeps its container for the retention period"
    # a container claiming to be a task this control plane never knew (as if its record were lost),
    # and one of the user's own that is none of the agent's business
    agent = next(c for c in e.containers())["Config"]["Labels"]["io.berth.ecs.agent"]
    stray_arn = "arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef0123456789abcdef"
    stray = e.daemon.docker("run", "-d", "--label", f"{LABEL_TASK}={stray_arn}", "--label",
                            f"io.berth.ecs.agent={agent}", "busybox", "sleep", "3600", check=True).stdout.strip()
    mine = e.daemon.docker("run", "-d", "busybox", "sleep", "3600", check=True).stdout.strip()

    e.daemon.stop()  # SIGTERM
    assert conmons_under(e.daemon.base), "task containers outlive the daemon"
    e.daemon.start()

    assert e.instance_arns() == [instance]
    described = wait_for("the agent reconnected", lambda: (
        d := e.client().describe_container_instances(cluster="default", containerInstances=[instance])
        ["containerInstances"][0])["agentConnected"] and d)
    assert described["status"] == "ACTIVE"
    assert described["runningTasksCount"] == 1
    tasks = e.tasks()
    assert [t["taskArn"] for t in tasks] == [arn] and tasks[0]["lastStatus"] == "RUNNING"
    wait_for("the stray container removed", lambda: e.daemon.docker("inspect", stray).returncode != 0, timeout=15)
    after = {c["Config"]["Labels"][LABEL_TASK]: c for c in e.containers()}
    assert {a: c["Id"] for a, c in after.items()} == containers, "adopted, not started again"
    assert after[arn]["State"]["Running"] is True and after[done]["State"]["Running"] is False
    assert e.client().describe_tasks(cluster="default", tasks=[done])["tasks"][0]["lastStatus"] == "STOPPED"
    assert json.loads(e.daemon.docker("inspect", mine, check=True).stdout)[0]["State"]["Running"] is True
    e.daemon.docker("rm", "-f", mine, check=True)
    # still driven: a stop after the restart reaches the adopted container
    e.client().stop_task(cluster="default", task=arn, reason="done")
    stopped = wait_task(e.client(), arn, "STOPPED")
    assert stopped["stopCode"] == "UserInitiated" and stopped["stoppedReason"] == "done"
    assert stopped["containers"][0]["exitCode"] == 0
    assert len(e.tasks(desiredStatus="STOPPED")) == 2


def test_stopped_tasks_expire_after_retention() -> None:
    with running_aws_daemon("--ecs-healthy-after", "1", "--ecs-task-retention", "2") as d:
        e = Ecs(d)
        ecs = e.client()
        ecs.register_task_definition(**SLEEPER)
        arn = ecs.run_task(cluster="default", taskDefinition="sleeper")["tasks"][0]["taskArn"]
        wait_for("the task RUNNING", lambda: e.running())
        assert len(e.containers()) == 1
        ecs.stop_task(cluster="default", task=arn)
        wait_task(ecs, arn, "STOPPED")
        stopped_at = time.monotonic()
        assert len(e.containers()) == 1, "a STOPPED task keeps its container until it expires"
        gone = wait_for("the task forgotten", lambda: (
            f := ecs.describe_tasks(cluster="default", tasks=[arn])["failures"]) and f, timeout=15)
        assert time.monotonic() - stopped_at >= 1.5
        assert gone == [{"arn": arn, "reason": "MISSING"}]
        assert arn not in ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"]
        wait_for("its container removed", lambda: not e.containers() or None, timeout=10)
