"""Exec instances (`docker exec`): created against a running container, started once."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from berth.engine import secret_env
from berth.engine.attach import detach_keys
from berth.engine.containers import Container, check_can_exec, check_tty_size, event_attributes
from berth.engine.events import EventBus
from berth.errors import Conflict, InvalidArgument, NotFound
from berth.runtime import ExecProcess, ExecSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecConfig:
    """What `docker exec` asks for (the API edge converts the create body into it).
    `console_size` is kept as sent, checked at create with dockerd's wording."""
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = ""
    tty: bool = False
    privileged: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    detach_keys: str = ""
    console_size: tuple[int, ...] | None = None


@dataclass
class ExecInstance:
    id: str
    container_id: str
    spec: ExecSpec
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    detach_keys: str = ""
    # What ends an attached client's session on a TTY exec (dockerd: ctrl-p ctrl-q by default).
    escape_keys: bytes = b""
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    process: ExecProcess | None = None   # set by ExecService.start
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def started_process(self) -> ExecProcess:
        """The process, once the exec has started (Conflict before)."""
        if self.process is None:
            raise Conflict(f"Exec {self.id} is not running")
        return self.process


class ExecContainers(Protocol):
    """berth.engine.containers.ContainerService: the container an exec runs in."""

    def get(self, ref: str) -> Container: ...


class ExecRuntime(Protocol):
    """berth.runtime.Runtime: starting the exec's process."""

    async def exec(self, container_id: str, spec: ExecSpec) -> ExecProcess: ...


class ExecService:
    def __init__(self, *, containers: ExecContainers, runtime: ExecRuntime, events: EventBus | None = None) -> None:
        self._containers = containers
        self._runtime = runtime
        self._events = events
        self._execs: dict[str, ExecInstance] = {}

    def _publish(self, instance: ExecInstance, action: str, **extra: str) -> None:
        """dockerd's exec events: `exec_create: <cmd>`, `exec_start: <cmd>` and `exec_die`, on
        the container, with its name, image and labels and the exec's id."""
        if self._events is None:
            return
        try:
            container = self._containers.get(instance.container_id)
        except NotFound:
            return  # removed meanwhile: dockerd has no container to log the event on either
        self._events.publish("container", action, container.id,
                             event_attributes(container, execID=instance.id, **extra))

    @staticmethod
    def _with_command(action: str, instance: ExecInstance) -> str:
        """moby writes `Entrypoint + " " + strings.Join(Args, " ")` (a lone command keeps its space)."""
        args = instance.spec.args
        return f"{action}: {args[0]} {' '.join(args[1:])}"

    def detached(self, exec_id: str) -> None:
        """The client left the exec with the detach keys (the process runs on): `exec_detach`."""
        self._publish(self.get(exec_id), "exec_detach")

    def create(self, ref: str, config: ExecConfig) -> str:
        container = self._containers.get(ref)
        if not config.cmd:
            raise InvalidArgument("No exec command specified")
        check_can_exec(container)
        escape = detach_keys(config.detach_keys, what="escape")
        # a secret variable's Env entry is its placeholder: the bundle's process env has the value
        env = [*secret_env.without(container.config.env, container.secret_env), *config.env]
        console = config.console_size or (0, 0)
        if len(console) != 2 or not all(0 <= v <= 0xFFFF for v in console):
            raise InvalidArgument(f"invalid ConsoleSize: {list(console)!r} (want [height, width])")
        spec = ExecSpec(
            args=config.cmd, env=tuple(env), user=config.user or container.config.user,
            cwd=config.working_dir or container.config.working_dir, tty=config.tty, stdin=config.attach_stdin,
            privileged=config.privileged, height=console[0], width=console[1],
        )
        exec_id = secrets.token_hex(32)
        self._execs[exec_id] = ExecInstance(
            id=exec_id, container_id=container.id, spec=spec, attach_stdin=config.attach_stdin,
            attach_stdout=config.attach_stdout, attach_stderr=config.attach_stderr,
            detach_keys=config.detach_keys, escape_keys=escape)
        self._publish(self._execs[exec_id], self._with_command("exec_create", self._execs[exec_id]))
        return exec_id

    def get(self, exec_id: str) -> ExecInstance:
        instance = self._execs.get(exec_id)
        if instance is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return instance

    def check_startable(self, exec_id: str) -> ExecInstance:
        """The checks `start` makes, for callers that must answer errors before hijacking."""
        instance = self.get(exec_id)
        if instance.started:
            raise Conflict(f"exec command {exec_id} has already run")
        check_can_exec(self._containers.get(instance.container_id))
        return instance

    async def start(self, exec_id: str, console: tuple[int, int] | None = None) -> ExecInstance:
        """Run the exec; `console` (height, width) from the start request replaces the size given
        at create (dockerd: "If size isn't specified for start, use the one provided for create")."""
        instance = self.check_startable(exec_id)
        instance.started = True
        if console is not None and instance.spec.tty:
            instance.spec = dataclasses.replace(instance.spec, height=console[0], width=console[1])
        process = instance.process = await self._runtime.exec(instance.container_id, instance.spec)
        instance.pid = process.pid
        instance.running = True
        self._publish(instance, self._with_command("exec_start", instance))
        asyncio.create_task(self._reap(instance, process))
        return instance

    async def _reap(self, instance: ExecInstance, process: ExecProcess) -> None:
        try:
            instance.exit_code = await process.wait()
        except Exception:  # noqa: BLE001
            log.exception("exec %s failed", instance.id[:12])
            instance.exit_code = 126
        instance.running = False
        self._publish(instance, "exec_die", exitCode=str(instance.exit_code))
        instance.done.set()

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        check_tty_size(height, width)
        process = self.get(exec_id).started_process()
        await asyncio.to_thread(process.resize, height, width)

    def inspect(self, exec_id: str) -> dict[str, Any]:
        i = self.get(exec_id)
        s = i.spec
        return {
            "ID": i.id, "Running": i.running, "ExitCode": i.exit_code, "CanRemove": not i.running,
            "DetachKeys": i.detach_keys, "OpenStdin": i.attach_stdin, "OpenStdout": i.attach_stdout,
            "OpenStderr": i.attach_stderr, "ContainerID": i.container_id, "Pid": i.pid,
            "ProcessConfig": {"tty": s.tty, "entrypoint": s.args[0], "arguments": list(s.args[1:]),
                              "privileged": s.privileged, "user": s.user},
        }

    def forget_container(self, container_id: str) -> None:
        for exec_id in [e for e, i in self._execs.items() if i.container_id == container_id]:
            del self._execs[exec_id]
