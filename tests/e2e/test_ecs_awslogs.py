"""Issue 12 acceptance, awslogs: an ECS task definition shaped as exported from an AWS account, with
an awslogs logConfiguration (group /ecs/web, stream prefix web) and two secrets (an SSM
SecureString and a JSON key of a Secrets Manager secret), runs unchanged; the container sees both
values (it checks them itself and says so in its log, without printing them); its container's
JSON lines reach CloudWatch Logs under `web/<container>/<task id>`; `aws logs tail /ecs/web
--follow` (AWS CLI v2) shows a line within 1 s of the container writing it; `aws logs
filter-log-events --filter-pattern '{ $.level = "error" }'` finds only the error lines; a group
that does not exist stops the task with ECS's reason. `docker logs` of the task's container keeps
working.

To run the same task definition with more (secrets, ...), extend `task_definition()`."""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import BerthDaemon, running_aws_daemon, wait_for, wait_task

pytestmark = pytest.mark.root
boto3 = pytest.importorskip("boto3")

AWS2 = "/usr/bin/aws"  # AWS CLI v2: `aws logs tail` (the venv's v1 has no tail)
LINES = [
    {"level": "info", "msg": "starting web"},
    {"level": "error", "msg": "database unreachable"},
    {"level": "warn", "msg": "retrying in 1s"},
    {"level": "error", "msg": "retry failed"},
    {"level": "info", "msg": "serving on :80"},
]
SCRIPT = ("trap 'exit 0' TERM; "
          + "; ".join(f"echo '{json.dumps(line)}'" for line in LINES)
          + "; while true; do sleep 0.2; done")
ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
DB_PASS, API_KEY = "db-Pw-71c0e2Lq", "api-Key-3d9a4fWm"
SECRETS_OK = {"level": "info", "msg": "both secrets present"}
# The container compares the values it was given with what the test stored, and logs the outcome only.
CHECK_SECRETS = (f'[ "$DB_PASS" = "{DB_PASS}" ] && [ "$API_KEY" = "{API_KEY}" ] '
                 f"&& echo '{json.dumps(SECRETS_OK)}' || echo 'secrets wrong'; ")


def task_definition(group: str = "/ecs/web", **options: str) -> dict[str, Any]:
    """The task definition as `aws ecs describe-task-definition` exports it (trimmed to what a
    user copies), with the awslogs options ECS's console writes."""
    return {
        "family": "web",
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": [{
            "name": "web",
            "image": "busybox",
            "essential": True,
            "memory": 64,
            "stopTimeout": 2,
            "command": ["sh", "-c", SCRIPT],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": group, "awslogs-region": "us-east-1",
                            "awslogs-stream-prefix": "web", **options},
            },
        }],
    }


@pytest.fixture(scope="module")
def d() -> Iterator[BerthDaemon]:
    if not os.path.exists(AWS2):
        pytest.skip("AWS CLI v2 (/usr/bin/aws) is not installed")
    with running_aws_daemon("--ecs-healthy-after", "1") as daemon:
        yield daemon


def with_secrets(definition: dict[str, Any], ssm_arn: str, secret_arn: str) -> dict[str, Any]:
    """The definition with the execution role and `secrets` an exported one carries; its command
    first checks the two values."""
    container = definition["containerDefinitions"][0]
    container["secrets"] = [{"name": "DB_PASS", "valueFrom": ssm_arn},
                            {"name": "API_KEY", "valueFrom": f"{secret_arn}:api_key::"}]
    container["command"] = ["sh", "-c", CHECK_SECRETS + SCRIPT]
    return {**definition, "executionRoleArn": ROLE}


def run_task(d: BerthDaemon, definition: dict[str, Any]) -> str:
    ecs = d.aws_client("ecs")
    ecs.register_task_definition(**definition)
    out = ecs.run_task(taskDefinition=definition["family"])
    assert not out["failures"], out["failures"]
    return str(out["tasks"][0]["taskArn"])


class Tail:
    """`aws logs tail GROUP --follow` as a subprocess; each output line with its arrival time."""

    def __init__(self, d: BerthDaemon, group: str) -> None:
        env = {**d.aws_env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [AWS2, "--endpoint-url", d.aws_url, "logs", "tail", group, "--follow", "--format", "detailed",
             "--color", "off", "--since", "10m"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[tuple[float, str]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.time(), line.rstrip("\n")))

    def wait_for(self, needle: str, timeout: float = 20.0) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        for arrival, line in self.seen:
            if needle in line:
                return arrival, line
        while time.monotonic() < deadline:
            try:
                arrival, line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read() if self.proc.stderr else ""
                    raise AssertionError(f"aws logs tail ended: {err}") from None
                continue
            self.seen.append((arrival, line))
            if needle in line:
                return arrival, line
        raise AssertionError(f"{needle!r} not shown by aws logs tail; saw {[s for _, s in self.seen][-10:]}")

    def stop(self) -> None:
        self.proc.kill()  # by its pid: the Popen we started
        self.proc.wait(timeout=10)


def event_time(detailed_line: str) -> float:
    """The event's timestamp in a `--format detailed` line (`<iso time> <stream> <message>`)."""
    return dt.datetime.fromisoformat(detailed_line.split(" ", 1)[0]).timestamp()


def test_exported_task_definition_ships_to_cloudwatch_logs(d: BerthDaemon) -> None:
    logs = d.aws_client("logs")
    logs.create_log_group(logGroupName="/ecs/web")
    ssm, sm = d.aws_client("ssm"), d.aws_client("secretsmanager")
    ssm.put_parameter(Name="/web/db-pass", Value=DB_PASS, Type="SecureString")
    ssm_arn = ssm.get_parameter(Name="/web/db-pass")["Parameter"]["ARN"]
    secret_arn = sm.create_secret(Name="web/api", SecretString=json.dumps({"api_key": API_KEY}))["ARN"]
    arn = run_task(d, with_secrets(task_definition(), ssm_arn, secret_arn))
    task = wait_task(d.aws_client("ecs"), arn, "RUNNING", timeout=60)
    task_id = arn.rsplit("/", 1)[1]
    stream = f"web/web/{task_id}"
    want = [json.dumps(line) for line in [SECRETS_OK, *LINES]]

    def shipped() -> list[str] | None:
        streams = logs.describe_log_streams(logGroupName="/ecs/web")["logStreams"]
        if stream not in [s["logStreamName"] for s in streams]:
            return None
        got = [e["message"] for e in logs.get_log_events(logGroupName="/ecs/web", logStreamName=stream,
                                                          startFromHead=True)["events"]]
        return got if got == want else None

    wait_for("the container's lines under web/web/<task id>", shipped)
    cid = task["containers"][0]["runtimeId"]
    assert d.docker("logs", cid, check=True).stdout.split("\n")[:len(want)] == want  # dual logging

    # filter-log-events with a JSON pattern (the AWS CLI, as the issue asks)
    result = subprocess.run([AWS2, "--endpoint-url", d.aws_url, "--output", "json", "logs", "filter-log-events",
                             "--log-group-name", "/ecs/web", "--filter-pattern", '{ $.level = "error" }'],
                            env=d.aws_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = [json.loads(e["message"]) for e in json.loads(result.stdout)["events"]]
    assert found == [line for line in LINES if line["level"] == "error"]

    # `aws logs tail --follow` shows a new line within 1 s of the container writing it
    tail = Tail(d, "/ecs/web")
    try:
        tail.wait_for("serving on :80", timeout=30)  # the backlog first
        latencies = []
        for n in range(5):
            probe = json.dumps({"level": "info", "msg": f"probe-{n}"})
            d.docker("exec", cid, "sh", "-c", f"echo '{probe}' > /proc/1/fd/1", check=True)
            arrival, line = tail.wait_for(f"probe-{n}", timeout=10)
            latencies.append(arrival - event_time(line))
        assert max(latencies) <= 1.0, latencies
    finally:
        tail.stop()
    d.aws_client("ecs").stop_task(task=arn)
    wait_task(d.aws_client("ecs"), arn, "STOPPED", timeout=60)


def test_missing_log_group_stops_the_task_with_ecs_reason(d: BerthDaemon) -> None:
    definition = task_definition("/ecs/does-not-exist")
    definition["family"] = "nogroup"
    arn = run_task(d, definition)
    task = wait_task(d.aws_client("ecs"), arn, "STOPPED", timeout=60)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotStartContainerError: "), task["stoppedReason"]
    assert task["stoppedReason"].endswith(
        "failed to initialize logging driver: failed to create Cloudwatch log stream: "
        "ResourceNotFoundException: The specified log group does not exist."), task["stoppedReason"]


def test_create_group_option_makes_the_group(d: BerthDaemon) -> None:
    definition = task_definition("/ecs/made-for-me", **{"awslogs-create-group": "true"})
    definition["family"] = "mkgroup"
    arn = run_task(d, definition)
    wait_task(d.aws_client("ecs"), arn, "RUNNING", timeout=60)
    logs = d.aws_client("logs")
    wait_for("the group and its stream", lambda: logs.describe_log_streams(logGroupName="/ecs/made-for-me")[
        "logStreams"] or None)
    d.aws_client("ecs").stop_task(task=arn)
    wait_task(d.aws_client("ecs"), arn, "STOPPED", timeout=60)
