"""EcsService: the ECS operations over the control-plane store (aws-apis.md §2).

Each public method is one ECS operation (or the agent side of the boundary); it validates,
reads and writes records, and returns records. The API layer shapes them for the wire.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from berth import scheduler
from berth.ecs import _model as m
from berth.ecs import _params as p
from berth.ecs._agentlink import InstanceResources, TaskAssignment, TaskReport
from berth.ecs._arns import Scope, child_id, cluster_name, split_arn, taskdef_ref
from berth.ecs._context import Context, merge_tags, tags_in
from berth.ecs._errors import (
    ClientError, ClusterContainsContainerInstances, ClusterContainsServices, ClusterContainsTasks, ClusterNotFound,
    InvalidParameter, ResourceNotFound, TaskDefinitionNotFound,
)
from berth.ecs._services import ServiceOps
from berth.ecs._taskdef import check_fargate, parse_task_definition
from berth.ecs._tasks import LaunchFailure, LaunchRequest, TaskOps, instance_prefix, live, task_prefix
from berth.state import VersionConflict

Params = Mapping[str, Any]

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
LAUNCH_TYPES = ("EC2", "FARGATE", "EXTERNAL")
_ATTR_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-/]{0,127}$")
_ATTR_VALUE_RE = re.compile(r"^[a-zA-Z0-9_.\-@/:() ]{1,128}$")

ACCOUNT_SETTINGS: dict[str, str] = {
    "serviceLongArnFormat": "enabled", "taskLongArnFormat": "enabled",
    "containerInstanceLongArnFormat": "enabled", "awsvpcTrunking": "disabled", "containerInsights": "disabled",
    "dualStackIPv6": "disabled", "fargateFIPSMode": "disabled", "tagResourceAuthorization": "on",
    "fargateTaskRetirementWaitPeriod": "7", "guardDutyActivate": "off", "defaultLogDriverMode": "blocking",
}

_ON_OFF, _ENABLED = ("on", "off"), ("enabled", "disabled")
SETTING_VALUES: dict[str, tuple[str, ...]] = {
    "serviceLongArnFormat": _ENABLED, "taskLongArnFormat": _ENABLED, "containerInstanceLongArnFormat": _ENABLED,
    "awsvpcTrunking": _ENABLED, "containerInsights": ("enabled", "disabled", "enhanced"),
    "dualStackIPv6": _ENABLED, "fargateFIPSMode": _ENABLED, "tagResourceAuthorization": _ON_OFF,
    "fargateTaskRetirementWaitPeriod": ("0", "7", "14"), "guardDutyActivate": _ON_OFF,
    "defaultLogDriverMode": ("blocking", "non-blocking"),
}


@dataclass(frozen=True)
class Failure:
    arn: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class AccountSetting:
    name: str
    value: str
    principal_arn: str
    type: str = "user"


class EcsService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = ctx.repo
        self.tasks = TaskOps(ctx)
        self.services = ServiceOps(ctx, self.tasks)

    # ==== clusters ===========================================================================

    def create_cluster(self, scope: Scope, params: Params) -> m.Cluster:
        name = cluster_name(p.opt_str(params, "clusterName") or "default")
        arn = scope.arn(f"cluster/{name}")
        tags = tags_in(params.get("tags"))
        settings = _settings(params.get("settings"))
        providers = tuple(_providers(params.get("capacityProviders")))
        strategy = _strategy(params.get("defaultCapacityProviderStrategy"), providers)
        existing = self.repo.get(m.Cluster, arn)
        if existing is not None and existing.status == "ACTIVE":
            return existing  # ECS: CreateCluster of an existing cluster returns it
        cluster = m.Cluster(arn=arn, name=name, region=scope.region, account=scope.account,
                            created_at=self.ctx.clock(), tags=tags, settings=settings or m.Cluster.settings,
                            capacity_providers=providers, default_strategy=strategy,
                            configuration=p.obj(params, "configuration") or {})
        return self.repo.put(m.Cluster, arn, cluster)

    def ensure_cluster(self, scope: Scope, name: str) -> m.Cluster:
        arn = scope.arn(f"cluster/{cluster_name(name)}")
        found = self.repo.get(m.Cluster, arn)
        return found if found is not None and found.status == "ACTIVE" else self.create_cluster(
            scope, {"clusterName": name})

    def describe_clusters(self, scope: Scope, refs: list[str] | None) -> tuple[list[m.Cluster], list[Failure]]:
        found, failures = [], []
        for ref in refs or ["default"]:
            arn = scope.arn(f"cluster/{cluster_name(ref)}")
            cluster = self.repo.get(m.Cluster, arn)
            if cluster is None:
                failures.append(Failure(arn, "MISSING"))
            else:
                found.append(cluster)
        return found, failures

    def cluster_counts(self, cluster: m.Cluster) -> dict[str, int]:
        tasks = [t for t in self.tasks.list(cluster) if t.last_status != "STOPPED"]
        instances = [i for i in self.repo.list(m.ContainerInstance, instance_prefix(cluster))
                     if i.status in ("ACTIVE", "DRAINING")]
        services = [s for s in self.services.list(cluster) if s.status == "ACTIVE"]
        return {"registeredContainerInstancesCount": len(instances),
                "runningTasksCount": sum(1 for t in tasks if t.last_status == "RUNNING"),
                "pendingTasksCount": sum(1 for t in tasks if t.last_status != "RUNNING"),
                "activeServicesCount": len(services)}

    def list_clusters(self, scope: Scope) -> list[str]:
        return [c.arn for c in self.repo.list(m.Cluster, scope.arn("cluster/")) if c.status == "ACTIVE"]

    def delete_cluster(self, scope: Scope, ref: str) -> m.Cluster:
        cluster = self.ctx.cluster(scope, ref)
        if any(s.status in ("ACTIVE", "DRAINING") for s in self.services.list(cluster)):
            raise ClusterContainsServices("The Cluster cannot be deleted while Services are active.")
        if any(live(t) for t in self.tasks.list(cluster)):
            raise ClusterContainsTasks("The Cluster cannot be deleted while Tasks are active.")
        if any(i.status in ("ACTIVE", "DRAINING") for i in self.repo.list(m.ContainerInstance, instance_prefix(cluster))):
            raise ClusterContainsContainerInstances(
                "The Cluster cannot be deleted while Container Instances are active or draining.")
        done = self.repo.update(m.Cluster, cluster.arn, lambda c: replace(c, status="INACTIVE"))
        return done or cluster

    def update_cluster(self, scope: Scope, params: Params) -> m.Cluster:
        cluster = self.ctx.cluster(scope, p.req_str(params, "cluster"))
        settings = _settings(params.get("settings"))
        configuration = p.obj(params, "configuration")

        def change(c: m.Cluster) -> m.Cluster:
            merged = dict(c.settings)
            merged.update(dict(settings))
            return replace(c, settings=tuple(merged.items()),
                           configuration=configuration if configuration is not None else c.configuration)

        return self.repo.update(m.Cluster, cluster.arn, change) or cluster

    def put_cluster_capacity_providers(self, scope: Scope, params: Params) -> m.Cluster:
        cluster = self.ctx.cluster(scope, p.req_str(params, "cluster"))
        if "capacityProviders" not in params or "defaultCapacityProviderStrategy" not in params:
            raise InvalidParameter("capacityProviders and defaultCapacityProviderStrategy are required.")
        providers = tuple(_providers(params.get("capacityProviders")))
        strategy = _strategy(params.get("defaultCapacityProviderStrategy"), providers)
        return self.repo.update(m.Cluster, cluster.arn, lambda c: replace(
            c, capacity_providers=providers, default_strategy=strategy)) or cluster

    # ==== task definitions ===================================================================

    def register_task_definition(self, scope: Scope, params: Params) -> m.TaskDefinition:
        spec = parse_task_definition(params)
        if "FARGATE" in spec.requires_compatibilities:
            check_fargate(spec)
        tags = tags_in(params.get("tags"))
        stored = {k: v for k, v in params.items() if k != "tags"}
        family_key = scope.arn(f"task-definition/{spec.family}")
        # Revisions per family are handed out once, never reused (even after DeleteTaskDefinitions).
        for _ in range(50):
            counter = self.repo.store.get(m.FAMILY, family_key)
            revision = int(counter.value.get("last", 0)) + 1 if counter else 1
            arn = f"{family_key}:{revision}"
            taskdef = m.TaskDefinition(arn=arn, family=spec.family, revision=revision,
                                       registered_at=self.ctx.clock(), params=json.loads(json.dumps(stored)),
                                       registered_by=f"arn:aws:iam::{scope.account}:root", tags=tags)
            try:
                self.repo.store.apply([
                    _put(m.FAMILY, family_key, {"last": revision}, counter.version if counter else 0),
                    _put(m.TASKDEF, arn, taskdef, 0),
                ])
            except VersionConflict:
                continue
            return taskdef
        raise ClientError("Too many concurrent registrations of this family; try again.")

    def taskdef(self, scope: Scope, ref: str, *, field: str = "taskDefinition", active_only: bool = False,
                missing: str = "TaskDefinition not found.") -> m.TaskDefinition:
        """The definition `ref` names (a family alone: its latest ACTIVE revision). `missing` is
        ECS's sentence for an unknown one: RunTask and CreateService say "TaskDefinition not
        found.", DescribeTaskDefinition "Unable to describe task definition."."""
        family, revision = taskdef_ref(ref, field)
        prefix = scope.arn(f"task-definition/{family}:")
        if revision is not None:
            found = self.repo.get(m.TaskDefinition, f"{prefix}{revision}")
            if found is None or found.status == "DELETE_IN_PROGRESS" or (active_only and found.status != "ACTIVE"):
                raise TaskDefinitionNotFound(missing)
            return found
        revisions = [t for t in self.repo.list(m.TaskDefinition, prefix) if t.status == "ACTIVE"]
        if not revisions:
            raise TaskDefinitionNotFound(missing)
        return max(revisions, key=lambda t: t.revision)

    def deregister_task_definition(self, scope: Scope, ref: str) -> m.TaskDefinition:
        family, revision = taskdef_ref(ref)
        if revision is None:
            raise InvalidParameter("Invalid revision number. Number: " + ref.rsplit(":", 1)[-1])
        taskdef = self.taskdef(scope, ref)
        now = self.ctx.clock()
        return self.repo.update(m.TaskDefinition, taskdef.arn, lambda t: replace(
            t, status="INACTIVE", deregistered_at=now) if t.status == "ACTIVE" else None) or taskdef

    def delete_task_definitions(self, scope: Scope, refs: list[str]) -> tuple[list[m.TaskDefinition], list[Failure]]:
        if not refs or len(refs) > 10:
            raise InvalidParameter("taskDefinitions must name between 1 and 10 task definitions.")
        done, failures = [], []
        for ref in refs:
            try:
                family, revision = taskdef_ref(ref)
                if revision is None:
                    raise InvalidParameter("The specified task definition identifier is invalid. "
                                           "Specify a valid name or ARN and try again.")
                taskdef = self.taskdef(scope, ref)
            except (InvalidParameter, TaskDefinitionNotFound) as err:
                failures.append(Failure(ref, "TASK_DEFINITION_NOT_FOUND" if isinstance(
                    err, TaskDefinitionNotFound) else "INVALID_ARN", str(err)))
                continue
            if taskdef.status == "ACTIVE":
                failures.append(Failure(taskdef.arn, "The specified task definition is still in ACTIVE status. "
                                        "Please deregister the target and try again."))
                continue
            self.repo.delete(m.TaskDefinition, taskdef.arn)
            done.append(replace(taskdef, status="DELETE_IN_PROGRESS"))
        return done, failures

    def list_task_definitions(self, scope: Scope, params: Params) -> list[str]:
        family = p.opt_str(params, "familyPrefix")
        status = p.one_of(p.opt_str(params, "status"), "status", ("ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"))
        sort = p.one_of(p.opt_str(params, "sort"), "sort", ("ASC", "DESC")) or "ASC"
        prefix = scope.arn("task-definition/") + (family or "")
        items = [t for t in self.repo.list(m.TaskDefinition, prefix)
                 if t.status == (status or "ACTIVE") and (family is None or t.family == family)]
        items.sort(key=lambda t: (t.family, t.revision), reverse=sort == "DESC")
        return [t.arn for t in items]

    def list_task_definition_families(self, scope: Scope, params: Params) -> list[str]:
        prefix = p.opt_str(params, "familyPrefix") or ""
        status = p.one_of(p.opt_str(params, "status"), "status", ("ACTIVE", "INACTIVE", "ALL")) or "ACTIVE"
        families: dict[str, set[str]] = {}
        for t in self.repo.list(m.TaskDefinition, scope.arn("task-definition/") + prefix):
            families.setdefault(t.family, set()).add(t.status)
        out = []
        for family, statuses in sorted(families.items()):
            active = "ACTIVE" in statuses
            if status == "ALL" or (status == "ACTIVE" and active) or (status == "INACTIVE" and not active):
                out.append(family)
        return out

    # ==== container instances =================================================================

    def register_container_instance(self, scope: Scope, params: Params) -> m.ContainerInstance:
        """A client's RegisterContainerInstance (as the ECS agent sends it): recorded with
        agentConnected false, so it gets no tasks (no berth agent runs them)."""
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        document = p.opt_str(params, "instanceIdentityDocument")
        ec2_id = ""
        if document:
            try:
                ec2_id = str(json.loads(document).get("instanceId", ""))
            except (ValueError, AttributeError) as err:
                raise InvalidParameter("instanceIdentityDocument must be a JSON document.") from err
        cpu, memory = 0, 0
        for res in p.obj_list(params, "totalResources"):
            if res.get("name") == "CPU":
                cpu = int(res.get("integerValue", 0))
            elif res.get("name") == "MEMORY":
                memory = int(res.get("integerValue", 0))
        version = p.obj(params, "versionInfo") or {}
        attributes = tuple(_attribute(a, "") for a in p.obj_list(params, "attributes"))
        instance_id = self.ctx.new_id()
        arn = instance_prefix(cluster) + instance_id
        inst = m.ContainerInstance(
            arn=arn, cluster_arn=cluster.arn, ec2_instance_id=ec2_id or f"i-{instance_id[:17]}",
            registered_at=self.ctx.clock(), cpu=cpu, memory=memory, agent_connected=False,
            attributes=attributes, agent_version=str(version.get("agentVersion", "")),
            agent_hash=str(version.get("agentHash", "")), docker_version=str(version.get("dockerVersion", "")),
            tags=tags_in(params.get("tags")))
        return self.repo.create(m.ContainerInstance, arn, inst)

    def register_agent_instance(self, scope: Scope, cluster: str, agent_id: str,
                                resources: InstanceResources) -> m.ContainerInstance:
        """The berth agent of a host (re)registers its instance; the cluster is created if needed
        (the ECS agent does the same for `default`)."""
        found_cluster = self.ensure_cluster(scope, cluster)
        attributes = tuple(m.Attribute(n, v) for n, v in resources.attributes)
        for inst in self.repo.list(m.ContainerInstance, instance_prefix(found_cluster)):
            if inst.agent_id == agent_id and inst.status in ("ACTIVE", "DRAINING"):
                custom = tuple(a for a in inst.attributes if not a.name.startswith("ecs."))
                new = replace(inst, cpu=resources.cpu, memory=resources.memory, agent_connected=True,
                              attributes=attributes + custom, agent_version=resources.agent_version,
                              agent_hash=resources.agent_hash, docker_version=resources.docker_version,
                              version=inst.version + 1)
                return self.repo.put(m.ContainerInstance, inst.arn, new)
        instance_id = self.ctx.new_id()
        arn = instance_prefix(found_cluster) + instance_id
        inst = m.ContainerInstance(
            arn=arn, cluster_arn=found_cluster.arn, ec2_instance_id=f"i-{instance_id[:17]}",
            registered_at=self.ctx.clock(), cpu=resources.cpu, memory=resources.memory, agent_connected=True,
            agent_id=agent_id, attributes=attributes, agent_version=resources.agent_version,
            agent_hash=resources.agent_hash, docker_version=resources.docker_version)
        return self.repo.create(m.ContainerInstance, arn, inst)

    def set_agent_connected(self, instance_arn: str, connected: bool) -> None:
        self.repo.update(m.ContainerInstance, instance_arn, lambda i: replace(
            i, agent_connected=connected, version=i.version + 1))

    def instance(self, scope: Scope, cluster: m.Cluster, ref: str, field: str = "containerInstance"
                 ) -> m.ContainerInstance | None:
        instance_id = child_id(ref, "container-instance", cluster.name, field)
        return self.repo.get(m.ContainerInstance, instance_prefix(cluster) + instance_id)

    def deregister_container_instance(self, scope: Scope, params: Params) -> m.ContainerInstance:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        inst = self.instance(scope, cluster, p.req_str(params, "containerInstance"))
        if inst is None or inst.status == "INACTIVE":
            raise InvalidParameter("The referenced container instance was not found.")
        running = [t for t in self.tasks.list(cluster) if t.container_instance_arn == inst.arn and live(t)]
        if running and not p.opt_bool(params, "force"):
            raise InvalidParameter("Found running tasks on the instance.")
        for task in running:  # forced: ECS orphans them; berth stops them so nothing runs unaccounted
            self.tasks.request_stop(task.arn, "TaskFailedToStart" if task.last_status != "RUNNING" else
                                    "UserInitiated", "Container instance deregistration forced by user")
        done = self.repo.update(m.ContainerInstance, inst.arn, lambda i: replace(
            i, status="INACTIVE", agent_connected=False, version=i.version + 1))
        return done or inst

    def describe_container_instances(self, scope: Scope, params: Params
                                     ) -> tuple[list[m.ContainerInstance], list[Failure]]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        refs = p.str_list(params, "containerInstances", 100)
        if not refs:
            raise InvalidParameter("containerInstances can not be empty.")
        found, failures = [], []
        for ref in refs:
            inst = self.instance(scope, cluster, ref, "containerInstances")
            if inst is None:
                failures.append(Failure(ref if ref.startswith("arn:") else instance_prefix(cluster) + ref, "MISSING"))
            else:
                found.append(inst)
        return found, failures

    def instance_usage(self, cluster: m.Cluster, inst: m.ContainerInstance) -> tuple[int, int, set[int], int, int]:
        """(cpu used, memory used, host ports used, running tasks, pending tasks) on the instance."""
        mine = [t for t in self.tasks.list(cluster) if t.container_instance_arn == inst.arn and live(t)]
        ports = {port for t in mine for port, _proto in t.reserved_ports}
        ports |= {b.host_port for t in mine for c in t.containers for b in c.network_bindings if b.host_port}
        return (sum(t.reserved_cpu for t in mine), sum(t.reserved_memory for t in mine), ports,
                sum(1 for t in mine if t.last_status == "RUNNING"), sum(1 for t in mine if t.last_status != "RUNNING"))

    def list_container_instances(self, scope: Scope, params: Params) -> list[str]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        status = p.one_of(p.opt_str(params, "status"), "status",
                          ("ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED"))
        text = p.opt_str(params, "filter")
        try:
            expression = scheduler.parse_expression(text) if text else None
        except scheduler.ExpressionError as err:  # the same language; the member is `filter`
            raise InvalidParameter(str(err).replace("placement constraint expression", "filter expression", 1)
                                   ) from err
        snapshot = {s.arn: s for s in self.tasks.snapshot(cluster).instances}
        out = []
        for inst in self.repo.list(m.ContainerInstance, instance_prefix(cluster)):
            if inst.status == "INACTIVE" or (status and inst.status != status):
                continue
            if expression is not None and not expression.matches(snapshot[inst.arn]):
                continue
            out.append(inst.arn)
        return out

    def update_container_instances_state(self, scope: Scope, params: Params
                                         ) -> tuple[list[m.ContainerInstance], list[Failure]]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        status = p.one_of(p.req_str(params, "status"), "status", ("ACTIVE", "DRAINING"))
        refs = p.str_list(params, "containerInstances", 10)
        if not refs:
            raise InvalidParameter("containerInstances can not be empty.")
        found, failures = [], []
        for ref in refs:
            inst = self.instance(scope, cluster, ref, "containerInstances")
            if inst is None or inst.status == "INACTIVE":
                failures.append(Failure(ref, "MISSING"))
                continue
            found.append(self.repo.update(m.ContainerInstance, inst.arn, lambda i: replace(
                i, status=status or i.status, version=i.version + 1)) or inst)
        return found, failures

    # ==== attributes ==========================================================================

    def put_attributes(self, scope: Scope, params: Params) -> list[m.Attribute]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        items = p.obj_list(params, "attributes")
        if not items:
            raise InvalidParameter("attributes can not be empty.")
        if len(items) > 10:
            raise InvalidParameter("attributes can have at most 10 items.")
        attrs = [_attribute(a, "") for a in items]
        resolved = []
        for attr in attrs:
            if attr.target_type not in ("", "container-instance"):
                raise InvalidParameter("targetType must be container-instance.")
            inst = self.instance(scope, cluster, attr.target_id, "targetId") if attr.target_id else None
            if inst is None:
                raise TargetNotFoundError(attr.target_id)
            resolved.append((inst, attr))
        for inst, attr in resolved:
            def change(i: m.ContainerInstance, attr: m.Attribute = attr) -> m.ContainerInstance:
                kept = tuple(a for a in i.attributes if a.name != attr.name)
                return replace(i, attributes=kept + (m.Attribute(attr.name, attr.value),), version=i.version + 1)

            self.repo.update(m.ContainerInstance, inst.arn, change)
        return [replace(a, target_type="container-instance", target_id=i.arn) for i, a in resolved]

    def delete_attributes(self, scope: Scope, params: Params) -> list[m.Attribute]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        attrs = [_attribute(a, "") for a in p.obj_list(params, "attributes")]
        if not attrs:
            raise InvalidParameter("attributes can not be empty.")
        resolved = []
        for attr in attrs:  # every target first: an unknown one changes nothing
            inst = self.instance(scope, cluster, attr.target_id, "targetId") if attr.target_id else None
            if inst is None:
                raise TargetNotFoundError(attr.target_id)
            resolved.append((inst, attr))
        out = []
        for inst, attr in resolved:
            def change(i: m.ContainerInstance, name: str = attr.name) -> m.ContainerInstance:
                return replace(i, attributes=tuple(a for a in i.attributes if a.name != name), version=i.version + 1)

            self.repo.update(m.ContainerInstance, inst.arn, change)
            out.append(replace(attr, target_type="container-instance", target_id=inst.arn))
        return out

    def list_attributes(self, scope: Scope, params: Params) -> list[m.Attribute]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        target_type = p.req_str(params, "targetType")
        if target_type != "container-instance":
            raise InvalidParameter("targetType must be container-instance.")
        name, value = p.opt_str(params, "attributeName"), p.opt_str(params, "attributeValue")
        if value is not None and name is None:
            raise InvalidParameter("attributeValue can only be given with attributeName.")
        out = []
        for inst in self.repo.list(m.ContainerInstance, instance_prefix(cluster)):
            if inst.status == "INACTIVE":
                continue
            for attr in inst.attributes:
                if (name is None or attr.name == name) and (value is None or attr.value == value):
                    out.append(m.Attribute(attr.name, attr.value, "container-instance", inst.arn))
        return out

    # ==== tasks ===============================================================================

    def resolve_launch(self, cluster: m.Cluster, launch_type: str | None, strategy_in: Any
                       ) -> tuple[str, str, tuple[m.CapacityProviderItem, ...]]:
        """(launch type, capacity provider name, strategy) as ECS resolves them: an explicit
        launch type; else the given strategy; else the cluster's default; else EC2."""
        if launch_type is not None and strategy_in is not None:
            raise InvalidParameter("Specifying both a launch type and capacity provider strategy is not supported.")
        if launch_type is not None:
            p.one_of(launch_type, "launchType", LAUNCH_TYPES)
            return launch_type, "", ()
        strategy = _strategy(strategy_in, None) if strategy_in is not None else cluster.default_strategy
        if not strategy:
            return "EC2", "", ()
        for item in strategy:
            if strategy_in is not None and item.capacity_provider not in cluster.capacity_providers:
                raise InvalidParameter(f"The specified capacity provider strategy cannot contain a capacity "
                                       f"provider that is not associated with the cluster. Associate the "
                                       f"capacity provider with the cluster or specify a valid capacity "
                                       f"provider and try again. Provider: {item.capacity_provider}")
        chosen = _choose_provider(strategy, self.ctx.rng.random())
        return ("FARGATE" if chosen in FARGATE_PROVIDERS else "EC2"), chosen, strategy

    def run_task(self, scope: Scope, params: Params) -> tuple[list[m.Task], list[LaunchFailure]]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        token = p.opt_str(params, "clientToken")
        if token is not None and len(token) > 64:
            raise InvalidParameter("clientToken can be at most 64 characters.")
        if not token:
            return self.tasks.launch(self._launch_request(scope, cluster, params, count_key="count"))
        # One launch per token: a retried call (botocore reuses the token) waits for the first
        # one and gets its tasks, never a second set.
        with self.ctx.token_lock:
            previous = self.repo.store.get(m.TOKEN, f"{cluster.arn}/{token}")
            if previous is not None:
                tasks = [t for t in (self.repo.get(m.Task, a) for a in previous.value.get("tasks", [])) if t]
                fails = [LaunchFailure(**f) for f in previous.value.get("failures", [])]
                return tasks, fails
            tasks, failures = self.tasks.launch(self._launch_request(scope, cluster, params, count_key="count"))
            record = {"tasks": [t.arn for t in tasks],
                      "failures": [{"arn": f.arn, "reason": f.reason, "detail": f.detail} for f in failures]}
            self.repo.store.put(m.TOKEN, f"{cluster.arn}/{token}", record)
        return tasks, failures

    def start_task(self, scope: Scope, params: Params) -> tuple[list[m.Task], list[LaunchFailure]]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        refs = p.str_list(params, "containerInstances", 10)
        if not refs:
            raise InvalidParameter("containerInstances can not be empty.")
        arns = []
        for ref in refs:
            inst = self.instance(scope, cluster, ref, "containerInstances")
            arns.append(inst.arn if inst else ref)
        req = self._launch_request(scope, cluster, params, count_key=None)
        return self.tasks.launch(replace(req, instances=tuple(arns), count=len(arns)))

    def _launch_request(self, scope: Scope, cluster: m.Cluster, params: Params, count_key: str | None
                        ) -> LaunchRequest:
        taskdef = self.taskdef(scope, p.req_str(params, "taskDefinition"))
        spec = self.repo.spec(taskdef)
        count = p.opt_int(params, count_key, 1, 10) if count_key else 1
        launch_type, provider, _strategy_used = self.resolve_launch(
            cluster, p.opt_str(params, "launchType"), params.get("capacityProviderStrategy"))
        overrides = p.obj(params, "overrides") or {}
        container_overrides = tuple(_container_override(o, spec) for o in p.obj_list(overrides, "containerOverrides"))
        network = _network(params.get("networkConfiguration"))
        if spec.network_mode == "awsvpc" and network is None:
            raise InvalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
        if spec.network_mode != "awsvpc" and network is not None:
            raise InvalidParameter("Network Configuration is not valid for the given networkMode of this task "
                                   "definition.")
        constraints = _constraints(params.get("placementConstraints"), allow_distinct=True)
        strategies = _strategies(params.get("placementStrategy"))
        if launch_type == "FARGATE":
            check_fargate(spec)
            if constraints or strategies:
                raise InvalidParameter("Task placement is not supported for FARGATE")
        if p.opt_str(params, "group") is not None and not re.match(r"^[A-Za-z0-9:_\-]{1,255}$", params["group"]):
            raise InvalidParameter("group is invalid.")
        started_by = p.opt_str(params, "startedBy") or ""
        if len(started_by) > 128:
            raise InvalidParameter("startedBy can be at most 128 characters.")
        return LaunchRequest(
            cluster=cluster, taskdef=taskdef, count=count or 1, group=p.opt_str(params, "group") or "",
            started_by=started_by, launch_type=launch_type, capacity_provider=provider,
            overrides=container_overrides, task_role_arn=p.opt_str(overrides, "taskRoleArn") or "",
            execution_role_arn=p.opt_str(overrides, "executionRoleArn") or "",
            cpu=p.opt_str(overrides, "cpu") or "", memory=p.opt_str(overrides, "memory") or "",
            constraints=constraints, strategies=strategies, network=network, tags=tags_in(params.get("tags")),
            client_token=p.opt_str(params, "clientToken") or "",
            enable_execute_command=bool(p.opt_bool(params, "enableExecuteCommand")))

    def stop_task(self, scope: Scope, params: Params) -> m.Task:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        ref = p.req_str(params, "task")
        task = self.tasks.find(scope, cluster, ref)
        if task is None:
            raise InvalidParameter("The referenced task was not found.")
        reason = p.opt_str(params, "reason")
        if reason is not None and len(reason) > 255:
            raise InvalidParameter("reason can be at most 255 characters.")
        return self.tasks.request_stop(task.arn, "UserInitiated", reason or "Task stopped by user") or task

    def describe_tasks(self, scope: Scope, params: Params) -> tuple[list[m.Task], list[Failure]]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        refs = p.str_list(params, "tasks", 100)
        if not refs:
            raise InvalidParameter("Tasks cannot be empty.")
        found, failures = [], []
        for ref in refs:
            task = self.tasks.find(scope, cluster, ref, "tasks")
            if task is None:
                failures.append(Failure(ref if ref.startswith("arn:") else task_prefix(cluster) + ref, "MISSING"))
            else:
                found.append(task)
        return found, failures

    def list_tasks(self, scope: Scope, params: Params) -> list[str]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        desired = p.one_of(p.opt_str(params, "desiredStatus"), "desiredStatus",
                           ("RUNNING", "PENDING", "STOPPED")) or "RUNNING"
        family = p.opt_str(params, "family")
        service = p.opt_str(params, "serviceName")
        started_by = p.opt_str(params, "startedBy")
        launch = p.one_of(p.opt_str(params, "launchType"), "launchType", LAUNCH_TYPES)
        instance_ref = p.opt_str(params, "containerInstance")
        if family and service:
            raise InvalidParameter("family and serviceName cannot both be specified.")
        instance_arn = None
        if instance_ref:
            inst = self.instance(scope, cluster, instance_ref)
            instance_arn = inst.arn if inst else "-"
        if service:
            service_name = child_id(service, "service", cluster.name, "serviceName")
            if self.services.get(cluster, service_name) is None:
                raise _service_not_found()
        out = []
        for task in self.tasks.list(cluster):
            taskdef_family = task.task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
            if task.desired_status != desired:
                continue
            if family and taskdef_family != family:
                continue
            if service and task.group != f"service:{service_name}":
                continue
            if started_by and task.started_by != started_by:
                continue
            if launch and task.launch_type != launch:
                continue
            if instance_arn and task.container_instance_arn != instance_arn:
                continue
            out.append(task.arn)
        return out

    def execute_command(self, scope: Scope, params: Params) -> None:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        task = self.tasks.find(scope, cluster, p.req_str(params, "task"))
        if task is None:
            raise InvalidParameter("The referenced task was not found.")
        runtime = ", ".join(f"{c.name}: docker exec -it {c.runtime_id[:12]} sh" for c in task.containers
                            if c.runtime_id) or "the task has no running container"
        raise TargetNotConnected(
            "berth does not implement ECS Exec (it needs AWS Systems Manager's session protocol). "
            f"Run the command through the engine instead: {runtime}")

    # ==== services ============================================================================

    def create_service(self, scope: Scope, params: Params) -> m.Service:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        ref = p.opt_str(params, "taskDefinition")
        taskdef = self.taskdef(scope, ref) if ref else None
        launch = self.resolve_launch(cluster, p.opt_str(params, "launchType"), params.get("capacityProviderStrategy"))
        network = _network(params.get("networkConfiguration"))
        if taskdef is not None:
            self._check_network(self.repo.spec(taskdef).network_mode, network)
            if launch[0] == "FARGATE":
                check_fargate(self.repo.spec(taskdef))
        constraints = _constraints(params.get("placementConstraints"), allow_distinct=True)
        strategies = _strategies(params.get("placementStrategy"))
        if launch[0] == "FARGATE" and (constraints or strategies):
            raise InvalidParameter("Task placement is not supported for FARGATE")
        return self.services.create(scope, cluster, params, taskdef, launch, constraints, strategies, network)

    def update_service(self, scope: Scope, params: Params) -> m.Service:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        current = self.services.find(cluster, p.req_str(params, "service"))
        ref = p.opt_str(params, "taskDefinition")
        taskdef = self.taskdef(scope, ref) if ref else None
        launch = None
        if params.get("launchType") is not None or params.get("capacityProviderStrategy") is not None:
            launch = self.resolve_launch(cluster, p.opt_str(params, "launchType"),
                                         params.get("capacityProviderStrategy"))
        network = _network(params.get("networkConfiguration"))
        current_def = taskdef or self.repo.get(m.TaskDefinition, current.task_definition)
        if current_def is not None and (taskdef is not None or network is not None):
            self._check_network(self.repo.spec(current_def).network_mode, network or current.network)
        constraints = (_constraints(params.get("placementConstraints"), allow_distinct=True)
                       if params.get("placementConstraints") is not None else None)
        strategies = (_strategies(params.get("placementStrategy"))
                      if params.get("placementStrategy") is not None else None)
        return self.services.update(scope, cluster, params, taskdef, launch, constraints, strategies, network)

    def _check_network(self, mode: str, network: m.AwsVpcConfiguration | None) -> None:
        if mode == "awsvpc" and network is None:
            raise InvalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
        if mode != "awsvpc" and network is not None:
            raise InvalidParameter("Network Configuration is not valid for the given networkMode of this task "
                                   "definition.")

    def delete_service(self, scope: Scope, params: Params) -> m.Service:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        return self.services.delete(cluster, p.req_str(params, "service"), bool(p.opt_bool(params, "force")))

    def describe_services(self, scope: Scope, params: Params) -> tuple[list[m.Service], list[Failure]]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        refs = p.str_list(params, "services", 10)
        if not refs:
            raise InvalidParameter("services can not be empty.")
        found, failures = [], []
        for ref in refs:
            name = child_id(ref, "service", cluster.name, "services")
            service = self.services.get(cluster, name)
            if service is None:
                failures.append(Failure(ref if ref.startswith("arn:") else
                                        cluster.arn.replace(":cluster/", ":service/", 1) + "/" + name, "MISSING"))
            else:
                found.append(service)
        return found, failures

    def list_services(self, scope: Scope, params: Params) -> list[str]:
        cluster = self.ctx.cluster(scope, p.opt_str(params, "cluster"))
        launch = p.one_of(p.opt_str(params, "launchType"), "launchType", LAUNCH_TYPES)
        kind = p.one_of(p.opt_str(params, "schedulingStrategy"), "schedulingStrategy", ("REPLICA", "DAEMON"))
        return [s.arn for s in self.services.list(cluster) if s.status == "ACTIVE"
                and (launch is None or s.launch_type == launch) and (kind is None or s.scheduling_strategy == kind)]

    # ==== the agent side ======================================================================

    def assignments(self, instance_arn: str) -> list[TaskAssignment]:
        inst = self.repo.get(m.ContainerInstance, instance_arn)
        if inst is None:
            return []
        return self.tasks.assignments(instance_arn, inst.cluster_arn.rsplit("/", 1)[-1])

    def report(self, report: TaskReport) -> m.Task | None:
        return self.tasks.apply_report(report)

    def watch_assignments(self, instance_arn: str, callback: Callable[[], None]) -> Callable[[], None]:
        def on_change(change: Any) -> None:
            if change.kind == m.TASK:
                callback()

        return self.repo.store.watch(on_change, [m.TASK])

    # ==== tags ================================================================================

    def _tagged(self, arn: str) -> tuple[type[Any], str]:
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            raise InvalidParameter(f"Invalid identifier: resourceArn {arn!r} is not a valid ECS ARN.")
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "ecs":
            raise InvalidParameter(f"Invalid identifier: resourceArn {arn!r} is not a valid ECS ARN.")
        kind = parts[5].split("/", 1)[0]
        classes: dict[str, type[Any]] = {
            "cluster": m.Cluster, "task-definition": m.TaskDefinition, "task": m.Task, "service": m.Service,
            "container-instance": m.ContainerInstance}
        cls = classes.get(kind)
        if cls is None:
            raise InvalidParameter(f"Invalid identifier: resourceArn {arn!r} names no taggable ECS resource "
                                   "(cluster, task-definition, task, service or container-instance).")
        split_arn(arn, kind, "resourceArn")
        if self.repo.get(cls, arn) is None:
            raise ResourceNotFound("The specified resource could not be found.")
        return cls, arn

    def tags(self, arn: str) -> tuple[m.Tag, ...]:
        cls, key = self._tagged(arn)
        record = self.repo.get(cls, key)
        return tuple(getattr(record, "tags", ()))

    def tag_resource(self, arn: str, tags_param: Any) -> None:
        cls, key = self._tagged(arn)
        new = tags_in(tags_param)
        if not new:
            raise InvalidParameter("tags can not be empty.")
        self.repo.update(cls, key, lambda r: replace(r, tags=merge_tags(r.tags, new)))

    def untag_resource(self, arn: str, keys: list[str] | None) -> None:
        cls, key = self._tagged(arn)
        if not keys:
            raise InvalidParameter("tagKeys can not be empty.")
        drop = set(keys)
        self.repo.update(cls, key, lambda r: replace(r, tags=tuple(t for t in r.tags if t.key not in drop)))

    # ==== account settings ====================================================================

    def _setting_key(self, scope: Scope, principal: str | None, name: str) -> str:
        return f"{scope.account}/{principal or 'default'}/{name}"

    def put_account_setting(self, scope: Scope, params: Params, *, default: bool) -> AccountSetting:
        name = p.req_str(params, "name")
        value = p.req_str(params, "value")
        if name not in ACCOUNT_SETTINGS:
            raise InvalidParameter(f"name must be one of: {', '.join(ACCOUNT_SETTINGS)}. Value: {name!r}.")
        allowed = SETTING_VALUES.get(name, ())
        if allowed and value not in allowed:
            raise InvalidParameter(f"value for {name} must be one of: {', '.join(allowed)}. Value: {value!r}.")
        if name.endswith("LongArnFormat") and value == "disabled":
            raise InvalidParameter("berth uses the long ARN format only; it cannot be disabled.")
        principal = None if default else (p.opt_str(params, "principalArn") or f"arn:aws:iam::{scope.account}:root")
        self.repo.store.put(m.SETTING, self._setting_key(scope, principal, name), {"value": value})
        return AccountSetting(name, value, principal or f"arn:aws:iam::{scope.account}:root",
                              "aws_managed" if default else "user")

    def delete_account_setting(self, scope: Scope, params: Params) -> AccountSetting:
        name = p.req_str(params, "name")
        if name not in ACCOUNT_SETTINGS:
            raise InvalidParameter(f"name must be one of: {', '.join(ACCOUNT_SETTINGS)}. Value: {name!r}.")
        principal = p.opt_str(params, "principalArn") or f"arn:aws:iam::{scope.account}:root"
        key = self._setting_key(scope, principal, name)
        record = self.repo.store.get(m.SETTING, key)
        self.repo.store.delete(m.SETTING, key)
        value = str(record.value.get("value")) if record else self._default_setting(scope, name)
        return AccountSetting(name, value, principal)

    def _default_setting(self, scope: Scope, name: str) -> str:
        record = self.repo.store.get(m.SETTING, self._setting_key(scope, None, name))
        return str(record.value["value"]) if record else ACCOUNT_SETTINGS[name]

    def list_account_settings(self, scope: Scope, params: Params) -> list[AccountSetting]:
        name = p.opt_str(params, "name")
        value = p.opt_str(params, "value")
        principal = p.opt_str(params, "principalArn") or f"arn:aws:iam::{scope.account}:root"
        effective = bool(p.opt_bool(params, "effectiveSettings"))
        out = []
        for setting in ACCOUNT_SETTINGS:
            if name and setting != name:
                continue
            record = self.repo.store.get(m.SETTING, self._setting_key(scope, principal, setting))
            if record is None and not effective:
                continue
            current = str(record.value["value"]) if record else self._default_setting(scope, setting)
            if value is not None and current != value:
                continue
            out.append(AccountSetting(setting, current, principal))
        return out


class TargetNotFoundError(ResourceNotFound):
    aws_code = "TargetNotFoundException"

    def __init__(self, target: str) -> None:
        super().__init__(f"Could not find {target or 'the target'}. The specified target wasn't found. "
                         "You can view your available container instances with ListContainerInstances.")


class TargetNotConnected(InvalidParameter):
    aws_code = "TargetNotConnectedException"


def _service_not_found() -> Exception:
    from berth.ecs._errors import ServiceNotFound

    return ServiceNotFound()


def _put(kind: str, key: str, value: Any, expected: int) -> Any:
    from berth.state.codec import encode
    from berth.state import Put

    return Put(kind, key, encode(value) if not isinstance(value, dict) else value, expected_version=expected)


def _settings(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParameter("settings must be a list.")
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("name") != "containerInsights":
            raise InvalidParameter("settings: the only cluster setting is containerInsights.")
        if item.get("value") not in ("enabled", "disabled", "enhanced"):
            raise InvalidParameter("settings: containerInsights must be enabled, disabled or enhanced.")
        out.append(("containerInsights", str(item["value"])))
    return tuple(out)


def _providers(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter("capacityProviders must be a list of strings.")
    for name in value:
        if name not in FARGATE_PROVIDERS:
            raise InvalidParameter(f"The specified capacity provider '{name}' is not in an ACTIVE state. "
                                   "berth's clusters support the FARGATE and FARGATE_SPOT capacity providers.")
    return list(dict.fromkeys(value))


def _strategy(value: Any, providers: tuple[str, ...] | None) -> tuple[m.CapacityProviderItem, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParameter("capacityProviderStrategy must be a list.")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("capacityProvider"), str):
            raise InvalidParameter("capacityProviderStrategy: every item needs a capacityProvider.")
        weight, base = item.get("weight", 0), item.get("base", 0)
        if not isinstance(weight, int) or not 0 <= weight <= 1000 or not isinstance(base, int) or not 0 <= base <= 100000:
            raise InvalidParameter("capacityProviderStrategy: weight must be 0-1000 and base 0-100000.")
        name = item["capacityProvider"]
        if providers is not None and name not in providers:
            raise InvalidParameter(f"The specified capacity provider strategy cannot contain a capacity provider "
                                   f"that is not associated with the cluster. Provider: {name}")
        out.append(m.CapacityProviderItem(name, weight, base))
    if sum(1 for i in out if i.base) > 1:
        raise InvalidParameter("capacityProviderStrategy: only one capacity provider can have a base.")
    if out and not any(i.weight for i in out) and not any(i.base for i in out):
        raise InvalidParameter("capacityProviderStrategy: at least one capacity provider needs a weight above 0.")
    return tuple(out)


def _choose_provider(strategy: tuple[m.CapacityProviderItem, ...], roll: float) -> str:
    """A single task: the provider with a base first, else weighted by `weight`."""
    with_base = [i for i in strategy if i.base]
    if with_base:
        return with_base[0].capacity_provider
    total = sum(i.weight for i in strategy)
    point = roll * total
    for item in strategy:
        point -= item.weight
        if point < 0:
            return item.capacity_provider
    return strategy[-1].capacity_provider


def _attribute(item: dict[str, Any], default_target: str) -> m.Attribute:
    name = item.get("name")
    if not isinstance(name, str) or not _ATTR_NAME_RE.match(name):
        raise InvalidParameter(f"attributes: invalid attribute name {name!r}.")
    value = item.get("value")
    if value is not None and (not isinstance(value, str) or not _ATTR_VALUE_RE.match(value)):
        raise InvalidParameter(f"attributes: invalid value {value!r} for attribute {name!r}.")
    return m.Attribute(name, value, str(item.get("targetType") or ""), str(item.get("targetId") or default_target))


def _container_override(item: dict[str, Any], spec: Any) -> m.ContainerOverride:
    name = item.get("name")
    if not isinstance(name, str) or spec.container(name) is None:
        raise InvalidParameter(f"Override for container named {name} is not a container in the TaskDefinition.")
    command = p.str_list(item, "command")
    env = tuple((str(e.get("name")), str(e.get("value", ""))) for e in p.obj_list(item, "environment"))
    return m.ContainerOverride(name=name, command=tuple(command) if command is not None else None, environment=env,
                               cpu=p.opt_int(item, "cpu", 0), memory=p.opt_int(item, "memory", 6),
                               memory_reservation=p.opt_int(item, "memoryReservation", 4))


def _network(value: Any) -> m.AwsVpcConfiguration | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParameter("networkConfiguration must be an object.")
    vpc = value.get("awsvpcConfiguration")
    if not isinstance(vpc, dict):
        raise InvalidParameter("networkConfiguration.awsvpcConfiguration is required.")
    subnets = p.str_list(vpc, "subnets", 16)
    if not subnets:
        raise InvalidParameter("subnets can not be empty.")
    groups = p.str_list(vpc, "securityGroups", 5) or []
    public = p.one_of(p.opt_str(vpc, "assignPublicIp"), "assignPublicIp", ("ENABLED", "DISABLED")) or "DISABLED"
    return m.AwsVpcConfiguration(tuple(subnets), tuple(groups), public)


def _constraints(value: Any, *, allow_distinct: bool) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidParameter("placementConstraints must be a list of objects.")
    items = tuple(scheduler.Constraint(str(v.get("type", "")), v.get("expression")) for v in value)
    scheduler.validate_constraints(items, allow_distinct=allow_distinct)
    return tuple((c.type, c.expression or "") for c in items)


def _strategies(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidParameter("placementStrategy must be a list of objects.")
    items = tuple(scheduler.Strategy(str(v.get("type", "")), v.get("field")) for v in value)
    scheduler.validate_strategies(items)
    return tuple((s.type, s.field or "") for s in items)


__all__ = ["AccountSetting", "EcsService", "Failure", "ClusterNotFound", "parse_task_definition"]
