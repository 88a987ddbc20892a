"""ContainerSnapshot: one container as `inspect` and `docker ps` see it, typed.

The engine answers inspect and list with snapshots; the Docker JSON is rendered from them at the
API edge (berth.api.docker.container_json), and the ECS agent reads them directly. The record in
a snapshot is a fresh copy read from the repository, and everything the record keeps as JSON (the
network attachment, the mounts, the health) is read into typed values here, once. (Not to be
confused with berth.engine.archive's ContainerView, a view of a container's files.)

Which networks a container shows, and with which aliases, is Docker's domain logic and lives
here (`network_entries`); the renderer only spells the entries out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.engine import health as health_mod
from berth.engine.containers._model import Container
from berth.engine.health import HealthState
from berth.network import PortMapping
from berth.types.container import EndpointSettings
from berth.volumes import MountPoint

BUILTIN_MODES = ("bridge", "host", "none")


@dataclass(frozen=True)
class AttachedEndpoint:
    """A running container's addresses on one network (as network_json.endpoint_record keeps a
    user network's endpoint; the built-in modes' come from the attachment itself)."""
    network_id: str = ""
    ip_address: str = ""
    prefix_len: int = 0
    gateway: str = ""
    mac_address: str = ""

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> AttachedEndpoint:
        return cls(network_id=str(data.get("network_id") or ""), ip_address=str(data.get("ip_address") or ""),
                   prefix_len=int(data.get("prefix_len") or 0), gateway=str(data.get("gateway") or ""),
                   mac_address=str(data.get("mac_address") or ""))


@dataclass(frozen=True)
class LiveNetwork:
    """The network a running container was attached to at start (Container.network, typed).

    `mode` is the attachment's: bridge (a user network's first endpoint included), host or none;
    the addresses are its primary interface's, `endpoints` its user networks' by name.
    """
    mode: str
    netns_path: str = ""
    address: AttachedEndpoint = field(default_factory=AttachedEndpoint)
    ports: tuple[PortMapping, ...] = ()          # host ports as published
    endpoints: Mapping[str, AttachedEndpoint] = field(default_factory=dict)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> LiveNetwork:
        ports = tuple(PortMapping(container_port=int(p["container_port"]), protocol=str(p["protocol"]),
                                  host_ip=str(p.get("host_ip") or ""), host_port=int(p.get("host_port") or 0))
                      for p in data.get("ports") or ())
        endpoints = {name: AttachedEndpoint.from_record(ep) for name, ep in (data.get("endpoints") or {}).items()}
        return cls(mode=str(data.get("mode") or ""), netns_path=str(data.get("netns_path") or ""),
                   address=AttachedEndpoint.from_record(data), ports=ports, endpoints=endpoints)


@dataclass(frozen=True)
class NetworkEntry:
    """One network the container shows (inspect's NetworkSettings.Networks.<name>)."""
    network_id: str
    config: EndpointSettings                     # what the create or `network connect` asked for
    aliases: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    attached: AttachedEndpoint | None = None     # None: not running (addresses show empty)


@dataclass(frozen=True)
class ContainerSnapshot:
    """A container with what its record does not hold: its files, the daemon's default runtime,
    and its network, mounts and health as typed values."""
    container: Container
    dir: str                    # the container's directory (GraphDriver dirs under it)
    log_path: str
    default_runtime: str        # the daemon's, shown when the create named none (as dockerd)
    etc_dir: str                # where its resolv.conf, hostname and hosts are (the joined container's
                                # for `--network container:x`)
    network: LiveNetwork | None              # its own attachment while running; None otherwise
    networks: Mapping[str, NetworkEntry]     # the networks it shows, in Docker's order
    mounts: tuple[MountPoint, ...] = ()
    health: HealthState | None = None        # as shown: "unhealthy" once it is no longer probed

    @property
    def network_mode(self) -> str:
        """HostConfig.NetworkMode, with `default` named as what it is: `bridge`."""
        return network_mode(self.container)

    @property
    def runtime(self) -> str:
        """The OCI runtime it runs with: the one the create named, else the daemon's default."""
        return self.container.host_config.runtime or self.container.runtime or self.default_runtime

    @property
    def args(self) -> list[str]:
        """Entrypoint and Cmd together: the command it runs."""
        config = self.container.config
        return list(config.entrypoint or ()) + list(config.cmd or ())


def network_mode(c: Container) -> str:
    mode = c.host_config.network_mode or "default"
    return "bridge" if mode == "default" else mode


def snapshot_of(c: Container, *, dir: str, log_path: str, default_runtime: str) -> ContainerSnapshot:
    """The snapshot of a record read from the repository (it keeps the record: pass a fresh copy)."""
    recorded = c.network if c.state.running else {}
    joined = recorded.get("mode") == "container"
    # moby: a container on another's network has its /etc files, and no sandbox or address of its own
    network = LiveNetwork.from_record(recorded) if recorded and not joined else None
    etc_dir = str(recorded.get("etc_dir") or dir) if joined else dir
    mounts = tuple(MountPoint.from_record(m) for m in c.mounts)
    return ContainerSnapshot(container=c, dir=dir, log_path=log_path, default_runtime=default_runtime,
                         etc_dir=etc_dir, network=network, networks=network_entries(c, network),
                         mounts=mounts, health=shown_health(c))


def shown_health(c: Container) -> HealthState | None:
    shown = health_mod.shown(c.health, probed=c.state.status == "running")
    return HealthState.from_json(shown) if shown else None


def network_entries(c: Container, network: LiveNetwork | None) -> dict[str, NetworkEntry]:
    """The networks a container shows (inspect's NetworkSettings.Networks), by name.

    Running: with the addresses recorded at start. Otherwise: the configured networks without
    addresses (compose reads the aliases of a created container). User networks list the short
    id among the aliases, as Docker did before API 1.45 (compose 1.x looks for it).
    """
    mode = network_mode(c)
    if mode.startswith("container:"):
        return {}  # on the joined container's networks, not on any of its own (as moby)
    configs = c.endpoints
    out: dict[str, NetworkEntry] = {}
    if mode in BUILTIN_MODES:
        out[mode] = NetworkEntry(network_id=mode, config=configs.get(mode) or EndpointSettings(),
                                 attached=network.address if network is not None else None)
        if mode in ("host", "none"):
            return out
    recorded = network.endpoints if network is not None else {}
    names = ([mode] if mode not in BUILTIN_MODES else []) + [
        n for n in configs if n not in BUILTIN_MODES and n != "default"]
    for name in dict.fromkeys(names):
        config = configs.get(name) or EndpointSettings()
        attached = recorded.get(name)
        aliases = tuple(dict.fromkeys([*(config.aliases or ()), c.id[:12]]))
        out[name] = NetworkEntry(
            network_id=(attached.network_id if attached is not None else "") or config.network_id,
            config=config, aliases=aliases, dns_names=tuple(dict.fromkeys([c.name, *aliases])),
            attached=attached)
    return out
