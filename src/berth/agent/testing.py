"""An in-memory ContainerEngine and SecretSource for the agent's unit tests.

Containers are plain records; a test makes them exit, die or change health (`exit`, `set_health`)
and the engine tells the agent through `on_exit`, as berth's event bus does. Nothing runs. As
berth's engine does, it keeps a container's secret environment apart from its record
(`MemoryEngine.secret_env`, the run root's stand-in): the recorded spec has none.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from berth.agent._engine import ContainerSpec, ContainerStatus, ExitCallback, ImageNotAvailable, PortBinding, RegistryAuth
from berth.errors import Conflict, InvalidArgument, NotFound

PAUSE_IMAGE = "berth/ecs-pause:latest"


@dataclass
class MemoryContainer:
    id: str
    spec: ContainerSpec
    state: str = "created"
    exit_code: int | None = None
    error: str = ""
    oom_killed: bool = False
    health: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    ports: tuple[PortBinding, ...] = ()
    ip_address: str = ""
    stop_exit_code: int = 143                # what SIGTERM makes it exit with
    stop_timeouts: list[int | None] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> Mapping[str, str]:
        return self.spec.labels

    def status(self) -> ContainerStatus:
        return ContainerStatus(id=self.id, name=self.spec.name, labels=dict(self.spec.labels), state=self.state,
                               exit_code=self.exit_code, error=self.error, oom_killed=self.oom_killed,
                               health=self.health, started_at=self.started_at, finished_at=self.finished_at,
                               ports=self.ports, ip_address=self.ip_address, image_digest=f"sha256:{self.spec.image}")


class MemoryEngine:
    """berth.agent._engine.ContainerEngine in memory."""

    def __init__(self, images: tuple[str, ...] = ("busybox",), gateway: str = "10.99.0.1",
                 subnet: str = "10.99.0.0/24") -> None:
        self.images: set[str] = set(images)
        self.containers: dict[str, MemoryContainer] = {}
        self.volumes: dict[str, dict[str, object]] = {}
        self.removed: list[str] = []                 # ids in the order they were removed
        self.started: list[str] = []                 # container names in the order they started
        self.stopped: list[str] = []                 # container names in the order they were stopped
        self.fail_start: dict[str, str] = {}         # ECS container name → the start error to raise
        self.exit_on_start: dict[str, int] = {}      # ECS container name → exits at once with this code
        self.healthy_on_start: set[str] = set()      # ECS container names that report healthy at once
        self.secret_env: dict[str, dict[str, str]] = {}   # engine id → secret environment (run root)
        self.pulls: list[tuple[str, RegistryAuth | None]] = []   # (reference, auth) of each ensure_image
        self._callbacks: list[ExitCallback] = []
        self._ids = itertools.count(1)
        self._ports = itertools.count(32768)
        self._ips = itertools.count(2)
        self._gateway, self._subnet = gateway, subnet

    # --- what the test drives ---------------------------------------------------------------

    def find(self, container_name: str, task_arn: str | None = None) -> MemoryContainer:
        """The (last created) container of an ECS container name (its container-name label)."""
        found = [c for c in self.containers.values()
                 if c.labels.get("com.amazonaws.ecs.container-name") == container_name
                 and (task_arn is None or c.labels.get("com.amazonaws.ecs.task-arn") == task_arn)]
        if not found:
            raise KeyError(container_name)
        return found[-1]

    def of_task(self, task_arn: str) -> list[MemoryContainer]:
        return [c for c in self.containers.values() if c.labels.get("com.amazonaws.ecs.task-arn") == task_arn]

    def exit(self, container_id: str, code: int, *, notify: bool = True, oom: bool = False) -> None:
        c = self.containers[container_id]
        c.state, c.exit_code, c.finished_at, c.oom_killed = "exited", code, time.time(), oom
        c.health = "unhealthy" if c.health else ""
        c.ports = ()
        if notify:
            self._notify(container_id)

    def set_health(self, container_id: str, health: str) -> None:
        self.containers[container_id].health = health
        self._notify(container_id)

    def add_running(self, spec: ContainerSpec) -> str:
        """A container as a previous daemon left it (adoption tests)."""
        cid = self._new_id()
        self.containers[cid] = MemoryContainer(cid, spec, state="running", started_at=time.time())
        return cid

    def _notify(self, container_id: str) -> None:
        for callback in list(self._callbacks):
            callback(container_id)

    def _new_id(self) -> str:
        return f"{next(self._ids):064x}"

    # --- ContainerEngine --------------------------------------------------------------------

    async def ensure_image(self, reference: str, auth: RegistryAuth | None) -> str:
        self.pulls.append((reference, auth))
        if reference not in self.images:
            raise ImageNotAvailable(f"pull access denied for {reference}, repository does not exist")
        return f"sha256:{reference}"

    async def ensure_pause_image(self) -> str:
        self.images.add(PAUSE_IMAGE)
        return PAUSE_IMAGE

    async def ensure_volume(self, name: str, labels: Mapping[str, str], driver: str | None,
                            driver_opts: Mapping[str, str]) -> None:
        self.volumes.setdefault(name, {"labels": dict(labels), "driver": driver or "local",
                                       "options": dict(driver_opts)})

    async def remove_volume(self, name: str) -> None:
        for c in self.containers.values():
            if any(m.kind == "volume" and m.source == name for m in c.spec.mounts):
                raise Conflict(f"remove {name}: volume is in use - [{c.id}]")
        self.volumes.pop(name, None)

    async def create(self, spec: ContainerSpec) -> str:
        if any(c.spec.name == spec.name for c in self.containers.values()):
            raise Conflict(f'Conflict. The container name "/{spec.name}" is already in use')
        if spec.image not in self.images:
            raise NotFound(f"No such image: {spec.image}")
        for m in spec.mounts:
            if m.kind == "volume" and m.source not in self.volumes:
                self.volumes[m.source] = {"labels": {}, "driver": "local", "options": {}}
        cid = self._new_id()
        if spec.secret_env:
            self.secret_env[cid] = dict(spec.secret_env)
        self.containers[cid] = MemoryContainer(cid, replace(spec, secret_env={}))
        return cid

    async def start(self, container_id: str) -> None:
        c = self.containers.get(container_id)
        if c is None:
            raise NotFound(f"No such container: {container_id}")
        name = c.labels.get("com.amazonaws.ecs.container-name", c.name)
        if name in self.fail_start:
            raise Conflict(self.fail_start[name])
        c.state, c.exit_code, c.started_at, c.finished_at = "running", None, time.time(), None
        c.ports = tuple(replace(p, host_port=p.host_port or next(self._ports)) for p in c.spec.ports)
        mode = c.spec.network_mode
        if mode not in ("host", "none") and not mode.startswith("container:"):
            c.ip_address = self._subnet.rsplit(".", 1)[0] + f".{next(self._ips)}"
        c.health = "starting" if c.spec.health is not None else ""
        if name in self.healthy_on_start and c.spec.health is not None:
            c.health = "healthy"
        self.started.append(name)
        if name in self.exit_on_start:
            self.exit(container_id, self.exit_on_start[name], notify=False)

    async def stop(self, container_id: str, timeout: int | None) -> None:
        c = self.containers.get(container_id)
        if c is None:
            return
        c.stop_timeouts.append(timeout)
        self.stopped.append(c.labels.get("com.amazonaws.ecs.container-name", c.name))
        if c.state == "running":
            self.exit(container_id, c.stop_exit_code)

    async def remove(self, container_id: str) -> None:
        self.secret_env.pop(container_id, None)
        if self.containers.pop(container_id, None) is not None:
            self.removed.append(container_id)

    def inspect(self, container_id: str) -> ContainerStatus | None:
        c = self.containers.get(container_id)
        return c.status() if c is not None else None

    def list_labelled(self, label: str) -> list[ContainerStatus]:
        return [c.status() for c in self.containers.values() if label in c.labels]

    def on_exit(self, callback: ExitCallback) -> Callable[[], None]:
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        return unsubscribe

    def network_address(self, network: str) -> tuple[str, str]:
        return self._gateway, self._subnet


class MemorySecrets:
    """berth.agent._secrets.SecretSource in memory: `values` maps a valueFrom to its value, or to
    an exception to raise; every call is recorded in `calls` as (valueFrom, account, region)."""

    def __init__(self, values: Mapping[str, str | Exception] | None = None) -> None:
        self.values: dict[str, str | Exception] = dict(values or {})
        self.calls: list[tuple[str, str, str]] = []

    def resolve(self, value_from: str, *, account: str, region: str) -> str:
        self.calls.append((value_from, account, region))
        found = self.values.get(value_from)
        if isinstance(found, Exception):
            raise found
        if found is None:
            if value_from.startswith("arn:") and ":secretsmanager:" in value_from:
                raise NotFound("ResourceNotFoundException: Secrets Manager can't find the specified secret.")
            if not value_from:
                raise InvalidArgument("ValidationException: empty valueFrom")
            raise NotFound(f"ParameterNotFound: {value_from}")
        return found
