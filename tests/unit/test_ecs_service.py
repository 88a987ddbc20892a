"""The ECS operations over an in-memory control-plane store, driven through the API handlers.

Every case goes through `berth.api.aws.ecs` (the JSON-1.1 operation table) so both the service
layer (validation, records) and the wire shapes are checked; errors come back as the AWS code and
message the endpoint would send.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

import berth.ecs
import berth.state
from berth.api.aws._errors import to_aws_error
from berth.api.aws._server import AwsContext, _check_params
from berth.api.aws.ecs import PARAMS, ecs_service
from berth.ecs import EcsService, InstanceResources, Scope
from berth.ecs import model as m

REGION, ACCOUNT = "us-east-1", "123456789012"
SCOPE = Scope(REGION, ACCOUNT)
ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Api:
    """`api.Op(**params)` → the output dict; `api.err("Op", **params)` → (code, message)."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.ctx = berth.ecs.Context(berth.ecs.Repo(berth.state.MemoryStore()), clock=self.clock)
        self.ecs = EcsService(self.ctx)
        self.ops = ecs_service(self.ecs).operations

    def call(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(params, PARAMS)
        out = self.ops[op](params, AwsContext(region=REGION, account=ACCOUNT))
        json.dumps(out)  # the wire can carry it
        return out

    def __getattr__(self, op: str) -> Any:
        if not op[:1].isupper():
            raise AttributeError(op)
        return lambda **params: self.call(op, params)

    def err(self, op: str, **params: Any) -> tuple[str, str]:
        try:
            self.call(op, params)
        except Exception as err:  # noqa: BLE001 - the mapping under test
            aws = to_aws_error(err)
            assert aws.status == 400, f"{op}: {aws} is a server fault"
            return aws.code, aws.message
        raise AssertionError(f"{op}({params}) succeeded")

    def agent(self, cluster: str = "default", agent_id: str = "agent-1", cpu: int = 2048, memory: int = 4096,
              zone: str = "local-1a") -> str:
        inst = self.ecs.register_agent_instance(SCOPE, cluster, agent_id, InstanceResources(
            cpu=cpu, memory=memory, attributes=(("ecs.availability-zone", zone), ("ecs.os-type", "linux"))))
        return inst.arn


@pytest.fixture
def api() -> Api:
    return Api()


def container(name: str = "web", **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "memory": 64, **kw}


def register(api: Api, family: str = "web", *containers: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out = api.RegisterTaskDefinition(family=family, containerDefinitions=list(containers) or [container()], **kw)
    return out["taskDefinition"]


FARGATE_TD = dict(networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512")
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}


# --- clusters ------------------------------------------------------------------------------------


def test_create_cluster_is_idempotent_and_shaped(api: Api) -> None:
    first = api.CreateCluster(clusterName="prod", tags=[{"key": "team", "value": "a"}])["cluster"]
    assert first["clusterArn"] == f"{ARN}:cluster/prod"
    assert first["status"] == "ACTIVE" and first["tags"] == [{"key": "team", "value": "a"}]
    assert first["registeredContainerInstancesCount"] == 0 and first["activeServicesCount"] == 0
    again = api.CreateCluster(clusterName="prod")["cluster"]
    assert again["clusterArn"] == first["clusterArn"]
    assert api.ListClusters()["clusterArns"] == [f"{ARN}:cluster/prod"]
    default = api.CreateCluster()["cluster"]
    assert default["clusterName"] == "default"


def test_create_cluster_refuses_bad_names_and_settings(api: Api) -> None:
    code, msg = api.err("CreateCluster", clusterName="bad name!")
    assert code == "InvalidParameterException" and "cluster" in msg.lower()
    code, msg = api.err("CreateCluster", clusterName="x", settings=[{"name": "nope", "value": "enabled"}])
    assert code == "InvalidParameterException" and "containerInsights" in msg
    code, msg = api.err("CreateCluster", clusterName="x", capacityProviders=["MY_ASG"])
    assert code == "InvalidParameterException" and "MY_ASG" in msg
    assert api.ListClusters()["clusterArns"] == []


def test_describe_clusters_missing_and_include(api: Api) -> None:
    api.CreateCluster(clusterName="a", tags=[{"key": "k", "value": "v"}])
    out = api.DescribeClusters(clusters=["a", "nope", f"{ARN}:cluster/gone"])
    assert [c["clusterName"] for c in out["clusters"]] == ["a"]
    assert out["failures"] == [{"arn": f"{ARN}:cluster/nope", "reason": "MISSING"},
                               {"arn": f"{ARN}:cluster/gone", "reason": "MISSING"}]
    assert out["clusters"][0]["tags"] == []  # tags only with include TAGS
    tagged = api.DescribeClusters(clusters=["a"], include=["TAGS"])["clusters"][0]
    assert tagged["tags"] == [{"key": "k", "value": "v"}]
    # no clusters member: the default cluster
    assert api.DescribeClusters()["failures"] == [{"arn": f"{ARN}:cluster/default", "reason": "MISSING"}]


def test_list_clusters_pages(api: Api) -> None:
    for i in range(5):
        api.CreateCluster(clusterName=f"c{i}")
    first = api.ListClusters(maxResults=2)
    assert len(first["clusterArns"]) == 2 and first["nextToken"]
    seen = list(first["clusterArns"])
    token = first["nextToken"]
    while token:
        out = api.ListClusters(maxResults=2, nextToken=token)
        seen += out["clusterArns"]
        token = out.get("nextToken")
    assert sorted(seen) == [f"{ARN}:cluster/c{i}" for i in range(5)]
    assert api.err("ListClusters", maxResults=0)[0] == "InvalidParameterException"
    assert api.err("ListClusters", nextToken="%%%")[0] == "InvalidParameterException"


def test_delete_cluster_refusals(api: Api) -> None:
    api.CreateCluster(clusterName="c")
    inst = api.agent("c")
    register(api)
    api.RunTask(cluster="c", taskDefinition="web")
    api.CreateService(cluster="c", serviceName="s", taskDefinition="web", desiredCount=0)
    assert api.err("DeleteCluster", cluster="c") == (
        "ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")
    api.DeleteService(cluster="c", service="s")
    _services_drained(api, "c")
    assert api.err("DeleteCluster", cluster="c") == (
        "ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.")
    for arn in api.ListTasks(cluster="c")["taskArns"]:
        api.StopTask(cluster="c", task=arn)
    _stop_everything(api, "c")
    assert api.err("DeleteCluster", cluster="c") == (
        "ClusterContainsContainerInstancesException",
        "The Cluster cannot be deleted while Container Instances are active or draining.")
    api.DeregisterContainerInstance(cluster="c", containerInstance=inst)
    _stop_everything(api, "c")
    gone = api.DeleteCluster(cluster="c")["cluster"]
    assert gone["status"] == "INACTIVE"
    assert api.ListClusters()["clusterArns"] == []
    assert api.err("DeleteCluster", cluster="c") == ("ClusterNotFoundException", "Cluster not found.")
    # an INACTIVE cluster is still describable, as in ECS
    assert api.DescribeClusters(clusters=["c"])["clusters"][0]["status"] == "INACTIVE"
    # and creating it again brings it back
    assert api.CreateCluster(clusterName="c")["cluster"]["status"] == "ACTIVE"


def _services_drained(api: Api, cluster: str) -> None:
    """What the service controller does once a DRAINING service has no tasks: INACTIVE."""
    from dataclasses import replace

    for service in api.ecs.services.list(api.ctx.cluster(SCOPE, cluster)):
        api.ctx.repo.put(type(service), service.arn, replace(service, status="INACTIVE"))


def _stop_everything(api: Api, cluster: str) -> None:
    """What the agent would report: every task of the cluster STOPPED."""
    from dataclasses import replace

    for task in api.ecs.tasks.list(api.ctx.cluster(SCOPE, cluster)):
        api.ctx.repo.put(type(task), task.arn, replace(task, last_status="STOPPED", desired_status="STOPPED",
                                                       stopped_at=api.clock.now))


def test_update_cluster_and_settings(api: Api) -> None:
    api.CreateCluster(clusterName="c")
    out = api.UpdateClusterSettings(cluster="c", settings=[{"name": "containerInsights", "value": "enabled"}])
    assert out["cluster"]["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    out = api.UpdateCluster(cluster="c", configuration={"executeCommandConfiguration": {"logging": "NONE"}})
    assert out["cluster"]["configuration"] == {"executeCommandConfiguration": {"logging": "NONE"}}
    assert out["cluster"]["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert api.err("UpdateClusterSettings", cluster="c", settings=[])[0] == "InvalidParameterException"
    assert api.err("UpdateClusterSettings", cluster="nope",
                   settings=[{"name": "containerInsights", "value": "enabled"}])[0] == "ClusterNotFoundException"
    assert api.err("UpdateCluster", cluster="nope")[0] == "ClusterNotFoundException"


def test_capacity_providers(api: Api) -> None:
    api.CreateCluster(clusterName="c")
    out = api.PutClusterCapacityProviders(
        cluster="c", capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1, "base": 1}])["cluster"]
    assert out["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert out["defaultCapacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]
    code, msg = api.err("PutClusterCapacityProviders", cluster="c", capacityProviders=["FARGATE"],
                        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    assert code == "InvalidParameterException" and "FARGATE_SPOT" in msg
    assert api.err("PutClusterCapacityProviders", cluster="c", capacityProviders=["FARGATE"])[0] == \
        "InvalidParameterException"
    providers = api.DescribeCapacityProviders(capacityProviders=["FARGATE", "nope"])
    assert [p["name"] for p in providers["capacityProviders"]] == ["FARGATE"]
    assert providers["failures"][0]["reason"] == "MISSING"


# --- task definitions ------------------------------------------------------------------------------


def test_revisions_are_never_reused(api: Api) -> None:
    assert register(api)["revision"] == 1
    assert register(api)["revision"] == 2
    api.DeregisterTaskDefinition(taskDefinition="web:2")
    deleted = api.DeleteTaskDefinitions(taskDefinitions=["web:2"])
    assert deleted["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS" and deleted["failures"] == []
    third = register(api)
    assert third["revision"] == 3 and third["taskDefinitionArn"] == f"{ARN}:task-definition/web:3"


def test_describe_latest_active_and_tags(api: Api) -> None:
    register(api, tags=[{"key": "k", "value": "v"}])
    register(api)
    api.DeregisterTaskDefinition(taskDefinition="web:2")
    out = api.DescribeTaskDefinition(taskDefinition="web")
    assert out["taskDefinition"]["revision"] == 1 and "tags" not in out
    out = api.DescribeTaskDefinition(taskDefinition=f"{ARN}:task-definition/web:1", include=["TAGS"])
    assert out["tags"] == [{"key": "k", "value": "v"}]
    inactive = api.DescribeTaskDefinition(taskDefinition="web:2")["taskDefinition"]
    assert inactive["status"] == "INACTIVE" and "deregisteredAt" in inactive
    assert api.err("DescribeTaskDefinition", taskDefinition="nope") == (
        "ClientException", "Unable to describe task definition.")
    assert api.err("DescribeTaskDefinition", taskDefinition="web:99")[0] == "ClientException"


def test_list_task_definitions_filters_and_sort(api: Api) -> None:
    for family in ("web", "web", "api", "webx"):
        register(api, family)
    api.DeregisterTaskDefinition(taskDefinition="web:1")
    assert api.ListTaskDefinitions()["taskDefinitionArns"] == [
        f"{ARN}:task-definition/{x}" for x in ("api:1", "web:2", "webx:1")]
    assert api.ListTaskDefinitions(familyPrefix="web")["taskDefinitionArns"] == [f"{ARN}:task-definition/web:2"]
    assert api.ListTaskDefinitions(status="INACTIVE")["taskDefinitionArns"] == [f"{ARN}:task-definition/web:1"]
    assert api.ListTaskDefinitions(sort="DESC")["taskDefinitionArns"][0] == f"{ARN}:task-definition/webx:1"
    page = api.ListTaskDefinitions(maxResults=1)
    assert len(page["taskDefinitionArns"]) == 1 and page["nextToken"]
    assert api.err("ListTaskDefinitions", status="BOGUS")[0] == "InvalidParameterException"
    assert api.err("ListTaskDefinitions", sort="UP")[0] == "InvalidParameterException"
    assert api.ListTaskDefinitionFamilies()["families"] == ["api", "web", "webx"]
    assert api.ListTaskDefinitionFamilies(familyPrefix="we")["families"] == ["web", "webx"]
    api.DeregisterTaskDefinition(taskDefinition="api:1")
    assert api.ListTaskDefinitionFamilies(status="INACTIVE")["families"] == ["api"]
    assert api.ListTaskDefinitionFamilies(status="ALL")["families"] == ["api", "web", "webx"]


def test_deregister_and_delete_refusals(api: Api) -> None:
    register(api)
    code, msg = api.err("DeregisterTaskDefinition", taskDefinition="web")
    assert code == "InvalidParameterException" and "revision" in msg.lower()
    assert api.err("DeregisterTaskDefinition", taskDefinition="web:7")[0] == "ClientException"
    out = api.DeleteTaskDefinitions(taskDefinitions=["web:1", "nope:1", "web"])
    assert out["taskDefinitions"] == []
    reasons = [f["reason"] for f in out["failures"]]
    assert "still in ACTIVE status" in reasons[0] and len(reasons) == 3
    assert api.err("DeleteTaskDefinitions", taskDefinitions=[])[0] == "InvalidParameterException"
    # deregister twice: the second is a no-op answering the INACTIVE definition
    assert api.DeregisterTaskDefinition(taskDefinition="web:1")["taskDefinition"]["status"] == "INACTIVE"
    assert api.DeregisterTaskDefinition(taskDefinition="web:1")["taskDefinition"]["status"] == "INACTIVE"


def test_register_task_definition_refusals_name_the_field(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"family": "x", "containerDefinitions": []}, "container definition"),
        ({"family": "x", "containerDefinitions": [container("a"), container("a")]}, "a"),
        ({"family": "x", "containerDefinitions": [container("a", portMappings=[{"containerPort": 80,
                                                                               "hostPort": 8080}]),
                                                  container("b", portMappings=[{"containerPort": 81,
                                                                               "hostPort": 8080}])]}, "8080"),
        ({"family": "x", "containerDefinitions": [container(memory=4)]}, "memory"),
        ({"family": "x", "networkMode": "weird", "containerDefinitions": [container()]}, "networkMode"),
        ({"family": "x", "containerDefinitions": [
            container("a", dependsOn=[{"containerName": "b", "condition": "START"}]),
            container("b", dependsOn=[{"containerName": "a", "condition": "START"}])]}, "dependsOn"),
        ({"family": "bad family!", "containerDefinitions": [container()]}, "family"),
    ]
    for params, word in cases:
        code, msg = api.err("RegisterTaskDefinition", **params)
        assert code in ("ClientException", "InvalidParameterException"), (params, code)
        assert word.lower() in msg.lower(), (params, msg)
    assert api.ListTaskDefinitions()["taskDefinitionArns"] == []
    assert api.ListTaskDefinitionFamilies(status="ALL")["families"] == []


# --- RunTask / StartTask / StopTask / DescribeTasks / ListTasks -----------------------------------------


def test_run_task_without_instances(api: Api) -> None:
    api.CreateCluster()
    register(api)
    assert api.err("RunTask", taskDefinition="web") == (
        "InvalidParameterException", "No Container Instances were found in your cluster.")
    assert api.err("RunTask", cluster="nope", taskDefinition="web") == (
        "ClusterNotFoundException", "Cluster not found.")
    api.agent()
    assert api.err("RunTask", taskDefinition="nope") == ("ClientException", "TaskDefinition not found.")
    assert api.err("CreateService", serviceName="s", taskDefinition="nope:3") == (
        "ClientException", "TaskDefinition not found.")
    code, msg = api.err("RunTask", taskDefinition=f"{ARN}:task-definition/")
    assert code == "InvalidParameterException" and "taskDefinition" in msg


def test_run_task_count_overrides_and_shape(api: Api) -> None:
    inst = api.agent()
    register(api, "web", container("web"), container("side", essential=False))
    out = api.RunTask(taskDefinition="web", count=3, startedBy="me", group="g1", tags=[{"key": "a", "value": "b"}],
                      overrides={"containerOverrides": [{"name": "web", "command": ["echo", "hi"],
                                                         "environment": [{"name": "X", "value": "1"}]}]})
    assert out["failures"] == [] and len(out["tasks"]) == 3
    task = out["tasks"][0]
    assert task["lastStatus"] == "PROVISIONING" and task["desiredStatus"] == "RUNNING"
    assert task["containerInstanceArn"] == inst and task["launchType"] == "EC2"
    assert task["group"] == "g1" and task["startedBy"] == "me" and task["tags"] == [{"key": "a", "value": "b"}]
    assert task["overrides"]["containerOverrides"] == [
        {"name": "web", "command": ["echo", "hi"], "environment": [{"name": "X", "value": "1"}]}]
    assert [c["name"] for c in task["containers"]] == ["web", "side"]
    assert task["taskArn"].startswith(f"{ARN}:task/default/")
    assert api.err("RunTask", taskDefinition="web", count=11)[0] == "InvalidParameterException"
    assert api.err("RunTask", taskDefinition="web", count=0)[0] == "InvalidParameterException"
    code, msg = api.err("RunTask", taskDefinition="web", overrides={"containerOverrides": [{"name": "ghost"}]})
    assert code == "InvalidParameterException" and "ghost" in msg


def test_run_task_placement_failures(api: Api) -> None:
    api.agent(memory=1000)
    register(api, "big", container(memory=2000))
    out = api.RunTask(taskDefinition="big")
    assert out["tasks"] == [] and [f["reason"] for f in out["failures"]] == ["RESOURCE:MEMORY"]
    assert out["failures"][0]["arn"].startswith(f"{ARN}:container-instance/default/")
    register(api, "port", container(portMappings=[{"containerPort": 80, "hostPort": 8080}]))
    first = api.RunTask(taskDefinition="port")
    assert len(first["tasks"]) == 1
    second = api.RunTask(taskDefinition="port")
    assert second["tasks"] == [] and second["failures"][0]["reason"] == "RESOURCE:PORTS"
    # awsvpc: every task has its own namespace, so copies with the same port share the instance
    register(api, "vpc", container(portMappings=[{"containerPort": 8080, "hostPort": 8080}]), networkMode="awsvpc")
    vpc = api.RunTask(taskDefinition="vpc", count=2, networkConfiguration=NETWORK)
    assert len(vpc["tasks"]) == 2 and vpc["failures"] == []
    register(api, "half", container(memory=400))
    two = api.RunTask(taskDefinition="half", count=3)  # 64 + 2 * 400 fit in 1000, the third does not
    assert len(two["tasks"]) == 2 and [f["reason"] for f in two["failures"]] == ["RESOURCE:MEMORY"]


def test_client_registered_instance_gets_no_tasks(api: Api) -> None:
    api.CreateCluster(clusterName="c")
    doc = json.dumps({"instanceId": "i-0123456789abcdef0", "region": REGION})
    inst = api.RegisterContainerInstance(
        cluster="c", instanceIdentityDocument=doc, instanceIdentityDocumentSignature="sig",
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 2048}],
        versionInfo={"agentVersion": "1.80.0", "dockerVersion": "25.0"},
        attributes=[{"name": "custom", "value": "yes"}], tags=[{"key": "t", "value": "1"}])["containerInstance"]
    assert inst["agentConnected"] is False and inst["ec2InstanceId"] == "i-0123456789abcdef0"
    assert inst["status"] == "ACTIVE" and inst["versionInfo"]["agentVersion"] == "1.80.0"
    assert inst["registeredResources"][0] == {"name": "CPU", "type": "INTEGER", "integerValue": 1024,
                                              "doubleValue": 0.0, "longValue": 0}
    register(api)
    out = api.RunTask(cluster="c", taskDefinition="web")
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "AGENT"
    code, _ = api.err("RegisterContainerInstance", cluster="c", instanceIdentityDocument="{not json")
    assert code == "InvalidParameterException"


def test_client_token_idempotency(api: Api) -> None:
    api.agent()
    register(api)
    first = api.RunTask(taskDefinition="web", count=2, clientToken="tok-1")
    again = api.RunTask(taskDefinition="web", count=2, clientToken="tok-1")
    assert [t["taskArn"] for t in again["tasks"]] == [t["taskArn"] for t in first["tasks"]]
    assert len(api.ListTasks()["taskArns"]) == 2
    other = api.RunTask(taskDefinition="web", clientToken="tok-2")
    assert len(other["tasks"]) == 1 and len(api.ListTasks()["taskArns"]) == 3
    assert api.err("RunTask", taskDefinition="web", clientToken="x" * 65)[0] == "InvalidParameterException"


def test_client_token_retries_racing_each_other_launch_once(api: Api) -> None:
    import threading

    api.agent()
    register(api)
    results: list[set[str]] = []

    def call() -> None:
        out = api.RunTask(taskDefinition="web", count=2, clientToken="race")
        results.append({t["taskArn"] for t in out["tasks"]})

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == results[0] for r in results) and len(results[0]) == 2
    assert len(api.ListTasks()["taskArns"]) == 2


def test_launch_type_and_capacity_provider_resolution(api: Api) -> None:
    api.agent()
    register(api)
    register(api, "fg", container(), **FARGATE_TD)
    # EC2 when nothing is said
    assert api.RunTask(taskDefinition="web")["tasks"][0]["launchType"] == "EC2"
    # FARGATE launch type: awsvpc with a network configuration, on berth's own instance
    fg = api.RunTask(taskDefinition="fg", launchType="FARGATE", networkConfiguration=NETWORK)["tasks"][0]
    assert fg["launchType"] == "FARGATE" and fg["platformVersion"] and fg["cpu"] == "256"
    assert fg["attachments"][0]["type"] == "ElasticNetworkInterface"
    # a Fargate launch of a non-Fargate definition is refused
    code, msg = api.err("RunTask", taskDefinition="web", launchType="FARGATE")
    assert code == "ClientException" and "awsvpc" in msg
    # both a launch type and a strategy
    assert api.err("RunTask", taskDefinition="fg", launchType="FARGATE", networkConfiguration=NETWORK,
                   capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])[0] == \
        "InvalidParameterException"
    # a strategy naming a provider the cluster does not have
    code, msg = api.err("RunTask", taskDefinition="fg", networkConfiguration=NETWORK,
                        capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    assert code == "InvalidParameterException" and "FARGATE" in msg
    api.PutClusterCapacityProviders(cluster="default", capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                    defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT",
                                                                      "weight": 1}])
    spot = api.RunTask(taskDefinition="fg", networkConfiguration=NETWORK)["tasks"][0]  # the cluster default
    assert spot["launchType"] == "FARGATE" and spot["capacityProviderName"] == "FARGATE_SPOT"
    explicit = api.RunTask(taskDefinition="fg", networkConfiguration=NETWORK,
                           capacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 0}])
    assert explicit["tasks"][0]["capacityProviderName"] == "FARGATE"
    # an explicit launch type wins over the cluster default
    assert api.RunTask(taskDefinition="web", launchType="EC2")["tasks"][0]["launchType"] == "EC2"
    assert api.err("RunTask", taskDefinition="web", launchType="MOON")[0] == "InvalidParameterException"


def test_awsvpc_needs_a_network_configuration(api: Api) -> None:
    api.agent()
    register(api, "vpc", container(), networkMode="awsvpc")
    register(api)
    assert api.err("RunTask", taskDefinition="vpc") == (
        "InvalidParameterException",
        "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    assert api.err("RunTask", taskDefinition="web", networkConfiguration=NETWORK)[0] == "InvalidParameterException"
    assert api.err("RunTask", taskDefinition="vpc", networkConfiguration={"awsvpcConfiguration": {"subnets": []}})[
        0] == "InvalidParameterException"
    task = api.RunTask(taskDefinition="vpc", networkConfiguration=NETWORK)["tasks"][0]
    assert task["attachments"][0]["status"] == "PRECREATED"
    assert api.ListTasks()["taskArns"] == [task["taskArn"]]


def test_start_task(api: Api) -> None:
    inst = api.agent()
    register(api)
    out = api.StartTask(taskDefinition="web", containerInstances=[inst.rsplit("/", 1)[-1]], startedBy="x")
    assert len(out["tasks"]) == 1 and out["tasks"][0]["containerInstanceArn"] == inst
    out = api.StartTask(taskDefinition="web", containerInstances=[f"{ARN}:container-instance/default/ffff"])
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "MISSING"
    assert api.err("StartTask", taskDefinition="web", containerInstances=[])[0] == "InvalidParameterException"
    assert api.err("StartTask", taskDefinition="web")[0] == "InvalidParameterException"


def test_stop_and_describe_tasks(api: Api) -> None:
    api.agent()
    register(api)
    arn = api.RunTask(taskDefinition="web")["tasks"][0]["taskArn"]
    stopped = api.StopTask(task=arn, reason="enough")["task"]
    assert stopped["desiredStatus"] == "STOPPED" and stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "enough"
    again = api.StopTask(task=arn.rsplit("/", 1)[-1], reason="other")["task"]
    assert again["stoppedReason"] == "enough"  # the first reason stays
    code, msg = api.err("StopTask", task=f"{ARN}:task/default/0123")
    assert code == "InvalidParameterException" and "task" in msg.lower()
    out = api.DescribeTasks(tasks=[arn, "0000", f"{ARN}:task/default/ffff"], include=["TAGS"])
    assert [t["taskArn"] for t in out["tasks"]] == [arn]
    assert out["failures"] == [{"arn": f"{ARN}:task/default/0000", "reason": "MISSING"},
                               {"arn": f"{ARN}:task/default/ffff", "reason": "MISSING"}]
    assert api.err("DescribeTasks", tasks=[])[0] == "InvalidParameterException"
    assert api.err("DescribeTasks", tasks=[f"{ARN}:task/other/abc"])[0] == "InvalidParameterException"
    assert api.err("DescribeTasks", cluster="nope", tasks=[arn])[0] == "ClusterNotFoundException"
    assert api.err("DescribeTasks", tasks=["arn:aws:ecs:bad"])[0] == "InvalidParameterException"


def test_list_tasks_filters_and_paging(api: Api) -> None:
    a = api.agent(agent_id="a")
    b = api.agent(agent_id="b", zone="local-1b")
    register(api, "web")
    register(api, "api", **{})
    register(api, "fg", container(), **FARGATE_TD)
    web = [t["taskArn"] for t in api.StartTask(taskDefinition="web", containerInstances=[a, b])["tasks"]]
    other = api.RunTask(taskDefinition="api", startedBy="ci")["tasks"][0]["taskArn"]
    fg = api.RunTask(taskDefinition="fg", launchType="FARGATE", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    api.CreateService(serviceName="svc", taskDefinition="web", desiredCount=1)
    assert sorted(api.ListTasks()["taskArns"]) == sorted([*web, other, fg])
    assert sorted(api.ListTasks(family="web")["taskArns"]) == sorted(web)
    assert api.ListTasks(startedBy="ci")["taskArns"] == [other]
    assert api.ListTasks(launchType="FARGATE")["taskArns"] == [fg]
    on_b = api.ListTasks(containerInstance=b.rsplit("/", 1)[-1])["taskArns"]
    assert set(on_b) <= set(api.ListTasks()["taskArns"]) and web[1] in on_b and web[0] not in on_b
    assert api.ListTasks(serviceName="svc")["taskArns"] == []
    assert api.err("ListTasks", serviceName="nope")[0] == "ServiceNotFoundException"
    api.StopTask(task=other)
    assert api.ListTasks(desiredStatus="STOPPED")["taskArns"] == [other]
    assert other not in api.ListTasks()["taskArns"]
    assert api.err("ListTasks", desiredStatus="DEAD")[0] == "InvalidParameterException"
    assert api.err("ListTasks", launchType="MOON")[0] == "InvalidParameterException"
    seen, token, pages = [], None, 0
    while True:
        out = api.ListTasks(maxResults=1, **({"nextToken": token} if token else {}))
        seen += out["taskArns"]
        pages += 1
        token = out.get("nextToken")
        if not token:
            break
    assert sorted(seen) == sorted([*web, fg]) and pages == 3
    assert api.err("ListTasks", maxResults=101)[0] == "InvalidParameterException"


# --- services --------------------------------------------------------------------------------------------


def test_service_crud_and_validation(api: Api) -> None:
    api.agent()
    register(api)
    register(api)
    svc = api.CreateService(serviceName="s", taskDefinition="web:1", desiredCount=2,
                            tags=[{"key": "k", "value": "v"}])["service"]
    assert svc["status"] == "ACTIVE" and svc["desiredCount"] == 2 and svc["serviceArn"] == f"{ARN}:service/default/s"
    assert svc["deployments"][0]["status"] == "PRIMARY" and svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert svc["deploymentConfiguration"]["maximumPercent"] == 200
    assert api.err("CreateService", serviceName="s", taskDefinition="web") == (
        "InvalidParameterException", "Creation of service was not idempotent.")
    assert api.err("CreateService", serviceName="t", taskDefinition="web", desiredCount=-1)[0] == \
        "InvalidParameterException"
    assert "desiredCount" in api.err("CreateService", serviceName="t", taskDefinition="web", desiredCount=-1)[1]
    assert api.err("CreateService", serviceName="t")[0] == "InvalidParameterException"
    assert api.err("CreateService", serviceName="bad name", taskDefinition="web")[0] == "InvalidParameterException"
    assert api.err("CreateService", serviceName="t", taskDefinition="nope")[0] == "ClientException"
    assert api.err("CreateService", serviceName="t", taskDefinition="web", schedulingStrategy="DAEMON",
                   desiredCount=1)[0] == "InvalidParameterException"
    assert api.err("CreateService", serviceName="t", taskDefinition="web",
                   deploymentConfiguration={"maximumPercent": 50})[0] == "InvalidParameterException"
    assert api.err("CreateService", cluster="nope", serviceName="t", taskDefinition="web")[0] == \
        "ClusterNotFoundException"
    out = api.DescribeServices(services=["s", "ghost"], include=["TAGS"])
    assert [s["serviceName"] for s in out["services"]] == ["s"] and out["services"][0]["tags"] == [
        {"key": "k", "value": "v"}]
    assert out["failures"] == [{"arn": f"{ARN}:service/default/ghost", "reason": "MISSING"}]
    assert api.err("DescribeServices", services=[])[0] == "InvalidParameterException"
    assert api.ListServices()["serviceArns"] == [svc["serviceArn"]]
    updated = api.UpdateService(service="s", taskDefinition="web:2", desiredCount=3)["service"]
    assert updated["desiredCount"] == 3 and updated["taskDefinition"].endswith("web:2")
    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert api.err("UpdateService", service="s", desiredCount=-1)[0] == "InvalidParameterException"
    assert api.err("UpdateService", service="ghost", desiredCount=1)[0] == "ServiceNotFoundException"
    code, msg = api.err("DeleteService", service="s")
    assert code == "InvalidParameterException" and "scaled" in msg
    deleted = api.DeleteService(service="s", force=True)["service"]
    assert deleted["status"] == "DRAINING"
    assert api.ListServices()["serviceArns"] == []
    assert api.err("UpdateService", service="s", desiredCount=1)[0] == "ServiceNotActiveException"
    assert api.err("DeleteService", service="ghost")[0] == "ServiceNotFoundException"
    assert api.err("DeleteService", service=f"{ARN}:service/other/s")[0] == "InvalidParameterException"


def test_service_awsvpc_and_fargate_rules(api: Api) -> None:
    api.agent()
    register(api, "fg", container(), **FARGATE_TD)
    assert api.err("CreateService", serviceName="s", taskDefinition="fg")[0] == "InvalidParameterException"
    svc = api.CreateService(serviceName="s", taskDefinition="fg", launchType="FARGATE", desiredCount=1,
                            networkConfiguration=NETWORK)["service"]
    assert svc["launchType"] == "FARGATE"
    assert svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-1"]
    assert api.err("CreateService", serviceName="t", taskDefinition="fg", launchType="FARGATE",
                   networkConfiguration=NETWORK, placementStrategy=[{"type": "spread", "field": "instanceId"}])[
        0] == "InvalidParameterException"


# --- container instances ------------------------------------------------------------------------------


def test_container_instances(api: Api) -> None:
    a = api.agent(agent_id="a")
    b = api.agent(agent_id="b", zone="local-1b")
    assert api.agent(agent_id="a") == a  # re-registration keeps the instance
    out = api.DescribeContainerInstances(containerInstances=[a, "nope"])
    inst = out["containerInstances"][0]
    assert inst["agentConnected"] is True and inst["status"] == "ACTIVE"
    assert inst["registeredResources"][1]["integerValue"] == 4096
    assert out["failures"] == [{"arn": f"{ARN}:container-instance/default/nope", "reason": "MISSING"}]
    assert sorted(api.ListContainerInstances()["containerInstanceArns"]) == sorted([a, b])
    assert api.ListContainerInstances(filter="attribute:ecs.availability-zone == local-1b")[
        "containerInstanceArns"] == [b]
    assert api.ListContainerInstances(filter="attribute:ecs.availability-zone in [local-1a, local-1b]")[
        "containerInstanceArns"] != []
    code, msg = api.err("ListContainerInstances", filter="attribute:ecs.os-type ==")
    assert code == "InvalidParameterException"
    drained = api.UpdateContainerInstancesState(containerInstances=[b, "ghost"], status="DRAINING")
    assert drained["containerInstances"][0]["status"] == "DRAINING"
    assert drained["failures"][0]["reason"] == "MISSING"
    assert api.ListContainerInstances(status="DRAINING")["containerInstanceArns"] == [b]
    assert api.ListContainerInstances(status="ACTIVE")["containerInstanceArns"] == [a]
    assert api.err("UpdateContainerInstancesState", containerInstances=[b], status="INACTIVE")[0] == \
        "InvalidParameterException"
    register(api)
    tasks = api.RunTask(taskDefinition="web", count=4)["tasks"]
    assert {t["containerInstanceArn"] for t in tasks} == {a}  # nothing goes to the DRAINING instance
    api.UpdateContainerInstancesState(containerInstances=[b], status="ACTIVE")
    code, msg = api.err("DeregisterContainerInstance", containerInstance=a)
    assert code == "InvalidParameterException" and "tasks" in msg.lower()
    gone = api.DeregisterContainerInstance(containerInstance=a, force=True)["containerInstance"]
    assert gone["status"] == "INACTIVE"
    assert all(t["desiredStatus"] == "STOPPED" for t in api.DescribeTasks(tasks=[t["taskArn"] for t in tasks])[
        "tasks"])
    assert api.ListContainerInstances()["containerInstanceArns"] == [b]
    assert api.DeregisterContainerInstance(containerInstance=b)["containerInstance"]["status"] == "INACTIVE"
    assert api.err("DeregisterContainerInstance", containerInstance=b)[0] == "InvalidParameterException"
    assert api.err("DescribeContainerInstances", containerInstances=[])[0] == "InvalidParameterException"
    assert api.err("DescribeContainerInstances", cluster="nope", containerInstances=[a])[0] == \
        "ClusterNotFoundException"


# --- attributes -----------------------------------------------------------------------------------------


def test_attributes(api: Api) -> None:
    a = api.agent()
    out = api.PutAttributes(attributes=[{"name": "stack", "value": "prod", "targetId": a}])
    assert out["attributes"] == [{"name": "stack", "value": "prod", "targetType": "container-instance",
                                  "targetId": a}]
    listed = api.ListAttributes(targetType="container-instance", attributeName="stack")["attributes"]
    assert listed == out["attributes"]
    assert api.ListAttributes(targetType="container-instance", attributeName="stack", attributeValue="dev")[
        "attributes"] == []
    all_attrs = api.ListAttributes(targetType="container-instance")["attributes"]
    assert {x["name"] for x in all_attrs} >= {"stack", "ecs.os-type"}
    # memberOf sees the custom attribute
    register(api)
    placed = api.RunTask(taskDefinition="web", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:stack == prod"}])
    assert len(placed["tasks"]) == 1
    refused = api.RunTask(taskDefinition="web", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:stack == dev"}])
    assert refused["tasks"] == [] and refused["failures"][0]["reason"] == "ATTRIBUTE"
    deleted = api.DeleteAttributes(attributes=[{"name": "stack", "targetId": a}])
    assert deleted["attributes"][0]["name"] == "stack"
    assert api.ListAttributes(targetType="container-instance", attributeName="stack")["attributes"] == []
    assert api.err("PutAttributes", attributes=[{"name": "x", "targetId": "ghost"}])[0] == "TargetNotFoundException"
    assert api.err("PutAttributes", attributes=[])[0] == "InvalidParameterException"
    assert api.err("PutAttributes", attributes=[{"name": "bad name!", "targetId": a}])[0] == \
        "InvalidParameterException"
    assert api.err("ListAttributes", targetType="task")[0] == "InvalidParameterException"
    assert api.err("ListAttributes")[0] == "InvalidParameterException"


# --- account settings ------------------------------------------------------------------------------------


def test_account_settings(api: Api) -> None:
    assert api.ListAccountSettings()["settings"] == []
    effective = api.ListAccountSettings(effectiveSettings=True, name="containerInsights")["settings"]
    assert effective == [{"name": "containerInsights", "value": "disabled",
                          "principalArn": f"arn:aws:iam::{ACCOUNT}:root", "type": "user"}]
    put = api.PutAccountSetting(name="containerInsights", value="enabled")["setting"]
    assert put["value"] == "enabled" and put["principalArn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert [s["value"] for s in api.ListAccountSettings(name="containerInsights")["settings"]] == ["enabled"]
    api.PutAccountSettingDefault(name="awsvpcTrunking", value="enabled")
    trunk = api.ListAccountSettings(effectiveSettings=True, name="awsvpcTrunking")["settings"]
    assert trunk[0]["value"] == "enabled"
    deleted = api.DeleteAccountSetting(name="containerInsights")["setting"]
    assert deleted["name"] == "containerInsights"
    assert api.ListAccountSettings(name="containerInsights")["settings"] == []
    everything = api.ListAccountSettings(effectiveSettings=True, maxResults=10)
    assert len(everything["settings"]) == 10 and everything["nextToken"]
    assert api.err("PutAccountSetting", name="nope", value="enabled")[0] == "InvalidParameterException"
    assert api.err("PutAccountSetting", name="containerInsights")[0] == "InvalidParameterException"
    code, msg = api.err("PutAccountSetting", name="containerInsights", value="maybe")
    assert code == "InvalidParameterException" and "containerInsights" in msg and "maybe" in msg
    assert api.err("DeleteAccountSetting", name="nope")[0] == "InvalidParameterException"


# --- tags ------------------------------------------------------------------------------------------------


def test_tags_on_every_taggable_resource(api: Api) -> None:
    inst = api.agent()
    cluster = api.DescribeClusters(clusters=["default"])["clusters"][0]["clusterArn"]
    taskdef = register(api)["taskDefinitionArn"]
    task = api.RunTask(taskDefinition="web")["tasks"][0]["taskArn"]
    service = api.CreateService(serviceName="s", taskDefinition="web", desiredCount=0)["service"]["serviceArn"]
    for arn in (cluster, taskdef, task, service, inst):
        api.TagResource(resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
        api.TagResource(resourceArn=arn, tags=[{"key": "a", "value": "3"}])
        assert api.ListTagsForResource(resourceArn=arn)["tags"] == [{"key": "a", "value": "3"},
                                                                   {"key": "b", "value": "2"}], arn
        api.UntagResource(resourceArn=arn, tagKeys=["a"])
        assert api.ListTagsForResource(resourceArn=arn)["tags"] == [{"key": "b", "value": "2"}], arn
    assert api.DescribeTaskDefinition(taskDefinition="web", include=["TAGS"])["tags"] == [{"key": "b", "value": "2"}]
    for arn in (f"{ARN}:cluster/ghost", f"{ARN}:task/default/ffff", f"{ARN}:service/default/ghost",
                f"{ARN}:task-definition/ghost:1", f"{ARN}:container-instance/default/ffff"):
        assert api.err("ListTagsForResource", resourceArn=arn)[0] == "ResourceNotFoundException", arn
        assert api.err("TagResource", resourceArn=arn, tags=[{"key": "a"}])[0] == "ResourceNotFoundException"
    for arn in ("not-an-arn", "arn:aws:ecs:us-east-1", "arn:aws:s3:::bucket", f"{ARN}:capacity-provider/x",
                f"{ARN}:cluster/"):
        assert api.err("ListTagsForResource", resourceArn=arn)[0] == "InvalidParameterException", arn
    assert api.err("TagResource", resourceArn=cluster, tags=[])[0] == "InvalidParameterException"
    assert api.err("TagResource", resourceArn=cluster, tags=[{"key": "aws:x", "value": "1"}])[0] == \
        "InvalidParameterException"
    assert api.err("TagResource", resourceArn=cluster, tags=[{"key": f"k{i}"} for i in range(51)])[0] == \
        "InvalidParameterException"
    assert api.err("UntagResource", resourceArn=cluster, tagKeys=[])[0] == "InvalidParameterException"
    assert api.err("TagResource", tags=[{"key": "a"}])[0] == "InvalidParameterException"


# --- ExecuteCommand --------------------------------------------------------------------------------------


def test_execute_command_is_refused_clearly(api: Api) -> None:
    api.agent()
    register(api)
    task = api.RunTask(taskDefinition="web")["tasks"][0]["taskArn"]
    code, msg = api.err("ExecuteCommand", task=task, command="sh", interactive=True)
    assert code == "TargetNotConnectedException" and "ECS Exec" in msg
    assert api.err("ExecuteCommand", task=f"{ARN}:task/default/ffff", command="sh", interactive=True)[0] == \
        "InvalidParameterException"
    assert api.err("ExecuteCommand", cluster="nope", task=task, command="sh", interactive=True)[0] == \
        "ClusterNotFoundException"


# --- wrong JSON types never reach an operation ----------------------------------------------------------------


@pytest.mark.parametrize("op", sorted(ecs_service(EcsService(berth.ecs.Context(berth.ecs.Repo(
    berth.state.MemoryStore())))).operations))
def test_wrong_types_are_client_errors(api: Api, op: str) -> None:
    for params in ({"cluster": 5}, {"cluster": ["x"]}, {"taskDefinition": 1}, {"tags": "x"},
                   {"maxResults": "5"}, {"include": "TAGS"}, {"services": "s"}, {"tasks": {}},
                   {"containerInstances": 1}, {"attributes": "x"}, {"overrides": []}, {"name": 1},
                   {"resourceArn": True}, {"settings": {}}, {"force": "yes"}, {"count": 1.5}):
        code, msg = api.err(op, **params)
        assert code in ("SerializationException", "InvalidParameterException", "ClientException",
                        "ClusterNotFoundException", "ServiceNotFoundException"), (op, params, code, msg)


def test_request_stop_returns_the_task_as_it_was_told_to_stop(api: Api) -> None:
    """A controller pass runs on its own thread while the agents go on: the agent may move a task
    past RUNNING between the stop being written and read back. The caller (the service event
    "has stopped N running tasks") gets what was written."""
    api.agent()
    register(api, "web")
    arn = api.RunTask(taskDefinition="web")["tasks"][0]["taskArn"]
    repo = api.ctx.repo
    repo.update(m.Task, arn, lambda t: replace(t, last_status="RUNNING", version=t.version + 1))
    real_put = repo.store.put

    def put_then_agent_moves_on(kind: str, key: str, value: dict[str, Any], **kw: Any) -> Any:
        out = real_put(kind, key, value, **kw)
        if key == arn and value["desired_status"] == "STOPPED" and value["last_status"] == "RUNNING":
            real_put(kind, key, {**value, "last_status": "DEACTIVATING"})  # the agent, on the loop
        return out

    repo.store.put = put_then_agent_moves_on  # type: ignore[method-assign]
    told = api.ecs.tasks.request_stop(arn, "ServiceSchedulerInitiated", "scaled in")
    assert told is not None and told.last_status == "RUNNING" and told.desired_status == "STOPPED"
    assert (repo.get(m.Task, arn) or told).last_status == "DEACTIVATING"
