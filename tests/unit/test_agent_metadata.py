"""The ECS task metadata (v4) and task-role credentials endpoint, without an engine: the JSON
shapes from fake task and container records, the routes, credentials ids, issuing, refresh and
expiry with a fake clock, and the DNAT rule's argv."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from berth.agent import metadata as md
from berth.api.aws import Authenticator, TemporaryCredentials
from berth.api.aws._errors import AwsError
from berth.ecs import model as m
from berth.ecs._taskdef import parse_task_definition
from berth.engine.containers import Container, ContainerConfig, ContainerSnapshot, ContainerState, snapshot_of
from berth.types.host_config import HostConfig, LogConfig

ACCOUNT = "000000000000"
CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/default"
TASK_ID = "8f03e41243824aea923aca126495f665"
TASK_ARN = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/default/{TASK_ID}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SPEC = parse_task_definition({
    "family": "web",
    "containerDefinitions": [
        {"name": "app", "image": "busybox", "memory": 64, "cpu": 10,
         "portMappings": [{"containerPort": 80}],
         "healthCheck": {"command": ["CMD-SHELL", "true"]},
         "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}}},
        {"name": "side", "image": "busybox", "memory": 32, "essential": False},
    ],
})


def task(**kw: Any) -> m.Task:
    base: dict[str, Any] = dict(
        arn=TASK_ARN, cluster_arn=CLUSTER, task_definition_arn=f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:3",
        created_at=1_700_000_000.0, group="service:front", last_status="RUNNING", memory="96",
        pull_started_at=1_700_000_001.5, pull_stopped_at=1_700_000_002.0, availability_zone="local-1a",
        containers=(
            m.TaskContainer(name="app", arn=f"arn:aws:ecs:us-east-1:{ACCOUNT}:container/default/{TASK_ID}/a1",
                            image="busybox", runtime_id="c1" * 32, last_status="RUNNING", cpu=10, memory=64,
                            health_status="HEALTHY",
                            network_bindings=(m.NetworkBinding(80, 32768),)),
            m.TaskContainer(name="side", arn=f"arn:aws:ecs:us-east-1:{ACCOUNT}:container/default/{TASK_ID}/s1",
                            image="busybox", runtime_id="c2" * 32, last_status="STOPPED", exit_code=3, memory=32,
                            essential=False),
        ),
        tags=(m.Tag("team", "blue"),))
    base.update(kw)
    return m.Task(**base)


def snapshot(name: str, cid: str, *, running: bool = True, ip: str = "10.88.0.5", mac: str = "",
             prefix: int = 16, gateway: str = "10.88.0.1") -> ContainerSnapshot:
    """The engine's snapshot of one of the task's containers (on the default bridge)."""
    state = ContainerState(status="running" if running else "exited", exit_code=0 if running else 3,
                           started_at="2024-01-02T03:04:06Z",
                           finished_at="0001-01-01T00:00:00Z" if running else "2024-01-02T03:05:00Z")
    network = {"mode": "bridge", "netns_path": f"/run/berth/netns/{cid}", "ip_address": ip, "prefix_len": prefix,
               "gateway": gateway, "mac_address": mac, "ports": [], "endpoints": {}}
    c = Container(
        id=cid, name=f"ecs-web-3-{name}-abc", created="2024-01-02T03:04:05.123456789Z", image="busybox",
        image_id="sha256:" + "d" * 64,
        config=ContainerConfig(image="busybox", labels={
            "com.amazonaws.ecs.cluster": "default", "com.amazonaws.ecs.task-arn": TASK_ARN,
            "com.amazonaws.ecs.container-name": name, "com.amazonaws.ecs.task-definition-family": "web",
            "com.amazonaws.ecs.task-definition-version": "3"}),
        host_config=HostConfig(log_config=LogConfig(type="k8s-file")),
        state=state, network=network if ip else {},
        health={"Status": "healthy", "FailingStreak": 0,
                "Log": [{"End": "2024-01-02T03:04:10Z", "ExitCode": 0, "Output": "ok"}]})
    return snapshot_of(c, dir=f"/var/lib/berth/containers/{cid}", log_path="/l", default_runtime="crun")


class FakeTasks:
    def __init__(self, *tasks: m.Task) -> None:
        self.tasks = {t.task_id: t for t in tasks}
        self.scans = 0

    def by_id(self, task_id: str) -> md.TaskInfo | None:
        t = self.tasks.get(task_id)
        return None if t is None else md.TaskInfo(t, SPEC)

    def with_role(self) -> Iterable[m.Task]:
        self.scans += 1
        return [t for t in self.tasks.values() if t.task_role_arn]


class FakeContainers:
    def __init__(self, by_task: dict[str, list[ContainerSnapshot]]) -> None:
        self.by_task = by_task

    def task_containers(self, task_arn: str) -> list[ContainerSnapshot]:
        return self.by_task.get(task_arn, [])

    def stats(self, container_id: str) -> dict[str, Any] | None:
        return {"id": container_id, "cpu_stats": {}, "memory_stats": {"usage": 1}}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- JSON shapes -------------------------------------------------------------------------------

def test_container_json_bridge() -> None:
    out = md.container_json(md.TaskInfo(task(), SPEC), snapshot("app", "c1" * 32))
    assert out["DockerId"] == "c1" * 32 and out["Name"] == "app" and out["DockerName"] == "ecs-web-3-app-abc"
    assert out["Image"] == "busybox" and out["ImageID"] == "sha256:" + "d" * 64
    assert out["Labels"]["com.amazonaws.ecs.task-arn"] == TASK_ARN
    assert out["DesiredStatus"] == "RUNNING" and out["KnownStatus"] == "RUNNING"
    assert out["Limits"] == {"CPU": 10, "Memory": 64}
    assert out["CreatedAt"] == "2024-01-02T03:04:05.123456789Z" and out["StartedAt"] == "2024-01-02T03:04:06Z"
    assert "FinishedAt" not in out and "ExitCode" not in out
    assert out["Type"] == "NORMAL"
    assert out["LogDriver"] == "json-file" and out["LogOptions"] == {"max-size": "1m"}
    assert out["ContainerARN"].endswith("/a1")
    assert out["Ports"] == [{"ContainerPort": 80, "Protocol": "tcp", "HostPort": 32768, "HostIp": "0.0.0.0"}]
    assert out["Health"]["status"] == "HEALTHY" and out["Health"]["output"] == "ok"
    assert out["Networks"] == [{"NetworkMode": "bridge", "IPv4Addresses": ["10.88.0.5"]}]
    json.dumps(out)


def test_container_json_stopped_side_container() -> None:
    out = md.container_json(md.TaskInfo(task(), SPEC), snapshot("side", "c2" * 32, running=False))
    assert out["KnownStatus"] == "STOPPED" and out["ExitCode"] == 3
    assert out["FinishedAt"] == "2024-01-02T03:05:00Z"
    assert "Health" not in out and "Ports" not in out
    assert out["LogDriver"] == "k8s-file"  # no logConfiguration: the engine's
    assert out["Limits"] == {"CPU": 0, "Memory": 32}


def test_task_json() -> None:
    info = md.TaskInfo(task(cpu="512"), SPEC)
    out = md.task_json(info, [snapshot("side", "c2" * 32, running=False), snapshot("app", "c1" * 32)])
    assert out["Cluster"] == "default" and out["ServiceName"] == "front"
    assert out["TaskARN"] == TASK_ARN and out["Family"] == "web" and out["Revision"] == "3"
    assert out["DesiredStatus"] == "RUNNING" and out["KnownStatus"] == "RUNNING"
    assert out["Limits"] == {"CPU": 0.5, "Memory": 96}
    assert out["PullStartedAt"] == "2023-11-14T22:13:21.500000Z"
    assert out["AvailabilityZone"] == "local-1a" and out["LaunchType"] == "EC2"
    assert [c["Name"] for c in out["Containers"]] == ["app", "side"]  # the task definition's order
    assert "TaskTags" not in out
    tagged = md.task_json(info, [], with_tags=True)
    assert tagged["TaskTags"] == {"team": "blue"} and tagged["Containers"] == []


def test_task_json_without_limits_or_service() -> None:
    out = md.task_json(md.TaskInfo(task(memory="", group="family:web"), None), [])
    assert "Limits" not in out and "ServiceName" not in out


def test_awsvpc_networks_and_pause_container() -> None:
    t = task(network_mode="awsvpc", private_ip="10.88.0.9")
    pause = snapshot(md.PAUSE_NAME, "p" * 64, ip="10.88.0.9", mac="02:42:0a:58:00:09")
    app = snapshot("app", "c1" * 32, ip="")
    out = md.task_json(md.TaskInfo(t, SPEC), [app, pause])
    by_name = {c["Name"]: c for c in out["Containers"]}
    assert by_name[md.PAUSE_NAME]["Type"] == "CNI_PAUSE"
    assert by_name[md.PAUSE_NAME]["KnownStatus"] == "RESOURCES_PROVISIONED"
    net = by_name["app"]["Networks"][0]
    assert net == {"NetworkMode": "awsvpc", "IPv4Addresses": ["10.88.0.9"], "AttachmentIndex": 0,
                   "MACAddress": "02:42:0a:58:00:09", "IPv4SubnetCIDRBlock": "10.88.0.0/16",
                   "SubnetGatewayIpv4Address": "10.88.0.1/16", "PrivateDNSName": "ip-10-88-0-9"}
    v3 = md.container_json(md.TaskInfo(t, SPEC), app, pause=pause, awsvpc_details=False)
    assert v3["Networks"] == [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.88.0.9"]}]


def test_host_mode_network() -> None:
    out = md.container_json(md.TaskInfo(task(network_mode="host"), SPEC), snapshot("app", "c1" * 32, ip=""))
    assert out["Networks"] == [{"NetworkMode": "host"}]


def test_split_metadata_id() -> None:
    assert md.split_metadata_id(f"{TASK_ID}-my-app") == (TASK_ID, "my-app")


# --- credentials --------------------------------------------------------------------------------

def creds(clock: Clock, **kw: Any) -> tuple[md.TaskRoleCredentials, TemporaryCredentials]:
    store = TemporaryCredentials(clock=clock)
    return md.TaskRoleCredentials(store, b"k" * 32, clock=clock, **kw), store


def test_relative_uri_stable_per_task_and_empty_without_role() -> None:
    c, _ = creds(Clock(1000.0))
    t = task(task_role_arn=ROLE)
    uri = c.relative_uri(t)
    assert uri.startswith("/v2/credentials/") and uri == c.relative_uri(t)
    other = task(arn=TASK_ARN.replace(TASK_ID, "0" * 32), task_role_arn=ROLE)
    assert c.relative_uri(other) != uri
    assert c.relative_uri(task()) == ""
    # a restarted daemon (same key file) gives the same id, and finds the task by it
    again, _ = creds(Clock(1000.0))
    cid = uri.rsplit("/", 1)[-1]
    assert again.task_arn(cid, lambda: [other, t]) == TASK_ARN
    assert again.task_arn("0" * 36, lambda: [other, t]) is None


def test_issue_refresh_and_expiry() -> None:
    clock = Clock(1_700_000_000.0)
    c, store = creds(clock)
    t = task(task_role_arn=ROLE)
    first = c.for_task(t)
    assert set(first) == {"RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert first["RoleArn"] == ROLE and first["Token"]
    assert first["Expiration"] == "2023-11-15T04:13:20Z"  # 6 h later, RFC 3339
    known = store.lookup(first["AccessKeyId"])
    assert known is not None and known.role_arn == ROLE and known.account == ACCOUNT
    clock.now += 5 * 3600
    assert c.for_task(t) == first  # 1 h left: the same keys
    clock.now += 46 * 60  # 14 min left: fresh keys
    second = c.for_task(t)
    assert second["AccessKeyId"] != first["AccessKeyId"] and second["Expiration"] == "2023-11-15T09:59:20Z"
    clock.now += 15 * 60  # the first ones have expired
    with pytest.raises(AwsError) as err:
        store.lookup(first["AccessKeyId"])
    assert err.value.code == "ExpiredTokenException"
    assert store.lookup(second["AccessKeyId"]) is not None
    c.forget(t.arn)
    assert c.for_task(t)["AccessKeyId"] != second["AccessKeyId"]


def _signed(keys: dict[str, str]) -> AWSRequest:
    request = AWSRequest(method="POST", url="http://127.0.0.1:9/", data=b"{}",
                         headers={"Host": "127.0.0.1:9", "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
                                  "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["Token"]), "ecs", "us-east-1"
              ).add_auth(request)
    return request


def test_task_role_keys_sign_requests_until_they_expire() -> None:
    import time

    clock = Clock(time.time())
    c, store = creds(clock, ttl=120.0, refresh_before=10.0)
    keys = c.for_task(task(task_role_arn=ROLE))
    auth = Authenticator([store], clock=clock)
    request = _signed(keys)
    verified = auth.verify("POST", "/", "", dict(request.headers.items()), b"{}")
    assert verified.role_arn == ROLE
    clock.now += 121
    with pytest.raises(AwsError) as err:
        auth.verify("POST", "/", "", dict(_signed(keys).headers.items()), b"{}")
    assert err.value.code == "ExpiredTokenException"


def test_load_key(tmp_path: Path) -> None:
    path = tmp_path / "ecs" / "credentials.key"
    key = md.load_key(path)
    assert len(key) == 32 and md.load_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600


# --- the server ----------------------------------------------------------------------------------

def serve(server: md.MetadataServer, calls: list[tuple[str, int, Any]], paths: list[str]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(server.app())) as client:
            for path in paths:
                resp = await client.get(path)
                calls.append((path, resp.status, await resp.json()))
    asyncio.run(main())


def test_server_routes() -> None:
    t = task(task_role_arn=ROLE)
    stopped = task(arn=TASK_ARN.replace(TASK_ID, "1" * 32), task_role_arn=ROLE, last_status="STOPPED")
    tasks = FakeTasks(t, stopped)
    containers = FakeContainers({TASK_ARN: [snapshot("app", "c1" * 32), snapshot("side", "c2" * 32, running=False)]})
    c, _ = creds(Clock(1_700_000_000.0))
    server = md.MetadataServer(tasks, containers, c, host="10.88.0.1", allowed=("10.88.0.0/16",))
    assert server.base_url == "http://10.88.0.1:51679"
    uri = server.relative_uri(t)
    stopped_uri = md.TaskRoleCredentials(c.issuer, c.key).relative_uri(stopped)  # given out by "another daemon"
    base = f"/v4/{TASK_ID}-app"
    calls: list[tuple[str, int, Any]] = []
    serve(server, calls, [base, base + "/task", base + "/taskWithTags", base + "/stats", base + "/task/stats",
                          f"/v3/{TASK_ID}-app/task", f"/v4/{TASK_ID}-nope", f"/v4/{'f' * 32}-app", base + "/bogus",
                          uri, uri + "/", stopped_uri, "/v2/credentials/nope", "/"])
    got = {path: (status, body) for path, status, body in calls}
    assert got[base][0] == 200 and got[base][1]["Name"] == "app"
    status, body = got[base + "/task"]
    assert status == 200 and body["TaskARN"] == TASK_ARN
    assert [x["Name"] for x in body["Containers"]] == ["app", "side"]
    assert got[base + "/taskWithTags"][1]["TaskTags"] == {"team": "blue"}
    assert got[base + "/stats"] == (200, {"id": "c1" * 32, "cpu_stats": {}, "memory_stats": {"usage": 1}})
    assert set(got[base + "/task/stats"][1]) == {"c1" * 32, "c2" * 32}
    assert got[f"/v3/{TASK_ID}-app/task"][0] == 200
    for missing in (f"/v4/{TASK_ID}-nope", f"/v4/{'f' * 32}-app", base + "/bogus", "/v2/credentials/nope", "/"):
        assert got[missing][0] == 404, missing
    assert got[uri][0] == 200 and got[uri][1]["RoleArn"] == ROLE
    assert got[uri + "/"][1]["AccessKeyId"] == got[uri][1]["AccessKeyId"]
    assert got[stopped_uri][0] == 404 and got[stopped_uri][1]["code"] == "NoSuchEntity"


def test_server_without_credentials_store() -> None:
    server = md.MetadataServer(FakeTasks(task(task_role_arn=ROLE)), FakeContainers({}), None, host="10.88.0.1")
    assert server.relative_uri(task(task_role_arn=ROLE)) == ""
    calls: list[tuple[str, int, Any]] = []
    serve(server, calls, ["/v2/credentials/x"])
    assert calls[0][1] == 404


def test_callers_from_elsewhere_are_refused() -> None:
    server = md.MetadataServer(FakeTasks(), FakeContainers({}), None, host="10.88.0.1", allowed=("10.88.0.0/16",))

    def allowed(remote: str) -> bool:
        return server._caller_allowed(SimpleNamespace(remote=remote))  # type: ignore[arg-type]

    assert allowed("10.88.3.4") and allowed("127.0.0.1") and allowed("10.88.0.1")
    assert not allowed("192.168.1.20") and not allowed("10.89.0.5")


# --- 169.254.170.2 ------------------------------------------------------------------------------

def test_dnat_rule_argv() -> None:
    assert md.dnat_chain("berth0") == "BERTH-ECS-berth0"
    assert len(md.dnat_chain("a" * 15)) <= 28
    assert md.dnat_hook("berth0") == ["PREROUTING", "-i", "berth0", "-d", "169.254.170.2/32", "-p", "tcp",
                                      "--dport", "80", "-j", "BERTH-ECS-berth0"]
    assert md.dnat_rule("berth0", "10.88.0.1", 51679) == [
        "BERTH-ECS-berth0", "-p", "tcp", "-j", "DNAT", "--to-destination", "10.88.0.1:51679"]
