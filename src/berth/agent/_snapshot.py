"""The engine's container snapshot (berth.engine.containers.ContainerSnapshot), as far as the
agent reads it.

The agent may not import the engine (DESIGN.md), so these Protocols name the attributes it
reads, with the engine's types; mypy checks the daemon's wiring against them, and the unit tests
hand in the engine's real snapshots. HostConfig is still Docker's wire mapping on the record
(issue 11 §5 types it): the one field of it the agent reads is read in `log_config` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from berth.types.container import ContainerConfig
from berth.types.host_config import HostConfig


class RunState(Protocol):  # berth.engine.containers.ContainerState
    @property
    def status(self) -> str: ...    # created | running | paused | restarting | removing | exited | dead
    @property
    def exit_code(self) -> int: ...
    @property
    def error(self) -> str: ...
    @property
    def oom_killed(self) -> bool: ...
    @property
    def started_at(self) -> str: ...    # RFC 3339; the zero time when it never started
    @property
    def finished_at(self) -> str: ...


class Record(Protocol):  # berth.engine.containers.Container
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...          # without the leading slash
    @property
    def created(self) -> str: ...
    @property
    def image_id(self) -> str: ...
    @property
    def restart_count(self) -> int: ...
    @property
    def config(self) -> ContainerConfig: ...
    @property
    def state(self) -> RunState: ...
    @property
    def host_config(self) -> HostConfig: ...


class Address(Protocol):  # berth.engine.containers.AttachedEndpoint
    @property
    def ip_address(self) -> str: ...
    @property
    def prefix_len(self) -> int: ...
    @property
    def gateway(self) -> str: ...
    @property
    def mac_address(self) -> str: ...


class PublishedPort(Protocol):  # berth.network.PortMapping
    @property
    def container_port(self) -> int: ...
    @property
    def protocol(self) -> str: ...
    @property
    def host_ip(self) -> str: ...
    @property
    def host_port(self) -> int: ...


class LiveNetwork(Protocol):  # berth.engine.containers.LiveNetwork
    @property
    def address(self) -> Address: ...
    @property
    def ports(self) -> Sequence[PublishedPort]: ...


class NetworkEntry(Protocol):  # berth.engine.containers.NetworkEntry
    @property
    def attached(self) -> Address | None: ...   # None while not running


class Health(Protocol):  # berth.engine.health.HealthState
    @property
    def status(self) -> str: ...
    @property
    def log(self) -> Sequence[Mapping[str, Any]]: ...   # the last probes: Start, End, ExitCode, Output


class Mount(Protocol):  # berth.volumes.MountPoint
    @property
    def source(self) -> str: ...
    @property
    def destination(self) -> str: ...


class ContainerSnapshot(Protocol):  # berth.engine.containers.ContainerSnapshot
    @property
    def container(self) -> Record: ...
    @property
    def network(self) -> LiveNetwork | None: ...        # its own attachment while running
    @property
    def networks(self) -> Mapping[str, NetworkEntry]: ...   # inspect's NetworkSettings.Networks
    @property
    def network_mode(self) -> str: ...                  # HostConfig.NetworkMode, `default` as `bridge`
    @property
    def mounts(self) -> Sequence[Mount]: ...
    @property
    def health(self) -> Health | None: ...              # as shown (None: never probed)


def labels(snapshot: ContainerSnapshot) -> Mapping[str, str]:
    return snapshot.container.config.labels


def log_config(snapshot: ContainerSnapshot) -> tuple[str, dict[str, str]]:
    """HostConfig.LogConfig: its driver ("" when the create named none) and options."""
    config = snapshot.container.host_config.log_config
    return config.type, dict(config.config)
