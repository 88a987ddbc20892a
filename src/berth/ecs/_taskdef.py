"""The ECS task definition as a typed, validated value.

`parse_task_definition` turns a RegisterTaskDefinition request (decoded JSON, as boto3 or the AWS
CLI send it) into frozen dataclasses, refusing what ECS refuses with ECS's error codes and
messages, each naming the field. `to_wire` renders the `taskDefinition` shape DescribeTaskDefinition
returns. Pure: no I/O and no clock; the caller passes revision, ARN and timestamps.

Members berth does not model are not lost: every container and the task itself keep their JSON
as registered (`raw`, normalised with the defaults ECS fills in) so output echoes what was sent.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from berth.ecs._errors import ClientError, InvalidParameter, UnsupportedFeature
from berth.ecs._taskdef_wire import Obj, type_error

__all__ = [
    "ContainerDefinition",
    "Dependency",
    "Device",
    "DockerVolumeConfiguration",
    "HealthCheck",
    "LinuxParameters",
    "LogConfiguration",
    "MountPoint",
    "PlacementConstraint",
    "PortMapping",
    "RestartPolicy",
    "Secret",
    "TaskDefinitionSpec",
    "Tmpfs",
    "Ulimit",
    "Volume",
    "VolumeFrom",
    "check_fargate",
    "compatibilities",
    "parse_task_definition",
    "requires_attributes",
    "to_wire",
]

# ---------------------------------------------------------------------------------------------
# Values ECS accepts (botocore's ECS model enums and the developer guide's limits)

NETWORK_MODES = ("bridge", "host", "awsvpc", "none")
PROTOCOLS = ("tcp", "udp")
APP_PROTOCOLS = ("http", "http2", "grpc")
CONDITIONS = ("START", "COMPLETE", "SUCCESS", "HEALTHY")
LOG_DRIVERS = ("json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "awsfirelens")
ULIMIT_NAMES = (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
    "rtprio", "rttime", "sigpending", "stack",
)
COMPATIBILITIES = ("EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES")
PID_MODES = ("host", "task")
IPC_MODES = ("host", "task", "none")
VOLUME_SCOPES = ("task", "shared")
DEVICE_PERMISSIONS = ("read", "write", "mknod")
# KernelCapabilities.add/drop as the ECS API reference lists them.
CAPABILITIES = frozenset((
    "ALL", "AUDIT_CONTROL", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH",
    "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN",
    "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE",
    "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG",
    "WAKE_ALARM",
))
# Volume configurations ECS knows and berth does not model: kept in raw, named on the Volume so
# the runtime can refuse them (a definition using them is still valid ECS).
OTHER_VOLUME_KINDS = ("efsVolumeConfiguration", "fsxWindowsFileServerVolumeConfiguration", "s3filesVolumeConfiguration")

MAX_CONTAINERS = 10
MAX_PLACEMENT_CONSTRAINTS = 10
MAX_TAGS = 50
MAX_SIZE = 32 * 1024  # bytes of request JSON (aws-apis.md §2.2)
MIN_CONTAINER_MEMORY = 6  # MiB; Docker refuses less
TASK_CPU_RANGE = (128, 196608)
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")
NAME_RULE = "Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."

# Fargate's task sizes: cpu units → the memory values (MiB) allowed with it.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# Members of DescribeTaskDefinition's output that a request cannot set: dropped from raw so a
# describe output fed back to register (a common CI pattern) does not smuggle them through.
OUTPUT_ONLY = frozenset((
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt",
    "registeredBy", "deregisteredAt", "deleteRequestedAt",
))

# ---------------------------------------------------------------------------------------------
# The typed value


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int  # 0 = dynamic (bridge only); in host/awsvpc always = container_port
    protocol: str = "tcp"
    name: str | None = None
    app_protocol: str | None = None


@dataclass(frozen=True)
class Dependency:
    container_name: str
    condition: str  # START | COMPLETE | SUCCESS | HEALTHY


@dataclass(frozen=True)
class HealthCheck:
    command: tuple[str, ...]
    interval: int = 30
    timeout: int = 5
    retries: int = 3
    start_period: int = 0


@dataclass(frozen=True)
class MountPoint:
    source_volume: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class VolumeFrom:
    source_container: str
    read_only: bool = False


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Tmpfs:
    container_path: str
    size: int  # MiB
    mount_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Device:
    host_path: str
    container_path: str | None
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinuxParameters:
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    init_process_enabled: bool = False
    tmpfs: tuple[Tmpfs, ...] = ()
    devices: tuple[Device, ...] = ()
    shared_memory_size: int | None = None  # MiB
    max_swap: int | None = None  # MiB
    swappiness: int | None = None  # 0..100


@dataclass(frozen=True)
class Secret:
    name: str
    value_from: str


@dataclass(frozen=True)
class LogConfiguration:
    driver: str
    options: tuple[tuple[str, str], ...] = ()
    secret_options: tuple[Secret, ...] = ()


@dataclass(frozen=True)
class RestartPolicy:
    enabled: bool
    ignored_exit_codes: tuple[int, ...] = ()
    restart_attempt_period: int = 300  # seconds, 60..1800


@dataclass(frozen=True)
class ContainerDefinition:
    name: str
    image: str
    cpu: int = 0
    memory: int | None = None
    memory_reservation: int | None = None
    port_mappings: tuple[PortMapping, ...] = ()
    essential: bool = True
    entry_point: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    environment_files: tuple[str, ...] = ()  # local file paths or arn:aws:s3:::bucket/key, as given
    working_directory: str | None = None
    user: str | None = None
    links: tuple[str, ...] = ()
    hostname: str | None = None
    extra_hosts: tuple[tuple[str, str], ...] = ()  # (hostname, ipAddress)
    dns_servers: tuple[str, ...] = ()
    dns_search_domains: tuple[str, ...] = ()
    ulimits: tuple[Ulimit, ...] = ()
    linux_parameters: LinuxParameters | None = None
    readonly_root_filesystem: bool = False
    privileged: bool = False
    disable_networking: bool = False
    interactive: bool = False
    pseudo_terminal: bool = False
    stop_timeout: int | None = None
    start_timeout: int | None = None
    mount_points: tuple[MountPoint, ...] = ()
    volumes_from: tuple[VolumeFrom, ...] = ()
    depends_on: tuple[Dependency, ...] = ()
    health_check: HealthCheck | None = None
    log_configuration: LogConfiguration | None = None
    docker_labels: tuple[tuple[str, str], ...] = ()
    repository_credentials: str | None = None  # repositoryCredentials.credentialsParameter
    secrets: tuple[Secret, ...] = ()
    docker_security_options: tuple[str, ...] = ()
    system_controls: tuple[tuple[str, str], ...] = ()  # (namespace, value)
    restart_policy: RestartPolicy | None = None
    # The container definition as registered (normalised), for output.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class DockerVolumeConfiguration:
    scope: str = "task"
    autoprovision: bool = False
    driver: str | None = None
    driver_opts: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Volume:
    """A task volume; with neither host_source_path nor docker (nor other) an empty scratch volume."""

    name: str
    host_source_path: str | None = None
    docker: DockerVolumeConfiguration | None = None
    other: str | None = None  # e.g. "efsVolumeConfiguration": a kind berth does not model
    configured_at_launch: bool = False


@dataclass(frozen=True)
class PlacementConstraint:
    type: str
    expression: str | None = None


@dataclass(frozen=True)
class TaskDefinitionSpec:
    family: str
    containers: tuple[ContainerDefinition, ...]
    network_mode: str = "bridge"
    task_role_arn: str | None = None
    execution_role_arn: str | None = None
    volumes: tuple[Volume, ...] = ()
    placement_constraints: tuple[PlacementConstraint, ...] = ()
    requires_compatibilities: tuple[str, ...] = ()
    cpu: int | None = None  # task-level cpu units (from "1024", "1 vCPU", ...)
    memory: int | None = None  # task-level MiB (from "512", "2 GB", ...)
    pid_mode: str | None = None
    ipc_mode: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    # The request's task-level members as registered (normalised), for output.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def container(self, name: str) -> ContainerDefinition | None:
        return next((c for c in self.containers if c.name == name), None)

    def reserved_cpu(self) -> int:
        """CPU units the scheduler reserves: the task's, else the sum of its containers'."""
        return self.cpu if self.cpu is not None else sum(c.cpu for c in self.containers)

    def reserved_memory(self) -> int:
        """MiB the scheduler reserves: the task's, else per container the hard limit or, without
        one, the soft reservation."""
        if self.memory is not None:
            return self.memory
        return sum(_container_memory(c) for c in self.containers)

    def fixed_host_ports(self) -> tuple[tuple[int, str], ...]:
        """(port, protocol) of every non-dynamic host port, in definition order. An awsvpc task
        has a network namespace (ENI on AWS) of its own and publishes nothing on the host, so it
        takes none of the instance's ports: copies of it share an instance, as on ECS."""
        if self.network_mode not in ("bridge", "host"):
            return ()
        return tuple(
            (pm.host_port, pm.protocol) for c in self.containers for pm in c.port_mappings if pm.host_port
        )


def _container_memory(c: ContainerDefinition) -> int:
    if c.memory is not None:
        return c.memory
    return c.memory_reservation or 0


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_task_definition(params: Mapping[str, Any]) -> TaskDefinitionSpec:
    """The RegisterTaskDefinition request as a validated TaskDefinitionSpec.

    Raises ClientError (ClientException) or InvalidParameter naming the offending field.
    """
    top = Obj.of(params, "")
    _check_size(params)
    family = _family(top.str_("family"))
    network_mode = _network_mode(top.str_("networkMode"))
    task_cpu = _task_cpu(top.get("cpu"))
    task_memory = _task_memory(top.get("memory"))
    containers = _containers(top, network_mode)
    volumes = _volumes(top)
    spec = TaskDefinitionSpec(
        family=family,
        containers=containers,
        network_mode=network_mode,
        task_role_arn=top.str_("taskRoleArn") or None,
        execution_role_arn=top.str_("executionRoleArn") or None,
        volumes=volumes,
        placement_constraints=_placement_constraints(top),
        requires_compatibilities=_requires_compatibilities(top),
        cpu=task_cpu,
        memory=task_memory,
        pid_mode=_enum(top.str_("pidMode"), PID_MODES, "pidMode"),
        ipc_mode=_enum(top.str_("ipcMode"), IPC_MODES, "ipcMode"),
        tags=_tags(top),
        raw=_task_raw(params, network_mode, task_cpu, task_memory, volumes),
    )
    _validate(spec)
    if "FARGATE" in spec.requires_compatibilities:
        check_fargate(spec)
    return spec


def _check_size(params: Mapping[str, Any]) -> None:
    try:
        size = len(json.dumps(params, separators=(",", ":"), default=str).encode())
    except (TypeError, ValueError) as exc:  # e.g. a circular structure handed in by a caller
        raise ClientError(f"Invalid task definition: {exc}") from None
    if size > MAX_SIZE:
        raise ClientError(
            f"Invalid task definition: its size exceeds the limit. Actual length: '{size}'. "
            f"Max allowed length is '{MAX_SIZE}' bytes."
        )


def _family(family: str | None) -> str:
    if not family:
        raise ClientError("Family should not be null or empty.")
    if not NAME_RE.match(family):
        raise ClientError(f"Family contains invalid characters: '{family}'. {NAME_RULE}")
    return family


def _network_mode(mode: str | None) -> str:
    if mode is None:
        return "bridge"
    if mode not in NETWORK_MODES:
        raise ClientError(f"Invalid networkMode '{mode}'. Valid values: {', '.join(NETWORK_MODES)}")
    return mode


def _enum(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise ClientError(f"Invalid {what} '{value}'. Valid values: {', '.join(allowed)}")
    return value


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_CPU_RE = re.compile(rf"^\s*{_NUMBER}\s*(vcpus?)?\s*$", re.IGNORECASE)
_MEMORY_RE = re.compile(rf"^\s*{_NUMBER}\s*(gb|gib|mb|mib)?\s*$", re.IGNORECASE)
_SEE_GUIDE = "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
_BAD_CPU = f"Invalid 'cpu' setting for task. {_SEE_GUIDE}"
_BAD_MEMORY = f"Invalid 'memory' setting for task. {_SEE_GUIDE}"


def _task_size(value: object, pattern: re.Pattern[str], scaled_units: tuple[str, ...], path: str) -> int | None:
    """An integer from "1024", "1 vCPU", ".25 vcpu", "2 GB": a unit in scaled_units multiplies by 1024."""
    if value is None:
        return None
    # The model types these as strings; CloudFormation-style callers send numbers, which mean the same.
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, str):
        raise type_error(path, value, "string")
    match = pattern.match(value)
    if not match:
        return -1
    try:
        amount = Decimal(match.group(1))
    except InvalidOperation:
        return -1
    if match.group(2) and match.group(2).lower() in scaled_units:
        amount *= 1024
    if amount != amount.to_integral_value():
        return -1  # "0.1 vCPU" is not a whole number of units
    return int(amount)


def _task_cpu(value: object) -> int | None:
    cpu = _task_size(value, _CPU_RE, ("vcpu", "vcpus"), "cpu")
    if cpu is not None and not TASK_CPU_RANGE[0] <= cpu <= TASK_CPU_RANGE[1]:
        raise ClientError(_BAD_CPU)
    return cpu


def _task_memory(value: object) -> int | None:
    memory = _task_size(value, _MEMORY_RE, ("gb", "gib"), "memory")
    if memory is not None and memory < MIN_CONTAINER_MEMORY:
        raise ClientError(_BAD_MEMORY)
    return memory


def _containers(top: Obj, network_mode: str) -> tuple[ContainerDefinition, ...]:
    items = top.objs("containerDefinitions")
    if not items:
        raise ClientError("TaskDefinition must contain at least one container definition.")
    if len(items) > MAX_CONTAINERS:
        raise ClientError(
            f"Too many containers in containerDefinitions: {len(items)}. The maximum is {MAX_CONTAINERS}."
        )
    return tuple(_container(o, network_mode) for o in items)


def _container(o: Obj, network_mode: str) -> ContainerDefinition:
    name = o.str_("name")
    if not name:
        raise ClientError("Container.name should not be null or empty.")
    if not NAME_RE.match(name):
        raise ClientError(f"Invalid 'name' setting for container '{name}'. {NAME_RULE}")
    image = o.str_("image")
    if not image:
        raise ClientError("Container.image should not be null or empty.")
    cpu = o.int_("cpu") or 0
    if cpu < 0:
        raise ClientError(f"Invalid 'cpu' setting for container '{name}'. The value must not be negative.")
    memory, reservation = _container_memory_settings(o, name)
    stop_timeout = _non_negative(o, "stopTimeout", name)
    start_timeout = _non_negative(o, "startTimeout", name)
    credentials = o.obj("repositoryCredentials")
    c = ContainerDefinition(
        name=name,
        image=image,
        cpu=cpu,
        memory=memory,
        memory_reservation=reservation,
        port_mappings=tuple(_port_mapping(p, name, network_mode) for p in o.objs("portMappings")),
        essential=_flag(o, "essential", True),
        entry_point=o.strs("entryPoint"),
        command=o.strs("command"),
        environment=tuple(_environment(e, name) for e in o.objs("environment")),
        environment_files=tuple(_environment_file(e) for e in o.objs("environmentFiles")),
        working_directory=o.str_("workingDirectory"),
        user=o.str_("user"),
        links=o.strs("links") or (),
        hostname=o.str_("hostname"),
        extra_hosts=tuple(_extra_host(h) for h in o.objs("extraHosts")),
        dns_servers=o.strs("dnsServers") or (),
        dns_search_domains=o.strs("dnsSearchDomains") or (),
        ulimits=tuple(_ulimit(u, name) for u in o.objs("ulimits")),
        linux_parameters=_linux_parameters(o.obj("linuxParameters"), name),
        readonly_root_filesystem=_flag(o, "readonlyRootFilesystem", False),
        privileged=_flag(o, "privileged", False),
        disable_networking=_flag(o, "disableNetworking", False),
        interactive=_flag(o, "interactive", False),
        pseudo_terminal=_flag(o, "pseudoTerminal", False),
        stop_timeout=stop_timeout,
        start_timeout=start_timeout,
        mount_points=tuple(_mount_point(m, name) for m in o.objs("mountPoints")),
        volumes_from=tuple(_volume_from(v, name) for v in o.objs("volumesFrom")),
        depends_on=tuple(_dependency(d, name) for d in o.objs("dependsOn")),
        health_check=_health_check(o.obj("healthCheck"), name),
        log_configuration=_log_configuration(o.obj("logConfiguration"), name),
        docker_labels=o.str_map("dockerLabels"),
        repository_credentials=_credentials(credentials),
        secrets=tuple(_secret(s) for s in o.objs("secrets")),
        docker_security_options=o.strs("dockerSecurityOptions") or (),
        system_controls=tuple(_system_control(s) for s in o.objs("systemControls")),
        restart_policy=_restart_policy(o.obj("restartPolicy"), name),
    )
    return _with_raw(c, o)


def _flag(o: Obj, key: str, default: bool) -> bool:
    value = o.bool_(key)
    return default if value is None else value


def _non_negative(o: Obj, key: str, container: str) -> int | None:
    value = o.int_(key)
    if value is not None and value < 0:
        raise ClientError(f"Invalid '{key}' setting for container '{container}'. The value must not be negative.")
    return value


def _container_memory_settings(o: Obj, name: str) -> tuple[int | None, int | None]:
    memory = o.int_("memory")
    reservation = o.int_("memoryReservation")
    for key, value in (("memory", memory), ("memoryReservation", reservation)):
        if value is not None and value < MIN_CONTAINER_MEMORY:
            raise ClientError(
                f"Invalid '{key}' setting for container '{name}'. The minimum allowed memory is "
                f"{MIN_CONTAINER_MEMORY} MiB."
            )
    if memory is not None and reservation is not None and memory < reservation:
        raise ClientError(
            f"Invalid setting for container '{name}'. 'memory' must be greater than or equal to 'memoryReservation'."
        )
    return memory, reservation


def _port_mapping(o: Obj, container: str, network_mode: str) -> PortMapping:
    if network_mode == "none":
        raise ClientError(
            f"Invalid 'portMappings' setting for container '{container}'. Port mappings are not supported "
            "when networkMode=none."
        )
    container_port = o.int_("containerPort")
    if container_port is None:
        if o.has("containerPortRange"):
            raise UnsupportedFeature(
                f"berth does not support containerPortRange ({o.at('containerPortRange')}) yet."
            )
        raise ClientError(f"Invalid 'portMappings' setting for container '{container}'. containerPort is required.")
    host_port = o.int_("hostPort")
    if not 1 <= container_port <= 65535:
        raise ClientError(
            f"Invalid 'containerPort' setting for container '{container}': {container_port}. "
            "Valid ports are 1 to 65535."
        )
    if host_port is not None and not 0 <= host_port <= 65535:
        raise ClientError(
            f"Invalid 'hostPort' setting for container '{container}': {host_port}. Valid ports are 0 to 65535."
        )
    if network_mode in ("host", "awsvpc"):
        # 0 is how some tools spell "not set"; anything else must equal the container port.
        if host_port and host_port != container_port:
            raise ClientError(
                f"When networkMode={network_mode}, the host ports and container ports in port mappings must match."
            )
        host_port = container_port
    protocol = o.str_("protocol") or "tcp"
    if protocol not in PROTOCOLS:
        raise ClientError(
            f"Invalid 'protocol' setting for container '{container}': '{protocol}'. Valid values: tcp, udp"
        )
    app_protocol = o.str_("appProtocol")
    if app_protocol is not None and app_protocol not in APP_PROTOCOLS:
        raise ClientError(
            f"Invalid 'appProtocol' setting for container '{container}': '{app_protocol}'. "
            f"Valid values: {', '.join(APP_PROTOCOLS)}"
        )
    return PortMapping(container_port, host_port or 0, protocol, o.str_("name"), app_protocol)


def _environment(o: Obj, container: str) -> tuple[str, str]:
    name = o.str_("name")
    if not name:
        raise ClientError(f"Invalid 'environment' setting for container '{container}'. name is required.")
    return name, o.str_("value") or ""


def _environment_file(o: Obj) -> str:
    value = o.str_("value")
    if not value:
        raise ClientError(f"{o.at('value')} should not be null or empty.")
    kind = o.str_("type")
    if kind != "s3":
        raise ClientError(f"Invalid {o.at('type')} '{kind}'. Valid values: s3")
    return value


def _extra_host(o: Obj) -> tuple[str, str]:
    hostname, address = o.str_("hostname"), o.str_("ipAddress")
    if not hostname or not address:
        raise ClientError(f"{o.path}: hostname and ipAddress are required.")
    return hostname, address


def _ulimit(o: Obj, container: str) -> Ulimit:
    name, soft, hard = o.str_("name"), o.int_("softLimit"), o.int_("hardLimit")
    if name is None or soft is None or hard is None:
        raise ClientError(f"{o.path}: name, softLimit and hardLimit are required.")
    if name not in ULIMIT_NAMES:
        raise ClientError(
            f"Invalid 'ulimits' setting for container '{container}': unknown ulimit name '{name}'. "
            f"Valid values: {', '.join(ULIMIT_NAMES)}"
        )
    if soft > hard:
        raise ClientError(
            f"Invalid 'ulimits' setting for container '{container}': the softLimit of '{name}' ({soft}) "
            f"must not exceed its hardLimit ({hard})."
        )
    return Ulimit(name, soft, hard)


def _linux_parameters(o: Obj | None, container: str) -> LinuxParameters | None:
    if o is None:
        return None
    caps = o.obj("capabilities")
    cap_add = (caps.strs("add") if caps else None) or ()
    cap_drop = (caps.strs("drop") if caps else None) or ()
    for cap in cap_add + cap_drop:
        if cap not in CAPABILITIES:
            raise ClientError(
                f"Invalid 'linuxParameters.capabilities' setting for container '{container}': unknown capability "
                f"'{cap}'."
            )
    shm = o.int_("sharedMemorySize")
    if shm is not None and shm <= 0:
        raise ClientError(f"Invalid 'linuxParameters.sharedMemorySize' setting for container '{container}'.")
    max_swap = o.int_("maxSwap")
    if max_swap is not None and max_swap < 0:
        raise ClientError(f"Invalid 'linuxParameters.maxSwap' setting for container '{container}'.")
    swappiness = o.int_("swappiness")
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise ClientError(
            f"Invalid 'linuxParameters.swappiness' setting for container '{container}'. Valid values are 0 to 100."
        )
    return LinuxParameters(
        cap_add=cap_add,
        cap_drop=cap_drop,
        init_process_enabled=_flag(o, "initProcessEnabled", False),
        tmpfs=tuple(_tmpfs(t, container) for t in o.objs("tmpfs")),
        devices=tuple(_device(d, container) for d in o.objs("devices")),
        shared_memory_size=shm,
        max_swap=max_swap,
        swappiness=swappiness,
    )


def _tmpfs(o: Obj, container: str) -> Tmpfs:
    path, size = o.str_("containerPath"), o.int_("size")
    if not path or size is None:
        raise ClientError(f"{o.path}: containerPath and size are required.")
    if size <= 0:
        raise ClientError(f"Invalid 'tmpfs' setting for container '{container}': size must be positive.")
    return Tmpfs(path, size, o.strs("mountOptions") or ())


def _device(o: Obj, container: str) -> Device:
    host_path = o.str_("hostPath")
    if not host_path:
        raise ClientError(f"{o.at('hostPath')} should not be null or empty.")
    permissions = o.strs("permissions") or ()
    for p in permissions:
        if p not in DEVICE_PERMISSIONS:
            raise ClientError(
                f"Invalid 'devices' setting for container '{container}': permission '{p}'. "
                f"Valid values: {', '.join(DEVICE_PERMISSIONS)}"
            )
    return Device(host_path, o.str_("containerPath"), permissions)


def _mount_point(o: Obj, container: str) -> MountPoint:
    source, path = o.str_("sourceVolume"), o.str_("containerPath")
    if not source:
        raise ClientError(f"Invalid 'mountPoints' setting for container '{container}'. sourceVolume is required.")
    if not path:
        raise ClientError(f"Invalid 'mountPoints' setting for container '{container}'. containerPath is required.")
    return MountPoint(source, path, _flag(o, "readOnly", False))


def _volume_from(o: Obj, container: str) -> VolumeFrom:
    source = o.str_("sourceContainer")
    if not source:
        raise ClientError(f"Invalid 'volumesFrom' setting for container '{container}'. sourceContainer is required.")
    return VolumeFrom(source, _flag(o, "readOnly", False))


def _dependency(o: Obj, container: str) -> Dependency:
    target, condition = o.str_("containerName"), o.str_("condition")
    if not target or not condition:
        raise ClientError(
            f"Invalid 'dependsOn' setting for container '{container}'. containerName and condition are required."
        )
    if condition not in CONDITIONS:
        raise ClientError(
            f"Invalid 'dependsOn' setting for container '{container}': condition '{condition}'. "
            f"Valid values: {', '.join(CONDITIONS)}"
        )
    return Dependency(target, condition)


_HEALTH_RANGES = (("interval", 5, 300, 30), ("timeout", 2, 60, 5), ("retries", 1, 10, 3), ("startPeriod", 0, 300, 0))


def _health_check(o: Obj | None, container: str) -> HealthCheck | None:
    if o is None:
        return None
    command = o.strs("command")
    if not command:
        raise ClientError(f"Invalid 'healthCheck' setting for container '{container}'. command is required.")
    if command[0] not in ("CMD", "CMD-SHELL") or len(command) < 2:
        raise ClientError(
            f"Invalid 'healthCheck.command' setting for container '{container}'. The command must be "
            "[\"CMD\", executable, args...] or [\"CMD-SHELL\", \"command\"]."
        )
    values: dict[str, int] = {}
    for key, low, high, default in _HEALTH_RANGES:
        value = o.int_(key)
        if value is not None and not low <= value <= high:
            raise ClientError(
                f"Invalid 'healthCheck.{key}' setting for container '{container}': {value}. "
                f"Valid values are {low} to {high}."
            )
        values[key] = default if value is None else value
    return HealthCheck(command, values["interval"], values["timeout"], values["retries"], values["startPeriod"])


def _log_configuration(o: Obj | None, container: str) -> LogConfiguration | None:
    if o is None:
        return None
    driver = o.str_("logDriver")
    if not driver:
        raise ClientError(f"Invalid 'logConfiguration' setting for container '{container}'. logDriver is required.")
    if driver not in LOG_DRIVERS:
        raise ClientError(
            f"Invalid 'logConfiguration.logDriver' setting for container '{container}': '{driver}'. "
            f"Valid values: {', '.join(LOG_DRIVERS)}"
        )
    return LogConfiguration(driver, o.str_map("options"), tuple(_secret(s) for s in o.objs("secretOptions")))


def _credentials(o: Obj | None) -> str | None:
    if o is None:
        return None
    parameter = o.str_("credentialsParameter")
    if not parameter:
        raise ClientError(f"{o.at('credentialsParameter')} should not be null or empty.")
    return parameter


def _secret(o: Obj) -> Secret:
    name, value_from = o.str_("name"), o.str_("valueFrom")
    if not name or not value_from:
        raise ClientError(f"{o.path}: name and valueFrom are required.")
    return Secret(name, value_from)


def _system_control(o: Obj) -> tuple[str, str]:
    namespace = o.str_("namespace")
    if not namespace:
        raise ClientError(f"{o.at('namespace')} should not be null or empty.")
    return namespace, o.str_("value") or ""


def _restart_policy(o: Obj | None, container: str) -> RestartPolicy | None:
    if o is None:
        return None
    enabled = o.bool_("enabled")
    if enabled is None:
        raise ClientError(f"Invalid 'restartPolicy' setting for container '{container}'. enabled is required.")
    codes = o.get("ignoredExitCodes") or []
    if not isinstance(codes, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
        raise type_error(o.at("ignoredExitCodes"), codes, "list of integers")
    if len(codes) > 50:
        raise ClientError(
            f"Invalid 'restartPolicy' setting for container '{container}'. At most 50 ignoredExitCodes are allowed."
        )
    period = o.int_("restartAttemptPeriod")
    if period is not None and not 60 <= period <= 1800:
        raise ClientError(
            f"Invalid 'restartPolicy.restartAttemptPeriod' setting for container '{container}': {period}. "
            "Valid values are 60 to 1800."
        )
    return RestartPolicy(enabled, tuple(codes), 300 if period is None else period)


def _volumes(top: Obj) -> tuple[Volume, ...]:
    volumes = tuple(_volume(v) for v in top.objs("volumes"))
    seen: set[str] = set()
    for v in volumes:
        if v.name in seen:
            raise ClientError(f"Duplicate volume names are not allowed: '{v.name}'.")
        seen.add(v.name)
    return volumes


def _volume(o: Obj) -> Volume:
    name = o.str_("name")
    if not name:
        raise ClientError("Volume.name should not be null or empty.")
    if not NAME_RE.match(name):
        raise ClientError(f"Invalid volume name '{name}'. {NAME_RULE}")
    host = o.obj("host")
    docker = o.obj("dockerVolumeConfiguration")
    others = [k for k in OTHER_VOLUME_KINDS if o.has(k)]
    if len([x for x in (host, docker) if x is not None]) + len(others) > 1:
        raise ClientError(f"Invalid setting for volume '{name}'. Specify at most one volume configuration.")
    source_path = None
    if host is not None:
        source_path = host.str_("sourcePath")
        if source_path is not None:
            if not source_path.strip():
                raise ClientError("host.sourcePath should not be blank.")
            if not source_path.startswith("/"):
                raise ClientError(
                    f"Invalid 'host.sourcePath' setting for volume '{name}': '{source_path}' is not an absolute path."
                )
    return Volume(
        name=name,
        host_source_path=source_path,
        docker=_docker_volume(docker, name) if docker is not None else None,
        other=others[0] if others else None,
        configured_at_launch=_flag(o, "configuredAtLaunch", False),
    )


def _docker_volume(o: Obj, volume: str) -> DockerVolumeConfiguration:
    scope = o.str_("scope") or "task"
    if scope not in VOLUME_SCOPES:
        raise ClientError(
            f"Invalid 'dockerVolumeConfiguration.scope' setting for volume '{volume}': '{scope}'. "
            "Valid values: task, shared"
        )
    autoprovision = _flag(o, "autoprovision", False)
    if autoprovision and scope != "shared":
        raise ClientError(
            f"Invalid 'dockerVolumeConfiguration' setting for volume '{volume}'. autoprovision is only valid "
            "when scope is shared."
        )
    return DockerVolumeConfiguration(
        scope, autoprovision, o.str_("driver"), o.str_map("driverOpts"), o.str_map("labels")
    )


def _placement_constraints(top: Obj) -> tuple[PlacementConstraint, ...]:
    items = top.objs("placementConstraints")
    if len(items) > MAX_PLACEMENT_CONSTRAINTS:
        raise ClientError(
            f"Too many placementConstraints: {len(items)}. The maximum is {MAX_PLACEMENT_CONSTRAINTS}."
        )
    result = []
    for o in items:
        kind = o.str_("type")
        if kind == "distinctInstance":
            raise ClientError("Invalid parameter: distinctInstance not supported in task definitions")
        if kind != "memberOf":
            raise ClientError(f"Invalid {o.at('type')} '{kind}'. Valid values: memberOf")
        expression = o.str_("expression")
        if not expression:
            raise ClientError(f"{o.at('expression')} is required for a memberOf placement constraint.")
        result.append(PlacementConstraint(kind, expression))
    return tuple(result)


def _requires_compatibilities(top: Obj) -> tuple[str, ...]:
    values = top.strs("requiresCompatibilities") or ()
    for value in values:
        if value not in COMPATIBILITIES:
            raise ClientError(
                f"Invalid requiresCompatibilities '{value}'. Valid values: {', '.join(COMPATIBILITIES)}"
            )
    return tuple(dict.fromkeys(values))


def _tags(top: Obj) -> tuple[tuple[str, str], ...]:
    items = top.objs("tags")
    if len(items) > MAX_TAGS:
        raise InvalidParameter(f"Too many tags: {len(items)}. A resource can have at most {MAX_TAGS} tags.")
    tags: dict[str, str] = {}
    for o in items:
        key, value = o.str_("key"), o.str_("value") or ""
        if not key or len(key) > 128:
            raise InvalidParameter(f"Invalid {o.at('key')}: a tag key must be 1 to 128 characters.")
        if len(value) > 256:
            raise InvalidParameter(f"Invalid {o.at('value')}: a tag value must be at most 256 characters.")
        if key in tags:
            raise InvalidParameter(f"Duplicate tag key '{key}'.")
        tags[key] = value
    return tuple(tags.items())


# ---------------------------------------------------------------------------------------------
# Normalised raw JSON (what DescribeTaskDefinition echoes)


def _clean(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy without JSON nulls at the top level (ECS treats null as absent)."""
    return {k: copy.deepcopy(v) for k, v in value.items() if v is not None}


def _with_raw(c: ContainerDefinition, o: Obj) -> ContainerDefinition:
    raw = _clean(o.value)
    raw["cpu"] = c.cpu
    raw["essential"] = c.essential
    raw["portMappings"] = [
        {**_clean(p.value), "containerPort": pm.container_port, "hostPort": pm.host_port, "protocol": pm.protocol}
        for p, pm in zip(o.objs("portMappings"), c.port_mappings)
    ]
    for key in ("environment", "mountPoints", "volumesFrom", "systemControls"):
        raw.setdefault(key, [])
    if c.health_check is not None:
        hc = c.health_check
        raw["healthCheck"] = {
            **raw["healthCheck"], "interval": hc.interval, "timeout": hc.timeout, "retries": hc.retries,
        }
    return replace(c, raw=raw)


def _task_raw(
    params: Mapping[str, Any], network_mode: str, cpu: int | None, memory: int | None, volumes: tuple[Volume, ...]
) -> dict[str, Any]:
    skip = OUTPUT_ONLY | {"containerDefinitions", "tags"}  # tags are returned apart, not in taskDefinition
    raw = {k: v for k, v in _clean(params).items() if k not in skip}
    raw["networkMode"] = network_mode
    raw.setdefault("volumes", [])
    raw.setdefault("placementConstraints", [])
    if cpu is not None:
        raw["cpu"] = str(cpu)  # ECS converts "1 vCPU" to units when registering
    if memory is not None:
        raw["memory"] = str(memory)
    for v, out in zip(volumes, raw["volumes"]):
        if v.docker is not None:
            out["dockerVolumeConfiguration"] = {**out["dockerVolumeConfiguration"], "scope": v.docker.scope}
    return raw


# ---------------------------------------------------------------------------------------------
# Cross-field validation


def _validate(spec: TaskDefinitionSpec) -> None:
    _check_names(spec)
    if not any(c.essential for c in spec.containers):
        raise ClientError("A task definition must have at least one essential container.")
    _check_memory(spec)
    _check_ports(spec)
    _check_network_features(spec)
    _check_execution_role(spec)
    _check_links(spec)
    _check_volumes(spec)
    _check_dependencies(spec)


def _check_names(spec: TaskDefinitionSpec) -> None:
    seen: set[str] = set()
    for c in spec.containers:
        if c.name in seen:
            raise ClientError(f"Duplicate container names are not allowed: '{c.name}'.")
        seen.add(c.name)


def _check_memory(spec: TaskDefinitionSpec) -> None:
    for c in spec.containers:
        if spec.memory is None and c.memory is None and c.memory_reservation is None:
            raise ClientError(
                f"Invalid setting for container '{c.name}'. At least one of 'memory' or 'memoryReservation' "
                "must be specified."
            )
        if spec.memory is not None:
            for key, value in (("memory", c.memory), ("memoryReservation", c.memory_reservation)):
                if value is not None and value > spec.memory:
                    raise ClientError(
                        f"Invalid '{key}' setting for container '{c.name}'. The container {key} ({value} MiB) must "
                        f"be less than or equal to the task memory ({spec.memory} MiB)."
                    )


def _check_ports(spec: TaskDefinitionSpec) -> None:
    owner: dict[tuple[int, str], str] = {}
    for c in spec.containers:
        for pm in c.port_mappings:
            if not pm.host_port:
                continue
            key = (pm.host_port, pm.protocol)
            if key in owner:
                raise ClientError(
                    f"Invalid 'portMappings' setting for container '{c.name}'. Host port {pm.host_port}/"
                    f"{pm.protocol} is already used by container '{owner[key]}'."
                    if owner[key] != c.name
                    else f"Invalid 'portMappings' setting for container '{c.name}'. Host port {pm.host_port}/"
                    f"{pm.protocol} is mapped more than once."
                )
            owner[key] = c.name


def _check_execution_role(spec: TaskDefinitionSpec) -> None:
    """Container secrets are fetched with the task execution role: AWS refuses them without one.
    (repositoryCredentials need it too, but AWS checks that only when a task starts.)"""
    if not spec.execution_role_arn and any(c.secrets for c in spec.containers):
        raise ClientError("When you are specifying container secrets, you must also specify a value for "
                          "'executionRoleArn'.")


def _check_network_features(spec: TaskDefinitionSpec) -> None:
    if spec.network_mode != "awsvpc":
        return
    for c in spec.containers:
        if c.hostname is not None:
            raise ClientError(
                f"Invalid 'hostname' setting for container '{c.name}'. hostname is not supported when "
                "networkMode=awsvpc."
            )
        if c.extra_hosts:
            raise ClientError(
                f"Invalid 'extraHosts' setting for container '{c.name}'. extraHosts is not supported when "
                "networkMode=awsvpc."
            )


def _link_target(link: str) -> tuple[str, str]:
    name, _, alias = link.partition(":")
    return name, alias


def _check_links(spec: TaskDefinitionSpec) -> None:
    for c in spec.containers:
        if not c.links:
            continue
        if spec.network_mode != "bridge":
            raise ClientError(f"Links are not supported when networkMode={spec.network_mode}.")
        for link in c.links:
            name, alias = _link_target(link)
            if not NAME_RE.match(name) or (":" in link and not NAME_RE.match(alias)):
                raise ClientError(
                    f"Invalid 'links' setting for container '{c.name}': '{link}'. Use name or name:alias."
                )
            if spec.container(name) is None:
                raise ClientError(
                    f"Invalid 'links' setting for container '{c.name}': container '{name}' is not defined in this "
                    "task definition."
                )


def _check_volumes(spec: TaskDefinitionSpec) -> None:
    names = {v.name for v in spec.volumes}
    for c in spec.containers:
        for mp in c.mount_points:
            if mp.source_volume not in names:
                raise ClientError(f"Unknown volume '{mp.source_volume}'.")
        for vf in c.volumes_from:
            if spec.container(vf.source_container) is None:
                raise ClientError(
                    f"Invalid 'volumesFrom' setting for container '{c.name}': container '{vf.source_container}' "
                    "is not defined in this task definition."
                )


def _check_dependencies(spec: TaskDefinitionSpec) -> None:
    for c in spec.containers:
        for dep in c.depends_on:
            target = spec.container(dep.container_name)
            if target is None:
                raise ClientError(
                    f"Invalid 'dependsOn' setting for container '{c.name}': container '{dep.container_name}' is "
                    "not defined in this task definition."
                )
            if dep.condition == "HEALTHY" and target.health_check is None:
                raise ClientError(
                    f"Invalid 'dependsOn' setting for container '{c.name}': condition HEALTHY requires container "
                    f"'{target.name}' to have a healthCheck."
                )
            if dep.condition in ("COMPLETE", "SUCCESS") and target.essential:
                raise ClientError(
                    f"Invalid 'dependsOn' setting for container '{c.name}': a dependency on essential container "
                    f"'{target.name}' with condition {dep.condition} is invalid."
                )
    cycle = _find_cycle(spec)
    if cycle:
        raise ClientError(
            "Invalid 'dependsOn' setting: the containers "
            + " -> ".join(f"'{n}'" for n in cycle)
            + " form a dependency cycle."
        )


def _find_cycle(spec: TaskDefinitionSpec) -> list[str] | None:
    """A start-order cycle over dependsOn and links (both make a container wait for another), as a
    path whose first and last name are the same; None when the order is acyclic."""
    edges = {
        c.name: [d.container_name for d in c.depends_on] + [_link_target(link)[0] for link in c.links]
        for c in spec.containers
    }
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for nxt in edges.get(name, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for c in spec.containers:
        if c.name not in state:
            found = visit(c.name)
            if found:
                return found
    return None


# ---------------------------------------------------------------------------------------------
# Launch types and attributes


def check_fargate(spec: TaskDefinitionSpec) -> None:
    """Refuse what Fargate cannot run: a network mode other than awsvpc, a missing or unlisted
    task size, host bind volumes."""
    if spec.network_mode != "awsvpc":
        raise ClientError("Fargate only supports network mode 'awsvpc'.")
    if spec.cpu is None:
        raise ClientError("Fargate requires that 'cpu' be defined at the task level.")
    if spec.memory is None:
        raise ClientError("Fargate requires that 'memory' be defined at the task level.")
    if spec.memory not in FARGATE_SIZES.get(spec.cpu, ()):
        raise ClientError(
            f"No Fargate configuration exists for given values: {spec.cpu} CPU, {spec.memory} memory. "
            "See the Amazon ECS documentation for the valid values."
        )
    if any(v.host_source_path is not None for v in spec.volumes):
        raise ClientError("Fargate compatible task definitions do not support sourcePath")


def compatibilities(spec: TaskDefinitionSpec) -> tuple[str, ...]:
    """The launch types the definition is valid for (the output's `compatibilities`)."""
    try:
        check_fargate(spec)
    except ClientError:
        return ("EC2", "EXTERNAL")
    return ("EC2", "EXTERNAL", "FARGATE")


_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")


def requires_attributes(spec: TaskDefinitionSpec) -> tuple[str, ...]:
    """The container-instance capabilities the definition needs, as ECS names them (sorted)."""
    names: set[str] = set()
    if spec.task_role_arn:
        names.add("com.amazonaws.ecs.capability.task-iam-role")
        if spec.network_mode == "host":
            names.add("com.amazonaws.ecs.capability.task-iam-role-network-host")
    if spec.network_mode == "awsvpc":
        names.add("ecs.capability.task-eni")
    for c in spec.containers:
        names.update(_container_attributes(c, spec.execution_role_arn is not None))
    for v in spec.volumes:
        if v.docker is not None and v.docker.driver and v.docker.driver != "local":
            names.add(f"ecs.capability.docker-plugin.{v.docker.driver}")
    return tuple(sorted(names))


def _container_attributes(c: ContainerDefinition, execution_role: bool) -> set[str]:
    names: set[str] = set()
    if c.memory_reservation is not None:
        names.add("com.amazonaws.ecs.capability.docker-remote-api.1.21")
    if c.docker_labels or c.ulimits:
        names.add("com.amazonaws.ecs.capability.docker-remote-api.1.18")
    if c.health_check is not None:
        names.add("ecs.capability.container-health-check")
    if c.depends_on:
        names.add("ecs.capability.container-ordering")
    if c.privileged:
        names.add("com.amazonaws.ecs.capability.privileged-container")
    if c.repository_credentials:
        names.add("com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager")
    if _ECR_IMAGE.match(c.image):
        names.add("com.amazonaws.ecs.capability.ecr-auth")
        if execution_role:
            names.add("ecs.capability.execution-role-ecr-pull")
    if c.environment_files:
        names.add("ecs.capability.env-files.s3")
    for secret in c.secrets:
        kind = "asm" if ":secretsmanager:" in secret.value_from else "ssm"
        names.add(f"ecs.capability.secrets.{kind}.environment-variables")
    if c.log_configuration is not None:
        driver = c.log_configuration.driver
        names.add(f"com.amazonaws.ecs.capability.logging-driver.{driver}")
        if driver == "awslogs":
            names.add("com.amazonaws.ecs.capability.docker-remote-api.1.19")
            if execution_role:
                names.add("ecs.capability.execution-role-awslogs")
    return names


# ---------------------------------------------------------------------------------------------
# Output


def to_wire(
    spec: TaskDefinitionSpec,
    *,
    arn: str,
    revision: int,
    status: str,
    registered_at: float,
    deregistered_at: float | None,
    registered_by: str | None,
) -> dict[str, Any]:
    """The `taskDefinition` shape of DescribeTaskDefinition / RegisterTaskDefinition output."""
    out: dict[str, Any] = {
        "taskDefinitionArn": arn,
        "containerDefinitions": [copy.deepcopy(dict(c.raw)) for c in spec.containers],
        "family": spec.family,
    }
    # Task-level members as registered, including those berth does not model (echoed as sent).
    out.update(copy.deepcopy(dict(spec.raw)))
    out["revision"] = revision
    out["status"] = status
    out["requiresAttributes"] = [{"name": name} for name in requires_attributes(spec)]
    out["compatibilities"] = list(compatibilities(spec))
    out["registeredAt"] = registered_at
    if registered_by is not None:
        out["registeredBy"] = registered_by
    if deregistered_at is not None:
        out["deregisteredAt"] = deregistered_at
    return out
