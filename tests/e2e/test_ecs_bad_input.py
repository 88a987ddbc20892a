"""Issue 9, acceptance "Bad input": a table over every ECS operation of berth's endpoint.

Unknown clusters, services and task definitions, malformed ARNs, the invalid task definitions
(no containers, duplicate names, one fixed hostPort twice, memory below 6 MiB, an unknown
networkMode, a circular dependsOn), desiredCount -1, wrong JSON types, non-JSON bodies and unknown
X-Amz-Targets: each answers 400 with AWS's error code and a message naming the member, never a
5xx, and the daemon log stays free of tracebacks. After the table nothing half-created remains
(every list answers what it answered before). An image that does not exist stops its task with
`CannotPullContainerError`.

Cases go through boto3; where botocore refuses the input client-side (a wrong type, a missing
member) the same request is sent raw, signed with the daemon's keys, so it reaches the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import BerthDaemon, running_aws_daemon, wait_for, wait_task

pytestmark = pytest.mark.root

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError, ParamValidationError  # noqa: E402

TARGET = "AmazonEC2ContainerServiceV20141113"
REGION = "us-east-1"
CLIENT_CODES = {"SerializationException", "InvalidParameterException", "ClientException"}
BASE = {"family": "base", "containerDefinitions": [
    {"name": "main", "image": "busybox", "memory": 32, "command": ["sleep", "3600"]}]}


def ctr(name: str = "main", **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "memory": 32, **kw}


@dataclass
class Env:
    d: BerthDaemon
    ecs: Any
    account: str = ""
    instance: str = ""
    service: str = ""
    log_start: int = 0

    def arn(self, resource: str) -> str:
        return f"arn:aws:ecs:{REGION}:{self.account}:{resource}"


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with running_aws_daemon("--ecs-healthy-after", "1") as d:
        ecs = d.aws_client("ecs", config=Config(retries={"total_max_attempts": 1}))
        e = Env(d, ecs)
        # the daemon's agent registers its instance into `default`
        e.instance = wait_for("the daemon's container instance", lambda: ecs.list_container_instances(
            cluster="default")["containerInstanceArns"] if ecs.list_clusters()["clusterArns"] else [])[0]
        e.account = e.instance.split(":")[4]
        ecs.register_task_definition(**BASE)
        e.service = ecs.create_service(cluster="default", serviceName="svc", taskDefinition="base",
                                       desiredCount=0)["service"]["serviceArn"]
        yield e


# --- sending ------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    code: str
    message: str
    raw: bool  # sent raw (botocore refused it client-side, or the case asked for it)
    output: dict[str, Any] = field(default_factory=dict)


def raw_call(e: Env, op: str, body: bytes, target: str | None = None) -> Answer:
    target = target if target is not None else f"{TARGET}.{op}"
    status, payload = e.d.aws_post(body, e.d.aws_sign("ecs", target, body))
    try:
        data = json.loads(payload)
    except ValueError:
        raise AssertionError(f"{op}: answer is not JSON: {payload[:200]!r}") from None
    return Answer(status, str(data.get("__type", "")), str(data.get("message", "")), True, data)


def snake(op: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")


def call(e: Env, op: str, params: dict[str, Any]) -> Answer:
    """Through boto3; raw when botocore refuses the input before sending it."""
    try:
        out = getattr(e.ecs, snake(op))(**params)
    except ParamValidationError:
        return raw_call(e, op, json.dumps(params).encode())
    except ClientError as err:
        meta = err.response.get("ResponseMetadata", {})
        return Answer(int(meta.get("HTTPStatusCode", 0)), err.response["Error"]["Code"],
                      err.response["Error"].get("Message", ""), False)
    return Answer(200, "", "", False, out)


# --- the table ------------------------------------------------------------------------------------

GHOST_CLUSTER = {"cluster": "ghost"}
NOT_FOUND_CLUSTER = ({"ClusterNotFoundException"}, ["cluster"])


def cases(e: Env) -> list[tuple[str, str, dict[str, Any], set[str], list[str]]]:
    """(label, operation, params, accepted codes, words the message must hold)."""
    bad_arn = "arn:aws:ecs:us-east-1"
    other_service = e.arn("service/other-cluster/svc")
    ghost_task = e.arn("task/default/0123456789abcdef0123456789abcdef")
    ip = {"InvalidParameterException"}
    ce = {"ClientException"}
    return [
        # clusters
        ("cluster name with spaces", "CreateCluster", {"clusterName": "bad name!"}, ip, ["cluster"]),
        ("cluster setting unknown", "CreateCluster", {"clusterName": "x", "settings": [
            {"name": "nope", "value": "enabled"}]}, ip, ["settings"]),
        ("cluster capacity provider unknown", "CreateCluster", {"clusterName": "x", "capacityProviders": ["MY_ASG"]},
         ip, ["capacity provider", "MY_ASG"]),
        ("describe malformed cluster ARN", "DescribeClusters", {"clusters": [bad_arn]}, ip, ["cluster", bad_arn]),
        ("describe too many", "DescribeClusters", {"clusters": ["c"] * 101}, ip, ["clusters"]),
        ("list maxResults 0", "ListClusters", {"maxResults": 0}, ip, ["maxResults"]),
        ("list bad nextToken", "ListClusters", {"nextToken": "%%%"}, ip, ["nextToken"]),
        ("delete unknown cluster", "DeleteCluster", {"cluster": "ghost"}, *NOT_FOUND_CLUSTER),
        ("delete malformed cluster", "DeleteCluster", {"cluster": e.arn("service/x")}, ip, ["cluster"]),
        ("delete busy cluster", "DeleteCluster", {"cluster": "default"}, {"ClusterContainsServicesException"},
         ["services"]),
        ("update unknown cluster", "UpdateCluster", {"cluster": "ghost", "settings": []}, *NOT_FOUND_CLUSTER),
        ("settings empty", "UpdateClusterSettings", {"cluster": "default", "settings": []}, ip, ["settings"]),
        ("settings unknown cluster", "UpdateClusterSettings", {"cluster": "ghost", "settings": [
            {"name": "containerInsights", "value": "enabled"}]}, *NOT_FOUND_CLUSTER),
        ("capacity providers unknown", "PutClusterCapacityProviders", {
            "cluster": "default", "capacityProviders": ["MY_ASG"], "defaultCapacityProviderStrategy": []},
         ip, ["MY_ASG"]),
        ("capacity providers unknown cluster", "PutClusterCapacityProviders", {
            "cluster": "ghost", "capacityProviders": [], "defaultCapacityProviderStrategy": []}, *NOT_FOUND_CLUSTER),
        ("strategy not associated", "PutClusterCapacityProviders", {
            "cluster": "default", "capacityProviders": ["FARGATE"],
            "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]},
         ip, ["FARGATE_SPOT"]),
        ("describe capacity providers wrong type", "DescribeCapacityProviders", {"capacityProviders": "FARGATE"},
         {"SerializationException"}, ["capacityProviders"]),
        # task definitions
        ("no containers", "RegisterTaskDefinition", {"family": "bad", "containerDefinitions": []}, ce,
         ["container definition"]),
        ("duplicate container names", "RegisterTaskDefinition", {"family": "bad", "containerDefinitions": [
            ctr("a"), ctr("a")]}, ce, ["container names", "a"]),
        ("same fixed hostPort", "RegisterTaskDefinition", {"family": "bad", "containerDefinitions": [
            ctr("a", portMappings=[{"containerPort": 80, "hostPort": 8080}]),
            ctr("b", portMappings=[{"containerPort": 81, "hostPort": 8080}])]}, ce, ["portMappings", "8080"]),
        ("memory below 6 MiB", "RegisterTaskDefinition", {"family": "bad", "containerDefinitions": [
            ctr(memory=4)]}, ce, ["memory", "6 MiB"]),
        ("unknown networkMode", "RegisterTaskDefinition", {"family": "bad", "networkMode": "weird",
                                                          "containerDefinitions": [ctr()]}, ce, ["networkMode"]),
        ("circular dependsOn", "RegisterTaskDefinition", {"family": "bad", "containerDefinitions": [
            ctr("a", dependsOn=[{"containerName": "b", "condition": "START"}]),
            ctr("b", dependsOn=[{"containerName": "a", "condition": "START"}])]}, ce, ["dependsOn", "cycle"]),
        ("no family", "RegisterTaskDefinition", {"containerDefinitions": [ctr()]}, CLIENT_CODES, ["family"]),
        ("container memory wrong type", "RegisterTaskDefinition", {"family": "bad", "containerDefinitions": [
            ctr(memory="lots")]}, CLIENT_CODES, ["memory"]),
        ("describe unknown task definition", "DescribeTaskDefinition", {"taskDefinition": "ghost"}, ce,
         ["task definition"]),
        ("describe malformed task definition ARN", "DescribeTaskDefinition", {
            "taskDefinition": e.arn("task-definition/")}, ip, ["taskDefinition"]),
        ("deregister without revision", "DeregisterTaskDefinition", {"taskDefinition": "base"}, ip, ["revision"]),
        ("deregister unknown", "DeregisterTaskDefinition", {"taskDefinition": "ghost:1"}, ce, ["TaskDefinition"]),
        ("delete none", "DeleteTaskDefinitions", {"taskDefinitions": []}, ip, ["taskDefinitions"]),
        ("list task definitions bad status", "ListTaskDefinitions", {"status": "BOGUS"}, ip, ["status"]),
        ("list task definitions bad sort", "ListTaskDefinitions", {"sort": "UP"}, ip, ["sort"]),
        ("families bad status", "ListTaskDefinitionFamilies", {"status": "BOGUS"}, ip, ["status"]),
        # container instances
        ("identity document not JSON", "RegisterContainerInstance", {"instanceIdentityDocument": "{not json"}, ip,
         ["instanceIdentityDocument"]),
        ("register into unknown cluster", "RegisterContainerInstance", GHOST_CLUSTER, *NOT_FOUND_CLUSTER),
        ("deregister unknown instance", "DeregisterContainerInstance", {"containerInstance": "ghost"}, ip,
         ["container instance"]),
        ("deregister malformed instance id", "DeregisterContainerInstance", {"containerInstance": "x" * 300},
         ip, ["containerInstance"]),
        ("describe no instances", "DescribeContainerInstances", {"containerInstances": []}, ip,
         ["containerInstances"]),
        ("describe instances malformed ARN", "DescribeContainerInstances", {"containerInstances": [bad_arn]}, ip,
         ["containerInstances"]),
        ("list instances bad filter", "ListContainerInstances", {"filter": "attribute:ecs.os-type =="}, ip,
         ["filter"]),
        ("list instances bad status", "ListContainerInstances", {"status": "SLEEPING"}, ip, ["status"]),
        ("instances state INACTIVE", "UpdateContainerInstancesState", {
            "containerInstances": [e.instance], "status": "INACTIVE"}, ip, ["status"]),
        ("instances state none", "UpdateContainerInstancesState", {"containerInstances": [], "status": "DRAINING"},
         ip, ["containerInstances"]),
        # attributes
        ("put attribute unknown target", "PutAttributes", {"attributes": [{"name": "x", "targetId": "ghost"}]},
         {"TargetNotFoundException"}, ["ghost"]),
        ("put attribute bad name", "PutAttributes", {"attributes": [{"name": "bad name!", "targetId": e.instance}]},
         ip, ["attribute"]),
        ("put no attributes", "PutAttributes", {"attributes": []}, ip, ["attributes"]),
        ("delete no attributes", "DeleteAttributes", {"attributes": []}, ip, ["attributes"]),
        ("delete attribute unknown target", "DeleteAttributes", {"attributes": [{"name": "x", "targetId": "ghost"}]},
         {"TargetNotFoundException"}, ["ghost"]),
        ("list attributes of tasks", "ListAttributes", {"targetType": "task"}, ip, ["targetType"]),
        ("list attributes value without name", "ListAttributes", {"targetType": "container-instance",
                                                                  "attributeValue": "x"}, ip, ["attributeValue"]),
        # tasks
        ("run unknown task definition", "RunTask", {"taskDefinition": "ghost"}, ce, ["TaskDefinition"]),
        ("run in unknown cluster", "RunTask", {"cluster": "ghost", "taskDefinition": "base"}, *NOT_FOUND_CLUSTER),
        ("run count 11", "RunTask", {"taskDefinition": "base", "count": 11}, ip, ["count"]),
        ("run override of unknown container", "RunTask", {"taskDefinition": "base", "overrides": {
            "containerOverrides": [{"name": "ghost"}]}}, ip, ["ghost"]),
        ("run bad launch type", "RunTask", {"taskDefinition": "base", "launchType": "MOON"}, ip, ["launchType"]),
        ("run network configuration for bridge", "RunTask", {"taskDefinition": "base", "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": ["subnet-1"]}}}, ip, ["Network Configuration"]),
        ("run bad placement expression", "RunTask", {"taskDefinition": "base", "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:x =="}]}, ip, ["expression"]),
        ("start on no instances", "StartTask", {"taskDefinition": "base", "containerInstances": []}, ip,
         ["containerInstances"]),
        ("start unknown task definition", "StartTask", {"taskDefinition": "ghost",
                                                        "containerInstances": [e.instance]}, ce, ["TaskDefinition"]),
        ("stop unknown task", "StopTask", {"task": ghost_task}, ip, ["task"]),
        ("stop malformed task ARN", "StopTask", {"task": bad_arn}, ip, ["task", bad_arn]),
        ("describe no tasks", "DescribeTasks", {"tasks": []}, ip, ["tasks"]),
        ("describe task of another cluster", "DescribeTasks", {"tasks": [e.arn("task/other/abc")]}, ip,
         ["tasks", "cluster"]),
        ("describe tasks in unknown cluster", "DescribeTasks", {"cluster": "ghost", "tasks": [ghost_task]},
         *NOT_FOUND_CLUSTER),
        ("list tasks bad desiredStatus", "ListTasks", {"desiredStatus": "DEAD"}, ip, ["desiredStatus"]),
        ("list tasks of unknown service", "ListTasks", {"serviceName": "ghost"}, {"ServiceNotFoundException"},
         ["service"]),
        ("list tasks maxResults 101", "ListTasks", {"maxResults": 101}, ip, ["maxResults"]),
        ("exec into unknown task", "ExecuteCommand", {"task": ghost_task, "command": "sh", "interactive": True},
         ip, ["task"]),
        ("protection of malformed task", "GetTaskProtection", {"cluster": "default", "tasks": [bad_arn]}, ip,
         ["tasks"]),
        # services
        ("desiredCount -1", "CreateService", {"serviceName": "neg", "taskDefinition": "base", "desiredCount": -1},
         ip, ["desiredCount"]),
        ("service of unknown task definition", "CreateService", {"serviceName": "ghostly",
                                                                 "taskDefinition": "ghost"}, ce, ["TaskDefinition"]),
        ("service in unknown cluster", "CreateService", {"cluster": "ghost", "serviceName": "x",
                                                         "taskDefinition": "base"}, *NOT_FOUND_CLUSTER),
        ("service name with spaces", "CreateService", {"serviceName": "bad name", "taskDefinition": "base"}, ip,
         ["serviceName"]),
        ("service exists", "CreateService", {"serviceName": "svc", "taskDefinition": "base"}, ip, ["service"]),
        ("service maximumPercent 50", "CreateService", {"serviceName": "pct", "taskDefinition": "base",
                                                        "deploymentConfiguration": {"maximumPercent": 50}}, ip,
         ["maximumPercent"]),
        ("update desiredCount -1", "UpdateService", {"service": "svc", "desiredCount": -1}, ip, ["desiredCount"]),
        ("update unknown service", "UpdateService", {"service": "ghost", "desiredCount": 1},
         {"ServiceNotFoundException"}, ["service"]),
        ("update to unknown task definition", "UpdateService", {"service": "svc", "taskDefinition": "ghost:9"}, ce,
         ["TaskDefinition"]),
        ("delete unknown service", "DeleteService", {"service": "ghost"}, {"ServiceNotFoundException"}, ["service"]),
        ("delete service of another cluster", "DeleteService", {"service": other_service}, ip, ["service"]),
        ("describe no services", "DescribeServices", {"services": []}, ip, ["services"]),
        ("describe services malformed ARN", "DescribeServices", {"services": [bad_arn]}, ip, ["services"]),
        ("list services bad launchType", "ListServices", {"launchType": "MOON"}, ip, ["launchType"]),
        ("list services unknown cluster", "ListServices", GHOST_CLUSTER, *NOT_FOUND_CLUSTER),
        # tags
        ("tag malformed ARN", "TagResource", {"resourceArn": bad_arn, "tags": [{"key": "a", "value": "b"}]}, ip,
         ["resourceArn"]),
        ("tag unknown resource", "TagResource", {"resourceArn": e.arn("cluster/ghost"),
                                                 "tags": [{"key": "a", "value": "b"}]},
         {"ResourceNotFoundException"}, ["resource"]),
        ("tag aws: key", "TagResource", {"resourceArn": e.service, "tags": [{"key": "aws:x", "value": "b"}]}, ip,
         ["tags"]),
        ("untag no keys", "UntagResource", {"resourceArn": e.service, "tagKeys": []}, ip, ["tagKeys"]),
        ("untag non-ECS ARN", "UntagResource", {"resourceArn": "arn:aws:s3:::bucket", "tagKeys": ["a"]}, ip,
         ["resourceArn"]),
        ("tags of unknown task", "ListTagsForResource", {"resourceArn": ghost_task}, {"ResourceNotFoundException"},
         ["resource"]),
        ("tags of capacity provider", "ListTagsForResource", {"resourceArn": e.arn("capacity-provider/x")}, ip,
         ["resourceArn"]),
        # account settings
        ("unknown setting", "PutAccountSetting", {"name": "nope", "value": "enabled"}, ip, ["name"]),
        ("bad setting value", "PutAccountSettingDefault", {"name": "containerInsights", "value": "maybe"}, ip,
         ["value", "containerInsights"]),
        ("delete unknown setting", "DeleteAccountSetting", {"name": "nope"}, ip, ["name"]),
        ("list settings maxResults 11", "ListAccountSettings", {"maxResults": 11}, ip, ["maxResults"]),
    ]


def snapshot(e: Env) -> dict[str, Any]:
    """Everything a bad request could have half-created."""
    ecs = e.ecs
    clusters = ecs.list_clusters()["clusterArns"]
    out: dict[str, Any] = {
        "clusters": sorted(clusters),
        "taskdefs": {s: ecs.list_task_definitions(status=s)["taskDefinitionArns"] for s in ("ACTIVE", "INACTIVE")},
        "families": ecs.list_task_definition_families(status="ALL")["families"],
        "settings": ecs.list_account_settings()["settings"],
    }
    for arn in clusters:
        out[arn] = {
            "services": sorted(ecs.list_services(cluster=arn)["serviceArns"]),
            "tasks": sorted(ecs.list_tasks(cluster=arn)["taskArns"] + ecs.list_tasks(
                cluster=arn, desiredStatus="STOPPED")["taskArns"]),
            "instances": sorted(ecs.list_container_instances(cluster=arn)["containerInstanceArns"]),
            "attributes": sorted(a["name"] for a in ecs.list_attributes(
                cluster=arn, targetType="container-instance")["attributes"]),
        }
    out["service"] = {k: v for k, v in ecs.describe_services(services=["svc"], include=["TAGS"])["services"][0].items()
                      if k in ("status", "desiredCount", "taskDefinition", "tags", "deployments")}
    return out


def operations() -> list[str]:
    from berth.api.aws.ecs import EcsHandlers

    return sorted(n for n in dir(EcsHandlers) if n[:1].isupper())


def wrong_type_body(op: str) -> tuple[str, bytes]:
    """A wrong JSON type for a member the operation takes (botocore's model names them)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs").operation_model(op)
    members = model.input_shape.members if model.input_shape is not None else {}
    for name, shape in members.items():
        if shape.type_name == "string":
            return name, json.dumps({name: 5}).encode()
    name = next(iter(members))
    return name, json.dumps({name: "not-a-list-or-object"}).encode()


def log_text(e: Env) -> str:
    with (e.d.base / "daemon.log").open("rb") as f:
        f.seek(e.log_start)
        return f.read().decode(errors="replace")


def test_bad_input_table(env: Env) -> None:
    e = env
    e.log_start = (e.d.base / "daemon.log").stat().st_size
    before = snapshot(e)
    table = cases(e)
    covered = {op for _label, op, *_ in table}
    assert covered == set(operations()), f"operations without a semantic case: {set(operations()) - covered}"
    problems: list[str] = []
    sent_raw = []
    for label, op, params, codes, words in table:
        answer = call(e, op, params)
        if answer.raw:
            sent_raw.append(label)
        text = f"{label} ({op} {json.dumps(params)[:120]}): {answer.status} {answer.code}: {answer.message}"
        if answer.status != 400 or answer.code not in codes:
            problems.append(f"wanted {sorted(codes)}: {text}")
        elif not all(w.lower() in answer.message.lower() for w in words):
            problems.append(f"message should name {words}: {text}")
        elif "Traceback" in answer.message:
            problems.append(f"traceback in message: {text}")
    # a wrong JSON type for a member of every operation: SerializationException at the edge
    for op in operations():
        member, body = wrong_type_body(op)
        answer = raw_call(e, op, body)
        if answer.status != 400 or answer.code not in CLIENT_CODES or member not in answer.message:
            problems.append(f"wrong type for {op}.{member}: {answer.status} {answer.code}: {answer.message}")
    # non-JSON bodies
    for op, body in (("ListClusters", b"{not json"), ("RunTask", b"[1, 2]"), ("CreateService", b"\xff\xfe\x00"),
                     ("RegisterTaskDefinition", b'"just a string"'), ("DescribeTasks", b"null"),
                     ("TagResource", b"{\"resourceArn\": ")):
        answer = raw_call(e, op, body)
        if answer.status != 400 or answer.code != "SerializationException":
            problems.append(f"non-JSON body to {op} {body!r}: {answer.status} {answer.code}: {answer.message}")
    # unknown X-Amz-Targets
    for target in (f"{TARGET}.Frobnicate", f"{TARGET}.", f"{TARGET}.listClusters", "NoSuchService_V1.ListClusters",
                   TARGET):
        answer = raw_call(e, "", b"{}", target=target)
        if answer.status != 400 or answer.code != "UnknownOperationException" or target not in answer.message:
            problems.append(f"target {target!r}: {answer.status} {answer.code}: {answer.message}")
    assert not problems, "\n".join(problems)
    assert sent_raw, "botocore refused none of the inputs client-side (the raw path went untested)"
    # nothing half-created, nothing changed
    assert snapshot(e) == before
    logged = log_text(e)
    assert "Traceback" not in logged and " failed\n" not in logged, logged[-3000:]
    # and the endpoint still serves
    assert e.ecs.describe_clusters(clusters=["default"])["clusters"][0]["status"] == "ACTIVE"


def test_image_that_does_not_exist(env: Env) -> None:
    e = env
    e.ecs.register_task_definition(family="missing-image", containerDefinitions=[
        {"name": "main", "image": "127.0.0.1:1/berth/no-such-image:latest", "memory": 32}])
    out = e.ecs.run_task(cluster="default", taskDefinition="missing-image")
    assert out["failures"] == [] and len(out["tasks"]) == 1
    arn = out["tasks"][0]["taskArn"]
    task = wait_task(e.ecs, arn, "STOPPED", timeout=30)
    assert task["stopCode"] == "TaskFailedToStart", task
    assert "CannotPullContainerError" in task["stoppedReason"], task["stoppedReason"]
    container = task["containers"][0]
    assert container["reason"].startswith("CannotPullContainerError"), container
    assert "exitCode" not in container
    # no container was left behind for it
    listed = e.d.docker("ps", "-a", "--filter", f"label=com.amazonaws.ecs.task-arn={arn}", "-q", check=True)
    assert listed.stdout.strip() == ""
