"""The ECS API end to end with the AWS CLI (issue 9, part 1): one pass over the whole surface.

Clusters, task definitions (`--cli-input-json`), tasks, services, container instances, attributes,
tags and account settings, each read back with `describe-*` / `list-*` (paged with `--max-items`
/ `--starting-token` and `--page-size`), asserting the shapes botocore parses out of berth's answers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BerthDaemon, running_aws_daemon, wait_for

pytestmark = pytest.mark.root

AWS = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws")


class Cli:
    def __init__(self, d: BerthDaemon) -> None:
        self.d = d
        self.endpoint = d.aws_url

    def __call__(self, *args: str, ok: bool = True) -> Any:
        result = subprocess.run([AWS, "--endpoint-url", self.endpoint, "--output", "json", "ecs", *args],
                                env=self.d.aws_env, capture_output=True, text=True, timeout=60)
        if not ok:
            assert result.returncode != 0, result.stdout
            return result.stderr
        assert result.returncode == 0, f"aws ecs {' '.join(args)}: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    with running_aws_daemon("--ecs-healthy-after", "1") as d:
        yield Cli(d)


def taskdef_json(tmp: Path, family: str, **extra: Any) -> str:
    path = tmp / f"{family}.json"
    path.write_text(json.dumps({
        "family": family,
        "containerDefinitions": [{"name": "main", "image": "busybox", "memory": 32, "essential": True,
                                  "command": ["sleep", "3600"], "stopTimeout": 2,
                                  "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
        "tags": [{"key": "app", "value": family}], **extra}))
    return f"file://{path}"


def test_whole_surface(cli: Cli, tmp_path: Path) -> None:
    # --- clusters
    created = cli("create-cluster", "--cluster-name", "api-test", "--tags", "key=team,value=a",
                  "--settings", "name=containerInsights,value=enabled")["cluster"]
    assert created["clusterName"] == "api-test" and created["status"] == "ACTIVE"
    assert created["tags"] == [{"key": "team", "value": "a"}]
    assert created["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert cli("create-cluster", "--cluster-name", "api-test")["cluster"]["clusterArn"] == created["clusterArn"]
    account = created["clusterArn"].split(":")[4]
    arn = f"arn:aws:ecs:us-east-1:{account}"
    described = cli("describe-clusters", "--clusters", "api-test", "default", "ghost", "--include", "TAGS")
    assert sorted(c["clusterName"] for c in described["clusters"]) == ["api-test", "default"]
    assert described["failures"] == [{"arn": f"{arn}:cluster/ghost", "reason": "MISSING"}]
    default = next(c for c in described["clusters"] if c["clusterName"] == "default")
    assert default["registeredContainerInstancesCount"] == 1  # the daemon's own agent
    clusters = cli("list-clusters", "--max-items", "1")
    assert len(clusters["clusterArns"]) == 1 and clusters["NextToken"]
    rest = cli("list-clusters", "--starting-token", clusters["NextToken"])
    assert sorted(clusters["clusterArns"] + rest["clusterArns"]) == [f"{arn}:cluster/api-test",
                                                                     f"{arn}:cluster/default"]
    cli("put-cluster-capacity-providers", "--cluster", "api-test", "--capacity-providers", "FARGATE",
        "FARGATE_SPOT", "--default-capacity-provider-strategy", "capacityProvider=FARGATE,weight=1")

    # --- task definitions
    for _ in range(3):
        web = cli("register-task-definition", "--cli-input-json", taskdef_json(tmp_path, "web"))
    assert web["taskDefinition"]["revision"] == 3 and web["tags"] == [{"key": "app", "value": "web"}]
    side = cli("register-task-definition", "--cli-input-json", taskdef_json(tmp_path, "side"))["taskDefinition"]
    assert side["taskDefinitionArn"] == f"{arn}:task-definition/side:1"
    assert side["containerDefinitions"][0]["portMappings"][0]["containerPort"] == 80
    assert side["compatibilities"] and side["status"] == "ACTIVE" and side["registeredAt"]
    first = cli("list-task-definitions", "--max-items", "2")
    assert len(first["taskDefinitionArns"]) == 2 and first["NextToken"]
    second = cli("list-task-definitions", "--max-items", "2", "--starting-token", first["NextToken"])
    everything = cli("list-task-definitions", "--page-size", "1")  # the CLI follows every nextToken
    assert first["taskDefinitionArns"] + second["taskDefinitionArns"] == everything["taskDefinitionArns"]
    assert everything["taskDefinitionArns"] == [f"{arn}:task-definition/{x}" for x in
                                                ("side:1", "web:1", "web:2", "web:3")]
    assert cli("list-task-definitions", "--family-prefix", "web", "--sort", "DESC")["taskDefinitionArns"][0] == \
        f"{arn}:task-definition/web:3"
    assert cli("list-task-definition-families")["families"] == ["side", "web"]
    latest = cli("describe-task-definition", "--task-definition", "web", "--include", "TAGS")
    assert latest["taskDefinition"]["revision"] == 3 and latest["tags"] == [{"key": "app", "value": "web"}]
    gone = cli("deregister-task-definition", "--task-definition", "web:1")["taskDefinition"]
    assert gone["status"] == "INACTIVE" and "deregisteredAt" in gone
    deleted = cli("delete-task-definitions", "--task-definitions", "web:1")
    assert deleted["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS" and deleted["failures"] == []

    # --- container instances and attributes
    instances = cli("list-container-instances")["containerInstanceArns"]
    assert len(instances) == 1
    instance = instances[0]
    inst = cli("describe-container-instances", "--container-instances", instance)["containerInstances"][0]
    assert inst["agentConnected"] is True and inst["status"] == "ACTIVE"
    assert {r["name"] for r in inst["registeredResources"]} >= {"CPU", "MEMORY", "PORTS"}
    assert any(a["name"] == "ecs.os-type" for a in inst["attributes"])
    put = cli("put-attributes", "--attributes", f"name=stack,value=prod,targetId={instance}")["attributes"]
    assert put == [{"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": instance}]
    listed = cli("list-attributes", "--target-type", "container-instance", "--attribute-name", "stack")
    assert listed["attributes"] == put
    assert cli("list-container-instances", "--filter", "attribute:stack == prod")["containerInstanceArns"] == \
        [instance]
    assert cli("list-container-instances", "--filter", "attribute:stack == dev")["containerInstanceArns"] == []

    # --- tasks
    run = cli("run-task", "--task-definition", "web", "--count", "2", "--started-by", "cli",
              "--tags", "key=kind,value=adhoc")
    assert run["failures"] == [] and len(run["tasks"]) == 2
    tasks = [t["taskArn"] for t in run["tasks"]]

    def running() -> list[dict[str, Any]] | None:
        found = cli("describe-tasks", "--tasks", *tasks)["tasks"]
        return found if all(t["lastStatus"] == "RUNNING" for t in found) else None

    described_tasks = wait_for("tasks RUNNING", running)
    for t in described_tasks:
        binding = t["containers"][0]["networkBindings"][0]
        assert binding["containerPort"] == 80 and binding["hostPort"] >= 1024
        assert t["startedBy"] == "cli" and t["taskDefinitionArn"] == f"{arn}:task-definition/web:3"
        assert t["containerInstanceArn"] == instance and t["launchType"] == "EC2"
    page = cli("list-tasks", "--max-items", "1")
    assert len(page["taskArns"]) == 1 and page["NextToken"]
    assert sorted(cli("list-tasks", "--started-by", "cli")["taskArns"]) == sorted(tasks)
    assert sorted(cli("list-tasks", "--family", "web", "--container-instance", instance)["taskArns"]) == \
        sorted(tasks)
    stopped = cli("stop-task", "--task", tasks[0], "--reason", "done")["task"]
    assert stopped["desiredStatus"] == "STOPPED" and stopped["stopCode"] == "UserInitiated"
    assert cli("list-tasks", "--desired-status", "STOPPED")["taskArns"] == [tasks[0]]
    missing = cli("describe-tasks", "--tasks", f"{arn}:task/default/0000")
    assert missing["failures"] == [{"arn": f"{arn}:task/default/0000", "reason": "MISSING"}]

    # --- services
    svc = cli("create-service", "--service-name", "api", "--task-definition", "side", "--desired-count", "1",
              "--tags", "key=svc,value=1")["service"]
    assert svc["serviceArn"] == f"{arn}:service/default/api" and svc["deployments"][0]["status"] == "PRIMARY"

    def steady() -> dict[str, Any] | None:
        s = cli("describe-services", "--services", "api")["services"][0]
        return s if s["runningCount"] == 1 else None

    assert wait_for("service running", steady)["desiredCount"] == 1
    assert cli("list-services")["serviceArns"] == [svc["serviceArn"]]
    assert len(cli("list-tasks", "--service-name", "api")["taskArns"]) == 1
    updated = cli("update-service", "--service", "api", "--desired-count", "0")["service"]
    assert updated["desiredCount"] == 0

    # --- tags on every taggable resource
    for resource in (created["clusterArn"], f"{arn}:task-definition/side:1", tasks[1], svc["serviceArn"], instance):
        cli("tag-resource", "--resource-arn", resource, "--tags", "key=owner,value=qa")
        tags = cli("list-tags-for-resource", "--resource-arn", resource)["tags"]
        assert {"key": "owner", "value": "qa"} in tags, resource
    cli("untag-resource", "--resource-arn", created["clusterArn"], "--tag-keys", "owner")
    assert cli("list-tags-for-resource", "--resource-arn", created["clusterArn"])["tags"] == [
        {"key": "team", "value": "a"}]
    err = cli("list-tags-for-resource", "--resource-arn", f"{arn}:cluster/ghost", ok=False)
    assert "ResourceNotFoundException" in err

    # --- account settings
    assert cli("list-account-settings")["settings"] == []
    effective = cli("list-account-settings", "--effective-settings", "--name", "containerInsights")["settings"]
    assert effective == [{"name": "containerInsights", "value": "disabled",
                          "principalArn": f"arn:aws:iam::{account}:root", "type": "user"}]
    cli("put-account-setting", "--name", "containerInsights", "--value", "enabled")
    assert cli("list-account-settings", "--name", "containerInsights")["settings"][0]["value"] == "enabled"
    cli("delete-account-setting", "--name", "containerInsights")
    all_settings = cli("list-account-settings", "--effective-settings")["settings"]  # two pages of 10, followed
    assert len(all_settings) == len({s["name"] for s in all_settings}) > 10

    # --- ExecuteCommand's refusal, and clean-up through the API
    # (the CLI's execute-command wants AWS's session-manager plugin before it calls: boto3 calls directly)
    from botocore.exceptions import ClientError

    ecs = cli.d.aws_client("ecs")
    with pytest.raises(ClientError) as refused:
        ecs.execute_command(task=tasks[1], command="sh", interactive=True)
    assert refused.value.response["Error"]["Code"] == "TargetNotConnectedException"
    assert "ECS Exec" in refused.value.response["Error"]["Message"]
    cli("delete-service", "--service", "api", "--force")
    cli("stop-task", "--task", tasks[1])
    assert cli("delete-cluster", "--cluster", "api-test")["cluster"]["status"] == "INACTIVE"
    assert cli("list-clusters")["clusterArns"] == [f"{arn}:cluster/default"]
