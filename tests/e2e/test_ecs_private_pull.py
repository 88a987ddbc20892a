"""A task whose image lives in an ECR repository of berth's own registry, with anonymous pulls
off: the agent logs in with an ECR token, as the ECS agent's ecr-auth does. A repositoryCredentials
secret berth cannot read stops the task with ECS's ResourceInitializationError."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import BerthDaemon, running_aws_daemon, wait_task

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[BerthDaemon, str, Any, Any]]:
    pytest.importorskip("boto3")
    with running_aws_daemon("--registry-anonymous-pull", "false", registry=True) as d:
        yield d, d.registry_addr, d.aws_client("ecs"), d.aws_client("ecr")


def _wait_stopped_or_running(ecs: Any, arn: str) -> dict[str, Any]:
    return wait_task(ecs, arn, ("RUNNING", "STOPPED"), timeout=30, every=0.05)


def test_a_task_pulls_from_a_private_ecr_repository(setup: tuple[BerthDaemon, str, Any, Any]) -> None:
    d, registry, ecs, ecr = setup
    uri = ecr.create_repository(repositoryName="private/app")["repository"]["repositoryUri"]
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    import base64

    password = base64.b64decode(token).decode().split(":", 1)[1]
    assert d.docker("login", "--username", "AWS", "--password-stdin", registry, input=password.encode()).returncode == 0
    d.docker("tag", "busybox", f"{uri}:v1", check=True)
    d.docker("push", f"{uri}:v1", check=True)
    d.docker("rmi", f"{uri}:v1", check=True)
    d.docker("logout", registry)
    # anonymous pulls are refused: only a login gets the image
    assert d.docker("pull", f"{uri}:v1").returncode != 0
    ecs.register_task_definition(family="private", containerDefinitions=[{
        "name": "app", "image": f"{uri}:v1", "memory": 32, "command": ["sleep", "60"], "stopTimeout": 1}])
    arn = ecs.run_task(taskDefinition="private")["tasks"][0]["taskArn"]
    task = _wait_stopped_or_running(ecs, arn)
    assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
    ecs.stop_task(task=arn)


def test_repository_credentials_berth_cannot_read_stop_the_task_clearly(setup: tuple[BerthDaemon, str, Any, Any]) -> None:
    _d, _registry, ecs, _ecr = setup
    ecs.register_task_definition(family="creds", containerDefinitions=[{
        "name": "app", "image": "127.0.0.1:1/other/app:v1", "memory": 32,
        "repositoryCredentials": {"credentialsParameter":
                                  "arn:aws:secretsmanager:us-east-1:123456789012:secret:reg-AbCdEf"}}])
    arn = ecs.run_task(taskDefinition="creds")["tasks"][0]["taskArn"]
    task = _wait_stopped_or_running(ecs, arn)
    assert task["lastStatus"] == "STOPPED"
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets or registry auth")
