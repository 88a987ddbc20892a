"""What this host offers as a container instance: CPU units, memory and attributes."""

from __future__ import annotations

import os
import platform

from berth import __version__
from berth.ecs import InstanceResources

AGENT_VERSION = "1.90.0"   # the ECS agent behaviour berth follows; berth's own version is in agentHash


def host_memory_mib() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 1024


def host_resources(*, cpu: int | None = None, memory: int | None = None, zone: str = "local-1a",
                   instance_type: str = "berth.host") -> InstanceResources:
    """1024 CPU units per core and the host's memory (ECS reserves none by default), with the
    attributes the ECS agent sets for what it supports."""
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    capabilities = [
        "docker-remote-api.1.17", "docker-remote-api.1.18", "docker-remote-api.1.19", "docker-remote-api.1.21",
        "docker-remote-api.1.22", "docker-remote-api.1.23", "docker-remote-api.1.24", "docker-remote-api.1.25",
        "docker-remote-api.1.29", "docker-remote-api.1.30", "docker-remote-api.1.32", "docker-remote-api.1.38",
        "logging-driver.json-file", "logging-driver.none", "task-iam-role", "task-iam-role-network-host",
        "task-eni", "container-health-check", "task-cpu-mem-limit", "container-ordering", "env-files.s3",
        "full-sync", "private-registry-authentication.secretsmanager", "ecr-auth",
    ]
    attributes: list[tuple[str, str | None]] = [
        ("ecs.os-type", "linux"), ("ecs.os-family", "LINUX"), ("ecs.cpu-architecture", arch),
        ("ecs.availability-zone", zone), ("ecs.instance-type", instance_type), ("ecs.ami-id", "ami-berth"),
    ]
    attributes += [(f"ecs.capability.{c}", None) for c in capabilities if c != "env-files.s3"]
    attributes += [("com.amazonaws.ecs.capability.docker-remote-api.1.38", None),
                   ("com.amazonaws.ecs.capability.task-iam-role", None),
                   # what a task definition with an awslogs logConfiguration requires (ecs/_taskdef.py)
                   ("com.amazonaws.ecs.capability.logging-driver.awslogs", None),
                   ("com.amazonaws.ecs.capability.docker-remote-api.1.19", None),
                   ("ecs.capability.execution-role-awslogs", None)]
    return InstanceResources(cpu=cpu if cpu is not None else 1024 * (os.cpu_count() or 1),
                             memory=memory if memory is not None else host_memory_mib(),
                             attributes=tuple(attributes), agent_version=AGENT_VERSION,
                             agent_hash=f"berth-{__version__}", docker_version="DockerVersion: 28.2.2 (berth)")
