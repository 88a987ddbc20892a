"""ECS tasks read the task metadata endpoint v4 and their task role's credentials, served by the
daemon on its bridge's gateway (and at 169.254.170.2 through a DNAT rule), as the ECS agent does;
the credentials sign requests to the daemon's AWS endpoint."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import BerthDaemon, running_aws_daemon, wait_for, wait_task

pytestmark = pytest.mark.root

ROLE = "arn:aws:iam::000000000000:role/app"


@dataclass
class Ecs:
    daemon: BerthDaemon
    ecs: Any


@pytest.fixture(scope="module")
def env() -> Iterator[Ecs]:
    with running_aws_daemon("--ecs-healthy-after", "1") as d:
        yield Ecs(d, d.aws_client("ecs"))
    assert not _nat_chain(d.bridge), "the daemon left its DNAT chain behind"


def _nat_chain(bridge: str) -> bool:
    rules = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return f"BERTH-ECS-{bridge}" in rules


def _run(e: Ecs, family: str, containers: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    e.ecs.register_task_definition(family=family, containerDefinitions=containers, **kw)
    extra: dict[str, Any] = {}
    if kw.get("networkMode") == "awsvpc":
        extra["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-local"]}}
    arn = e.ecs.run_task(taskDefinition=family, **extra)["tasks"][0]["taskArn"]
    task = wait_task(e.ecs, arn, ("RUNNING", "STOPPED"))
    assert task["lastStatus"] == "RUNNING", task
    return task


def _output(e: Ecs, task: dict[str, Any], name: str, marker: str = "=END=") -> str:
    """The container's logs once it has printed `marker`."""
    runtime_id = next(c["runtimeId"] for c in task["containers"] if c["name"] == name)
    logs: list[str] = [""]

    def printed() -> bool:
        logs[0] = e.daemon.docker("logs", runtime_id).stdout
        return marker in logs[0]

    wait_for(lambda: f"{name} to print {marker}: {logs[0]!r}\n{e.daemon.log()}", printed)
    return logs[0].split(marker, 1)[0]


def _stop(e: Ecs, task: dict[str, Any]) -> None:
    e.ecs.stop_task(task=task["taskArn"])


def test_task_metadata_v4(env: Ecs) -> None:
    e = env
    script = ('echo "$ECS_CONTAINER_METADATA_URI_V4"; echo =URI=; wget -qO- "$ECS_CONTAINER_METADATA_URI_V4/task"; '
              'echo =TASK=; wget -qO- "$ECS_CONTAINER_METADATA_URI_V4"; echo =SELF=; '
              'wget -qO- "$ECS_CONTAINER_METADATA_URI_V4/stats"; echo =STATS=; '
              'wget -qO- "$ECS_CONTAINER_METADATA_URI_V4/task/stats"; echo =TASKSTATS=; '
              'wget -qO- "http://169.254.170.2/v4/${ECS_CONTAINER_METADATA_URI_V4##*/v4/}"; echo =LINKLOCAL=; '
              'echo =END=; exec sleep 3600')
    task = _run(e, "meta", [
        {"name": "side", "image": "busybox", "memory": 32, "stopTimeout": 1, "command": ["sleep", "3600"]},
        {"name": "reader", "image": "busybox", "memory": 32, "stopTimeout": 1, "command": ["sh", "-c", script],
         "dependsOn": [{"containerName": "side", "condition": "START"}]},
    ])
    try:
        out = _output(e, task, "reader")
        uri, rest = out.split("=URI=", 1)
        task_doc, rest = rest.split("=TASK=", 1)
        self_doc, rest = rest.split("=SELF=", 1)
        stats_doc, rest = rest.split("=STATS=", 1)
        task_stats_doc, rest = rest.split("=TASKSTATS=", 1)
        linklocal_doc = rest.split("=LINKLOCAL=", 1)[0]
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        assert uri.strip().endswith(f"/v4/{task_id}-reader"), uri
        meta = json.loads(task_doc)
        assert meta["TaskARN"] == task["taskArn"]
        assert meta["Cluster"] == "default" and meta["Family"] == "meta" and meta["Revision"] == "1"
        names = {c["Name"]: c for c in meta["Containers"]}
        assert set(names) == {"side", "reader"}
        runtime = {c["name"]: c["runtimeId"] for c in task["containers"]}
        for name, c in names.items():
            assert c["DockerId"] == runtime[name]
            assert c["DockerName"].startswith(f"ecs-meta-1-{name}-")
            assert c["Labels"]["com.amazonaws.ecs.task-arn"] == task["taskArn"]
            assert c["Image"] == "busybox" and c["ImageID"].startswith("sha256:")
            assert c["Networks"][0]["NetworkMode"] == "bridge" and c["Networks"][0]["IPv4Addresses"]
            assert c["KnownStatus"] == "RUNNING" and c["Type"] == "NORMAL"
        me = json.loads(self_doc)
        assert me["Name"] == "reader" and me["DockerId"] == runtime["reader"]
        stats = json.loads(stats_doc)
        assert stats["id"] == runtime["reader"] and "memory_stats" in stats and "cpu_stats" in stats
        assert set(json.loads(task_stats_doc)) == set(runtime.values())
        assert json.loads(linklocal_doc)["DockerId"] == runtime["reader"]  # 169.254.170.2 answers too
        assert _nat_chain(e.daemon.bridge)
    finally:
        _stop(e, task)


def test_task_role_credentials_sign_aws_requests(env: Ecs) -> None:
    e = env
    script = ('wget -qO- "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"; echo; echo =END=; '
              'exec sleep 3600')
    task = _run(e, "role", [{"name": "app", "image": "busybox", "memory": 32, "stopTimeout": 1, "command": ["sh", "-c", script]}],
                taskRoleArn=ROLE)
    try:
        creds = json.loads(_output(e, task, "app"))
        assert creds["RoleArn"] == ROLE
        assert creds["Expiration"].endswith("Z")
        client = e.daemon.aws_client("ecs", creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"])
        arns = client.list_clusters()["clusterArns"]
        assert any(a.endswith(":cluster/default") for a in arns)
        # without the session token the keys are refused
        bare = e.daemon.aws_client("ecs", creds["AccessKeyId"], creds["SecretAccessKey"])
        with pytest.raises(Exception, match="UnrecognizedClient"):
            bare.list_clusters()
    finally:
        _stop(e, task)


def test_no_role_no_credentials(env: Ecs) -> None:
    e = env
    script = 'echo "uri=[$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI]"; echo =END=; exec sleep 3600'
    task = _run(e, "norole", [{"name": "app", "image": "busybox", "memory": 32, "stopTimeout": 1, "command": ["sh", "-c", script]}])
    try:
        assert "uri=[]" in _output(e, task, "app")
    finally:
        _stop(e, task)


def test_awsvpc_task(env: Ecs) -> None:
    """The task's containers share the pause container's namespace on the bridge: the metadata
    and 169.254.170.2 answer there too, with the task's address."""
    e = env
    script = ('wget -qO- "$ECS_CONTAINER_METADATA_URI_V4/task"; echo =TASK=; '
              'wget -qO- "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"; echo; echo =END=; '
              'exec sleep 3600')
    task = _run(e, "vpc", [{"name": "app", "image": "busybox", "memory": 32, "stopTimeout": 1,
                            "command": ["sh", "-c", script]}], networkMode="awsvpc", taskRoleArn=ROLE)
    try:
        task_doc, creds_doc = _output(e, task, "app").split("=TASK=", 1)
        meta = json.loads(task_doc)
        app = next(c for c in meta["Containers"] if c["Name"] == "app")
        net = app["Networks"][0]
        assert net["NetworkMode"] == "awsvpc" and net["IPv4Addresses"] and net["IPv4Addresses"][0]
        assert net["IPv4SubnetCIDRBlock"] == e.daemon.subnet
        assert any(c["Type"] == "CNI_PAUSE" for c in meta["Containers"])
        assert json.loads(creds_doc)["RoleArn"] == ROLE
    finally:
        _stop(e, task)


def test_credentials_uri_survives_a_daemon_restart(env: Ecs) -> None:
    """Containers keep their environment across a daemon restart: the new daemon answers the
    credentials id and the metadata address the old one gave them (last: it restarts the daemon)."""
    e = env
    task = _run(e, "keep", [{"name": "app", "image": "busybox", "memory": 32, "stopTimeout": 1,
                             "command": ["sleep", "3600"]}], taskRoleArn=ROLE)
    runtime_id = task["containers"][0]["runtimeId"]
    fetch = ('wget -qO- "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" && echo && '
             'wget -qO- "$ECS_CONTAINER_METADATA_URI_V4"')
    before = e.daemon.docker("exec", runtime_id, "sh", "-c", fetch, check=True).stdout.splitlines()
    try:
        e.daemon.stop()
        assert not _nat_chain(e.daemon.bridge)
        e.daemon.start()
        after = e.daemon.docker("exec", runtime_id, "sh", "-c", fetch, check=True).stdout.splitlines()
        creds = json.loads(after[0])
        assert creds["RoleArn"] == ROLE and creds["AccessKeyId"] != json.loads(before[0])["AccessKeyId"]
        assert json.loads(after[1])["DockerId"] == runtime_id
        e.daemon.aws_client("ecs", creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"]).list_clusters()
    finally:
        _stop(e, task)
