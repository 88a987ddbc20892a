"""Daemon configuration: one frozen value built from the command line."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from berth.errors import InvalidArgument


@dataclass(frozen=True)
class DaemonConfig:
    root: Path = Path("/var/lib/berth")
    run_root: Path = Path("/run/berth")
    docker_hosts: tuple[str, ...] = ("unix:///run/berth/docker.sock",)
    runtime: str = "auto"
    insecure_registries: tuple[str, ...] = ()  # host[:port] or CIDR, besides loopback
    registry_mirrors: tuple[str, ...] = ()     # http(s) URLs tried before Docker Hub on pulls
    registry_addr: str = "127.0.0.1:5000"      # the built-in registry's HOST:PORT, or "off"
    registry_htpasswd: Path | None = None      # bcrypt htpasswd file of registry users
    registry_anonymous_pull: bool = True
    registry_anonymous_push: bool = False
    aws_addr: str = "127.0.0.1:4566"           # the AWS APIs' HOST:PORT (ECR, ECS), or "off"
    aws_auth: str = "sigv4"                    # sigv4 (verify every request) | none (accept anyone)
    aws_credentials: tuple[Path, ...] = ()     # extra key files: `ACCESS_KEY_ID SECRET_ACCESS_KEY` lines
    ecr_lifecycle_interval: float = 300.0      # seconds between lifecycle-policy sweeps
    ecs_cluster: str = "default"               # the cluster this host's agent registers into
    ecs_agent: bool = True                     # run the ECS agent of this host (--no-agent: control plane only)
    ecs_agents: int = 1                        # agents (container instances) on this host's engine (tests: >1)
    ecs_agent_cpu: int | None = None           # CPU units each agent offers (default 1024 per core)
    ecs_agent_memory: int | None = None        # MiB each agent offers (default: the host's memory)
    ecs_task_retention: float = 3600.0         # seconds a STOPPED task stays describable
    elb_bind: str = "127.0.0.1"                # where load-balancer listeners listen
    metrics_addr: str = "127.0.0.1:9464"       # the Prometheus /metrics HOST:PORT (unauthenticated), or "off"
    ecs_healthy_after: float = 40.0            # a service task without health checks counts healthy this long after RUNNING
    crun_cgroup_fix: str = "auto"  # auto | mask | none: Fix B for crun on hybrid cgroup hosts
    network_spares: int = 2  # bridge namespaces attached ahead of time (network/_pool.py)
    network_iptables_rules: str = "batch"  # batch (one iptables-restore, network/_iptrules.py) | plugins
    bridge_name: str = "berth0"
    bridge_subnet: str = "10.88.0.0/16"
    network_name: str = "berth"
    cgroup_parent: str = "berth"
    socket_group: str = ""  # group allowed on the API unix sockets (mode 0660); "" = root only
    log_level: str = "info"

    @property
    def bridge_gateway(self) -> str:
        network = ipaddress.ip_network(self.bridge_subnet, strict=False)
        return str(next(network.hosts()))


def parse_host(spec: str) -> tuple[str, str | int]:
    """`unix:///path` → ("unix", path); `tcp://127.0.0.1:2375` → ("tcp", "127.0.0.1", port)."""
    if spec.startswith("unix://"):
        return ("unix", spec[len("unix://"):])
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://"):].rpartition(":")
        if not port.isdigit():
            raise InvalidArgument(f"invalid docker host {spec!r}: missing port")
        return ("tcp:" + (host or "127.0.0.1"), int(port))
    if spec.startswith("/"):
        return ("unix", spec)
    raise InvalidArgument(f"invalid docker host {spec!r}: use unix:///path or tcp://host:port")
