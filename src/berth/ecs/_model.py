"""ECS records as the control plane stores them (aws-apis.md §2.2): clusters, container
instances, task definitions, tasks and services. Frozen values; changes are `replace`d copies
written back with put-if-version. Wire shapes live in berth.api.aws.ecs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# store kinds
CLUSTER = "ecs.cluster"
INSTANCE = "ecs.instance"
TASKDEF = "ecs.taskdef"
FAMILY = "ecs.family"           # per family: the last revision handed out (revisions are never reused)
TASK = "ecs.task"
SERVICE = "ecs.service"
TOKEN = "ecs.token"             # RunTask clientToken → task ARNs
SETTING = "ecs.setting"         # account settings
ATTRIBUTE_TARGET = "ecs.attr"   # custom attributes on non-instance targets

# task states in order (aws-apis.md §2.3)
TASK_STATES = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING",
               "DEPROVISIONING", "STOPPED")


def state_index(status: str) -> int:
    return TASK_STATES.index(status) if status in TASK_STATES else 0


@dataclass(frozen=True)
class Tag:
    key: str
    value: str = ""


@dataclass(frozen=True)
class CapacityProviderItem:
    capacity_provider: str
    weight: int = 0
    base: int = 0


@dataclass(frozen=True)
class Cluster:
    arn: str
    name: str
    region: str
    account: str
    created_at: float
    status: str = "ACTIVE"                      # ACTIVE | INACTIVE
    tags: tuple[Tag, ...] = ()
    settings: tuple[tuple[str, str], ...] = (("containerInsights", "disabled"),)
    capacity_providers: tuple[str, ...] = ()
    default_strategy: tuple[CapacityProviderItem, ...] = ()
    configuration: dict[str, object] = field(default_factory=dict)
    service_connect_namespace: str = ""


@dataclass(frozen=True)
class Attribute:
    name: str
    value: str | None = None
    target_type: str = "container-instance"
    target_id: str = ""


@dataclass(frozen=True)
class ContainerInstance:
    arn: str
    cluster_arn: str
    ec2_instance_id: str
    registered_at: float
    cpu: int                                    # registered CPU units
    memory: int                                 # registered MiB
    reserved_ports: tuple[int, ...] = (22, 2375, 2376, 51678, 51679, 51680)
    status: str = "ACTIVE"                      # ACTIVE | DRAINING | INACTIVE (deregistered)
    agent_connected: bool = False
    agent_id: str = ""                          # the agent that runs its tasks ("" = none: a client registered it)
    attributes: tuple[Attribute, ...] = ()
    agent_version: str = ""
    agent_hash: str = ""
    docker_version: str = ""
    tags: tuple[Tag, ...] = ()
    version: int = 1                            # ECS's own counter, bumped on every change
    capacity_provider: str = ""
    status_reason: str = ""

    def attribute_map(self) -> dict[str, str | None]:
        return {a.name: a.value for a in self.attributes}


@dataclass(frozen=True)
class TaskDefinition:
    arn: str
    family: str
    revision: int
    registered_at: float
    params: dict[str, object]                   # the RegisterTaskDefinition input (parsed on load)
    status: str = "ACTIVE"                      # ACTIVE | INACTIVE | DELETE_IN_PROGRESS
    deregistered_at: float | None = None
    registered_by: str = ""
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True)
class NetworkBinding:
    container_port: int
    host_port: int
    protocol: str = "tcp"
    bind_ip: str = "0.0.0.0"


@dataclass(frozen=True)
class TaskContainer:
    name: str
    arn: str
    image: str
    runtime_id: str = ""                        # the engine container id
    last_status: str = "PENDING"                # PENDING | RUNNING | STOPPED
    exit_code: int | None = None
    reason: str = ""
    network_bindings: tuple[NetworkBinding, ...] = ()
    health_status: str = "UNKNOWN"              # HEALTHY | UNHEALTHY | UNKNOWN
    image_digest: str = ""
    cpu: int = 0
    memory: int | None = None
    memory_reservation: int | None = None
    essential: bool = True


@dataclass(frozen=True)
class LbTarget:
    """A load-balancer target of a service task, as the service controller registered it."""

    target_group_arn: str
    id: str                                     # the instance's ec2InstanceId (bridge, host) or the task's IP (awsvpc)
    port: int


@dataclass(frozen=True)
class ContainerOverride:
    name: str
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    cpu: int | None = None
    memory: int | None = None
    memory_reservation: int | None = None


@dataclass(frozen=True)
class Task:
    arn: str
    cluster_arn: str
    task_definition_arn: str
    created_at: float
    container_instance_arn: str = ""
    group: str = ""                             # service:<name> | family:<family>
    started_by: str = ""
    launch_type: str = "EC2"                    # EC2 | EXTERNAL | FARGATE
    capacity_provider: str = ""
    desired_status: str = "RUNNING"             # RUNNING | STOPPED
    last_status: str = "PROVISIONING"
    health_status: str = "UNKNOWN"
    containers: tuple[TaskContainer, ...] = ()
    overrides: tuple[ContainerOverride, ...] = ()
    task_role_arn: str = ""
    execution_role_arn: str = ""
    cpu: str = ""
    memory: str = ""
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    started_at: float | None = None
    connectivity_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    execution_stopped_at: float | None = None
    stop_code: str = ""
    stopped_reason: str = ""
    version: int = 1                            # ECS's counter, bumped on every state change
    tags: tuple[Tag, ...] = ()
    private_ip: str = ""                        # awsvpc: the task's address
    eni_id: str = ""
    subnet_id: str = ""                         # awsvpc: the first subnet of its networkConfiguration
    security_groups: tuple[str, ...] = ()
    service_arn: str = ""
    deployment_id: str = ""
    client_token: str = ""
    enable_execute_command: bool = False
    platform_version: str = ""
    availability_zone: str = ""
    network_mode: str = "bridge"
    agent_seq: int = 0                          # last agent report applied (reports carry sequence numbers)
    reached_running: bool = False
    unhealthy_since: float | None = None
    # what placement reserved on the instance (the scheduler's accounting, not on the wire)
    reserved_cpu: int = 0
    reserved_memory: int = 0
    reserved_ports: tuple[tuple[int, str], ...] = ()
    placement_constraints: tuple[tuple[str, str], ...] = ()
    placement_strategy: tuple[tuple[str, str], ...] = ()
    # load balancing (the service controller's bookkeeping, not on the wire): a load-balanced
    # task that ran keeps its containers in DEACTIVATING until `lb_drain_until` (the agent waits
    # at most `lb_drain_seconds` plus a margin, so a dead controller cannot hold it forever)
    load_balanced: bool = False                 # its service registers it in target groups
    lb_targets: tuple[LbTarget, ...] = ()       # the targets registered for it
    lb_drain_seconds: float = 0.0               # the longest deregistration delay of their groups
    lb_drain_until: float | None = None         # deregistered: its containers may stop from then on

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ServiceEvent:
    id: str
    created_at: float
    message: str


@dataclass(frozen=True)
class CircuitBreaker:
    enable: bool = False
    rollback: bool = False


@dataclass(frozen=True)
class DeploymentConfiguration:
    maximum_percent: int = 200
    minimum_healthy_percent: int = 100
    circuit_breaker: CircuitBreaker = CircuitBreaker()


@dataclass(frozen=True)
class LoadBalancer:
    target_group_arn: str = ""
    load_balancer_name: str = ""
    container_name: str = ""
    container_port: int = 0


@dataclass(frozen=True)
class AwsVpcConfiguration:
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    assign_public_ip: str = "DISABLED"


@dataclass(frozen=True)
class Deployment:
    id: str                                     # ecs-svc/<digits>
    task_definition: str                        # ARN
    created_at: float
    updated_at: float
    status: str = "PRIMARY"                     # PRIMARY | ACTIVE | INACTIVE
    desired_count: int = 0
    failed_tasks: int = 0
    rollout_state: str = "IN_PROGRESS"          # IN_PROGRESS | COMPLETED | FAILED
    rollout_state_reason: str = ""
    launch_type: str = ""
    capacity_provider_strategy: tuple[CapacityProviderItem, ...] = ()
    network: AwsVpcConfiguration | None = None
    had_running_at_start: bool = False          # the circuit breaker ignores such deployments
    rollback_of: str = ""                       # the deployment this one rolled back


@dataclass(frozen=True)
class Service:
    arn: str
    name: str
    cluster_arn: str
    created_at: float
    task_definition: str
    desired_count: int
    status: str = "ACTIVE"                      # ACTIVE | DRAINING | INACTIVE
    launch_type: str = ""
    capacity_provider_strategy: tuple[CapacityProviderItem, ...] = ()
    deployment_configuration: DeploymentConfiguration = DeploymentConfiguration()
    deployments: tuple[Deployment, ...] = ()
    placement_constraints: tuple[tuple[str, str], ...] = ()   # (type, expression)
    placement_strategy: tuple[tuple[str, str], ...] = ()      # (type, field)
    network: AwsVpcConfiguration | None = None
    load_balancers: tuple[LoadBalancer, ...] = ()
    health_check_grace_period: int = 0
    scheduling_strategy: str = "REPLICA"
    events: tuple[ServiceEvent, ...] = ()
    tags: tuple[Tag, ...] = ()
    role_arn: str = ""
    propagate_tags: str = "NONE"
    enable_ecs_managed_tags: bool = False
    enable_execute_command: bool = False
    created_by: str = ""
    client_token: str = ""
    deleted_at: float | None = None
    # scheduler memory: tasks that failed to start in a row, and when launching may resume
    start_failures: int = 0
    launch_not_before: float = 0.0
    crash_restarts: int = 0                     # tasks that died after RUNNING in a row (berth's back-off)
    last_steady_at: float = 0.0
    seen_stopped: tuple[str, ...] = ()          # ids of STOPPED tasks already counted (controller memory)

    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)
