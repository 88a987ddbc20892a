"""The typed container spec: what a create asks of the engine, and the Config a container keeps.

Docker's wire bodies (`POST /containers/create`) are converted into these once, at the API edge
(api/docker/container_spec.py); the ECS agent builds them directly. They live in `types` because
three parts share them and may not import each other: api/docker, engine and agent.

`None` marks "unset" where Docker tells it apart from empty: an unset Cmd or Entrypoint falls back
to the image's, an empty one does not; an unset StopTimeout means the daemon's default.

HostConfig is typed in its own module (types/host_config.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from berth.types.host_config import HostConfig

@dataclass(frozen=True)
class HealthConfig:
    """Config.Healthcheck. Durations in nanoseconds, as on the wire; 0 means "the default"
    (or, when merged, "the image's")."""
    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class ContainerConfig:
    """Docker's container Config, as a create requests it and, once merged with the image's
    config, as the container keeps it (inspect's `Config`)."""
    image: str = ""
    hostname: str = ""
    domainname: str = ""
    user: str = ""
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    exposed_ports: tuple[str, ...] | None = None    # "80/tcp" keys, in the order given
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    healthcheck: HealthConfig | None = None
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    volumes: tuple[str, ...] | None = None          # anonymous volume paths (`VOLUME`)
    on_build: tuple[str, ...] | None = None
    shell: tuple[str, ...] | None = None
    # Requested only: a create's MacAddress goes to the network endpoint, the other two are echoed
    # by Docker (omitempty) but never interpreted; a merged Config leaves them unset.
    mac_address: str = ""
    network_disabled: bool = False
    args_escaped: bool = False


@dataclass(frozen=True)
class EndpointIPAMConfig:
    """`--ip` / `--ip6` / `--link-local-ip` of one endpoint."""
    ipv4_address: str = ""
    ipv6_address: str = ""
    link_local_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndpointSettings:
    """What a create or `network connect` asks of the container's endpoint on one network
    (NetworkingConfig.EndpointsConfig.<network>). `None`: not given (inspect shows null)."""
    aliases: tuple[str, ...] | None = None
    links: tuple[str, ...] | None = None       # `--link` on a user network: name aliases only
    mac_address: str = ""
    ipam_config: EndpointIPAMConfig | None = None
    driver_opts: Mapping[str, str] | None = None
    network_id: str = ""


@dataclass(frozen=True)
class ContainerSpec:
    """A create: the Config, the HostConfig, and the endpoints by network name
    (NetworkingConfig.EndpointsConfig; the CLI names the default bridge `default`)."""
    config: ContainerConfig
    host_config: HostConfig = field(default_factory=HostConfig)
    networking: Mapping[str, EndpointSettings] = field(default_factory=dict)
