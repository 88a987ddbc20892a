"""The agent's ContainerEngine (berth.agent._engine) over berth's own engine on this host.

Only this module knows the engine's shapes: `engine_spec` turns the agent's ContainerSpec into
the engine's typed create (berth.types.container.ContainerSpec with its typed HostConfig), and
`status_from_snapshot` reads a ContainerStatus back out of the engine's typed container snapshot
(as far as the agent reads it: agent/_snapshot.py). Both are pure, so they are unit-tested
without an engine.

The agent may not import the engine (DESIGN.md), so the daemon hands the engine's services in
and the small Protocols below say which of their methods the adapter uses, with their real
signatures (mypy checks the daemon's wiring against them). `dict[str, Any]` values are Docker
wire JSON, the one place `Any` stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from berth.agent._engine import (
    ContainerSpec, ContainerStatus, ExitCallback, ImageNotAvailable, Mount, PortBinding, RegistryAuth,
)
from berth.agent._snapshot import ContainerSnapshot, labels
from berth.errors import BerthError, FailedPrecondition, NotFound
from berth.images import Image
from berth.images.distribution import Credentials
from berth.types.container import ContainerConfig as EngineConfig
from berth.types.container import ContainerSpec as EngineSpec
from berth.types.container import EndpointSettings, HealthConfig
from berth.types.create_requests import VolumeCreate
from berth.types.host_config import DeviceMapping as EngineDevice
from berth.types.host_config import HostConfig, LogConfig, TmpfsOptions, Ulimit
from berth.types.host_config import Mount as EngineMount
from berth.types.host_config import PortBinding as EnginePortBinding
from berth.types.reference import DEFAULT_DOMAIN, parse_reference

log = logging.getLogger(__name__)

PAUSE_IMAGE = "berth/ecs-pause:latest"
# Docker event actions after which the agent should look at a container again.
EXIT_ACTIONS = frozenset({"die", "oom", "destroy"})
ZERO_TIME = "0001-01-01T00:00:00Z"
_NS = 1_000_000_000
_BUILTIN_MODES = frozenset({"bridge", "default", "host", "none"})


# --- the collaborators, as far as the adapter uses them ----------------------------------------

class _Created(Protocol):  # berth.engine.containers.Container
    @property
    def id(self) -> str: ...


class _Containers(Protocol):  # berth.engine.containers.ContainerService
    async def create(self, name: str | None, spec: EngineSpec, *,
                     secret_env: Mapping[str, str] | None = None) -> _Created: ...
    async def start(self, ref: str) -> None: ...
    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None: ...
    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None: ...
    def inspect(self, ref: str) -> ContainerSnapshot: ...
    def list(self, *, all: bool, limit: int, filters: dict[str, list[str]]) -> Sequence[ContainerSnapshot]: ...


class _Images(Protocol):  # berth.images.ImageStore
    def resolve(self, name: str) -> Image: ...
    def bootstrap_busybox(self, reference: str) -> Image: ...


class _Distribution(Protocol):  # berth.engine.distribution.DistributionService
    def pull(self, image: str, tag: str, credentials: Credentials, emit: Callable[[dict[str, Any]], None],
             *, platform: str = "") -> None: ...


class _Volumes(Protocol):  # berth.engine.volumes.VolumeService
    def create_json(self, request: VolumeCreate) -> dict[str, Any]: ...
    def remove(self, name: str, *, force: bool = False) -> None: ...


class _Networks(Protocol):  # berth.engine.networks.NetworkService
    def inspect_json(self, ref: str) -> dict[str, Any]: ...


class _Events(Protocol):  # berth.engine.events.EventBus
    def subscribe(self) -> asyncio.Queue[dict[str, Any]]: ...
    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None: ...


# --- ContainerSpec → the engine's create (pure) -----------------------------------------------

def engine_spec(spec: ContainerSpec) -> EngineSpec:
    """The engine's typed create (berth.types.container.ContainerSpec) for one agent ContainerSpec.

    Optional values the spec leaves unset (None, 0, "") stay unset, so the engine applies its
    and the image's defaults exactly as it does for a docker CLI request without the flag.
    """
    health = spec.health
    config = EngineConfig(
        image=spec.image, env=tuple(spec.env), labels=dict(spec.labels),
        exposed_ports=tuple(dict.fromkeys(_port_key(p) for p in spec.ports)), tty=spec.tty,
        open_stdin=spec.open_stdin, entrypoint=spec.entrypoint, cmd=spec.command,
        working_dir=spec.working_dir or "", user=spec.user or "", hostname=spec.hostname or "",
        stop_timeout=spec.stop_timeout,
        healthcheck=None if health is None else HealthConfig(
            test=tuple(health.test), interval=_ns(health.interval), timeout=_ns(health.timeout),
            retries=health.retries, start_period=_ns(health.start_period)),
    )
    networking: dict[str, EndpointSettings] = {}
    if spec.network_aliases and _is_user_network(spec.network_mode):
        networking = {spec.network_mode: EndpointSettings(aliases=tuple(spec.network_aliases))}
    return EngineSpec(config=config, host_config=host_config(spec), networking=networking)


def host_config(spec: ContainerSpec) -> HostConfig:
    """The engine's typed HostConfig for the spec (what `docker run` would send for it)."""
    binds, mounts, tmpfs = _mounts(spec.mounts)
    return HostConfig(
        network_mode=spec.network_mode, port_bindings=_port_bindings(spec.ports), links=spec.links,
        extra_hosts=spec.extra_hosts, dns=spec.dns_servers, dns_search=spec.dns_search,
        cpu_shares=spec.cpu_shares, memory=spec.memory, memory_reservation=spec.memory_reservation,
        ulimits=tuple(Ulimit(name=name, soft=soft, hard=hard) for name, soft, hard in spec.ulimits),
        cap_add=spec.cap_add, cap_drop=spec.cap_drop, init=spec.init,
        devices=tuple(EngineDevice(path_on_host=d.host_path, path_in_container=d.container_path,
                                   cgroup_permissions=d.permissions) for d in spec.devices),
        privileged=spec.privileged, readonly_rootfs=spec.read_only_rootfs, volumes_from=spec.volumes_from,
        binds=binds or None, mounts=mounts or None, tmpfs=tmpfs,
        log_config=LogConfig(type=spec.log_driver, config=dict(spec.log_options)), shm_size=spec.shm_size,
    )


def _ns(seconds: float) -> int:
    return int(round(seconds * _NS))


def _port_key(p: PortBinding) -> str:
    return f"{p.container_port}/{p.protocol or 'tcp'}"


def _port_bindings(ports: tuple[PortBinding, ...]) -> dict[str, tuple[EnginePortBinding, ...]]:
    """Docker's PortBindings; HostPort "" lets the engine pick a free port (ECS dynamic ports)."""
    bindings: dict[str, tuple[EnginePortBinding, ...]] = {}
    for p in ports:
        binding = EnginePortBinding(host_ip=p.host_ip, host_port=str(p.host_port) if p.host_port else "")
        bindings[_port_key(p)] = (*bindings.get(_port_key(p), ()), binding)
    return bindings


def _mounts(mounts: tuple[Mount, ...]) -> tuple[tuple[str, ...], tuple[EngineMount, ...], dict[str, str]]:
    """(Binds, Mounts, Tmpfs) for the spec's mounts.

    Host paths go in Binds, as the ECS agent does: AWS documents that a missing sourcePath is
    created, which Docker does for Binds but refuses for a `bind` Mount. A tmpfs with mount
    options goes in HostConfig.Tmpfs (again the ECS agent's choice), since a Mount's
    TmpfsOptions carries only a size and a mode.
    """
    binds: list[str] = []
    objects: list[EngineMount] = []
    tmpfs: dict[str, str] = {}
    for m in mounts:
        if m.kind == "bind":
            binds.append(f"{m.source}:{m.target}" + (":ro" if m.read_only else ""))
        elif m.kind == "volume":
            objects.append(EngineMount(type="volume", source=m.source, target=m.target, read_only=m.read_only))
        elif m.kind == "tmpfs" and m.tmpfs_options:
            options = ([f"size={m.tmpfs_size}"] if m.tmpfs_size else []) + list(m.tmpfs_options)
            if m.read_only and "ro" not in options:
                options.append("ro")
            tmpfs[m.target] = ",".join(options)
        elif m.kind == "tmpfs":
            objects.append(EngineMount(type="tmpfs", target=m.target, read_only=m.read_only,
                                       tmpfs_options=TmpfsOptions(size_bytes=m.tmpfs_size) if m.tmpfs_size else None))
        else:
            # Typed input from the agent: an unknown kind is a bug there, not a user error.
            raise ValueError(f"unknown mount kind {m.kind!r}")
    return tuple(binds), tuple(objects), tmpfs


def _is_user_network(mode: str) -> bool:
    return bool(mode) and mode not in _BUILTIN_MODES and not mode.startswith("container:")


# --- the engine's snapshot → ContainerStatus (pure) -------------------------------------------

def status_from_snapshot(snapshot: ContainerSnapshot) -> ContainerStatus:
    """What the agent needs of a container, from the engine's snapshot of it."""
    c = snapshot.container
    state = c.state
    return ContainerStatus(
        id=c.id,
        name=c.name,
        labels=dict(labels(snapshot)),
        state=state.status,
        exit_code=state.exit_code if state.status in ("exited", "dead") else None,
        error=state.error,
        oom_killed=state.oom_killed,
        health=snapshot.health.status if snapshot.health is not None else "",
        started_at=parse_time(state.started_at),
        finished_at=parse_time(state.finished_at),
        ports=published_ports(snapshot),
        ip_address=ip_address(snapshot),
        image_digest=c.image_id,
    )


def parse_time(text: object) -> float | None:
    """RFC 3339 (Docker's nanosecond form too) → epoch seconds; the zero time and "" → None."""
    if not text or not isinstance(text, str) or text.startswith("0001-01-01"):
        return None
    head, dot, rest = text.partition(".")
    if dot:  # keep microseconds: fromisoformat's handling of nine fractional digits varies
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def published_ports(snapshot: ContainerSnapshot) -> tuple[PortBinding, ...]:
    """The bound host ports of a running container (exposed-only ports have no binding), grouped
    by port in the order inspect's NetworkSettings.Ports lists them: the exposed ones first."""
    network = snapshot.network
    if network is None:
        return ()
    ports = network.ports
    order = list(dict.fromkeys([*(snapshot.container.config.exposed_ports or ()),
                                *(f"{p.container_port}/{p.protocol}" for p in ports)]))
    ranked = sorted(ports, key=lambda p: order.index(f"{p.container_port}/{p.protocol}"))
    return tuple(PortBinding(container_port=p.container_port, protocol=p.protocol or "tcp", host_port=p.host_port,
                             host_ip="" if p.host_ip == "0.0.0.0" else p.host_ip) for p in ranked)


def ip_address(snapshot: ContainerSnapshot) -> str:
    """Its address on the network of its network mode ("" for host, none and container: modes)."""
    mode = snapshot.network_mode
    if mode in ("host", "none") or mode.startswith("container:"):
        return ""
    entry = snapshot.networks.get(mode)
    attached = entry.attached if entry is not None else None
    if attached is not None and attached.ip_address:
        return attached.ip_address
    return snapshot.network.address.ip_address if snapshot.network is not None else ""


# --- image references -------------------------------------------------------------------------

def names_registry(reference: str) -> bool:
    """Whether `reference` names a registry host (`127.0.0.1:5000/app:v1`, an ECR URI) rather
    than a Docker Hub short name (`busybox`, `bob/app`), which berth never contacts itself."""
    try:
        return parse_reference(reference).domain != DEFAULT_DOMAIN
    except BerthError:
        return False


def _pinned(reference: str) -> bool:
    """A digest reference: the same bytes wherever they come from, so a local copy is current."""
    return "@" in reference


# --- the adapter ------------------------------------------------------------------------------

class EngineAdapter:
    """berth.agent._engine.ContainerEngine over berth's engine services (Daemon.build() makes them)."""

    def __init__(self, containers: _Containers, image_store: _Images, distribution: _Distribution,
                 volumes: _Volumes, networks: _Networks, events: _Events, bridge_gateway: str,
                 bridge_subnet: str) -> None:
        self._containers = containers
        self._images = image_store
        self._distribution = distribution
        self._volumes = volumes
        self._networks = networks
        self._events = events
        self._bridge = (bridge_gateway, str(ipaddress.ip_network(bridge_subnet, strict=False)))
        self._pause_lock = asyncio.Lock()
        self._watchers: set[asyncio.Task[None]] = set()

    # images

    async def ensure_image(self, reference: str, auth: RegistryAuth | None) -> str:
        """A registry reference is pulled every time (its tag may have moved), falling back to the
        local copy when the pull fails (ECS_IMAGE_PULL_BEHAVIOR=default); a short name is used
        locally when present and pulled (through a configured mirror) otherwise."""
        local = await self._local_id(reference)
        if local is not None and (_pinned(reference) or not names_registry(reference)):
            return local
        try:
            await asyncio.to_thread(self._distribution.pull, reference, "", _credentials(auth), _ignore)
        except (BerthError, OSError) as err:
            local = await self._local_id(reference)  # the same tag may have been pulled meanwhile
            if local is not None:
                log.warning("pull of %s failed, using the local image: %s", reference, err)
                return local
            raise ImageNotAvailable(str(err)) from err
        image_id = await self._local_id(reference)
        if image_id is None:
            raise ImageNotAvailable(f"{reference}: not found locally after a successful pull")
        return image_id

    async def _local_id(self, reference: str) -> str | None:
        try:
            image = await asyncio.to_thread(self._images.resolve, reference)
        except BerthError:  # NotFound, or a malformed reference (the pull reports it)
            return None
        return image.id

    async def ensure_pause_image(self) -> str:
        async with self._pause_lock:  # one bootstrap even when several tasks start at once
            if await self._local_id(PAUSE_IMAGE) is None:
                await asyncio.to_thread(self._images.bootstrap_busybox, PAUSE_IMAGE)
        return PAUSE_IMAGE

    # volumes

    async def ensure_volume(self, name: str, labels: Mapping[str, str], driver: str | None,
                            driver_opts: Mapping[str, str]) -> None:
        # VolumeStore.create returns an existing volume as is, as `docker volume create` does.
        request = VolumeCreate(name=name, labels=dict(labels), driver=driver or "local", driver_opts=dict(driver_opts))
        await asyncio.to_thread(self._volumes.create_json, request)

    async def remove_volume(self, name: str) -> None:
        await asyncio.to_thread(lambda: self._volumes.remove(name, force=True))  # force: absent is fine

    # containers

    async def create(self, spec: ContainerSpec) -> str:
        if spec.secret_env:  # beside the body: the engine keeps the values off --root
            container = await self._containers.create(spec.name, engine_spec(spec), secret_env=dict(spec.secret_env))
        else:
            container = await self._containers.create(spec.name, engine_spec(spec))
        return container.id

    async def start(self, container_id: str) -> None:
        await self._containers.start(container_id)

    async def stop(self, container_id: str, timeout: int | None) -> None:
        try:
            await self._containers.stop(container_id, timeout)
        except (NotFound, FailedPrecondition):  # gone, or not running: already where we want it
            pass

    async def remove(self, container_id: str) -> None:
        try:
            await self._containers.remove(container_id, force=True, volumes=True)
        except NotFound:
            pass

    def inspect(self, container_id: str) -> ContainerStatus | None:
        try:
            return status_from_snapshot(self._containers.inspect(container_id))
        except NotFound:
            return None

    def list_labelled(self, label: str) -> list[ContainerStatus]:
        found = self._containers.list(all=True, limit=-1, filters={"label": [label]})
        return [status_from_snapshot(snapshot) for snapshot in found]

    def on_exit(self, callback: ExitCallback) -> Callable[[], None]:
        queue = self._events.subscribe()  # now, not in the task: no event between here and its start is lost
        task = asyncio.get_running_loop().create_task(_deliver_exits(queue, callback))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

        def unsubscribe() -> None:
            task.cancel()
            self._events.unsubscribe(queue)
        return unsubscribe

    # networks

    def network_address(self, network: str) -> tuple[str, str]:
        if network in ("bridge", "default", ""):
            return self._bridge
        doc = self._networks.inspect_json(network)
        configs = (doc.get("IPAM") or {}).get("Config") or []
        if not configs or not configs[0].get("Subnet"):
            raise NotFound(f"network {network} has no IPv4 subnet")
        return str(configs[0].get("Gateway") or ""), str(configs[0]["Subnet"])

    async def close(self) -> None:
        """Stop every on_exit watcher still subscribed (the agent's shutdown)."""
        for task in list(self._watchers):
            task.cancel()
        for task in list(self._watchers):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def is_exit_event(event: Mapping[str, Any]) -> bool:
    """A container event after which its status may have changed in a way the agent reports."""
    action = str(event.get("Action") or "")
    return event.get("Type") == "container" and (action in EXIT_ACTIONS or action.startswith("health_status"))


async def _deliver_exits(queue: asyncio.Queue[dict[str, Any]], callback: ExitCallback) -> None:
    while True:
        event = await queue.get()
        if not is_exit_event(event):
            continue
        try:
            callback(str(event["Actor"]["ID"]))
        except Exception:  # noqa: BLE001 - one failing callback must not end the subscription
            log.exception("exit callback failed for %s", event["Actor"]["ID"][:12])


def _credentials(auth: RegistryAuth | None) -> Credentials:
    if auth is None:
        return Credentials()
    return Credentials(username=auth.username, password=auth.password, server_address=auth.server)


def _ignore(_message: dict[str, Any]) -> None:
    """Pull progress: the agent reports only the outcome."""
