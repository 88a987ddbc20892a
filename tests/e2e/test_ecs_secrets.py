"""Issue 12 acceptance, ECS secrets: a task definition shaped as exported from an AWS account
(executionRoleArn, an SSM SecureString by ARN and a JSON key of a Secrets Manager secret) runs
unchanged as a service, driven by boto3. The container sees both values; `docker inspect`,
DescribeTasks, the daemon log and a grep over the daemon's --root find neither, also after a
daemon restart with the task still running; rotating the secret and forcing a new deployment
gives the new task the new value; a missing secret stops the task with ECS's
ResourceInitializationError; repositoryCredentials from Secrets Manager pull from berth's registry
behind htpasswd auth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BerthDaemon, running_aws_daemon, wait_for, wait_task

pytestmark = pytest.mark.root

boto3 = pytest.importorskip("boto3")

ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
DB_PASS = "db-Pw-4c1d9e7Qx"          # distinctive: a grep for them finds nothing else
API_KEY = "api-Key-8b2f61Zr"
ROTATED = "api-Key-rot-55e0aKp"
REG_USER, REG_PASS = "puller", "reg-Pw-93ab1Mv"
PREFIX = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
AWS = str(Path(sys.executable).parent / "aws")   # the AWS CLI


class Env:
    def __init__(self, d: BerthDaemon) -> None:
        self.d = d

    def client(self, service: str) -> Any:
        return self.d.aws_client(service)

    def aws(self, *args: str) -> str:
        env = {**self.d.aws_env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        done = subprocess.run([AWS, "--endpoint-url", self.d.aws_url, *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def running(self, service: str) -> list[dict[str, Any]]:
        ecs = self.client("ecs")
        arns = ecs.list_tasks(cluster="default", serviceName=service, desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []
        return [t for t in tasks if t["lastStatus"] == "RUNNING"]

    def news(self, service: str) -> str:
        """For a timeout: the service's stopped tasks and why."""
        ecs = self.client("ecs")
        arns = ecs.list_tasks(cluster="default", serviceName=service, desiredStatus="STOPPED")["taskArns"]
        tasks = ecs.describe_tasks(cluster="default", tasks=arns[:5])["tasks"] if arns else []
        return f"{service}: stopped {[t.get('stoppedReason') for t in tasks]}"

    def env_of(self, task: dict[str, Any]) -> dict[str, str]:
        """The container's environment as its process sees it (docker exec, through the engine)."""
        cid = task["containers"][0]["runtimeId"]
        out = self.d.docker("exec", cid, "env", check=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def assert_nowhere_in_clear(self, *values: str) -> None:
        """Neither `docker inspect` of any container, DescribeTasks, the daemon log nor any file
        under --root holds a value."""
        ids = self.d.docker("ps", "-aq", check=True).stdout.split()
        inspect = self.d.docker("inspect", *ids, check=True).stdout if ids else ""
        ecs = self.client("ecs")
        arns = ecs.list_tasks(cluster="default")["taskArns"] + ecs.list_tasks(
            cluster="default", desiredStatus="STOPPED")["taskArns"]
        described = json.dumps(ecs.describe_tasks(cluster="default", tasks=arns)["tasks"], default=str) if arns else ""
        log = (self.d.base / "daemon.log").read_text(errors="replace")
        for value in values:
            assert value not in inspect, f"{value} in docker inspect"
            assert value not in described, f"{value} in DescribeTasks"
            assert value not in log, f"{value} in the daemon log"
            found = subprocess.run(["grep", "-rl", "--binary-files=text", "-F", value, str(self.d.root)],
                                   capture_output=True, text=True, timeout=300)
            assert found.returncode == 1, f"{value} in clear under --root: {found.stdout}{found.stderr}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    pytest.importorskip("bcrypt")
    from tests.peer_registry import htpasswd_line

    htpasswd = tmp_path_factory.mktemp("secrets-registry") / "htpasswd"
    htpasswd.write_text(htpasswd_line(REG_USER, REG_PASS) + "\n")
    with running_aws_daemon("--ecs-healthy-after", "1", "--registry-htpasswd", str(htpasswd),
                            registry=True) as d:
        yield Env(d)


def _log_configuration() -> dict[str, Any]:
    """awslogs as exported task definitions have it, once berth's engine has that driver."""
    from berth.agent import _specs

    if "awslogs" in _specs.SUPPORTED_LOG_DRIVERS:
        return {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
                                                    "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true"}}
    return {"logDriver": "json-file", "options": {"max-size": "10m"}}


def exported_task_definition(ssm_arn: str, secret_arn: str) -> dict[str, Any]:
    """The registerable part of `aws ecs describe-task-definition` of an EC2 web task."""
    return {
        "family": "web",
        "executionRoleArn": ROLE,
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "cpu": "256",
        "memory": "256",
        "containerDefinitions": [{
            "name": "web",
            "image": "busybox",
            "cpu": 0,
            "essential": True,
            "command": ["sh", "-c", "echo started; trap 'exit 0' TERM; sleep 3600 & wait"],
            "portMappings": [],
            "environment": [{"name": "APP_ENV", "value": "production"}],
            "mountPoints": [],
            "volumesFrom": [],
            "secrets": [
                {"name": "DB_PASS", "valueFrom": ssm_arn},
                {"name": "API_KEY", "valueFrom": f"{secret_arn}:api_key::"},
            ],
            "stopTimeout": 2,
            "logConfiguration": _log_configuration(),
        }],
    }


def test_secrets_reach_the_container_and_nothing_else(env: Env) -> None:
    d, ecs = env.d, env.client("ecs")
    ssm, sm = env.client("ssm"), env.client("secretsmanager")
    ssm.put_parameter(Name="/web/db-pass", Value=DB_PASS, Type="SecureString")
    ssm_arn = ssm.get_parameter(Name="/web/db-pass")["Parameter"]["ARN"]
    secret_arn = sm.create_secret(Name="web/api", SecretString=json.dumps({"api_key": API_KEY, "user": "web"}))["ARN"]
    td = ecs.register_task_definition(**exported_task_definition(ssm_arn, secret_arn))["taskDefinition"]
    assert td["executionRoleArn"] == ROLE
    ecs.create_service(cluster="default", serviceName="web", taskDefinition=td["taskDefinitionArn"], desiredCount=1)
    task = wait_for(lambda: env.news("web"), lambda: env.running("web"), timeout=60)[0]

    seen = env.env_of(task)
    assert seen["DB_PASS"] == DB_PASS and seen["API_KEY"] == API_KEY and seen["APP_ENV"] == "production"
    inspect = json.loads(d.docker("inspect", task["containers"][0]["runtimeId"], check=True).stdout)[0]
    assert f"DB_PASS=<secret from {ssm_arn}>" in inspect["Config"]["Env"]
    assert f"API_KEY=<secret from {secret_arn}:api_key::>" in inspect["Config"]["Env"]
    env.assert_nowhere_in_clear(DB_PASS, API_KEY)
    # the control: the run root (tmpfs on a host) does hold them, in the engine's 0600 file
    held = subprocess.run(["grep", "-rl", "-F", DB_PASS, str(d.run_root / "secrets")], capture_output=True, text=True)
    assert held.stdout.strip() == str(d.run_root / "secrets" / f"{inspect['Id']}.json")
    assert oct(os.stat(held.stdout.strip()).st_mode & 0o777) == "0o600"

    # a daemon restart with the task running: adopted, the values still in the process, still nowhere else
    d.stop()
    d.start()
    after = wait_for("the task adopted RUNNING", lambda: [t for t in env.running("web")
                                                          if t["taskArn"] == task["taskArn"]], timeout=60)[0]
    assert after["containers"][0]["runtimeId"] == task["containers"][0]["runtimeId"]
    seen = env.env_of(after)
    assert seen["DB_PASS"] == DB_PASS and seen["API_KEY"] == API_KEY
    env.assert_nowhere_in_clear(DB_PASS, API_KEY)

    # rotation, with the AWS CLI: the next deployment's task gets the new value
    env.aws("secretsmanager", "put-secret-value", "--secret-id", secret_arn,
            "--secret-string", json.dumps({"api_key": ROTATED, "user": "web"}))
    env.aws("ecs", "update-service", "--service", "web", "--force-new-deployment")
    fresh = wait_for("a new RUNNING task", lambda: [t for t in env.running("web")
                                                    if t["taskArn"] != task["taskArn"]], timeout=90)[0]
    assert env.env_of(fresh)["API_KEY"] == ROTATED
    wait_for("the old task STOPPED", lambda: wait_task(ecs, task["taskArn"], "STOPPED", timeout=60))
    env.assert_nowhere_in_clear(DB_PASS, API_KEY, ROTATED)
    ecs.update_service(cluster="default", service="web", desiredCount=0)
    ecs.delete_service(cluster="default", service="web")


def test_a_missing_secret_stops_the_task_with_ecs_reason(env: Env) -> None:
    ecs = env.client("ecs")
    missing = "arn:aws:ssm:us-east-1:000000000000:parameter/no/such-param"
    ecs.register_task_definition(family="broken", executionRoleArn=ROLE, containerDefinitions=[{
        "name": "app", "image": "busybox", "memory": 32, "command": ["sleep", "60"],
        "secrets": [{"name": "GONE", "valueFrom": missing}]}])
    arn = ecs.run_task(taskDefinition="broken")["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "STOPPED", timeout=60)
    expected = (f"{PREFIX}unable to retrieve secrets from ssm: service call has been retried 1 time(s): "
                f"invalid ssm parameters: {missing}")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == expected
    assert task["containers"][0]["reason"] == expected


def test_secrets_without_an_execution_role_are_refused(env: Env) -> None:
    ecs = env.client("ecs")
    with pytest.raises(ecs.exceptions.ClientException) as err:
        ecs.register_task_definition(family="norole", containerDefinitions=[{
            "name": "app", "image": "busybox", "memory": 32,
            "secrets": [{"name": "A", "valueFrom": "/a"}]}])
    assert err.value.response["Error"]["Message"] == (
        "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.")


def test_repository_credentials_from_secrets_manager_pull_a_private_image(env: Env) -> None:
    d, ecs, sm = env.d, env.client("ecs"), env.client("secretsmanager")
    registry = d.registry_addr
    image = f"{registry}/team/private:v1"
    login = d.docker("login", "--username", REG_USER, "--password-stdin", registry, input=REG_PASS.encode())
    assert login.returncode == 0, login.stderr
    d.docker("tag", "busybox", image, check=True)
    d.docker("push", image, check=True, timeout=120)
    d.docker("rmi", image, check=True)
    d.docker("logout", registry)
    creds = sm.create_secret(Name="registry/puller",
                             SecretString=json.dumps({"username": REG_USER, "password": REG_PASS}))["ARN"]
    ecs.register_task_definition(family="private", executionRoleArn=ROLE, containerDefinitions=[{
        "name": "app", "image": image, "memory": 32, "command": ["sleep", "60"], "stopTimeout": 1,
        "repositoryCredentials": {"credentialsParameter": creds}}])
    arn = ecs.run_task(taskDefinition="private")["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, ("RUNNING", "STOPPED"), timeout=60)
    assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
    ecs.stop_task(task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=60)
    env.assert_nowhere_in_clear(REG_PASS)

    # wrong credentials: the pull fails as a pull does
    bad = sm.create_secret(Name="registry/wrong",
                           SecretString=json.dumps({"username": REG_USER, "password": "not-it"}))["ARN"]
    ecs.register_task_definition(family="private", executionRoleArn=ROLE, containerDefinitions=[{
        "name": "app", "image": f"{registry}/team/private:absent", "memory": 32,
        "repositoryCredentials": {"credentialsParameter": bad}}])
    arn = ecs.run_task(taskDefinition="private")["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "STOPPED", timeout=60)
    assert task["stoppedReason"].startswith("CannotPullContainerError"), task["stoppedReason"]
