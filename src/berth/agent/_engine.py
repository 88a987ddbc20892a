"""What the agent needs from the container engine of its host (declared here, by the consumer).

`berth.agent.engine_adapter.EngineAdapter` implements it over berth's engine (ContainerService,
ImageStore, DistributionService, VolumeService); `berth.agent.testing.MemoryEngine` in memory.
The agent speaks typed specs; only the adapter knows Docker's wire dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PortBinding:
    container_port: int
    protocol: str = "tcp"          # tcp | udp
    host_port: int = 0             # 0: the engine picks one from the ephemeral range
    host_ip: str = ""              # "" = every address (what -p does)


@dataclass(frozen=True)
class Mount:
    kind: str                      # "bind" (host path) | "volume" (named volume) | "tmpfs"
    source: str                    # host path or volume name ("" for tmpfs)
    target: str                    # path in the container
    read_only: bool = False
    tmpfs_size: int = 0            # bytes, tmpfs only
    tmpfs_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthProbe:
    test: tuple[str, ...]          # Docker's form: ("CMD", ...) or ("CMD-SHELL", "...")
    interval: float = 30.0         # seconds
    timeout: float = 5.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class DeviceMapping:
    host_path: str
    container_path: str
    permissions: str = "rwm"


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a task, as the engine should create it."""

    name: str                                       # engine container name (ecs-<family>-<rev>-<name>-<random>)
    image: str                                      # image reference as resolved by ensure_image
    labels: Mapping[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()                       # "KEY=value" (a secret's: KEY=<placeholder>)
    # secret variables: name → value, given to the engine beside the create body and kept off
    # persistent storage; `env` carries a placeholder for each (berth.agent._secrets)
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    entrypoint: tuple[str, ...] | None = None       # None: the image's
    command: tuple[str, ...] | None = None          # None: the image's
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    network_mode: str = "bridge"                    # bridge | host | none | container:<id> | <network name>
    network_aliases: tuple[str, ...] = ()           # on a user network
    ports: tuple[PortBinding, ...] = ()
    links: tuple[str, ...] = ()                     # "container-name:alias" (engine names)
    extra_hosts: tuple[str, ...] = ()               # "host:ip"
    dns_servers: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    cpu_shares: int = 0                             # ECS cpu units map to Docker CPU shares (0: default)
    memory: int = 0                                 # hard limit, bytes (0: none)
    memory_reservation: int = 0                     # soft limit, bytes
    ulimits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard)
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    init: bool = False
    devices: tuple[DeviceMapping, ...] = ()
    privileged: bool = False
    read_only_rootfs: bool = False
    mounts: tuple[Mount, ...] = ()
    volumes_from: tuple[str, ...] = ()              # "engine-container-id[:ro]"
    health: HealthProbe | None = None
    stop_timeout: int | None = None                 # seconds between SIGTERM and SIGKILL
    log_driver: str = ""                            # "" = the engine's default
    log_options: Mapping[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    shm_size: int = 0                               # bytes (0: default)


@dataclass(frozen=True)
class ContainerStatus:
    """What the agent reads back about one engine container."""

    id: str
    name: str
    labels: Mapping[str, str]
    state: str                                      # created | running | paused | restarting | exited | dead | removing
    exit_code: int | None                           # None while it never ran or runs
    error: str = ""                                 # the engine's State.Error (start failures)
    oom_killed: bool = False
    health: str = ""                                # "" (no probe) | starting | healthy | unhealthy
    started_at: float | None = None                 # epoch seconds
    finished_at: float | None = None
    ports: tuple[PortBinding, ...] = ()             # published bindings with the host ports chosen
    ip_address: str = ""                            # on its network ("" for host/none/container modes)
    image_digest: str = ""                          # the image id / manifest digest it runs


@dataclass(frozen=True)
class RegistryAuth:
    username: str
    password: str
    server: str = ""


class ImageNotAvailable(Exception):
    """The image is neither local nor pullable; the message reads as the engine's pull error."""


ExitCallback = Callable[[str], None]   # called with an engine container id when it exits or dies


class ContainerEngine(Protocol):
    async def ensure_image(self, reference: str, auth: RegistryAuth | None) -> str:
        """Make `reference` available locally (pull it when missing, or always for a registry
        reference whose tag may have moved); returns the local image id. Raises ImageNotAvailable."""

    async def ensure_pause_image(self) -> str:
        """The image of the network-namespace holder of awsvpc tasks; returns its reference."""

    async def ensure_volume(self, name: str, labels: Mapping[str, str], driver: str | None,
                            driver_opts: Mapping[str, str]) -> None:
        """Create the named volume unless it exists."""

    async def remove_volume(self, name: str) -> None:
        """Remove the named volume; absent is fine, in use raises."""

    async def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a container; returns its engine id. Raises berth errors.
        `spec.secret_env` must reach no persistent record (only the run root's bundle)."""

    async def start(self, container_id: str) -> None: ...

    async def stop(self, container_id: str, timeout: int | None) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds (None: the container's own). Absent or
        already stopped is fine."""

    async def remove(self, container_id: str) -> None:
        """Force-remove with its anonymous volumes; absent is fine."""

    def inspect(self, container_id: str) -> ContainerStatus | None:
        """None when the container does not exist."""

    def list_labelled(self, label: str) -> list[ContainerStatus]:
        """Every container (running or not) carrying `label` (any value)."""

    def on_exit(self, callback: ExitCallback) -> Callable[[], None]:
        """Call `callback(container_id)` after any container exits, dies or changes health;
        returns an unsubscribe function. Called on the event loop."""

    def network_address(self, network: str) -> tuple[str, str]:
        """(gateway IP, subnet CIDR) of a network the agent puts awsvpc tasks on."""
