"""Plain data the engine hands to the runtime layer: what to run, never how."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mount:
    """One extra mount in the container (volumes, /etc/hosts, tmpfs ...)."""

    source: str
    destination: str
    type: str = "bind"
    options: tuple[str, ...] = ("rbind", "rprivate")


@dataclass(frozen=True)
class Resources:
    """cgroup limits in Docker's HostConfig units (bytes, shares, nano-CPUs); 0 = unset."""

    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    nano_cpus: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    pids_limit: int = 0


@dataclass(frozen=True)
class DeviceMapping:
    """`--device on_host[:in_container[:permissions]]`."""

    on_host: str
    in_container: str
    permissions: str = "rwm"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the OCI spec of one container is derived from."""

    id: str
    args: tuple[str, ...]  # entrypoint + cmd, already merged by the engine
    env: tuple[str, ...]
    cwd: str = "/"
    user: str = ""  # docker --user forms: name, uid, uid:gid, name:group
    group_add: tuple[str, ...] = ()  # --group-add: names (the rootfs' /etc/group) or gids
    tty: bool = False
    console_size: tuple[int, int] = (0, 0)  # (height, width) of the tty when it is made
    open_stdin: bool = False
    stdin_once: bool = False
    hostname: str = ""
    netns_path: str | None = None  # None = share the host network namespace
    mounts: tuple[Mount, ...] = ()
    resources: Resources = field(default_factory=Resources)
    readonly_rootfs: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    ulimits: tuple[tuple[str, int, int], ...] = ()  # (name like "nofile", soft, hard)
    cgroup_parent: str = "berth"
    annotations: tuple[tuple[str, str], ...] = ()
    no_new_privileges: bool = False
    seccomp_profile: str = ""  # "" = Docker's default, "unconfined", or a Docker-format JSON profile
    devices: tuple[DeviceMapping, ...] = ()
    masked_paths: tuple[str, ...] | None = None  # None = Docker's defaults
    readonly_paths: tuple[str, ...] | None = None  # None = Docker's defaults


@dataclass(frozen=True)
class ExecSpec:
    """A process to start inside a running container (`docker exec`)."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    user: str = ""  # empty: the container's user
    cwd: str = ""  # empty: the container's working directory
    tty: bool = False
    stdin: bool = False
    privileged: bool = False
    height: int = 0
    width: int = 0
