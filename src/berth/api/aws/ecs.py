"""ECS operations on the JSON 1.1 endpoint: EcsService → AWS output shapes (aws-apis.md §2).

Handlers are thin: the service validates and returns records; this module shapes them as ECS
writes them (epoch-second timestamps, `failures[]`, `nextToken` paging).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from berth.api.aws._errors import AwsError
from berth.api.aws._paging import page, with_token
from berth.api.aws._server import AwsContext, JsonService, Operation
from berth.api.shapes import BOOL, FLOAT64, INT, STRING, ListOf, Shape, Struct
from berth.ecs import AccountSetting, EcsService, Failure, LaunchFailure, Scope, taskdef_to_wire
from berth.ecs import model as m
from berth.ecs import compatibilities, requires_attributes

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
Params = dict[str, Any]
R = TypeVar("R")

# The JSON type of every input member the handlers read (botocore's ECS model; one name has one
# type across operations): a wrong type is the caller's SerializationException at the edge. The
# task definition's own members (containerDefinitions, volumes, ...) are checked by its parser,
# which answers ClientException naming the member path.
_STRINGS = ListOf(STRING)
_TAG = Struct("Tag", {"key": STRING, "value": STRING})
_ATTRIBUTE = Struct("Attribute", {"name": STRING, "value": STRING, "targetType": STRING, "targetId": STRING})
_STRATEGY_ITEM = Struct("CapacityProviderStrategyItem", {"capacityProvider": STRING, "weight": INT, "base": INT})
_KEY_VALUE = Struct("KeyValuePair", {"name": STRING, "value": STRING})
_CONTAINER_OVERRIDE = Struct("ContainerOverride", {
    "name": STRING, "command": _STRINGS, "environment": ListOf(_KEY_VALUE), "cpu": INT, "memory": INT,
    "memoryReservation": INT})
_PLACEMENT_CONSTRAINT = Struct("PlacementConstraint", {"type": STRING, "expression": STRING})
PARAMS: dict[str, Shape] = {
    "attributeName": STRING, "attributeValue": STRING, "attributes": ListOf(_ATTRIBUTE),
    "capacityProviderStrategy": ListOf(_STRATEGY_ITEM), "capacityProviders": _STRINGS, "clientToken": STRING,
    "cluster": STRING, "clusterName": STRING, "clusters": _STRINGS, "command": STRING,
    "configuration": Struct("ClusterConfiguration", {}), "container": STRING, "containerInstance": STRING,
    "containerInstanceArn": STRING, "containerInstances": _STRINGS, "count": INT,
    "defaultCapacityProviderStrategy": ListOf(_STRATEGY_ITEM),
    "deploymentConfiguration": Struct("DeploymentConfiguration", {
        "deploymentCircuitBreaker": Struct("DeploymentCircuitBreaker", {"enable": BOOL, "rollback": BOOL}),
        "maximumPercent": INT, "minimumHealthyPercent": INT}),
    "deploymentController": Struct("DeploymentController", {"type": STRING}),
    "desiredCount": INT, "desiredStatus": STRING, "effectiveSettings": BOOL, "enableECSManagedTags": BOOL,
    "enableExecuteCommand": BOOL, "family": STRING, "familyPrefix": STRING, "filter": STRING, "force": BOOL,
    "forceNewDeployment": BOOL, "group": STRING, "healthCheckGracePeriodSeconds": INT, "include": _STRINGS,
    "instanceIdentityDocument": STRING, "instanceIdentityDocumentSignature": STRING, "interactive": BOOL,
    "launchType": STRING, "loadBalancers": ListOf(Struct("LoadBalancer", {
        "targetGroupArn": STRING, "loadBalancerName": STRING, "containerName": STRING, "containerPort": INT})),
    "maxResults": INT, "name": STRING, "nextToken": STRING,
    "networkConfiguration": Struct("NetworkConfiguration", {"awsvpcConfiguration": Struct(
        "AwsVpcConfiguration", {"subnets": _STRINGS, "securityGroups": _STRINGS, "assignPublicIp": STRING})}),
    "overrides": Struct("TaskOverride", {
        "containerOverrides": ListOf(_CONTAINER_OVERRIDE), "cpu": STRING, "memory": STRING,
        "executionRoleArn": STRING, "taskRoleArn": STRING}),
    "placementConstraints": ListOf(_PLACEMENT_CONSTRAINT),
    "placementStrategy": ListOf(Struct("PlacementStrategy", {"type": STRING, "field": STRING})),
    "platformVersion": STRING, "principalArn": STRING, "propagateTags": STRING, "reason": STRING,
    "referenceId": STRING, "resourceArn": STRING, "role": STRING, "schedulingStrategy": STRING, "service": STRING,
    "serviceName": STRING, "services": _STRINGS,
    "settings": ListOf(Struct("ClusterSetting", {"name": STRING, "value": STRING})), "sort": STRING,
    "startedBy": STRING, "status": STRING, "tagKeys": _STRINGS, "tags": ListOf(_TAG), "targetType": STRING,
    "task": STRING, "taskDefinition": STRING, "taskDefinitions": _STRINGS, "tasks": _STRINGS,
    "totalResources": ListOf(Struct("Resource", {
        "name": STRING, "type": STRING, "doubleValue": FLOAT64, "longValue": INT, "integerValue": INT,
        "stringSetValue": _STRINGS})),
    "value": STRING,
    "versionInfo": Struct("VersionInfo", {"agentVersion": STRING, "agentHash": STRING, "dockerVersion": STRING}),
}


def _scope(ctx: AwsContext) -> Scope:
    return Scope(ctx.region, ctx.account)


def _tags(tags: tuple[m.Tag, ...]) -> list[dict[str, str]]:
    return [{"key": t.key, "value": t.value} for t in tags]


def _failures(failures: list[Failure] | list[LaunchFailure]) -> list[dict[str, str]]:
    out = []
    for f in failures:
        item = {"arn": f.arn, "reason": f.reason}
        if f.detail:
            item["detail"] = f.detail
        out.append(item)
    return out


def _found(key: str, result: tuple[list[R], list[Failure] | list[LaunchFailure]],
           shape: Callable[[R], dict[str, Any]]) -> dict[str, Any]:
    """The answer of a describe (or a launch): `key` the records found, shaped, and `failures`."""
    found, failures = result
    return {key: [shape(r) for r in found], "failures": _failures(failures)}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != ""}


def _includes(p: Params, what: str) -> bool:
    value = p.get("include") or []
    return isinstance(value, list) and what in value


def _paged(p: Params, key: str, items: list[str]) -> dict[str, Any]:
    chunk, token = page(items, p, default=100, limit=100)
    return with_token({key: chunk}, token)


class EcsHandlers:
    def __init__(self, ecs: EcsService) -> None:
        self.ecs = ecs

    # --- shapes -----------------------------------------------------------------------------

    def cluster(self, c: m.Cluster, p: Params | None = None) -> dict[str, Any]:
        """`p` the DescribeClusters input (tags only with include TAGS); None: every member (the
        answers of CreateCluster, UpdateCluster, ...)."""
        out: dict[str, Any] = {
            "clusterArn": c.arn, "clusterName": c.name, "status": c.status,
            "statistics": [], "tags": _tags(c.tags) if p is None or _includes(p, "TAGS") else [],
            "settings": [{"name": n, "value": v} for n, v in c.settings],
            "capacityProviders": list(c.capacity_providers),
            "defaultCapacityProviderStrategy": [
                {"capacityProvider": i.capacity_provider, "weight": i.weight, "base": i.base}
                for i in c.default_strategy],
        }
        counts = self.ecs.cluster_counts(c) if c.status == "ACTIVE" else {
            "registeredContainerInstancesCount": 0, "runningTasksCount": 0, "pendingTasksCount": 0,
            "activeServicesCount": 0}
        out.update(counts)
        if c.configuration:
            out["configuration"] = c.configuration
        return out

    def taskdef(self, t: m.TaskDefinition) -> dict[str, Any]:
        spec = self.ecs.repo.spec(t)
        wire = taskdef_to_wire(spec, arn=t.arn, revision=t.revision, status=t.status, registered_at=t.registered_at,
                               deregistered_at=t.deregistered_at, registered_by=t.registered_by or None)
        wire.setdefault("compatibilities", list(compatibilities(spec)))
        wire.setdefault("requiresAttributes", [{"name": n} for n in requires_attributes(spec)])
        return wire

    def instance(self, i: m.ContainerInstance) -> dict[str, Any]:
        cluster = self.ecs.repo.get(m.Cluster, i.cluster_arn)
        ports: set[int] = set()
        used_cpu, used_mem, running, pending = 0, 0, 0, 0
        if cluster is not None:
            used_cpu, used_mem, ports, running, pending = self.ecs.instance_usage(cluster, i)
        reserved = sorted(set(i.reserved_ports))

        def resources(cpu: int, mem: int, tcp: list[int]) -> list[dict[str, Any]]:
            return [
                {"name": "CPU", "type": "INTEGER", "integerValue": cpu, "doubleValue": 0.0, "longValue": 0},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": mem, "doubleValue": 0.0, "longValue": 0},
                {"name": "PORTS", "type": "STRINGSET", "stringSetValue": [str(x) for x in tcp],
                 "integerValue": 0, "doubleValue": 0.0, "longValue": 0},
                {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": [], "integerValue": 0,
                 "doubleValue": 0.0, "longValue": 0},
            ]

        return {
            "containerInstanceArn": i.arn, "ec2InstanceId": i.ec2_instance_id, "version": i.version,
            "versionInfo": _drop_none({"agentVersion": i.agent_version, "agentHash": i.agent_hash,
                                       "dockerVersion": i.docker_version}),
            "remainingResources": resources(i.cpu - used_cpu, i.memory - used_mem, sorted(set(reserved) | ports)),
            "registeredResources": resources(i.cpu, i.memory, reserved),
            "status": i.status, "agentConnected": i.agent_connected, "runningTasksCount": running,
            "pendingTasksCount": pending, "attributes": [_drop_none({"name": a.name, "value": a.value})
                                                          for a in i.attributes],
            "registeredAt": i.registered_at, "attachments": [], "tags": _tags(i.tags),
            "capacityProviderName": i.capacity_provider or None,
        }

    def task(self, t: m.Task, with_tags: bool) -> dict[str, Any]:
        containers = []
        for c in t.containers:
            item: dict[str, Any] = {
                "containerArn": c.arn, "taskArn": t.arn, "name": c.name, "image": c.image,
                "lastStatus": c.last_status, "networkBindings": [
                    {"bindIP": b.bind_ip, "containerPort": b.container_port, "hostPort": b.host_port,
                     "protocol": b.protocol} for b in c.network_bindings],
                "networkInterfaces": [{"attachmentId": t.eni_id, "privateIpv4Address": t.private_ip}]
                if t.private_ip else [],
                "healthStatus": c.health_status, "cpu": str(c.cpu),
            }
            if c.runtime_id:
                item["runtimeId"] = c.runtime_id
            if c.image_digest:
                item["imageDigest"] = c.image_digest
            if c.exit_code is not None:
                item["exitCode"] = c.exit_code
            if c.reason:
                item["reason"] = c.reason
            if c.memory:
                item["memory"] = str(c.memory)
            if c.memory_reservation:
                item["memoryReservation"] = str(c.memory_reservation)
            containers.append(item)
        overrides: dict[str, Any] = {"containerOverrides": [_drop_none({
            "name": o.name, "command": list(o.command) if o.command is not None else None,
            "environment": [{"name": k, "value": v} for k, v in o.environment] or None,
            "cpu": o.cpu, "memory": o.memory, "memoryReservation": o.memory_reservation}) for o in t.overrides],
            "inferenceAcceleratorOverrides": []}
        out: dict[str, Any] = {
            "taskArn": t.arn, "clusterArn": t.cluster_arn, "taskDefinitionArn": t.task_definition_arn,
            "containerInstanceArn": t.container_instance_arn or None, "overrides": overrides,
            "lastStatus": t.last_status, "desiredStatus": t.desired_status, "healthStatus": t.health_status,
            "containers": containers, "startedBy": t.started_by or None, "version": t.version,
            "stoppedReason": t.stopped_reason or None, "stopCode": t.stop_code or None,
            "connectivity": "CONNECTED" if t.connectivity_at else None, "connectivityAt": t.connectivity_at,
            "pullStartedAt": t.pull_started_at, "pullStoppedAt": t.pull_stopped_at,
            "executionStoppedAt": t.execution_stopped_at, "createdAt": t.created_at, "startedAt": t.started_at,
            "stoppingAt": t.stopping_at, "stoppedAt": t.stopped_at, "group": t.group,
            "launchType": t.launch_type if not t.capacity_provider else t.launch_type,
            "capacityProviderName": t.capacity_provider or None, "cpu": t.cpu or None, "memory": t.memory or None,
            "platformVersion": t.platform_version or None,
            "platformFamily": "Linux" if t.launch_type == "FARGATE" else None,
            "availabilityZone": t.availability_zone or None,
            "enableExecuteCommand": t.enable_execute_command, "attachments": [], "attributes": [],
            "tags": _tags(t.tags) if with_tags else [],
        }
        if t.network_mode == "awsvpc":
            details = [{"name": "networkInterfaceId", "value": t.eni_id},
                       {"name": "privateIPv4Address", "value": t.private_ip},
                       {"name": "subnetId", "value": t.subnet_id or "subnet-berth"}]
            out["attachments"] = [{"id": t.eni_id, "type": "ElasticNetworkInterface",
                                   "status": "ATTACHED" if t.private_ip and t.last_status != "STOPPED" else (
                                       "DELETED" if t.last_status == "STOPPED" else "PRECREATED"),
                                   "details": [d for d in details if d["value"]]}]
        return _drop_none(out) | {"overrides": overrides, "containers": containers, "attachments": out["attachments"],
                                  "tags": out["tags"], "attributes": [],
                                  "enableExecuteCommand": t.enable_execute_command, "version": t.version}

    def service(self, s: m.Service, with_tags: bool) -> dict[str, Any]:
        counts = self.ecs.services.counts(s)
        deployments = []
        for d in s.deployments:
            c = counts.get(d.id, {"running": 0, "pending": 0})
            item: dict[str, Any] = {
                "id": d.id, "status": d.status, "taskDefinition": d.task_definition,
                "desiredCount": d.desired_count if d.status == "PRIMARY" else 0,
                "pendingCount": c["pending"], "runningCount": c["running"], "failedTasks": d.failed_tasks,
                "createdAt": d.created_at, "updatedAt": d.updated_at, "rolloutState": d.rollout_state,
            }
            if d.rollout_state_reason:
                item["rolloutStateReason"] = d.rollout_state_reason
            if d.launch_type:
                item["launchType"] = d.launch_type
            if d.capacity_provider_strategy:
                item["capacityProviderStrategy"] = [
                    {"capacityProvider": i.capacity_provider, "weight": i.weight, "base": i.base}
                    for i in d.capacity_provider_strategy]
            if d.network is not None:
                item["networkConfiguration"] = _network(d.network)
            deployments.append(item)
        cfg = s.deployment_configuration
        out: dict[str, Any] = {
            "serviceArn": s.arn, "serviceName": s.name, "clusterArn": s.cluster_arn,
            "loadBalancers": [_drop_none({"targetGroupArn": lb.target_group_arn,
                                          "loadBalancerName": lb.load_balancer_name,
                                          "containerName": lb.container_name, "containerPort": lb.container_port or None})
                              for lb in s.load_balancers],
            "serviceRegistries": [], "status": s.status, "desiredCount": s.desired_count,
            "runningCount": counts[""]["running"], "pendingCount": counts[""]["pending"],
            "taskDefinition": s.task_definition,
            "deploymentConfiguration": {
                "deploymentCircuitBreaker": {"enable": cfg.circuit_breaker.enable,
                                             "rollback": cfg.circuit_breaker.rollback},
                "maximumPercent": cfg.maximum_percent, "minimumHealthyPercent": cfg.minimum_healthy_percent},
            "deployments": deployments, "roleArn": s.role_arn or None,
            "events": [{"id": e.id, "createdAt": e.created_at, "message": e.message} for e in s.events],
            "createdAt": s.created_at,
            "placementConstraints": [_drop_none({"type": t, "expression": e}) for t, e in s.placement_constraints],
            "placementStrategy": [_drop_none({"type": t, "field": f}) for t, f in s.placement_strategy],
            "schedulingStrategy": s.scheduling_strategy, "deploymentController": {"type": "ECS"},
            "createdBy": s.created_by or None, "enableECSManagedTags": s.enable_ecs_managed_tags,
            "propagateTags": s.propagate_tags, "enableExecuteCommand": s.enable_execute_command,
            "healthCheckGracePeriodSeconds": s.health_check_grace_period if s.load_balancers or
            s.health_check_grace_period else None,
            "tags": _tags(s.tags) if with_tags else [],
        }
        if s.launch_type:
            out["launchType"] = s.launch_type
        if s.capacity_provider_strategy:
            out["capacityProviderStrategy"] = [
                {"capacityProvider": i.capacity_provider, "weight": i.weight, "base": i.base}
                for i in s.capacity_provider_strategy]
        if s.network is not None:
            out["networkConfiguration"] = _network(s.network)
        return {k: v for k, v in out.items() if v is not None}

    # --- clusters ---------------------------------------------------------------------------

    def CreateCluster(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"cluster": self.cluster(self.ecs.create_cluster(_scope(ctx), p))}

    def DescribeClusters(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        refs = p.get("clusters")
        if refs is not None and (not isinstance(refs, list) or len(refs) > 100):
            raise AwsError("InvalidParameterException", "clusters can have at most 100 items.")
        return _found("clusters", self.ecs.describe_clusters(_scope(ctx), refs), lambda c: self.cluster(c, p))

    def ListClusters(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _paged(p, "clusterArns", self.ecs.list_clusters(_scope(ctx)))

    def DeleteCluster(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"cluster": self.cluster(self.ecs.delete_cluster(_scope(ctx), _required(p, "cluster")))}

    def UpdateCluster(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"cluster": self.cluster(self.ecs.update_cluster(_scope(ctx), p))}

    def UpdateClusterSettings(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        if not p.get("settings"):
            raise AwsError("InvalidParameterException", "settings can not be empty.")
        return {"cluster": self.cluster(self.ecs.update_cluster(_scope(ctx), p))}

    def PutClusterCapacityProviders(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"cluster": self.cluster(self.ecs.put_cluster_capacity_providers(_scope(ctx), p))}

    def DescribeCapacityProviders(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        names = p.get("capacityProviders") or ["FARGATE", "FARGATE_SPOT"]
        found, failures = [], []
        for name in names:
            if name in ("FARGATE", "FARGATE_SPOT"):
                found.append({"capacityProviderArn": f"arn:aws:ecs:{ctx.region}:{ctx.account}:capacity-provider/{name}",
                              "name": name, "status": "ACTIVE", "tags": []})
            else:
                failures.append({"arn": str(name), "reason": "MISSING"})
        return {"capacityProviders": found, "failures": failures}

    # --- task definitions -------------------------------------------------------------------

    def RegisterTaskDefinition(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        t = self.ecs.register_task_definition(_scope(ctx), p)
        return {"taskDefinition": self.taskdef(t), "tags": _tags(t.tags)}

    def DescribeTaskDefinition(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        t = self.ecs.taskdef(_scope(ctx), _required(p, "taskDefinition"), missing="Unable to describe task definition.")
        out: dict[str, Any] = {"taskDefinition": self.taskdef(t)}
        if _includes(p, "TAGS"):
            out["tags"] = _tags(t.tags)
        return out

    def DeregisterTaskDefinition(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"taskDefinition": self.taskdef(self.ecs.deregister_task_definition(
            _scope(ctx), _required(p, "taskDefinition")))}

    def DeleteTaskDefinitions(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        refs = p.get("taskDefinitions")
        return _found("taskDefinitions", self.ecs.delete_task_definitions(
            _scope(ctx), refs if isinstance(refs, list) else []), self.taskdef_deleted)

    def taskdef_deleted(self, t: m.TaskDefinition) -> dict[str, Any]:
        out = self.taskdef(t)
        out["status"] = "DELETE_IN_PROGRESS"
        return out

    def ListTaskDefinitions(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _paged(p, "taskDefinitionArns", self.ecs.list_task_definitions(_scope(ctx), p))

    def ListTaskDefinitionFamilies(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _paged(p, "families", self.ecs.list_task_definition_families(_scope(ctx), p))

    # --- container instances ----------------------------------------------------------------

    def RegisterContainerInstance(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"containerInstance": self.instance(self.ecs.register_container_instance(_scope(ctx), p))}

    def DeregisterContainerInstance(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"containerInstance": self.instance(self.ecs.deregister_container_instance(_scope(ctx), p))}

    def DescribeContainerInstances(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        tags = _includes(p, "TAGS")
        return _found("containerInstances", self.ecs.describe_container_instances(_scope(ctx), p),
                      lambda i: self.instance(i) if tags else {**self.instance(i), "tags": []})

    def ListContainerInstances(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _paged(p, "containerInstanceArns", self.ecs.list_container_instances(_scope(ctx), p))

    def UpdateContainerInstancesState(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _found("containerInstances", self.ecs.update_container_instances_state(_scope(ctx), p), self.instance)

    # --- attributes ---------------------------------------------------------------------------

    def PutAttributes(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"attributes": [_attribute(a) for a in self.ecs.put_attributes(_scope(ctx), p)]}

    def DeleteAttributes(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"attributes": [_attribute(a) for a in self.ecs.delete_attributes(_scope(ctx), p)]}

    def ListAttributes(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        attrs = [_attribute(a) for a in self.ecs.list_attributes(_scope(ctx), p)]
        chunk, token = page(attrs, p, default=100, limit=100)
        return with_token({"attributes": chunk}, token)

    # --- tasks --------------------------------------------------------------------------------

    def RunTask(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _found("tasks", self.ecs.run_task(_scope(ctx), p), lambda t: self.task(t, True))

    def StartTask(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _found("tasks", self.ecs.start_task(_scope(ctx), p), lambda t: self.task(t, True))

    def StopTask(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"task": self.task(self.ecs.stop_task(_scope(ctx), p), True)}

    def DescribeTasks(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        tags = _includes(p, "TAGS")
        return _found("tasks", self.ecs.describe_tasks(_scope(ctx), p), lambda t: self.task(t, tags))

    def ListTasks(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _paged(p, "taskArns", self.ecs.list_tasks(_scope(ctx), p))

    def ExecuteCommand(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.ecs.execute_command(_scope(ctx), p)
        return {}

    def GetTaskProtection(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        refs = {"cluster": p.get("cluster"), "tasks": p.get("tasks") or []}
        return _found("protectedTasks", self.ecs.describe_tasks(_scope(ctx), refs),
                      lambda t: {"taskArn": t.arn, "protectionEnabled": False})

    # --- services -----------------------------------------------------------------------------

    def CreateService(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"service": self.service(self.ecs.create_service(_scope(ctx), p), True)}

    def UpdateService(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"service": self.service(self.ecs.update_service(_scope(ctx), p), True)}

    def DeleteService(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"service": self.service(self.ecs.delete_service(_scope(ctx), p), True)}

    def DescribeServices(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        tags = _includes(p, "TAGS")
        return _found("services", self.ecs.describe_services(_scope(ctx), p), lambda s: self.service(s, tags))

    def ListServices(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return _paged(p, "serviceArns", self.ecs.list_services(_scope(ctx), p))

    # --- tags and settings ----------------------------------------------------------------------

    def TagResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        self.ecs.tag_resource(_required(p, "resourceArn"), p.get("tags"))
        return {}

    def UntagResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        keys = p.get("tagKeys")
        self.ecs.untag_resource(_required(p, "resourceArn"), keys if isinstance(keys, list) else None)
        return {}

    def ListTagsForResource(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"tags": _tags(self.ecs.tags(_required(p, "resourceArn")))}

    def PutAccountSetting(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"setting": _setting(self.ecs.put_account_setting(_scope(ctx), p, default=False))}

    def PutAccountSettingDefault(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"setting": _setting(self.ecs.put_account_setting(_scope(ctx), p, default=True))}

    def DeleteAccountSetting(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        return {"setting": _setting(self.ecs.delete_account_setting(_scope(ctx), p))}

    def ListAccountSettings(self, p: Params, ctx: AwsContext) -> dict[str, Any]:
        settings = [_setting(s) for s in self.ecs.list_account_settings(_scope(ctx), p)]
        chunk, token = page(settings, p, default=10, limit=10)
        return with_token({"settings": chunk}, token)


def _required(p: Params, key: str) -> str:
    value = p.get(key)
    if not isinstance(value, str) or not value:
        raise AwsError("InvalidParameterException", f"{key} can not be blank.")
    return value


def _network(n: m.AwsVpcConfiguration) -> dict[str, Any]:
    return {"awsvpcConfiguration": {"subnets": list(n.subnets), "securityGroups": list(n.security_groups),
                                    "assignPublicIp": n.assign_public_ip}}


def _attribute(a: m.Attribute) -> dict[str, Any]:
    return _drop_none({"name": a.name, "value": a.value, "targetType": a.target_type, "targetId": a.target_id})


def _setting(s: AccountSetting) -> dict[str, str]:
    return {"name": s.name, "value": s.value, "principalArn": s.principal_arn, "type": s.type}


def ecs_service(ecs: EcsService) -> JsonService:
    """The ECS JsonService: every public CamelCase method of EcsHandlers is an operation."""
    handlers = EcsHandlers(ecs)
    operations: dict[str, Operation] = {}
    for name in dir(handlers):
        if name[:1].isupper():
            method: Callable[[Params, AwsContext], dict[str, Any]] = getattr(handlers, name)
            operations[name] = method
    return JsonService(TARGET_PREFIX, "ecs", operations, PARAMS)
