"""ECS services against a real daemon (issue 9, acceptance: services), driven by boto3 and the AWS CLI.

One daemon for the module, with two container instances (`--ecs-agents 2`, so DAEMON services have
two instances to cover) and `--ecs-healthy-after 1` (a task without health checks counts healthy 1 s
after RUNNING instead of ECS's 40 s).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests import helpers
from tests.helpers import BerthDaemon, running_aws_daemon

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

AWS = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws")
HTTPD = "mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www"
wait_for = partial(helpers.wait_for, every=0.05)


class Env:
    def __init__(self, daemon: BerthDaemon) -> None:
        self.d = daemon
        self.endpoint = daemon.aws_url
        self.ecs = daemon.aws_client("ecs")

    def aws(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AWS, "--endpoint-url", self.endpoint, "--output", "json", *args],
                              env=self.d.aws_env, capture_output=True, text=True, timeout=timeout)

    def register(self, family: str, command: str) -> str:
        out = self.ecs.register_task_definition(family=family, containerDefinitions=[{
            "name": "web", "image": "busybox", "memory": 64, "essential": True,
            "stopTimeout": 2,  # httpd as PID 1 ignores SIGTERM: SIGKILL after 2 s, not ECS's 30
            "command": ["sh", "-c", command], "portMappings": [{"containerPort": 80}]}])
        arn: str = out["taskDefinition"]["taskDefinitionArn"]
        return arn

    def service(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.ecs.describe_services(cluster="default", services=[name])["services"][0]
        return found

    def tasks(self, name: str, desired: str = "RUNNING") -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster="default", serviceName=name, desiredStatus=desired)["taskArns"]
        if not arns:
            return []
        found: list[dict[str, Any]] = self.ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
        return found

    def running(self, name: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks(name) if t["lastStatus"] == "RUNNING"]

    def stable(self, name: str, count: int, taskdef: str | None = None) -> bool:
        s = self.service(name)
        return (len(s["deployments"]) == 1 and s["runningCount"] == count == s["desiredCount"]
                and s["deployments"][0]["rolloutState"] == "COMPLETED"
                and (taskdef is None or s["taskDefinition"] == taskdef)
                and len(self.running(name)) == count)


def events(env: Env, name: str) -> list[str]:
    return [e["message"] for e in env.service(name)["events"]]


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with running_aws_daemon("--ecs-healthy-after", "1", "--ecs-agents", "2") as d:
        e = Env(d)
        wait_for("two container instances", lambda: len(
            e.ecs.list_container_instances(cluster="default")["containerInstanceArns"]) == 2)
        yield e


def test_service_replaces_scales_rolls_and_rolls_back(env: Env) -> None:
    ecs = env.ecs
    rev1 = env.register("web", HTTPD.format(body="one"))
    ecs.create_service(cluster="default", serviceName="web", taskDefinition=rev1, desiredCount=3,
                       deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200})
    wait_for("3 RUNNING tasks", lambda: env.stable("web", 3))
    text = events(env, "web")
    assert any(x.startswith("(service web) has started 3 tasks: (task ") for x in text), text
    assert "(service web) has reached a steady state." in text

    # docker kill of one task's container: a replacement RUNNING within 2 s, and an event saying why
    victim = env.running("web")[0]
    victim_id = victim["taskArn"].rsplit("/", 1)[-1]
    ps = env.d.docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-arn={victim['taskArn']}", check=True)
    container = ps.stdout.split()[0]
    before = {t["taskArn"] for t in env.running("web")}
    killed_at = time.monotonic()
    env.d.docker("kill", container, check=True)
    wait_for("a replacement RUNNING task", lambda: len(
        {t["taskArn"] for t in env.running("web")} - before) == 1, timeout=2.0, every=0.02)
    replaced_in = time.monotonic() - killed_at
    assert replaced_in < 2.0
    stopped = ecs.describe_tasks(cluster="default", tasks=[victim["taskArn"]])["tasks"][0]
    assert stopped["desiredStatus"] == "STOPPED"
    why = wait_for("the event about the killed task", lambda: [x for x in events(env, "web") if victim_id in x
                                                               and "stopped after running" in x])
    assert "Essential container in task exited" in why[0] and "web exit code 137" in why[0], why
    assert "starting a replacement" in why[0]
    wait_for("steady again", lambda: env.stable("web", 3))

    # scaling to 5 and to 1
    ecs.update_service(cluster="default", service="web", desiredCount=5)
    wait_for("5 RUNNING tasks", lambda: env.stable("web", 5))
    ecs.update_service(cluster="default", service="web", desiredCount=1)
    wait_for("1 RUNNING task", lambda: env.stable("web", 1))
    assert any("has stopped 4 running tasks" in x for x in events(env, "web"))
    ecs.update_service(cluster="default", service="web", desiredCount=3)
    wait_for("3 RUNNING tasks again", lambda: env.stable("web", 3))

    # a rolling deployment to a new revision never has fewer than 3 RUNNING tasks
    rev2 = env.register("web", HTTPD.format(body="two"))
    ecs.update_service(cluster="default", service="web", taskDefinition=rev2,
                       deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200})
    samples, lowest, highest, saw_two = 0, 99, 0, False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s = env.service("web")
        running = env.running("web")
        samples += 1
        lowest = min(lowest, len(running), s["runningCount"])
        highest = max(highest, s["runningCount"] + s["pendingCount"])
        saw_two = saw_two or len(s["deployments"]) == 2
        if (len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
                and s["taskDefinition"] == rev2 and s["runningCount"] == 3
                and {t["taskDefinitionArn"] for t in running} == {rev2} and len(running) == 3):
            break
    else:
        raise AssertionError(f"rollout did not finish: {env.service('web')['deployments']}")
    assert saw_two and samples > 5
    assert lowest >= 3, f"only {lowest} RUNNING tasks during the rollout"
    assert highest <= 6, f"{highest} tasks during the rollout (maximumPercent 200 allows 6)"

    # a revision whose container exits at once trips the circuit breaker and rolls back
    bad = env.register("web", "exit 3")
    ecs.update_service(cluster="default", service="web", taskDefinition=bad, deploymentConfiguration={
        "minimumHealthyPercent": 100, "maximumPercent": 200,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    failed = wait_for("the bad deployment FAILED", lambda: [
        d for d in env.service("web")["deployments"] if d["taskDefinition"] == bad and d["rolloutState"] == "FAILED"],
        timeout=20)
    assert failed[0]["failedTasks"] >= 3
    assert failed[0]["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    wait_for("back on the good revision with 3 RUNNING tasks", lambda: env.stable("web", 3, rev2), timeout=20)
    assert {t["taskDefinitionArn"] for t in env.running("web")} == {rev2}
    text = "\n".join(events(env, "web"))
    assert f"(deployment {failed[0]['id']}) deployment failed: tasks failed to start." in text
    assert "rolling back to deployment" in text
    # 3 at once (maximumPercent leaves room), then replacements of the first failures until the breaker
    # trips; a replacement still starting then is stopped by the scheduler
    bad_tasks = [t for t in env.tasks("web", "STOPPED") if t["taskDefinitionArn"] == bad]
    exited = [t for t in bad_tasks if t["stopCode"] == "EssentialContainerExited"]
    assert len(exited) >= 3 and len(bad_tasks) <= 6, [(t["stopCode"], t.get("stoppedReason")) for t in bad_tasks]
    assert all(t["stopCode"] == "ServiceSchedulerInitiated" for t in bad_tasks if t not in exited)
    assert all(c["exitCode"] == 3 for t in exited for c in t["containers"])

    # the services-stable waiter returns (the service is stable, so its first attempt succeeds)
    started = time.monotonic()
    waited = env.aws("ecs", "wait", "services-stable", "--cluster", "default", "--services", "web")
    assert waited.returncode == 0, waited.stderr
    assert time.monotonic() - started < 10
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"],
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 10})


def test_services_stable_waiter_waits_through_a_rollout(env: Env) -> None:
    rev = env.register("waity", HTTPD.format(body="w"))
    env.ecs.create_service(cluster="default", serviceName="waity", taskDefinition=rev, desiredCount=2)
    started = time.monotonic()
    env.ecs.get_waiter("services_stable").wait(cluster="default", services=["waity"],
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    assert time.monotonic() - started < 20
    s = env.service("waity")
    assert s["runningCount"] == 2 and len(s["deployments"]) == 1
    env.ecs.delete_service(cluster="default", service="waity", force=True)


def test_delete_service_needs_force_then_drains_to_inactive(env: Env) -> None:
    rev = env.register("doomed", HTTPD.format(body="d"))
    env.ecs.create_service(cluster="default", serviceName="doomed", taskDefinition=rev, desiredCount=2)
    wait_for("2 RUNNING tasks", lambda: env.stable("doomed", 2))
    arns = [t["taskArn"] for t in env.running("doomed")]

    with pytest.raises(ClientError) as err:
        env.ecs.delete_service(cluster="default", service="doomed")
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "The service cannot be stopped while it is scaled above 0." in err.value.response["Error"]["Message"]
    assert env.service("doomed")["status"] == "ACTIVE"

    cli = env.aws("ecs", "delete-service", "--cluster", "default", "--service", "doomed", "--force")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["service"]["status"] == "DRAINING"
    wait_for("INACTIVE", lambda: env.service("doomed")["status"] == "INACTIVE", timeout=20)
    described = env.ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
    assert [t["lastStatus"] for t in described] == ["STOPPED", "STOPPED"]
    assert all(t["stopCode"] == "ServiceSchedulerInitiated" for t in described)
    listed = env.ecs.list_services(cluster="default")["serviceArns"]
    assert not any(a.endswith("/doomed") for a in listed)
    gone = env.ecs.describe_services(cluster="default", services=["doomed"])
    assert gone["services"][0]["status"] == "INACTIVE" and not gone["failures"]
    ps = env.d.docker("ps", "-q", "--filter", "label=com.amazonaws.ecs.task-definition-family=doomed", check=True)
    assert ps.stdout.split() == []


def test_daemon_service_runs_one_task_per_instance(env: Env) -> None:
    instances = env.ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    assert len(instances) == 2
    rev = env.register("agentd", HTTPD.format(body="a"))
    out = env.aws("ecs", "create-service", "--cluster", "default", "--service-name", "agentd",
                  "--task-definition", rev, "--scheduling-strategy", "DAEMON")
    assert out.returncode == 0, out.stderr
    wait_for("one RUNNING task per instance", lambda: env.stable("agentd", 2))
    placed = sorted(t["containerInstanceArn"] for t in env.running("agentd"))
    assert placed == sorted(instances)
    s = env.service("agentd")
    assert s["schedulingStrategy"] == "DAEMON" and s["desiredCount"] == 2
    assert s["deploymentConfiguration"]["maximumPercent"] == 100

    # a new revision replaces the task on each instance, one per instance
    rev2 = env.register("agentd", HTTPD.format(body="b"))
    env.ecs.update_service(cluster="default", service="agentd", taskDefinition=rev2)
    wait_for("the new revision on both instances", lambda: env.stable("agentd", 2, rev2))
    assert sorted(t["containerInstanceArn"] for t in env.running("agentd")) == sorted(instances)

    with pytest.raises(ClientError) as err:
        env.ecs.update_service(cluster="default", service="agentd", desiredCount=3)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    env.ecs.delete_service(cluster="default", service="agentd")
    wait_for("INACTIVE", lambda: env.service("agentd")["status"] == "INACTIVE", timeout=20)
    assert env.running("agentd") == []
