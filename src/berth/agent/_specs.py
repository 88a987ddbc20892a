"""Pure translation of an ECS task into engine container specs, as the ECS agent does it.

Names, labels, environment, resources, ports, mounts and health checks come from the task
definition and the task's overrides; nothing here touches the engine.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from berth.agent._engine import ContainerSpec, DeviceMapping, HealthProbe, Mount, PortBinding
from berth.agent._secrets import placeholder
from berth.ecs import TaskDefinitionSpec
from berth.ecs import model as m
from berth.ecs import ContainerDefinition, Volume

MIB = 1024 * 1024
LABEL_CLUSTER = "com.amazonaws.ecs.cluster"
LABEL_TASK = "com.amazonaws.ecs.task-arn"
LABEL_CONTAINER = "com.amazonaws.ecs.container-name"
LABEL_FAMILY = "com.amazonaws.ecs.task-definition-family"
LABEL_VERSION = "com.amazonaws.ecs.task-definition-version"
LABEL_AGENT = "io.berth.ecs.agent"          # which agent of this host runs it (several may share an engine)
LABEL_VOLUMES = "io.berth.ecs.task-volumes"  # the task's own engine volumes, comma-separated (for clean-up)
PAUSE_NAME = "~internal~ecs~pause"          # the ECS agent's name for the awsvpc namespace holder
SUPPORTED_LOG_DRIVERS = ("json-file", "k8s-file", "none", "awslogs")


class TaskSetupError(Exception):
    """The task cannot start as defined here; the message becomes its stoppedReason."""


@dataclass(frozen=True)
class TaskContext:
    task: m.Task
    spec: TaskDefinitionSpec
    family: str
    revision: int
    cluster_name: str
    agent_id: str
    metadata_base: str = ""                  # http://gateway:port of the task metadata endpoint ("" = none)
    credentials_uri: str = ""                # AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
    region: str = "us-east-1"


def engine_name(family: str, revision: int, container: str) -> str:
    """`ecs-<family>-<revision>-<container>-<random>`, as the ECS agent names containers."""
    clean = "".join(ch if ch.isalnum() or ch in "-_" else "" for ch in container) or "container"
    return f"ecs-{family}-{revision}-{clean}-{secrets.token_hex(10)}"


def labels(ctx: TaskContext, container: str) -> dict[str, str]:
    out = {LABEL_CLUSTER: ctx.cluster_name, LABEL_TASK: ctx.task.arn, LABEL_CONTAINER: container,
           LABEL_FAMILY: ctx.family, LABEL_VERSION: str(ctx.revision), LABEL_AGENT: ctx.agent_id}
    volumes = task_volumes(ctx.task, ctx.spec)
    if volumes:
        # so that an agent which no longer knows the task (it expired while the daemon was down)
        # can still remove its volumes along with its containers
        out[LABEL_VOLUMES] = ",".join(volumes)
    return out


def task_volumes(task: m.Task, spec: TaskDefinitionSpec) -> list[str]:
    """The engine volumes that belong to the task alone (scratch and task-scoped docker volumes)."""
    return [volume_name(task, v) for v in spec.volumes
            if not v.host_source_path and not v.other and not (v.docker is not None and v.docker.scope == "shared")]


def start_order(spec: TaskDefinitionSpec) -> list[ContainerDefinition]:
    """Containers with their dependencies (dependsOn, links, volumesFrom) first; the task
    definition was checked for cycles at registration."""
    by_name = {c.name: c for c in spec.containers}
    order: list[ContainerDefinition] = []
    seen: set[str] = set()

    def visit(c: ContainerDefinition) -> None:
        if c.name in seen:
            return
        seen.add(c.name)
        for dep in dependencies(c):
            if dep in by_name:
                visit(by_name[dep])
        order.append(c)

    for c in spec.containers:
        visit(c)
    return order


def dependencies(c: ContainerDefinition) -> list[str]:
    names = [d.container_name for d in c.depends_on]
    names += [link.split(":", 1)[0] for link in c.links]
    names += [v.source_container for v in c.volumes_from]
    return list(dict.fromkeys(names))


def read_env_file(path: str) -> list[tuple[str, str]]:
    """An environmentFiles entry: a local `.env` file (VAR=VALUE lines, # comments). S3 objects
    are not reachable from berth."""
    if path.startswith("arn:"):
        raise TaskSetupError(f"ResourceInitializationError: failed to download env files: berth reads "
                             f"environment files from local paths only, not {path}")
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise TaskSetupError(f"ResourceInitializationError: failed to read env file {path}: "
                             f"{err.strerror or err}") from err
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out.append((key.strip(), value))
    return out


def environment(ctx: TaskContext, c: ContainerDefinition, metadata_id: str) -> tuple[str, ...]:
    env: dict[str, str] = {}
    for path in c.environment_files:
        env.update(read_env_file(path))
    env.update(dict(c.environment))
    override = _override(ctx.task, c.name)
    if override is not None:
        env.update(dict(override.environment))
    for secret in c.secrets:  # the value goes to the engine apart (ContainerSpec.secret_env)
        env[secret.name] = placeholder(secret.value_from)
    if ctx.metadata_base:
        env["ECS_CONTAINER_METADATA_URI_V4"] = f"{ctx.metadata_base}/v4/{metadata_id}"
        env["ECS_CONTAINER_METADATA_URI"] = f"{ctx.metadata_base}/v3/{metadata_id}"
        env["ECS_AGENT_URI"] = f"{ctx.metadata_base}/api/{metadata_id}"
    if ctx.credentials_uri:
        env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = ctx.credentials_uri
    env.setdefault("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE" if ctx.task.launch_type == "FARGATE" else "AWS_ECS_EC2")
    env.setdefault("AWS_REGION", ctx.region)
    env.setdefault("AWS_DEFAULT_REGION", ctx.region)
    return tuple(f"{k}={v}" for k, v in env.items())


def _override(task: m.Task, name: str) -> m.ContainerOverride | None:
    return next((o for o in task.overrides if o.name == name), None)


def volume_name(task: m.Task, volume: Volume) -> str:
    """The engine volume behind a task volume: per task unless it is a shared docker volume."""
    if volume.docker is not None and volume.docker.scope == "shared":
        return volume.name
    return f"ecs-{task.task_id}-{volume.name}"


def mounts(ctx: TaskContext, c: ContainerDefinition) -> tuple[Mount, ...]:
    volumes = {v.name: v for v in ctx.spec.volumes}
    out = []
    for mp in c.mount_points:
        vol = volumes.get(mp.source_volume)
        if vol is None:
            raise TaskSetupError(f"Unknown volume {mp.source_volume!r}.")
        if getattr(vol, "other", None):
            raise TaskSetupError(f"ResourceInitializationError: volume {vol.name!r} uses "
                                 f"{vol.other}, which berth does not provide")
        if vol.host_source_path:
            out.append(Mount("bind", vol.host_source_path, mp.container_path, mp.read_only))
        else:
            out.append(Mount("volume", volume_name(ctx.task, vol), mp.container_path, mp.read_only))
    lp = c.linux_parameters
    if lp is not None:
        for t in lp.tmpfs:
            out.append(Mount("tmpfs", "", t.container_path, False, t.size * MIB, t.mount_options))
    return tuple(out)


def preflight(ctx: TaskContext) -> None:
    """Refuse, before any container exists, what `container_spec` would refuse for one of them:
    a log driver berth lacks, an unreadable environment file, a volume kind berth does not
    provide. Raises TaskSetupError."""
    for c in ctx.spec.containers:
        _check_log_driver(c)
        _check_log_secrets(c)
        for path in c.environment_files:
            read_env_file(path)
        mounts(ctx, c)


def _check_log_driver(c: ContainerDefinition) -> None:
    if c.log_configuration is not None and c.log_configuration.driver not in SUPPORTED_LOG_DRIVERS:
        raise TaskSetupError(
            f"CannotCreateContainerError: log driver {c.log_configuration.driver!r} of container {c.name!r} "
            f"is not available in berth (it supports {', '.join(SUPPORTED_LOG_DRIVERS)})")


def _check_log_secrets(c: ContainerDefinition) -> None:
    """logConfiguration.secretOptions would end up in the container's log options, which its
    record keeps in clear; none of the drivers berth has takes a secret."""
    if c.log_configuration is not None and c.log_configuration.secret_options:
        names = ", ".join(s.name for s in c.log_configuration.secret_options)
        raise TaskSetupError(
            f"CannotCreateContainerError: logConfiguration.secretOptions ({names}) of container {c.name!r}: berth "
            f"passes no secrets to log drivers (none of its drivers takes one)")


# The ECS agent (since 1.2.0) passes cpu 0, 1 or unset to Docker as 2 CPU shares, the kernel's minimum.
MIN_CPU_SHARES = 2


def container_spec(ctx: TaskContext, c: ContainerDefinition, *, name: str, image: str, network_mode: str,
                   engine_ids: Mapping[str, str], engine_names: Mapping[str, str], metadata_id: str,
                   secret_env: Mapping[str, str] | None = None) -> ContainerSpec:
    """The engine spec of one container. `engine_ids`/`engine_names`: the task's containers
    created so far (for volumesFrom and links); `secret_env`: its resolved `secrets`."""
    override = _override(ctx.task, c.name)
    command = override.command if override is not None and override.command is not None else c.command
    memory = (override.memory if override and override.memory else None) or c.memory
    reservation = (override.memory_reservation if override and override.memory_reservation else None) \
        or c.memory_reservation
    cpu = (override.cpu if override and override.cpu is not None else None) or c.cpu
    _check_log_driver(c)
    ports: tuple[PortBinding, ...] = ()
    if network_mode == "bridge":
        ports = tuple(PortBinding(p.container_port, p.protocol, p.host_port) for p in c.port_mappings)
    lp = c.linux_parameters
    health = None
    if c.health_check is not None:
        h = c.health_check
        health = HealthProbe(h.command, float(h.interval), float(h.timeout), h.retries, float(h.start_period))
    volumes_from = tuple(f"{engine_ids[v.source_container]}{':ro' if v.read_only else ''}"
                         for v in c.volumes_from if v.source_container in engine_ids)
    links = tuple(f"{engine_names[link.split(':', 1)[0]]}:{link.split(':', 1)[-1]}"
                  for link in c.links if link.split(":", 1)[0] in engine_names)
    return ContainerSpec(
        name=name, image=image, labels={**dict(c.docker_labels), **labels(ctx, c.name)},
        env=environment(ctx, c, metadata_id), secret_env=dict(secret_env or {}),
        entrypoint=c.entry_point or None, command=command or None, working_dir=c.working_directory,
        user=c.user, hostname=c.hostname if network_mode in ("bridge", "none") else None,
        network_mode=network_mode, ports=ports, links=links,
        extra_hosts=tuple(f"{h}:{ip}" for h, ip in c.extra_hosts) if not network_mode.startswith("container:")
        else (), dns_servers=c.dns_servers if not network_mode.startswith("container:") else (),
        dns_search=c.dns_search_domains if not network_mode.startswith("container:") else (),
        cpu_shares=max(cpu or 0, MIN_CPU_SHARES), memory=(memory or 0) * MIB, memory_reservation=(reservation or 0) * MIB,
        ulimits=tuple((u.name, u.soft, u.hard) for u in c.ulimits),
        cap_add=lp.cap_add if lp else (), cap_drop=lp.cap_drop if lp else (),
        init=lp.init_process_enabled if lp else False,
        devices=tuple(DeviceMapping(d.host_path, d.container_path or d.host_path,
                                    _permissions(d.permissions)) for d in lp.devices) if lp else (),
        privileged=c.privileged, read_only_rootfs=c.readonly_root_filesystem, mounts=mounts(ctx, c),
        volumes_from=volumes_from, health=health, stop_timeout=c.stop_timeout,
        log_driver=c.log_configuration.driver if c.log_configuration else "",
        log_options=log_options(ctx, c),
        tty=c.pseudo_terminal, open_stdin=c.interactive,
        shm_size=(lp.shared_memory_size or 0) * MIB if lp else 0)


def log_options(ctx: TaskContext, c: ContainerDefinition) -> dict[str, str]:
    """The container's log options as the ECS agent hands them to Docker: for awslogs,
    `awslogs-stream-prefix` becomes the stream `prefix/container-name/task-id` (without a prefix
    Docker names the stream after the container id) and the region defaults to the task's."""
    if c.log_configuration is None:
        return {}
    options = dict(c.log_configuration.options)
    if c.log_configuration.driver == "awslogs":
        prefix = options.pop("awslogs-stream-prefix", "")
        if prefix and not options.get("awslogs-stream"):
            options["awslogs-stream"] = f"{prefix}/{c.name}/{ctx.task.task_id}"
        options.setdefault("awslogs-region", ctx.region)
    return options


def _permissions(perms: Sequence[str]) -> str:
    if not perms:
        return "rwm"
    letters = {"read": "r", "write": "w", "mknod": "m"}
    return "".join(letters.get(p, "") for p in perms) or "rwm"


def task_network_mode(spec: TaskDefinitionSpec) -> str:
    return spec.network_mode or "bridge"
