"""ECS placement on a cluster of two container instances (issue 9, "Placement").

One daemon runs two agents (`--ecs-agents 2`): two container instances on the same engine, in zones
local-1a and local-1b, 1024 MiB each. `spread` by instanceId balances, `binpack` by memory packs,
`distinctInstance` refuses a third task on two instances, a task bigger than any instance fails with
RESOURCE:MEMORY, `memberOf` on the zone attribute picks the instance, a fixed hostPort fits once per
instance, a client-registered instance gets no tasks and a DRAINING instance loses its service tasks.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import BerthDaemon, free_port, running_aws_daemon, wait_for

pytestmark = pytest.mark.root

boto3 = pytest.importorskip("boto3")

CLUSTER = "default"
MEMORY = 1024


def sleeper(family: str, memory: int, **extra: Any) -> dict[str, Any]:
    """A task definition whose one container sleeps and exits at once on SIGTERM (a bare `sleep` as
    PID 1 ignores it and would hold every stop for the 30 s stopTimeout)."""
    return {"family": family, "containerDefinitions": [
        {"name": "main", "image": "busybox", "essential": True, "memory": memory,
         "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"], **extra}]}


class Cluster:
    def __init__(self, daemon: BerthDaemon) -> None:
        self.daemon = daemon
        self.ecs = daemon.aws_client("ecs")
        instances = self.describe_instances()
        self.zone = {i["containerInstanceArn"]: _attribute(i, "ecs.availability-zone") for i in instances}
        self.by_zone = {zone: arn for arn, zone in self.zone.items()}

    def describe_instances(self, arns: list[str] | None = None) -> list[dict[str, Any]]:
        arns = arns or self.ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
        return self.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)["containerInstances"]

    def tasks(self, **kw: Any) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=CLUSTER, **kw)["taskArns"]
        return self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []

    def wait_running(self, arns: list[str]) -> list[dict[str, Any]]:
        def probe() -> list[dict[str, Any]] | None:
            tasks = self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
            assert all(t["lastStatus"] != "STOPPED" for t in tasks), [t.get("stoppedReason") for t in tasks]
            return tasks if len(tasks) == len(arns) and all(t["lastStatus"] == "RUNNING" for t in tasks) else None
        return wait_for(f"{len(arns)} tasks RUNNING", probe)

    def stop_everything(self) -> None:
        """Stop every task and wait until each is STOPPED (its reservation released)."""
        for service in self.ecs.list_services(cluster=CLUSTER)["serviceArns"]:
            self.ecs.delete_service(cluster=CLUSTER, service=service, force=True)
        for task in self.ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]:
            self.ecs.stop_task(cluster=CLUSTER, task=task, reason="test clean-up")
        wait_for("every task STOPPED", lambda: all(
            t["lastStatus"] == "STOPPED" for t in self.tasks(desiredStatus="STOPPED")) and not self.tasks(
            desiredStatus="RUNNING") or None, timeout=30)


def _attribute(instance: dict[str, Any], name: str) -> str | None:
    return next((a.get("value") for a in instance["attributes"] if a["name"] == name), None)


def _placed(tasks: list[dict[str, Any]]) -> Counter[str]:
    return Counter(t["containerInstanceArn"] for t in tasks)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_aws_daemon("--ecs-healthy-after", "1", "--ecs-agents", "2",
                            "--ecs-agent-resources", f"2048,{MEMORY}") as daemon:
        yield Cluster(daemon)


@pytest.fixture()
def ecs(cluster: Cluster) -> Iterator[Cluster]:
    try:
        yield cluster
    finally:
        cluster.stop_everything()


def test_two_instances_in_two_zones(ecs: Cluster) -> None:
    instances = ecs.describe_instances()
    assert sorted(ecs.by_zone) == ["local-1a", "local-1b"]
    for inst in instances:
        assert inst["status"] == "ACTIVE" and inst["agentConnected"] is True
        registered = {r["name"]: r for r in inst["registeredResources"]}
        assert registered["MEMORY"]["integerValue"] == MEMORY
        assert registered["CPU"]["integerValue"] == 2048


def test_spread_by_instance_id_balances(ecs: Cluster) -> None:
    ecs.ecs.register_task_definition(**sleeper("spread", 64))
    run = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="spread", count=4,
                           placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert run["failures"] == []
    tasks = ecs.wait_running([t["taskArn"] for t in run["tasks"]])
    assert sorted(_placed(tasks).values()) == [2, 2]
    assert set(_placed(tasks)) == set(ecs.zone)
    # each task's container really runs, once, on the engine
    labels = ecs.daemon.docker("ps", "--filter", "label=com.amazonaws.ecs.task-definition-family=spread",
                               "--format", "{{.Label \"com.amazonaws.ecs.task-arn\"}}", check=True).stdout.split()
    assert sorted(labels) == sorted(t["taskArn"] for t in tasks)


def test_binpack_by_memory_packs(ecs: Cluster) -> None:
    ecs.ecs.register_task_definition(**sleeper("packed", 256))
    binpack = [{"type": "binpack", "field": "memory"}]
    first = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="packed", count=2, placementStrategy=binpack)
    assert first["failures"] == []
    [full] = set(_placed(first["tasks"]))
    second = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="packed", count=2, placementStrategy=binpack)
    assert _placed(second["tasks"]) == Counter({full: 2}), "binpack fills the fullest instance first"
    ecs.wait_running([t["taskArn"] for t in first["tasks"] + second["tasks"]])
    described = {i["containerInstanceArn"]: i for i in ecs.describe_instances()}
    remaining = {r["name"]: r for r in described[full]["remainingResources"]}
    assert remaining["MEMORY"]["integerValue"] == 0
    assert described[full]["runningTasksCount"] == 4
    # the full instance takes no more: the next one goes to the other
    third = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="packed", placementStrategy=binpack)
    assert third["failures"] == []
    assert [t["containerInstanceArn"] for t in third["tasks"]] != [full]
    ecs.wait_running([t["taskArn"] for t in third["tasks"]])


def test_distinct_instance_leaves_the_third_task_unplaced(ecs: Cluster) -> None:
    ecs.ecs.register_task_definition(**sleeper("distinct", 64))
    run = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="distinct", count=3,
                           placementConstraints=[{"type": "distinctInstance"}])
    assert len(run["tasks"]) == 2
    assert set(_placed(run["tasks"])) == set(ecs.zone)
    assert run["failures"], "the third task must be reported"
    for failure in run["failures"]:
        assert failure["arn"] in ecs.zone
        assert failure["reason"].startswith(("RESOURCE", "CONSTRAINT")), failure
    ecs.wait_running([t["taskArn"] for t in run["tasks"]])
    assert len(ecs.tasks(family="distinct")) == 2, "nothing half-created for the unplaced task"


def test_more_memory_than_any_instance_fails_with_resource_memory(ecs: Cluster) -> None:
    ecs.ecs.register_task_definition(**sleeper("huge", MEMORY + 1))
    run = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="huge")
    assert run["tasks"] == []
    assert sorted(f["arn"] for f in run["failures"]) == sorted(ecs.zone)
    assert {f["reason"] for f in run["failures"]} == {"RESOURCE:MEMORY"}
    assert ecs.tasks(family="huge") == [] and ecs.tasks(family="huge", desiredStatus="STOPPED") == []


def test_member_of_the_zone_attribute(ecs: Cluster) -> None:
    ecs.ecs.register_task_definition(**sleeper("zoned", 64))
    run = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="zoned", count=3, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == local-1b"}])
    assert run["failures"] == []
    assert _placed(run["tasks"]) == Counter({ecs.by_zone["local-1b"]: 3})
    ecs.wait_running([t["taskArn"] for t in run["tasks"]])
    # a zone no instance is in: nothing fits
    none = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="zoned", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == local-9z"}])
    assert none["tasks"] == [] and {f["reason"] for f in none["failures"]} == {"ATTRIBUTE"}


def test_fixed_host_port_fits_once_per_instance(ecs: Cluster) -> None:
    port = free_port()
    ecs.ecs.register_task_definition(family="fixed", containerDefinitions=[{
        "name": "web", "image": "busybox", "essential": True, "memory": 32, "stopTimeout": 1,
        "command": ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"],
        "portMappings": [{"containerPort": 80, "hostPort": port}]}])
    target = ecs.by_zone["local-1a"]
    first = ecs.ecs.start_task(cluster=CLUSTER, taskDefinition="fixed", containerInstances=[target])
    assert first["failures"] == []
    [task] = ecs.wait_running([first["tasks"][0]["taskArn"]])
    bindings = task["containers"][0]["networkBindings"]
    assert [(b["containerPort"], b["hostPort"]) for b in bindings] == [(80, port)]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as resp:
        assert resp.read() == b"hello\n"
    second = ecs.ecs.start_task(cluster=CLUSTER, taskDefinition="fixed", containerInstances=[target])
    assert second["tasks"] == []
    assert [(f["arn"], f["reason"]) for f in second["failures"]] == [(target, "RESOURCE:PORTS")]
    # RunTask held to that instance says the same for it
    third = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="fixed", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == local-1a"}])
    assert third["tasks"] == []
    assert (target, "RESOURCE:PORTS") in [(f["arn"], f["reason"]) for f in third["failures"]]
    described = ecs.describe_instances([target])[0]
    ports = {r["name"]: r for r in described["remainingResources"]}["PORTS"]["stringSetValue"]
    assert str(port) in ports
    assert len(ecs.tasks(family="fixed")) == 1


def test_client_registered_instance_gets_no_tasks(ecs: Cluster) -> None:
    document = json.dumps({"instanceId": "i-0123456789abcdef0", "region": "us-east-1",
                           "availabilityZone": "us-east-1a", "instanceType": "m5.large"})
    registered = ecs.ecs.register_container_instance(
        cluster=CLUSTER, instanceIdentityDocument=document, instanceIdentityDocumentSignature="sig",
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 8192},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 32768}],
        versionInfo={"agentVersion": "1.80.0", "agentHash": "abc", "dockerVersion": "DockerVersion: 24.0.0"},
    )["containerInstance"]
    arn = registered["containerInstanceArn"]
    try:
        assert registered["agentConnected"] is False
        assert registered["ec2InstanceId"] == "i-0123456789abcdef0"
        [described] = ecs.describe_instances([arn])
        assert described["agentConnected"] is False and described["status"] == "ACTIVE"
        ecs.ecs.register_task_definition(**sleeper("elsewhere", 64))
        # the big idle instance would win every spread and binpack: it still gets nothing
        for strategy in ([{"type": "spread", "field": "instanceId"}], [{"type": "binpack", "field": "memory"}]):
            run = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="elsewhere", count=3, placementStrategy=strategy)
            assert len(run["tasks"]) == 3 and arn not in _placed(run["tasks"])
        huge = ecs.ecs.register_task_definition(**sleeper("only-fits-there", 4096))["taskDefinition"]
        run = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition=huge["taskDefinitionArn"])
        assert run["tasks"] == []
        assert (arn, "AGENT") in [(f["arn"], f["reason"]) for f in run["failures"]]
        assert ecs.ecs.list_tasks(cluster=CLUSTER, containerInstance=arn)["taskArns"] == []
    finally:
        ecs.ecs.deregister_container_instance(cluster=CLUSTER, containerInstance=arn, force=True)


def test_draining_moves_service_tasks_off(ecs: Cluster) -> None:
    ecs.ecs.register_task_definition(**sleeper("drained", 64))
    ecs.ecs.create_service(cluster=CLUSTER, serviceName="drained", taskDefinition="drained", desiredCount=2,
                           placementStrategy=[{"type": "spread", "field": "instanceId"}])

    def running() -> list[dict[str, Any]]:
        return [t for t in ecs.tasks(serviceName="drained") if t["lastStatus"] == "RUNNING"]

    before = wait_for("2 service tasks RUNNING", lambda: r if len(r := running()) == 2 else None)
    assert set(_placed(before)) == set(ecs.zone)
    drained, kept = ecs.by_zone["local-1a"], ecs.by_zone["local-1b"]
    update = ecs.ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[drained],
                                                      status="DRAINING")
    assert update["containerInstances"][0]["status"] == "DRAINING"
    try:
        after = wait_for("both service tasks on the other instance",
                         lambda: r if _placed(r := running()) == Counter({kept: 2}) else None, timeout=30)
        assert len(after) == 2
        moved = [t for t in before if t["containerInstanceArn"] == drained][0]
        stopped = ecs.ecs.describe_tasks(cluster=CLUSTER, tasks=[moved["taskArn"]])["tasks"][0]
        assert stopped["desiredStatus"] == "STOPPED"
        assert stopped["stopCode"] == "ServiceSchedulerInitiated"
        # a DRAINING instance takes no new task either
        run = ecs.ecs.run_task(cluster=CLUSTER, taskDefinition="drained", placementConstraints=[
            {"type": "memberOf", "expression": "attribute:ecs.availability-zone == local-1a"}])
        assert run["tasks"] == []
    finally:
        ecs.ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[drained], status="ACTIVE")
