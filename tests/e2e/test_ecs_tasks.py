"""ECS tasks run for real (issue 9): boto3 and the AWS CLI against a private daemon's AWS endpoint.

The acceptance task (an httpd with a dynamic host port and a sidecar that depends on it being
STARTED), the AWS CLI waiters, the engine view (names and labels), image pull failures, awsvpc
and Fargate tasks, health checks, volumes, environment files, idempotency, ECS Exec's refusal and
host networking.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, BerthDaemon, free_port, running_aws_daemon

pytestmark = pytest.mark.root
boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

AWS = str(REPO / ".venv" / "bin" / "aws")
HTTPD = ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"]
# A container that exits as soon as it is asked to (PID 1 ignores SIGTERM without a handler).
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
LABELS = ("com.amazonaws.ecs.cluster", "com.amazonaws.ecs.task-arn", "com.amazonaws.ecs.container-name",
          "com.amazonaws.ecs.task-definition-family", "com.amazonaws.ecs.task-definition-version")


class Env:
    def __init__(self, daemon: BerthDaemon) -> None:
        self.d = daemon
        self.endpoint = daemon.aws_url
        self.ecs = daemon.aws_client("ecs")

    def aws(self, *args: str, timeout: float = 30) -> Any:
        result = subprocess.run([AWS, "--endpoint-url", self.endpoint, "--output", "json", *args],
                                env=self.d.aws_env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"aws {' '.join(args)}: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None

    def register(self, family: str, containers: list[dict[str, Any]], **extra: Any) -> str:
        out = self.ecs.register_task_definition(family=family, containerDefinitions=containers, **extra)
        return str(out["taskDefinition"]["taskDefinitionArn"])

    def run(self, family: str, **extra: Any) -> dict[str, Any]:
        out = self.ecs.run_task(taskDefinition=family, **extra)
        assert not out["failures"], out["failures"]
        (task,) = out["tasks"]
        return dict(task)

    def describe(self, arn: str) -> dict[str, Any]:
        (task,) = self.ecs.describe_tasks(tasks=[arn])["tasks"]
        return dict(task)

    def wait(self, arn: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = self.describe(arn)
            if check(task):
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"task never got there: {json.dumps(task, default=str)[:3000]}\n{self.d.log()}")
            time.sleep(0.05)

    def status(self, arn: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
        return self.wait(arn, lambda t: t["lastStatus"] == status or (
            t["lastStatus"] == "STOPPED" and status != "STOPPED"), timeout)

    def running(self, arn: str) -> dict[str, Any]:
        task = self.status(arn, "RUNNING")
        assert task["lastStatus"] == "RUNNING", (task.get("stopCode"), task.get("stoppedReason"), task["containers"])
        return task

    def stopped(self, arn: str, timeout: float = 20.0) -> dict[str, Any]:
        return self.status(arn, "STOPPED", timeout)

    def stop(self, arn: str) -> dict[str, Any]:
        self.ecs.stop_task(task=arn)
        return self.stopped(arn)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with running_aws_daemon("--ecs-healthy-after", "1") as d:
        yield Env(d)
        log = (d.base / "daemon.log").read_text(errors="replace")
        for marker in ("failed in the agent", "agent reconcile failed", "could not stop task"):
            assert marker not in log, f"the agent logged {marker!r}:\n{log[-5000:]}"


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def box(name: str, **extra: Any) -> dict[str, Any]:
    out = {"name": name, "image": "busybox", "memory": 64, "stopTimeout": 2, **extra}
    return {k: v for k, v in out.items() if v is not None}


# --- the acceptance task ---------------------------------------------------------------------

def test_two_containers_dynamic_port_sidecar_and_user_stop(env: Env) -> None:
    env.register("accept", [
        box("web", command=HTTPD, portMappings=[{"containerPort": 80, "hostPort": 0}]),
        box("sidecar", command=IDLE, dependsOn=[{"containerName": "web", "condition": "START"}]),
    ])
    task = env.run("accept")
    arn = task["taskArn"]
    assert task["lastStatus"] == "PROVISIONING" and task["desiredStatus"] == "RUNNING"
    running = env.running(arn)
    # the waiter answers at once now that the task runs (its delay is 6 s between polls)
    env.aws("ecs", "wait", "tasks-running", "--tasks", arn, timeout=20)
    assert running["launchType"] == "EC2" and running["containerInstanceArn"]
    for key in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt"):
        assert key in running, key
    assert running["createdAt"] <= running["pullStartedAt"] <= running["pullStoppedAt"] <= running["startedAt"]
    web = next(c for c in running["containers"] if c["name"] == "web")
    side = next(c for c in running["containers"] if c["name"] == "sidecar")
    assert web["lastStatus"] == side["lastStatus"] == "RUNNING"
    (binding,) = web["networkBindings"]
    assert binding["containerPort"] == 80 and binding["protocol"] == "tcp"
    host_port = binding["hostPort"]
    assert 1024 < host_port <= 65535 and host_port != 80
    status, body = http_get(f"http://127.0.0.1:{host_port}/")
    assert status == 200 and body == b"hello\n"

    # the engine's view: ECS names and labels
    ps = env.d.docker("ps", "--filter", f"label=com.amazonaws.ecs.task-arn={arn}", "--format", "{{.ID}} {{.Names}}",
                      check=True).stdout.split("\n")
    rows = [line.split() for line in ps if line.strip()]
    assert len(rows) == 2, ps
    revision = running["taskDefinitionArn"].rsplit(":", 1)[1]
    for cid, name in rows:
        labels = json.loads(env.d.docker("inspect", "--format", "{{json .Config.Labels}}", cid, check=True).stdout)
        assert all(k in labels for k in LABELS), labels
        container = labels["com.amazonaws.ecs.container-name"]
        assert name.startswith(f"ecs-accept-{revision}-{container}-"), name
        assert labels["com.amazonaws.ecs.task-arn"] == arn
        assert labels["com.amazonaws.ecs.cluster"] == "default"
        assert labels["com.amazonaws.ecs.task-definition-family"] == "accept"
        assert labels["com.amazonaws.ecs.task-definition-version"] == revision
        assert {c["name"]: c["runtimeId"] for c in running["containers"]}[container] == cid[:len(cid)] or \
            {c["name"]: c["runtimeId"] for c in running["containers"]}[container].startswith(cid)

    described = env.aws("ecs", "describe-tasks", "--tasks", arn)["tasks"][0]
    assert described["lastStatus"] == "RUNNING" and described["containers"]
    out = env.aws("ecs", "stop-task", "--task", arn)["task"]
    assert out["desiredStatus"] == "STOPPED" and out["stopCode"] == "UserInitiated"
    stopped = env.stopped(arn)
    env.aws("ecs", "wait", "tasks-stopped", "--tasks", arn, timeout=20)
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "Task stopped by user"
    assert stopped["startedAt"] <= stopped["stoppingAt"] <= stopped["stoppedAt"]
    codes = {c["name"]: c.get("exitCode") for c in stopped["containers"]}
    assert set(codes) == {"web", "sidecar"} and all(isinstance(v, int) for v in codes.values()), codes
    assert codes["sidecar"] == 0
    assert all(c["lastStatus"] == "STOPPED" for c in stopped["containers"])
    # still describable, still listed as STOPPED; the containers stay (exited) until retention ends
    assert arn in env.ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]
    assert arn not in env.ecs.list_tasks()["taskArns"]
    listed = env.d.docker("ps", "-a", "--filter", f"label=com.amazonaws.ecs.task-arn={arn}", "--format",
                          "{{.State}}", check=True).stdout.split()
    assert listed == ["exited", "exited"]


# --- failures at start ---------------------------------------------------------------------------

def test_missing_image_stops_with_cannot_pull_container_error(env: Env) -> None:
    env.register("nopull", [box("app", image=f"127.0.0.1:{free_port()}/berth/does-not-exist:1")])
    stopped = env.stopped(env.run("nopull")["taskArn"], timeout=30)
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"].startswith("CannotPullContainerError"), stopped["stoppedReason"]
    assert stopped["containers"][0]["reason"].startswith("CannotPullContainerError")
    assert "startedAt" not in stopped


def test_unsupported_log_driver_is_refused_at_run_time(env: Env) -> None:
    env.register("syslog", [box("app", command=IDLE, logConfiguration={
        "logDriver": "syslog", "options": {"syslog-address": "udp://127.0.0.1:514"}})])
    stopped = env.stopped(env.run("syslog")["taskArn"])
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert "syslog" in stopped["stoppedReason"] and "berth" in stopped["stoppedReason"]


# --- network modes ----------------------------------------------------------------------------------

def test_awsvpc_task_gets_its_own_ip_and_shares_localhost(env: Env) -> None:
    env.register("vpc", [
        box("web", command=HTTPD, portMappings=[{"containerPort": 80}]),
        box("probe", essential=False, dependsOn=[{"containerName": "web", "condition": "START"}],
            command=["sh", "-c", "for i in $(seq 100); do wget -qO- http://127.0.0.1:80/ && exit 0; "
                                 "sleep 0.1; done; exit 1"]),
    ], networkMode="awsvpc")
    arn = env.run("vpc", networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-12345678"]}})["taskArn"]
    running = env.running(arn)
    (eni,) = running["attachments"]
    assert eni["type"] == "ElasticNetworkInterface"
    details = {d["name"]: d["value"] for d in eni["details"]}
    ip = details["privateIPv4Address"]
    assert ip and ip.count(".") == 3 and details.get("subnetId") == "subnet-12345678"
    web = next(c for c in running["containers"] if c["name"] == "web")
    assert web["networkInterfaces"][0]["privateIpv4Address"] == ip
    # the sidecar reached the web server on localhost: they share the task's namespace
    probe = env.wait(arn, lambda t: next(c for c in t["containers"] if c["name"] == "probe").get("exitCode")
                     is not None)
    assert next(c for c in probe["containers"] if c["name"] == "probe")["exitCode"] == 0
    assert probe["lastStatus"] == "RUNNING"   # the probe is not essential
    status, body = http_get(f"http://{ip}:80/")
    assert status == 200 and body == b"hello\n"
    env.stop(arn)
    assert env.d.docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-arn={arn}").stdout.strip() == ""


def test_awsvpc_copies_with_the_same_port_share_an_instance(env: Env) -> None:
    # Each awsvpc task has a namespace of its own and publishes nothing on the host, so the fixed
    # port 80 of one copy does not keep the next off the instance (as on ECS; bridge would refuse).
    env.register("vpc-port", [box("web", command=HTTPD, portMappings=[{"containerPort": 80, "hostPort": 80}])],
                 networkMode="awsvpc")
    out = env.ecs.run_task(taskDefinition="vpc-port", count=2,
                           networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    assert out["failures"] == [] and len(out["tasks"]) == 2
    ips = []
    for task in out["tasks"]:
        running = env.running(task["taskArn"])
        ip = {d["name"]: d["value"] for d in running["attachments"][0]["details"]}["privateIPv4Address"]
        assert http_get(f"http://{ip}:80/") == (200, b"hello\n")
        ips.append(ip)
    assert len(set(ips)) == 2
    for task in out["tasks"]:
        env.stop(task["taskArn"])


def test_fargate_task_runs_and_an_invalid_size_is_refused(env: Env) -> None:
    env.register("fg", [box("app", command=IDLE, memory=None)], requiresCompatibilities=["FARGATE"],
                 networkMode="awsvpc", cpu="256", memory="512")
    task = env.run("fg", launchType="FARGATE",
                   networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}})
    assert task["launchType"] == "FARGATE" and task["cpu"] == "256" and task["memory"] == "512"
    running = env.running(task["taskArn"])
    assert running["launchType"] == "FARGATE"
    assert {d["name"] for d in running["attachments"][0]["details"]} >= {"privateIPv4Address"}
    env.stop(task["taskArn"])
    with pytest.raises(ClientError) as err:
        env.ecs.register_task_definition(family="fgbad", containerDefinitions=[box("app", memory=None)],
                                         requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                         cpu="256", memory="4096")
    assert err.value.response["Error"]["Code"] == "ClientException"
    assert "256 CPU, 4096 memory" in err.value.response["Error"]["Message"] or "Fargate" in \
        err.value.response["Error"]["Message"]


def test_host_network_mode(env: Env) -> None:
    port = free_port()
    env.register("hostnet", [box("web", command=["sh", "-c", f"mkdir -p /www && echo host > /www/index.html && "
                                                             f"exec httpd -f -p {port} -h /www"],
                                 portMappings=[{"containerPort": port}])], networkMode="host")
    arn = env.run("hostnet")["taskArn"]
    running = env.running(arn)
    status, body = http_get(f"http://127.0.0.1:{port}/")
    assert status == 200 and body == b"host\n"
    bindings = running["containers"][0].get("networkBindings", [])
    assert [(b["containerPort"], b["hostPort"]) for b in bindings] == [(port, port)]
    env.stop(arn)


# --- health, volumes, environment files --------------------------------------------------------------

def test_health_check_makes_the_task_healthy(env: Env) -> None:
    env.register("health", [box("app", command=IDLE, healthCheck={
        "command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 0})])
    arn = env.run("health")["taskArn"]
    healthy = env.wait(arn, lambda t: t.get("healthStatus") == "HEALTHY" or t["lastStatus"] == "STOPPED", 20)
    assert healthy["healthStatus"] == "HEALTHY" and healthy["lastStatus"] == "RUNNING"
    assert healthy["containers"][0]["healthStatus"] == "HEALTHY"
    env.stop(arn)


def test_host_and_scratch_volumes_shared_between_containers(env: Env, tmp_path: Path) -> None:
    host_dir = tmp_path / "shared"
    env.register("vols", [
        box("writer", essential=False, command=["sh", "-c", "echo one > /h/a && echo two > /s/b"],
            mountPoints=[{"sourceVolume": "hostvol", "containerPath": "/h"},
                         {"sourceVolume": "scratch", "containerPath": "/s"}]),
        box("reader", dependsOn=[{"containerName": "writer", "condition": "SUCCESS"}],
            command=["sh", "-c", '[ "$(cat /h/a)" = one ] && [ "$(cat /s/b)" = two ] && ! touch /s/c'],
            mountPoints=[{"sourceVolume": "hostvol", "containerPath": "/h", "readOnly": True},
                         {"sourceVolume": "scratch", "containerPath": "/s", "readOnly": True}]),
    ], volumes=[{"name": "hostvol", "host": {"sourcePath": str(host_dir)}}, {"name": "scratch"}])
    arn = env.run("vols")["taskArn"]
    stopped = env.stopped(arn)
    codes = {c["name"]: c.get("exitCode") for c in stopped["containers"]}
    assert codes == {"writer": 0, "reader": 0}, (codes, stopped.get("stoppedReason"))
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["stoppedReason"] == "Essential container in task exited"
    assert (host_dir / "a").read_text() == "one\n"
    task_id = arn.rsplit("/", 1)[1]
    volumes = env.d.docker("volume", "ls", "-q", check=True).stdout.split()
    assert f"ecs-{task_id}-scratch" in volumes


def test_environment_files_from_a_local_file(env: Env, tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("# settings\nGREETING=hello world\nOVERRIDDEN=file\n")
    env.register("envfile", [box("app", command=["sh", "-c", '[ "$GREETING" = "hello world" ] && '
                                                             '[ "$OVERRIDDEN" = inline ] && [ -n "$AWS_REGION" ]'],
                                 environment=[{"name": "OVERRIDDEN", "value": "inline"}],
                                 environmentFiles=[{"value": str(env_file), "type": "s3"}])])
    stopped = env.stopped(env.run("envfile")["taskArn"])
    assert stopped["containers"][0].get("exitCode") == 0, stopped


# --- API behaviour -------------------------------------------------------------------------------------

def test_run_task_client_token_is_idempotent(env: Env) -> None:
    env.register("idem", [box("app", command=IDLE)])
    first = env.ecs.run_task(taskDefinition="idem", clientToken="berth-token-1", startedBy="idem-test")
    second = env.ecs.run_task(taskDefinition="idem", clientToken="berth-token-1", startedBy="idem-test")
    assert [t["taskArn"] for t in first["tasks"]] == [t["taskArn"] for t in second["tasks"]]
    (arn,) = [t["taskArn"] for t in first["tasks"]]
    assert env.ecs.list_tasks(family="idem")["taskArns"] == [arn]
    env.running(arn)
    env.stop(arn)


def test_execute_command_is_refused_with_a_clear_message(env: Env) -> None:
    env.register("exec", [box("app", command=IDLE)])
    arn = env.run("exec", enableExecuteCommand=True)["taskArn"]
    env.running(arn)
    with pytest.raises(ClientError) as err:
        env.ecs.execute_command(task=arn, container="app", command="/bin/sh", interactive=True)
    assert err.value.response["Error"]["Code"] == "TargetNotConnectedException"
    message = err.value.response["Error"]["Message"]
    assert "ECS Exec" in message and "docker exec" in message
    env.stop(arn)
