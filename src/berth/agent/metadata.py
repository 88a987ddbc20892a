"""The ECS agent's HTTP endpoints inside a task: task metadata (v4, and v3 which is the same
minus the awsvpc network details) and task-role credentials.

    GET /v4/<task id>-<container>              this container          (ECS_CONTAINER_METADATA_URI_V4)
    GET /v4/<task id>-<container>/task         the task and all its containers
    GET /v4/<task id>-<container>/taskWithTags the same plus TaskTags
    GET /v4/<task id>-<container>/stats        Docker stats JSON of this container
    GET /v4/<task id>-<container>/task/stats   {docker id: stats} of the task's containers
    GET /v2/credentials/<id>                   {RoleArn, AccessKeyId, SecretAccessKey, Token, Expiration}
                                               (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)

One server per daemon, bound on the default bridge's gateway address only (never 0.0.0.0):
every container on the bridge reaches it through its default route, host-mode containers reach
it as a local address. It answers callers from the bridge subnet and the host itself, nobody
else. As the ECS agent does, 169.254.170.2:80 is made to reach it too (the AWS SDKs only accept
`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` against that address): a DNAT rule in the host's nat
table, in a chain of this daemon's own (`BERTH-ECS-<bridge>`), for packets entering from the
bridge. `remove_dnat` removes it at daemon stop.

Credentials ids are an HMAC of the task ARN under a key kept in the daemon's root, so a restarted
daemon recognises the ids its running containers were given (the keys themselves live in memory:
a restarted daemon issues new ones on the next fetch). Keys are issued by the AWS endpoint's
`TemporaryCredentials` for 6 hours and re-issued when less than 15 minutes are left; berth
evaluates no IAM policy: a task-role key may do whatever the daemon's own keys may.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import subprocess
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web

from berth.agent._snapshot import Address, ContainerSnapshot, labels, log_config
from berth.agent._specs import LABEL_CONTAINER, LABEL_TASK, PAUSE_NAME
from berth.ecs import model as m
from berth.ecs import TaskDefinitionSpec
from berth.errors import BerthError

log = logging.getLogger("berth.agent.metadata")

METADATA_PORT = 51679                  # the ECS agent's introspection port; any free one if taken
CREDENTIALS_ADDRESS = "169.254.170.2"  # where the SDKs and the ECS docs expect the agent
ROLE_TTL = 6 * 3600.0
REFRESH_BEFORE = 15 * 60.0
CREDENTIALS_PREFIX = "/v2/credentials/"
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


# --- what the server reads ----------------------------------------------------------------------

@dataclass(frozen=True)
class TaskInfo:
    task: m.Task
    spec: TaskDefinitionSpec | None = None   # None: the task definition is gone


class TaskSource(Protocol):
    def by_id(self, task_id: str) -> TaskInfo | None: ...
    def with_role(self) -> Iterable[m.Task]: ...   # tasks with a taskRoleArn (credentials ids are looked up in them)


class ContainerSource(Protocol):
    def task_containers(self, task_arn: str) -> list[ContainerSnapshot]: ...   # the engine's snapshot of each
    def stats(self, container_id: str) -> dict[str, Any] | None: ...        # Docker stats JSON, None if gone


class IssuedKey(Protocol):
    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...
    @property
    def session_token(self) -> str | None: ...
    @property
    def expires_at(self) -> float | None: ...


class KeyIssuer(Protocol):  # berth.api.aws.TemporaryCredentials
    def issue(self, role_arn: str, account: str, ttl_seconds: float) -> IssuedKey: ...


_Record = TypeVar("_Record")   # an ECS model class (berth.ecs.model)


class _Repo(Protocol):  # berth.ecs.Repo
    def get(self, cls: type[_Record], key: str) -> _Record | None: ...
    def list(self, cls: type[_Record], prefix: str = "") -> list[_Record]: ...
    def spec(self, taskdef: m.TaskDefinition) -> TaskDefinitionSpec: ...


class RepoTasks:
    """`TaskSource` over the control plane's records (task ids → ARNs are cached: they never change)."""

    def __init__(self, repo: _Repo) -> None:
        self.repo = repo
        self._arns: dict[str, str] = {}

    def remember(self, task: m.Task) -> None:
        self._arns[task.task_id] = task.arn

    def by_id(self, task_id: str) -> TaskInfo | None:
        arn = self._arns.get(task_id)
        task: m.Task | None = self.repo.get(m.Task, arn) if arn else None
        if task is None:
            task = next((t for t in self.repo.list(m.Task) if t.task_id == task_id), None)
            if task is None:
                return None
            self._arns[task_id] = task.arn
        spec = None
        taskdef = self.repo.get(m.TaskDefinition, task.task_definition_arn)
        if taskdef is not None:
            try:
                spec = self.repo.spec(taskdef)
            except BerthError:
                spec = None
        return TaskInfo(task, spec)

    def with_role(self) -> Iterable[m.Task]:
        return [t for t in self.repo.list(m.Task) if t.task_role_arn]


class _RunState(Protocol):  # berth.engine.containers.ContainerState
    @property
    def running(self) -> bool: ...
    @property
    def pid(self) -> int: ...


class _Container(Protocol):  # berth.engine.containers.Container
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> _RunState: ...


class _Containers(Protocol):  # berth.engine.containers.ContainerService
    def list(self, *, all: bool, limit: int, filters: dict[str, list[str]]) -> Sequence[ContainerSnapshot]: ...
    def get(self, ref: str) -> _Container: ...


class EngineContainers:
    """`ContainerSource` over berth's engine; keeps each container's last stats sample so the
    next one carries precpu_stats, as `docker stats` does."""

    MAX_SAMPLES = 512

    def __init__(self, containers: _Containers, sample: Callable[[str, str, int], dict[str, Any]],
                 with_previous: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]]) -> None:
        # the engine's stats functions (berth.engine.stats), handed in by the daemon: the agent
        # reaches the engine only through what it is given
        self.containers = containers
        self._sample = sample
        self._with_previous = with_previous
        self._previous: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def task_containers(self, task_arn: str) -> list[ContainerSnapshot]:
        return list(self.containers.list(all=True, limit=-1, filters={"label": [f"{LABEL_TASK}={task_arn}"]}))

    def stats(self, container_id: str) -> dict[str, Any] | None:
        try:
            c = self.containers.get(container_id)
        except BerthError:
            return None
        current = self._sample(c.id, c.name, c.state.pid if c.state.running else 0)
        with self._lock:
            previous = self._previous.pop(c.id, None)
            self._previous[c.id] = json.loads(json.dumps(current))
            while len(self._previous) > self.MAX_SAMPLES:
                self._previous.popitem(last=False)
        return self._with_previous(current, previous)


# --- task-role credentials -----------------------------------------------------------------------

def rfc3339(ts: float, *, fraction: bool = True) -> str:
    when = datetime.fromtimestamp(ts, timezone.utc)
    if not fraction:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_key(path: Path) -> bytes:
    """The HMAC key behind credentials ids (made on first use, 0600)."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    os.replace(tmp, path)
    return key


class TaskRoleCredentials:
    """Per task with a taskRoleArn: a stable credentials id, and keys issued on demand."""

    def __init__(self, issuer: KeyIssuer, key: bytes, *, clock: Callable[[], float] = time.time,
                 ttl: float = ROLE_TTL, refresh_before: float = REFRESH_BEFORE) -> None:
        self.issuer = issuer
        self.key = key
        self.clock = clock
        self.ttl = ttl
        self.refresh_before = refresh_before
        self._ids: dict[str, str] = {}               # credentials id → task ARN
        self._keys: dict[str, tuple[str, IssuedKey]] = {}  # task ARN → (role, issued key)
        self._lock = threading.Lock()

    def credentials_id(self, task_arn: str) -> str:
        digest = hmac.new(self.key, task_arn.encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def relative_uri(self, task: m.Task) -> str:
        """AWS_CONTAINER_CREDENTIALS_RELATIVE_URI of the task, "" without a task role."""
        if not task.task_role_arn:
            return ""
        cid = self.credentials_id(task.arn)
        with self._lock:
            self._ids[cid] = task.arn
        return f"{CREDENTIALS_PREFIX}{cid}"

    def task_arn(self, credentials_id: str, tasks: Callable[[], Iterable[m.Task]]) -> str | None:
        with self._lock:
            arn = self._ids.get(credentials_id)
        if arn is not None:
            return arn
        for task in tasks():  # ids given out by an earlier daemon
            if hmac.compare_digest(self.credentials_id(task.arn), credentials_id):
                with self._lock:
                    self._ids[credentials_id] = task.arn
                return task.arn
        return None

    def for_task(self, task: m.Task) -> dict[str, str]:
        """The endpoint's answer: the current keys, issued anew when < refresh_before is left."""
        now = self.clock()
        with self._lock:
            held = self._keys.get(task.arn)
            if held is None or held[0] != task.task_role_arn or _left(held[1], now) < self.refresh_before:
                held = (task.task_role_arn, self.issuer.issue(task.task_role_arn, _account(task), self.ttl))
                self._keys[task.arn] = held
        key = held[1]
        return {"RoleArn": task.task_role_arn, "AccessKeyId": key.access_key, "SecretAccessKey": key.secret_key,
                "Token": key.session_token or "", "Expiration": rfc3339(key.expires_at or now + self.ttl,
                                                                         fraction=False)}

    def forget(self, task_arn: str) -> None:
        with self._lock:
            self._keys.pop(task_arn, None)


def _left(key: IssuedKey, now: float) -> float:
    expires = key.expires_at
    return float("inf") if expires is None else float(expires) - now


def _account(task: m.Task) -> str:
    parts = task.arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else "000000000000"


# --- the JSON (pure) ---------------------------------------------------------------------------

_ZERO_TIME = "0001-01-01T00:00:00Z"


def _family_revision(task: m.Task) -> tuple[str, str]:
    name = task.task_definition_arn.rsplit("/", 1)[-1]
    family, _, revision = name.rpartition(":")
    return (family, revision) if family else (name, "")


def _known_status(record: m.TaskContainer | None, state: str) -> str:
    if record is not None:
        return record.last_status
    if state in ("running", "paused", "restarting"):
        return "RUNNING"
    if state in ("exited", "dead", "removing"):
        return "STOPPED"
    return "PENDING"


def _container_name(snapshot: ContainerSnapshot) -> str:
    """The task definition's name of the container (its ECS label)."""
    return labels(snapshot).get(LABEL_CONTAINER, "")


def _first_address(snapshot: ContainerSnapshot | None) -> Address | None:
    """The address on the first network it shows (the pause container's, for awsvpc)."""
    entries = list(snapshot.networks.values()) if snapshot is not None else []
    return entries[0].attached if entries else None


def _awsvpc_network(task: m.Task, pause: ContainerSnapshot | None, awsvpc_details: bool) -> dict[str, Any]:
    net: dict[str, Any] = {"NetworkMode": "awsvpc", "IPv4Addresses": [task.private_ip] if task.private_ip else []}
    if not awsvpc_details:
        return net
    attached = _first_address(pause)
    net["AttachmentIndex"] = 0
    if attached is not None and attached.mac_address:
        net["MACAddress"] = attached.mac_address
    if attached is not None and attached.ip_address and attached.prefix_len:
        cidr = ipaddress.ip_network(f"{attached.ip_address}/{attached.prefix_len}", strict=False)
        net["IPv4SubnetCIDRBlock"] = str(cidr)
        if attached.gateway:
            net["SubnetGatewayIpv4Address"] = f"{attached.gateway}/{cidr.prefixlen}"
    if task.private_ip:
        net["PrivateDNSName"] = "ip-" + task.private_ip.replace(".", "-")
    return net


def _bridge_addresses(snapshot: ContainerSnapshot) -> list[str]:
    """Its addresses on every network it shows, else its attachment's."""
    attached = [e.attached for e in snapshot.networks.values() if e.attached is not None]
    ips = [a.ip_address for a in attached if a.ip_address]
    if not ips and snapshot.network is not None and snapshot.network.address.ip_address:
        ips = [snapshot.network.address.ip_address]
    return ips


def _networks(task: m.Task, snapshot: ContainerSnapshot, pause: ContainerSnapshot | None,
              awsvpc_details: bool) -> list[dict[str, Any]]:
    mode = task.network_mode or "bridge"
    if mode == "awsvpc":
        return [_awsvpc_network(task, pause, awsvpc_details)]
    if mode == "bridge":
        return [{"NetworkMode": "bridge", "IPv4Addresses": _bridge_addresses(snapshot)}]
    return [{"NetworkMode": mode}]


def _health_json(record: m.TaskContainer, snapshot: ContainerSnapshot) -> dict[str, Any]:
    health: dict[str, Any] = {"status": record.health_status}
    checks = snapshot.health.log if snapshot.health is not None else ()
    if checks:
        health["statusSince"] = checks[-1].get("End", "")
        health["exitCode"] = checks[-1].get("ExitCode")
        health["output"] = checks[-1].get("Output", "")
    return health


def container_json(info: TaskInfo, snapshot: ContainerSnapshot, *, pause: ContainerSnapshot | None = None,
                   awsvpc_details: bool = True) -> dict[str, Any]:
    """One container as the v4 endpoint shows it, from the task record and the engine's snapshot."""
    task, c = info.task, snapshot.container
    state = c.state
    name = _container_name(snapshot)
    record = next((r for r in task.containers if r.name == name), None)
    definition = next((d for d in info.spec.containers if d.name == name), None) if info.spec else None
    out: dict[str, Any] = {
        "DockerId": c.id,
        "Name": name,
        "DockerName": c.name,
        "Image": record.image if record is not None else c.config.image,
        "ImageID": c.image_id,
    }
    if record is not None and record.network_bindings:
        out["Ports"] = [{"ContainerPort": b.container_port, "Protocol": b.protocol, "HostPort": b.host_port,
                         "HostIp": b.bind_ip} for b in record.network_bindings]
    out["Labels"] = dict(labels(snapshot))
    out["DesiredStatus"] = task.desired_status if name != PAUSE_NAME else (
        "RESOURCES_PROVISIONED" if task.desired_status == "RUNNING" else "STOPPED")
    out["KnownStatus"] = _known_status(record, state.status)
    if name == PAUSE_NAME and out["KnownStatus"] == "RUNNING":
        out["KnownStatus"] = "RESOURCES_PROVISIONED"
    exit_code = record.exit_code if record is not None else None
    if exit_code is None and out["KnownStatus"] == "STOPPED":
        exit_code = state.exit_code
    if exit_code is not None:
        out["ExitCode"] = exit_code
    limits: dict[str, Any] = {"CPU": record.cpu if record is not None else 0}
    memory = record.memory if record is not None else None
    if memory:
        limits["Memory"] = memory
    out["Limits"] = limits
    if c.created:
        out["CreatedAt"] = c.created
    if state.started_at and state.started_at != _ZERO_TIME:
        out["StartedAt"] = state.started_at
    if state.finished_at and state.finished_at != _ZERO_TIME and out["KnownStatus"] == "STOPPED":
        out["FinishedAt"] = state.finished_at
    out["Type"] = "CNI_PAUSE" if name == PAUSE_NAME else "NORMAL"
    driver, options = log_config(snapshot)
    if definition is not None and definition.log_configuration is not None:
        out["LogDriver"] = definition.log_configuration.driver
        out["LogOptions"] = dict(definition.log_configuration.options)
    elif driver:
        out["LogDriver"] = driver
        out["LogOptions"] = options
    if record is not None and record.arn:
        out["ContainerARN"] = record.arn
    if definition is not None and definition.health_check is not None and record is not None:
        out["Health"] = _health_json(record, snapshot)
    if snapshot.mounts:
        out["Volumes"] = [{"Source": mt.source, "Destination": mt.destination} for mt in snapshot.mounts]
    out["Networks"] = _networks(task, snapshot, pause, awsvpc_details)
    out["RestartCount"] = c.restart_count
    return out


def task_json(info: TaskInfo, containers: Sequence[ContainerSnapshot], *, with_tags: bool = False,
              awsvpc_details: bool = True) -> dict[str, Any]:
    """The task and its containers as `${ECS_CONTAINER_METADATA_URI_V4}/task` shows them."""
    task = info.task
    family, revision = _family_revision(task)
    pause = next((c for c in containers if _container_name(c) == PAUSE_NAME), None)
    out: dict[str, Any] = {"Cluster": task.cluster_arn.rsplit("/", 1)[-1]}
    if task.group.startswith("service:"):
        out["ServiceName"] = task.group.split(":", 1)[1]
    out.update({"TaskARN": task.arn, "Family": family, "Revision": revision,
                "DesiredStatus": task.desired_status, "KnownStatus": task.last_status})
    limits: dict[str, Any] = {}
    if task.cpu:
        try:
            limits["CPU"] = int(task.cpu) / 1024
        except ValueError:
            pass
    if task.memory:
        try:
            limits["Memory"] = int(task.memory)
        except ValueError:
            pass
    if limits:
        out["Limits"] = limits
    for key, value in (("PullStartedAt", task.pull_started_at), ("PullStoppedAt", task.pull_stopped_at),
                       ("ExecutionStoppedAt", task.execution_stopped_at)):
        if value:
            out[key] = rfc3339(value)
    if task.availability_zone:
        out["AvailabilityZone"] = task.availability_zone
    if with_tags:
        out["TaskTags"] = {t.key: t.value for t in task.tags}
        out["ContainerInstanceTags"] = {}
    out["LaunchType"] = task.launch_type
    order = {c.name: i for i, c in enumerate(task.containers)}
    ordered = sorted(containers, key=lambda c: order.get(_container_name(c), len(order)))
    out["Containers"] = [container_json(info, c, pause=pause, awsvpc_details=awsvpc_details) for c in ordered]
    return out


def split_metadata_id(metadata_id: str) -> tuple[str, str]:
    """`<task id>-<container name>` (task ids are 32 hex digits, no dashes)."""
    task_id, _, container = metadata_id.partition("-")
    return task_id, container


# --- the server --------------------------------------------------------------------------------

def _json(body: Any, status: int = 200) -> web.Response:  # body: the JSON answer
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"code": "NotFound" if status == 404 else "Forbidden", "message": message}, status)


class MetadataServer:
    """The endpoints; `handle` is the whole application (tests mount it on their own server)."""

    def __init__(self, tasks: TaskSource, containers: ContainerSource, credentials: TaskRoleCredentials | None,
                 *, host: str, port: int = METADATA_PORT, allowed: Sequence[str] = ()) -> None:
        self.tasks = tasks
        self.containers = containers
        self.credentials = credentials
        self.host = host
        self.port = port
        # callers allowed besides loopback and the host's own addresses: the bridge subnet(s)
        self.allowed = [ipaddress.ip_network(a, strict=False) for a in allowed]
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def relative_uri(self, task: m.Task) -> str:
        return self.credentials.relative_uri(task) if self.credentials is not None else ""

    def task_stopped(self, task: m.Task) -> None:
        if self.credentials is not None:
            self.credentials.forget(task.arn)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        return app

    async def start(self) -> int:
        """Listen on host:port (any free port when it is taken); returns the port."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        try:
            sock = _bind(self.host, self.port)
        except OSError as err:
            if err.errno != errno.EADDRINUSE or self.port == 0:
                await self.close()
                raise
            log.warning("task metadata: %s:%s is taken, using another port", self.host, self.port)
            sock = _bind(self.host, 0)
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        log.info("ECS task metadata and credentials endpoint on %s", self.base_url)
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _caller_allowed(self, request: web.Request) -> bool:
        peer = request.remote or ""
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return True  # not an IP socket (a test's unix transport)
        if address.is_loopback or any(address in net for net in self.allowed):
            return True
        return peer == self.host

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._caller_allowed(request):
            return _error(403, "the task metadata endpoint answers containers of this host only")
        path = request.path.rstrip("/")
        if path.startswith(CREDENTIALS_PREFIX):
            return await self._credentials(path[len(CREDENTIALS_PREFIX):])
        parts = path.lstrip("/").split("/")
        if len(parts) >= 2 and parts[0] in ("v4", "v3"):
            return await self._metadata(parts[0], parts[1], "/".join(parts[2:]))
        return _error(404, f"no such endpoint: {request.path}")

    async def _credentials(self, credentials_id: str) -> web.Response:
        creds = self.credentials
        if creds is None or not credentials_id:
            return _error(404, "no credentials here")
        arn = await asyncio.to_thread(creds.task_arn, credentials_id, self.tasks.with_role)
        info = await asyncio.to_thread(self.tasks.by_id, arn.rsplit("/", 1)[-1]) if arn else None
        if info is None or not info.task.task_role_arn or info.task.last_status == "STOPPED":
            return _json({"code": "NoSuchEntity", "message": f"Credentials not found for id {credentials_id}"}, 404)
        return _json(await asyncio.to_thread(creds.for_task, info.task))

    async def _metadata(self, version: str, metadata_id: str, rest: str) -> web.Response:
        task_id, name = split_metadata_id(metadata_id)
        info = await asyncio.to_thread(self.tasks.by_id, task_id)
        if info is None:
            return _error(404, f"no task {task_id}")
        containers = await asyncio.to_thread(self.containers.task_containers, info.task.arn)
        mine = next((c for c in containers if _container_name(c) == name), None)
        if mine is None:
            return _error(404, f"no container {name!r} in task {task_id}")
        details = version == "v4"
        if rest == "":
            pause = next((c for c in containers if _container_name(c) == PAUSE_NAME), None)
            return _json(container_json(info, mine, pause=pause, awsvpc_details=details))
        if rest in ("task", "taskWithTags"):
            return _json(task_json(info, containers, with_tags=rest == "taskWithTags", awsvpc_details=details))
        if rest == "stats":
            return _json(await asyncio.to_thread(self.containers.stats, mine.container.id))
        if rest == "task/stats":
            ids = [c.container.id for c in containers if _container_name(c) != PAUSE_NAME]
            samples = await asyncio.gather(*(asyncio.to_thread(self.containers.stats, i) for i in ids))
            return _json(dict(zip(ids, samples, strict=True)))
        return _error(404, f"no such endpoint: /{version}/{metadata_id}/{rest}")


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; IP_FREEBIND lets it bind the bridge's gateway address
    before the bridge has it (the bridge comes up with its first container)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


# --- 169.254.170.2:80 → the server -------------------------------------------------------------

def dnat_chain(bridge: str) -> str:
    return f"BERTH-ECS-{bridge}"[:28]


def dnat_hook(bridge: str) -> list[str]:
    return ["PREROUTING", "-i", bridge, "-d", f"{CREDENTIALS_ADDRESS}/32", "-p", "tcp", "--dport", "80",
            "-j", dnat_chain(bridge)]


def dnat_rule(bridge: str, gateway: str, port: int) -> list[str]:
    return [dnat_chain(bridge), "-p", "tcp", "-j", "DNAT", "--to-destination", f"{gateway}:{port}"]


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "-t", "nat", *args], capture_output=True, text=True, check=False)


def install_dnat(bridge: str, gateway: str, port: int) -> None:
    """Make 169.254.170.2:80 reach gateway:port for packets entering from `bridge` (any earlier
    daemon's rules for this bridge are replaced)."""
    remove_dnat(bridge)
    chain = dnat_chain(bridge)
    for args in (["-N", chain], ["-A", *dnat_rule(bridge, gateway, port)], ["-I", *dnat_hook(bridge)[:1], "1",
                                                                           *dnat_hook(bridge)[1:]]):
        result = _iptables(*args)
        if result.returncode != 0:
            remove_dnat(bridge)
            raise OSError(f"iptables -t nat {' '.join(args)}: {result.stderr.strip()}")


def remove_dnat(bridge: str) -> None:
    """Remove this bridge's DNAT hook and chain; nothing if absent."""
    chain = dnat_chain(bridge)
    for _ in range(16):  # one hook normally; duplicates from a crash are removed too
        if _iptables("-D", *dnat_hook(bridge)).returncode != 0:
            break
    if _iptables("-S", chain).returncode == 0:
        _iptables("-F", chain)
        _iptables("-X", chain)
