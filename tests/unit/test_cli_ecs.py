"""`berth ecs ps` and `berth ecs events`: rendering of recorded describe outputs, flags, credentials."""

from __future__ import annotations

import copy
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from berth.cli import ecs
from berth.cli.failures import CliError
from berth.cli.main import build_parser, dispatch

ARN = "arn:aws:ecs:us-east-1:123456789012"

# Recorded from a berth daemon (aws ecs describe-services / describe-tasks --output json), trimmed to
# the fields `berth ecs` reads: service `cats` rolling back from cats:2 to cats:1 with
# minimumHealthyPercent 100, so both deployments run 3 tasks.
SERVICE = {
    "serviceName": "cats", "status": "ACTIVE", "desiredCount": 3, "runningCount": 6, "pendingCount": 0,
    "taskDefinition": f"{ARN}:task-definition/cats:1",
    "deployments": [
        {"id": "ecs-svc/2302099130284874172", "status": "PRIMARY", "taskDefinition": f"{ARN}:task-definition/cats:1",
         "desiredCount": 3, "pendingCount": 0, "runningCount": 3, "failedTasks": 0, "createdAt": 1796616664.053073,
         "updatedAt": 1796616664.053073, "launchType": "EC2", "rolloutState": "IN_PROGRESS"},
        {"id": "ecs-svc/6114124146525514734", "status": "ACTIVE", "taskDefinition": f"{ARN}:task-definition/cats:2",
         "desiredCount": 0, "pendingCount": 0, "runningCount": 3, "failedTasks": 0, "createdAt": 1796616515.882421,
         "updatedAt": 1796616664.053073, "launchType": "EC2", "rolloutState": "COMPLETED",
         "rolloutStateReason": "ECS deployment ecs-svc/6114124146525514734 completed."}],
}
STEADY = {
    "serviceName": "api", "status": "ACTIVE", "desiredCount": 1, "runningCount": 1, "pendingCount": 0,
    "taskDefinition": f"{ARN}:task-definition/api:7",
    "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": f"{ARN}:task-definition/api:7",
                     "desiredCount": 1, "pendingCount": 0, "runningCount": 1, "failedTasks": 0,
                     "rolloutState": "COMPLETED"}],
}


def _web(host_port: int) -> list[dict[str, Any]]:
    return [{"name": "web", "lastStatus": "RUNNING", "healthStatus": "UNKNOWN", "networkInterfaces": [],
             "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": host_port, "protocol": "tcp"}]}]


NEW = {"taskArn": f"{ARN}:task/default/250a2e2e80e8420c91b77d5cd2831428", "group": "service:cats",
       "taskDefinitionArn": f"{ARN}:task-definition/cats:1", "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
       "healthStatus": "UNKNOWN", "createdAt": 1796616664.0579925, "startedAt": 1796616664.2158551,
       "launchType": "EC2", "containers": _web(37495)}
OLD = {"taskArn": f"{ARN}:task/default/438758ca1776429c9c63b164bf86f49c", "group": "service:cats",
       "taskDefinitionArn": f"{ARN}:task-definition/cats:2", "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
       "healthStatus": "UNKNOWN", "createdAt": 1796616515.8865967, "startedAt": 1796616516.0274112,
       "launchType": "EC2", "containers": _web(37651)}
KILLED = {"taskArn": f"{ARN}:task/default/55c09f0546634c67b13193ee9ec961c1", "group": "service:cats",
          "taskDefinitionArn": f"{ARN}:task-definition/cats:1", "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
          "healthStatus": "UNKNOWN", "createdAt": 1796616483.5379593, "startedAt": 1796616483.662528,
          "stoppedAt": 1796616489.4227948, "stopCode": "EssentialContainerExited",
          "stoppedReason": "Essential container in task exited", "launchType": "EC2",
          "containers": [{**_web(44747)[0], "lastStatus": "STOPPED", "exitCode": 137}]}
NO_LOGS = {"taskArn": f"{ARN}:task/default/143c63b39e5548ea829687967c241a99", "group": "family:logs",
           "taskDefinitionArn": f"{ARN}:task-definition/logs:1", "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
           "healthStatus": "UNKNOWN", "createdAt": 1796616602.497181, "stoppedAt": 1796616602.5054286,
           "stopCode": "TaskFailedToStart",
           "stoppedReason": "CannotCreateContainerError: log driver 'awslogs' of container 'w' is not available in "
                            "berth (it supports json-file, k8s-file, none)",
           "launchType": "EC2", "containers": [{"name": "w", "lastStatus": "PENDING", "networkBindings": [],
                                                "networkInterfaces": [], "healthStatus": "UNKNOWN"}]}
FARGATE = {"taskArn": f"{ARN}:task/default/bb98f33b43104af196aa1727c0b83fdb", "group": "family:fg",
           "taskDefinitionArn": f"{ARN}:task-definition/fg:1", "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
           "healthStatus": "HEALTHY", "createdAt": 1796616604.4183044, "startedAt": 1796616604.6021311,
           "launchType": "FARGATE", "containers": [
               {"name": "w", "lastStatus": "RUNNING", "networkBindings": [], "healthStatus": "HEALTHY",
                "networkInterfaces": [{"attachmentId": "eni-bb98f33b43104af19", "privateIpv4Address": "10.249.77.11"}]}]}

NOW = 1796616664.0579925 + 125  # two minutes after the newest task
TASKS = [KILLED, OLD, NO_LOGS, FARGATE, NEW]


def _lines(text: str) -> list[list[str]]:
    """Each line's cells (split on the table's runs of 3+ spaces)."""
    import re

    return [re.split(r"\s{3,}", line.rstrip()) for line in text.splitlines()]


def test_ps_services_then_running_tasks() -> None:
    out = ecs.render_ps([SERVICE, STEADY], TASKS, now=NOW)
    services, tasks = out.split("\n\n")
    assert _lines(services) == [
        ["SERVICE", "STATUS", "DESIRED", "RUNNING", "PENDING", "TASK DEFINITION", "DEPLOYMENTS"],
        ["api", "ACTIVE", "1", "1", "0", "api:7", "api:7 COMPLETED"],
        ["cats", "ACTIVE", "3", "6", "0", "cats:1", "cats:1 IN_PROGRESS 3/3, cats:2 draining (3)"],
    ]
    assert _lines(tasks) == [
        ["TASK", "SERVICE/GROUP", "TASK DEFINITION", "LAST STATUS", "DESIRED", "HEALTH", "CREATED", "PORTS"],
        # the service's tasks first, newest first; standalone tasks (group family:…) after
        ["250a2e2e80e8420c91b77d5cd2831428", "cats", "cats:1", "RUNNING", "RUNNING", "UNKNOWN", "2 minutes ago",
         "0.0.0.0:37495->80/tcp"],
        ["438758ca1776429c9c63b164bf86f49c", "cats", "cats:2", "RUNNING", "RUNNING", "UNKNOWN", "4 minutes ago",
         "0.0.0.0:37651->80/tcp"],
        ["bb98f33b43104af196aa1727c0b83fdb", "family:fg", "fg:1", "RUNNING", "RUNNING", "HEALTHY", "3 minutes ago",
         "10.249.77.11"],
    ]
    # docker's table layout: columns padded to the widest cell + 3, the last one as is
    assert tasks.splitlines()[0].startswith("TASK                               SERVICE/GROUP   ")


def test_ps_all_adds_stopped_tasks_with_why() -> None:
    out = ecs.render_ps([SERVICE], TASKS, now=NOW, include_stopped=True)
    rows = _lines(out.split("\n\n")[1])
    assert rows[0][-1] == "STOPPED"
    by_id = {row[0]: row for row in rows[1:]}
    assert len(by_id) == 5
    killed = by_id["55c09f0546634c67b13193ee9ec961c1"]
    assert killed[3:5] == ["STOPPED", "STOPPED"]
    assert killed[-1] == "EssentialContainerExited: Essential container in task exited (web: 137)"
    assert by_id["143c63b39e5548ea829687967c241a99"][-1].startswith(
        "TaskFailedToStart: CannotCreateContainerError: log driver 'awslogs'")
    assert by_id["250a2e2e80e8420c91b77d5cd2831428"][-1] == "0.0.0.0:37495->80/tcp"  # running: no reason column
    # within a service, stopped tasks come after running ones
    order = [row[0][:4] for row in rows[1:]]
    assert order == ["250a", "4387", "55c0", "bb98", "143c"]


def test_ps_accepts_botocore_datetimes() -> None:
    """boto3 hands timestamps over as aware datetimes; the wire (and recordings) as epoch seconds."""
    def parsed(task: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(task)
        out["createdAt"] = datetime.fromtimestamp(task["createdAt"], timezone(timedelta(hours=2)))
        return out

    assert ecs.render_ps([SERVICE], [parsed(t) for t in TASKS], now=NOW, include_stopped=True) == \
        ecs.render_ps([SERVICE], TASKS, now=NOW, include_stopped=True)


def test_ps_empty_cluster() -> None:
    assert ecs.render_ps([], [], now=NOW) == "no services\n\nno tasks\n"


def test_deployment_column_variants() -> None:
    starting = {"deployments": [{"status": "PRIMARY", "taskDefinition": f"{ARN}:task-definition/x:3",
                                 "desiredCount": 3, "runningCount": 1, "rolloutState": "IN_PROGRESS",
                                 "failedTasks": 2}]}
    assert ecs.deployments_column(starting) == "x:3 IN_PROGRESS 1/3 (2 failed)"
    assert ecs.deployments_column({"deployments": []}) == "-"


def test_ports_column() -> None:
    task = {"containers": [
        {"networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
                             {"bindIP": "0.0.0.0", "containerPort": 53, "hostPort": 5353, "protocol": "udp"}]},
        {"networkBindings": [{"bindIP": "127.0.0.1", "containerPort": 9000, "hostPort": 9000}]},
        {"networkBindings": [{"containerPort": 7000, "protocol": "tcp"}]}]}
    assert ecs.ports_column(task) == \
        "0.0.0.0:8080->80/tcp, 0.0.0.0:5353->53/udp, 127.0.0.1:9000->9000/tcp, 7000/tcp"
    assert ecs.ports_column({"containers": [{"networkBindings": []}]}) == ""


# DescribeServices' events, newest first, as recorded (one reconcile's events share a timestamp).
EVENTS = [
    {"id": "1796616664058-e0", "createdAt": 1796616664.0587046,
     "message": "(service cats) has started 3 tasks: (task c020bc2748914455918a17df6606c78c)."},
    {"id": "1796616556037-0", "createdAt": 1796616556.037573, "message": "(service cats) has reached a steady state."},
    {"id": "1796616556037-1", "createdAt": 1796616556.037573,
     "message": "(service cats) (deployment ecs-svc/6114124146525514734) deployment completed."},
    {"id": "1796616489423-e0", "createdAt": 1796616489.4253197,
     "message": "(service cats) has started 1 tasks: (task 7e65405f949b4242b77f31cd2dc78ed8)."},
    {"id": "1796616489423-0", "createdAt": 1796616489.4232304,
     "message": "(service cats) task 55c09f0546634c67b13193ee9ec961c1 stopped after running 6 s: Essential "
                "container in task exited (web exit code 137); starting a replacement"},
]


def test_events_oldest_first_with_timestamps() -> None:
    out = ecs.render_events(EVENTS, tz=timezone.utc)
    assert out.splitlines() == [
        "2026-12-07 04:08:09  (service cats) task 55c09f0546634c67b13193ee9ec961c1 stopped after running 6 s: "
        "Essential container in task exited (web exit code 137); starting a replacement",
        "2026-12-07 04:08:09  (service cats) has started 1 tasks: (task 7e65405f949b4242b77f31cd2dc78ed8).",
        "2026-12-07 04:09:16  (service cats) (deployment ecs-svc/6114124146525514734) deployment completed.",
        "2026-12-07 04:09:16  (service cats) has reached a steady state.",
        "2026-12-07 04:11:04  (service cats) has started 3 tasks: (task c020bc2748914455918a17df6606c78c).",
    ]


def test_events_tail() -> None:
    out = ecs.render_events(EVENTS, tail=2, tz=timezone.utc)
    assert [line.split("  ", 1)[1] for line in out.splitlines()] == [
        "(service cats) has reached a steady state.",
        "(service cats) has started 3 tasks: (task c020bc2748914455918a17df6606c78c)."]
    assert ecs.render_events(EVENTS, tail=0) == ""
    assert ecs.render_events([]) == ""
    tz = timezone(timedelta(hours=-5))
    assert ecs.render_events(EVENTS[:1], tz=tz).startswith("2026-12-06 23:11:04  ")


# --- flags, endpoint, credentials -------------------------------------------------------------


def test_parser_flags_before_and_after_the_verb() -> None:
    parser = build_parser()
    args = parser.parse_args(["ecs", "ps"])
    assert (args.cluster, args.all, args.endpoint_url, args.root, args.func) == \
        ("default", False, None, "/var/lib/berth", ecs._ps)
    args = parser.parse_args(["ecs", "--root", "/r", "--cluster", "c1", "ps", "-a"])
    assert (args.root, args.cluster, args.all) == ("/r", "c1", True)
    args = parser.parse_args(["ecs", "--cluster", "c1", "events", "cats", "--cluster", "c2", "-n", "3",
                              "--endpoint-url", "http://127.0.0.1:1"])
    assert (args.cluster, args.service, args.tail, args.endpoint_url, args.func) == \
        ("c2", "cats", 3, "http://127.0.0.1:1", ecs._events)


def test_endpoint_precedence() -> None:
    env = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_ECS": "http://b:2"}
    assert ecs.endpoint_url("http://flag:3", env) == "http://flag:3"
    assert ecs.endpoint_url(None, env) == "http://b:2"
    assert ecs.endpoint_url(None, {"AWS_ENDPOINT_URL": "http://a:1"}) == "http://a:1"
    assert ecs.endpoint_url(None, {}) == "http://127.0.0.1:4566"


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _args(*argv: str) -> Any:
    return build_parser().parse_args(["ecs", *argv, "ps"])


def test_credentials_fall_back_to_the_daemon_key_file(tmp_path: Path, no_aws_config: None) -> None:
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "credentials").write_text("# berth AWS endpoint key\nBKIAFILEKEY secretfromfile\n")
    client = ecs._client(_args("--root", str(tmp_path), "--endpoint-url", "http://127.0.0.1:9"))
    creds = client._request_signer._credentials
    assert (creds.access_key, creds.secret_key) == ("BKIAFILEKEY", "secretfromfile")
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "us-east-1"


def test_credentials_from_the_environment_win(tmp_path: Path, no_aws_config: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "BKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = ecs._client(_args("--root", str(tmp_path / "nowhere")))
    assert client._request_signer._credentials.access_key == "BKIAENV"
    assert client.meta.region_name == "eu-west-1"


def test_no_credentials_at_all(tmp_path: Path, no_aws_config: None) -> None:
    with pytest.raises(CliError, match="no AWS credentials.*no daemon key file"):
        ecs._client(_args("--root", str(tmp_path)))


def test_unreachable_endpoint_is_one_line(tmp_path: Path, no_aws_config: None,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "BKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        args = build_parser().parse_args(["ecs", "ps", "--endpoint-url", f"http://127.0.0.1:{port}"])
        assert dispatch(args) == 1
    assert capsys.readouterr().err == \
        f"Cannot connect to the AWS endpoint at http://127.0.0.1:{port}: is the berth daemon running (with --aws-addr)?\n"


# --- fetching, against a stand-in client ---------------------------------------------------------


class FakeEcs:
    """The ECS calls `fetch_ps` makes, with paging and the API's batch limits."""

    def __init__(self, services: list[str], running: list[str], stopped: list[str]) -> None:
        self.services, self.tasks = services, {"RUNNING": running, "STOPPED": stopped}
        self.calls: list[tuple[str, int]] = []

    def get_paginator(self, name: str) -> Any:
        fake = self

        class Pages:
            def paginate(self, cluster: str, desiredStatus: str = "") -> Any:
                items = fake.services if name == "list_services" else fake.tasks[desiredStatus]
                key = "serviceArns" if name == "list_services" else "taskArns"
                for start in range(0, max(len(items), 1), 10):
                    yield {key: items[start:start + 10]}

        return Pages()

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        assert len(services) <= 10
        self.calls.append(("describe_services", len(services)))
        return {"services": [{"serviceName": s} for s in services if s != "gone"],
                "failures": [{"arn": s, "reason": "MISSING"} for s in services if s == "gone"]}

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict[str, Any]:
        assert len(tasks) <= 100
        self.calls.append(("describe_tasks", len(tasks)))
        return {"tasks": [{"taskArn": t} for t in tasks]}


def test_fetch_ps_pages_and_batches() -> None:
    fake = FakeEcs([f"s{i}" for i in range(23)], [f"r{i}" for i in range(150)], ["x1", "x2"])
    services, tasks = ecs.fetch_ps(fake, "default", include_stopped=False)
    assert len(services) == 23 and len(tasks) == 150
    assert fake.calls == [("describe_services", 10), ("describe_services", 10), ("describe_services", 3),
                          ("describe_tasks", 100), ("describe_tasks", 50)]
    _, tasks = ecs.fetch_ps(fake, "default", include_stopped=True)
    assert [t["taskArn"] for t in tasks][-2:] == ["x1", "x2"]
    assert ecs.fetch_ps(FakeEcs([], [], []), "default", include_stopped=True) == ([], [])


def test_fetch_events_of_a_missing_service() -> None:
    assert ecs.fetch_events(FakeEcs([], [], []), "default", "cats") == {"serviceName": "cats"}
    with pytest.raises(CliError, match="service gone in cluster default: MISSING"):
        ecs.fetch_events(FakeEcs([], [], []), "default", "gone")
