"""Services: CreateService, UpdateService, DeleteService, DescribeServices, ListServices.

These write desired state only (the service record and its deployments); the service
controller (berth.controllers) starts and stops tasks to match it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from berth.ecs import _model as m
from berth.ecs import _params as p
from berth.ecs._arns import Scope, child_id
from berth.ecs._context import Context, tags_in
from berth.ecs._errors import InvalidParameter, ServiceAlreadyExists, ServiceNotActive, ServiceNotFound
from berth.ecs._tasks import TaskOps, live

Params = Mapping[str, Any]
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
MAX_EVENTS = 100


def service_prefix(cluster: m.Cluster) -> str:
    return cluster.arn.replace(":cluster/", ":service/", 1) + "/"


class ServiceOps:
    def __init__(self, ctx: Context, tasks: TaskOps) -> None:
        self.ctx = ctx
        self.repo = ctx.repo
        self.tasks = tasks

    def get(self, cluster: m.Cluster, name: str) -> m.Service | None:
        return self.repo.get(m.Service, service_prefix(cluster) + name)

    def list(self, cluster: m.Cluster) -> list[m.Service]:
        return self.repo.list(m.Service, service_prefix(cluster))

    def deployment_id(self) -> str:
        return "ecs-svc/" + "".join(str(self.ctx.rng.randrange(10)) for _ in range(19))

    def create(self, scope: Scope, cluster: m.Cluster, params: Params, taskdef: m.TaskDefinition | None,
               launch: tuple[str, str, tuple[m.CapacityProviderItem, ...]],
               constraints: tuple[tuple[str, str], ...], strategies: tuple[tuple[str, str], ...],
               network: m.AwsVpcConfiguration | None) -> m.Service:
        name = p.req_str(params, "serviceName")
        if not _NAME_RE.match(name):
            raise InvalidParameter("serviceName can have up to 255 letters (uppercase and lowercase), numbers, "
                                   "underscores, and hyphens.")
        strategy_kind = p.one_of(p.opt_str(params, "schedulingStrategy"), "schedulingStrategy",
                                 ("REPLICA", "DAEMON")) or "REPLICA"
        desired = p.opt_int(params, "desiredCount", 0, 5000)
        if strategy_kind == "DAEMON" and desired is not None:
            raise InvalidParameter("The daemon scheduling strategy does not support a desired count for services.")
        if taskdef is None:
            raise InvalidParameter("taskDefinition can not be blank.")
        config = _deployment_configuration(p.obj(params, "deploymentConfiguration"), strategy_kind)
        controller = (p.obj(params, "deploymentController") or {}).get("type", "ECS")
        if controller != "ECS":
            raise InvalidParameter(f"berth supports only the ECS deployment controller (rolling updates); "
                                   f"deploymentController.type {controller!r} is not available.")
        launch_type, provider, strategy = launch
        if launch_type == "FARGATE" and strategy_kind == "DAEMON":
            raise InvalidParameter("The daemon scheduling strategy is not supported with the FARGATE launch type.")
        load_balancers = tuple(_load_balancer(lb, self.repo.spec(taskdef)) for lb in p.obj_list(params, "loadBalancers"))
        if len(load_balancers) > 5:
            raise InvalidParameter("loadBalancers can have at most 5 target groups.")
        grace = p.opt_int(params, "healthCheckGracePeriodSeconds", 0, 2147483647) or 0
        if grace and not load_balancers:
            pass  # ECS accepts it; it then applies to container health checks
        arn = service_prefix(cluster) + name
        now = self.ctx.clock()
        token = p.opt_str(params, "clientToken") or ""
        existing = self.repo.get_versioned(m.Service, arn)
        if existing is not None and existing[0].status != "INACTIVE":
            if token and existing[0].client_token == token:
                return existing[0]
            raise ServiceAlreadyExists("Creation of service was not idempotent.")
        deployment = m.Deployment(
            id=self.deployment_id(), task_definition=taskdef.arn, created_at=now, updated_at=now,
            desired_count=desired or 0, launch_type=launch_type if not strategy else "",
            capacity_provider_strategy=strategy, network=network)
        service = m.Service(
            arn=arn, name=name, cluster_arn=cluster.arn, created_at=now, task_definition=taskdef.arn,
            desired_count=desired or 0, launch_type=launch_type if not strategy else "",
            capacity_provider_strategy=strategy, deployment_configuration=config, deployments=(deployment,),
            placement_constraints=constraints, placement_strategy=strategies, network=network,
            load_balancers=load_balancers, health_check_grace_period=grace, scheduling_strategy=strategy_kind,
            tags=tags_in(params.get("tags")), role_arn=p.opt_str(params, "role") or "",
            propagate_tags=p.one_of(p.opt_str(params, "propagateTags"), "propagateTags",
                                    ("TASK_DEFINITION", "SERVICE", "NONE")) or "NONE",
            enable_ecs_managed_tags=bool(p.opt_bool(params, "enableECSManagedTags")),
            enable_execute_command=bool(p.opt_bool(params, "enableExecuteCommand")),
            created_by=f"arn:aws:iam::{scope.account}:root", client_token=token)
        if existing is None:
            self.repo.create(m.Service, arn, service)
        else:  # an INACTIVE service of that name is replaced
            self.repo.store.put(m.SERVICE, arn, _encode(service), expected_version=existing[1])
        return service

    def find(self, cluster: m.Cluster, ref: str, field: str = "service") -> m.Service:
        name = child_id(ref, "service", cluster.name, field)
        found = self.get(cluster, name)
        if found is None:
            raise ServiceNotFound()
        return found

    def update(self, scope: Scope, cluster: m.Cluster, params: Params, taskdef: m.TaskDefinition | None,
               launch: tuple[str, str, tuple[m.CapacityProviderItem, ...]] | None,
               constraints: tuple[tuple[str, str], ...] | None, strategies: tuple[tuple[str, str], ...] | None,
               network: m.AwsVpcConfiguration | None) -> m.Service:
        service = self.find(cluster, p.req_str(params, "service"))
        if service.status != "ACTIVE":
            raise ServiceNotActive()
        desired = p.opt_int(params, "desiredCount", 0, 5000)
        if desired is not None and service.scheduling_strategy == "DAEMON":
            raise InvalidParameter("The daemon scheduling strategy does not support a desired count for services.")
        config_in = p.obj(params, "deploymentConfiguration")
        force = bool(p.opt_bool(params, "forceNewDeployment"))
        grace = p.opt_int(params, "healthCheckGracePeriodSeconds", 0, 2147483647)
        load_balancers = None
        if params.get("loadBalancers") is not None:
            current = taskdef or self.repo.get(m.TaskDefinition, service.task_definition)
            spec = self.repo.spec(current) if current else None
            load_balancers = tuple(_load_balancer(lb, spec) for lb in p.obj_list(params, "loadBalancers"))
            if len(load_balancers) > 5:
                raise InvalidParameter("loadBalancers can have at most 5 target groups.")
        now = self.ctx.clock()

        def change(s: m.Service) -> m.Service:
            if s.status != "ACTIVE":
                raise ServiceNotActive()
            new = s
            if desired is not None:
                new = replace(new, desired_count=desired)
            if config_in is not None:
                new = replace(new, deployment_configuration=_deployment_configuration(
                    config_in, s.scheduling_strategy, s.deployment_configuration))
            if grace is not None:
                new = replace(new, health_check_grace_period=grace)
            if constraints is not None:
                new = replace(new, placement_constraints=constraints)
            if strategies is not None:
                new = replace(new, placement_strategy=strategies)
            if load_balancers is not None:
                new = replace(new, load_balancers=load_balancers)
            # ECS: a changed load balancer configuration starts new tasks with it, then stops the old ones
            rollout = force or (taskdef is not None and taskdef.arn != s.task_definition) or (
                network is not None and network != s.network) or launch is not None or (
                load_balancers is not None and load_balancers != s.load_balancers)
            if rollout:
                launch_type, _provider, strategy = launch or (s.launch_type, "", s.capacity_provider_strategy)
                deployment = m.Deployment(
                    id=self.deployment_id(), task_definition=taskdef.arn if taskdef else s.task_definition,
                    created_at=now, updated_at=now, desired_count=new.desired_count,
                    launch_type=launch_type if not strategy else "", capacity_provider_strategy=strategy,
                    network=network or s.network)
                old = tuple(replace(d, status="ACTIVE", updated_at=now) for d in s.deployments)
                new = replace(new, task_definition=deployment.task_definition, deployments=(deployment,) + old,
                              network=network or s.network, launch_type=deployment.launch_type,
                              capacity_provider_strategy=strategy, start_failures=0, launch_not_before=0.0,
                              crash_restarts=0)
            else:
                new = replace(new, deployments=tuple(
                    replace(d, desired_count=new.desired_count, updated_at=now) if d.status == "PRIMARY" else d
                    for d in new.deployments))
            return new

        return self.repo.update(m.Service, service.arn, change) or service

    def delete(self, cluster: m.Cluster, ref: str, force: bool) -> m.Service:
        service = self.find(cluster, ref)
        if service.status == "INACTIVE":
            raise ServiceNotActive()
        if service.status == "ACTIVE" and service.desired_count > 0 and not force and (
                service.scheduling_strategy == "REPLICA"):
            raise InvalidParameter("The service cannot be stopped while it is scaled above 0.")
        now = self.ctx.clock()
        return self.repo.update(m.Service, service.arn, lambda s: replace(
            s, status="DRAINING", desired_count=0, deleted_at=now) if s.status == "ACTIVE" else None) or service

    def counts(self, service: m.Service) -> dict[str, dict[str, int]]:
        """Per deployment id: running, pending and failed tasks (and "" for the service)."""
        cluster_prefix = service.cluster_arn.replace(":cluster/", ":task/", 1) + "/"
        out: dict[str, dict[str, int]] = {"": {"running": 0, "pending": 0}}
        for d in service.deployments:
            out[d.id] = {"running": 0, "pending": 0}
        for task in self.repo.list(m.Task, cluster_prefix):
            if task.group != f"service:{service.name}" or not live(task) or task.desired_status != "RUNNING":
                continue
            key = "running" if task.last_status == "RUNNING" else "pending"
            out[""][key] += 1
            if task.deployment_id in out:
                out[task.deployment_id][key] += 1
        return out


def _encode(service: m.Service) -> dict[str, Any]:
    from berth.state.codec import encode

    value: dict[str, Any] = encode(service)
    return value


def _deployment_configuration(value: dict[str, Any] | None, strategy: str,
                              current: m.DeploymentConfiguration | None = None) -> m.DeploymentConfiguration:
    base = current or (m.DeploymentConfiguration(100, 0) if strategy == "DAEMON" else m.DeploymentConfiguration())
    if value is None:
        return base
    maximum = p.opt_int(value, "maximumPercent", 0, 2000)
    minimum = p.opt_int(value, "minimumHealthyPercent", 0, 100)
    maximum = base.maximum_percent if maximum is None else maximum
    minimum = base.minimum_healthy_percent if minimum is None else minimum
    if strategy == "DAEMON" and maximum != 100:
        raise InvalidParameter("The daemon scheduling strategy requires a maximumPercent of 100.")
    if strategy == "REPLICA" and maximum < 100:
        raise InvalidParameter("deploymentConfiguration.maximumPercent must be at least 100.")
    if minimum > maximum:
        raise InvalidParameter("deploymentConfiguration.minimumHealthyPercent must not exceed maximumPercent.")
    breaker = base.circuit_breaker
    cb = value.get("deploymentCircuitBreaker")
    if cb is not None:
        if not isinstance(cb, dict) or not isinstance(cb.get("enable"), bool) or not isinstance(cb.get("rollback"), bool):
            raise InvalidParameter("deploymentCircuitBreaker needs boolean 'enable' and 'rollback'.")
        breaker = m.CircuitBreaker(cb["enable"], cb["rollback"])
    return m.DeploymentConfiguration(maximum, minimum, breaker)


def _load_balancer(item: dict[str, Any], spec: Any) -> m.LoadBalancer:
    target_group = p.opt_str(item, "targetGroupArn") or ""
    name = p.opt_str(item, "loadBalancerName") or ""
    container = p.opt_str(item, "containerName") or ""
    port = p.opt_int(item, "containerPort", 1, 65535) or 0
    if not target_group and not name:
        raise InvalidParameter("loadBalancers: a targetGroupArn is required.")
    if spec is not None:
        definition = spec.container(container)
        if definition is None:
            raise InvalidParameter(f"The container {container} does not exist in the task definition.")
        if port and not any(pm.container_port == port for pm in definition.port_mappings):
            raise InvalidParameter(f"The container {container} did not have a container port {port} defined.")
    return m.LoadBalancer(target_group, name, container, port)
