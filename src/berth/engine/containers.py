"""ContainerService: Docker's container semantics over the image store, runtime and network.

Concurrency rules:
- Each container has an asyncio.Lock; start, stop, kill-to-death and remove take it, so two of
  them never interleave on one container.
- The exit monitor (one task per running container) never takes the lock: it cleans up and
  then sets the container's `exited` event, which `stop` and `rm -f` wait on while holding it.
- CNI DEL is slow (≈100–200 ms of iptables calls), so teardown of the network runs in the
  background after the container is reported exited; a later start of the same container waits
  for it. Daemon shutdown waits for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal as signals
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from berth.engine import container_config as cfg
from berth.engine import container_limits as limits
from berth.engine import container_security as security
from berth.engine import container_json
from berth.engine import filters as filters_mod
from berth.engine.attach import AttachSession
from berth.engine.container_model import (
    Container, ContainerRepository, ContainerState, check_can_remove, now_rfc3339,
)
from berth.engine.events import EventBus
from berth.engine.restart_policy import RestartPolicy, next_delay, should_restart, starts_with_daemon
from berth.images import ImageUser
from berth.errors import BerthError, Conflict, FailedPrecondition, InvalidArgument, NotFound
from berth.network import PortMapping
from berth.runtime import ContainerSpec, Mount, Runtime, follow_logs, read_logs

log = logging.getLogger(__name__)


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    """`KILL`, `SIGKILL`, `9` → 9; InvalidArgument with moby's wording otherwise."""
    if value in (None, ""):
        return default
    text = str(value).upper()
    if text.isdigit():
        if not 0 < int(text) <= 64:  # SIGRTMAX: a larger number is no signal (and overflows kill(2))
            raise InvalidArgument(f"Invalid signal: {value}")
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(signals.Signals[name])
    except KeyError as err:
        raise InvalidArgument(f"Invalid signal: {value}") from err


WAIT_CONDITIONS = ("", "not-running", "next-exit", "removed")


def check_wait_condition(condition: str) -> None:
    """`POST /containers/{id}/wait?condition=`: moby's three conditions (empty means not-running)."""
    if condition not in WAIT_CONDITIONS:
        raise InvalidArgument(f'invalid condition: "{condition}"')


def check_tty_size(height: int, width: int) -> None:
    """A terminal size fits the kernel's winsize (two unsigned shorts)."""
    if not (0 <= height <= 0xFFFF and 0 <= width <= 0xFFFF):
        raise InvalidArgument(f"invalid terminal size {height}x{width}")


def start_error_code(message: str) -> int:
    """The exit code moby records when start fails (the CLI uses the message text)."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered:
        return 126
    return 128


class ContainerService:
    def __init__(self, *, root: Path, repo: ContainerRepository, images: Any, runtime: Runtime,
                 network: Any, events: EventBus, volumes: Any = None) -> None:
        # network: berth.engine.networks.NetworkService; volumes: berth.engine.volumes.VolumeService
        self._dir = root / "containers"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._repo = repo
        self._images = images
        self._runtime = runtime
        self._network = network
        self._events = events
        self._volumes = volumes
        self._locks: dict[str, asyncio.Lock] = {}
        self._exited: dict[str, asyncio.Event] = {}
        self._exit_waiters: dict[str, list[asyncio.Future[Container]]] = {}
        self._removed_waiters: dict[str, list[asyncio.Future[Container]]] = {}
        self._pending_attach: dict[str, list[AttachSession]] = {}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._detaching: dict[str, asyncio.Task[None]] = {}
        self._restarts: dict[str, asyncio.Task[None]] = {}   # pending policy restarts (back-off)
        self._backoff: dict[str, float] = {}                 # last restart delay per container
        self._exit_on_next: set[str] = set()                 # stop/kill: the next exit is final

    # --- lookups ---------------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        return self._repo.get(ref)

    def container_dir(self, container_id: str) -> Path:
        return self._dir / container_id

    def log_path(self, container_id: str) -> Path:
        return self.container_dir(container_id) / "ctr.log"

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    def lock(self, container_id: str) -> asyncio.Lock:
        """The container's lifecycle lock, for other engine services that must keep a start
        away (docker cp on a stopped container mounts its rootfs meanwhile)."""
        return self._lock(container_id)

    def image_users(self, image_id: str) -> list[ImageUser]:
        """Containers built on an image, for `docker rmi`'s in-use checks."""
        return [ImageUser(container_id=c.id, running=c.state.running)
                for c in self._repo.all() if c.image_id == image_id]

    # --- create ----------------------------------------------------------------------------------
    async def create(self, name: str | None, body: Any) -> Container:
        if not isinstance(body, dict) or not body.get("Image"):
            raise InvalidArgument("Config cannot be empty in order to create a container")
        host_config = body.get("HostConfig") or {}
        if not isinstance(host_config, dict):
            raise InvalidArgument("invalid HostConfig")
        cfg.validate_config(body)
        if body.get("StopSignal"):
            parse_signal(body["StopSignal"])
        host_config = cfg.normalize_host_config(host_config)
        cfg.validate_host_config(host_config)
        host_config = limits.normalize(host_config)
        limits.validate(host_config, self._host_limits())
        await asyncio.to_thread(security.validate, host_config)  # stats --device paths
        cfg.network_mode(host_config)
        image = await asyncio.to_thread(self._images.resolve, body["Image"])
        container_id = secrets.token_hex(32)
        config = cfg.merge_config(body, (image.config or {}).get("config") or {}, container_id)
        cfg.port_bindings(host_config, config)  # validates every port spec now, not at start
        name = cfg.validate_name(name) if name else cfg.generate_name(self._repo.names())
        self._repo.check_name_free(name)  # before volumes and bind dirs are made for it
        networking_config = body.get("NetworkingConfig") or {}
        await asyncio.to_thread(self._network.validate_create, host_config, networking_config)
        mounts = await asyncio.to_thread(self._volumes.plan_container, host_config, config,
                                         image.config or {}, self._mount_lookup) if self._volumes else []
        container = Container(
            id=container_id, name=name, created=now_rfc3339(), image=body["Image"], image_id=image.id,
            config=config, host_config=host_config, networking_config=networking_config, mounts=mounts,
        )
        cdir = self.container_dir(container_id)
        try:
            cdir.mkdir(parents=True)
            self._repo.add(container)
        except BaseException:
            await asyncio.to_thread(_remove_tree, cdir)
            if self._volumes:  # the anonymous volumes planned for it belong to no one now
                await asyncio.to_thread(self._volumes.remove_anonymous, mounts, container_id)
            raise
        self._publish(container, "create")
        return container

    def _mount_lookup(self, ref: str) -> tuple[str, list[dict[str, Any]]]:
        container = self.get(ref)
        return container.id, container.mounts

    # --- start -----------------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            container = self.get(container.id)
            if container.state.running:
                raise FailedPrecondition("container already started")
            if container.state.status == "removing":
                raise Conflict(f"cannot start container {container.id[:12]}: removal in progress")
            pending = self._detaching.get(container.id)
            if pending is not None:
                await pending
            self._cancel_restart(container.id)
            container.manually_stopped = False
            container.restart_count = 0
            self._backoff.pop(container.id, None)
            try:
                await self._launch(container)
            except BerthError as err:
                await self._fail_start(container, err)
                raise
        self._publish(container, "start")

    async def _launch(self, container: Container) -> None:
        self._exited[container.id] = asyncio.Event()
        attachment = await asyncio.to_thread(self._prepare, container)
        container.network = attachment
        spec = self._spec(container, attachment)
        rootfs = self.container_dir(container.id) / "rootfs"
        pid = await asyncio.to_thread(self._runtime.create, spec, rootfs, self.log_path(container.id))
        for session in self._pending_attach.pop(container.id, []):
            try:
                session.connect(await self._runtime.attach(container.id))
            except BerthError:
                session.connect(None)
        await asyncio.to_thread(self._runtime.start, container.id)
        container.state = ContainerState(status="running", pid=pid, started_at=now_rfc3339())
        container.runtime = self._runtime.name
        self._repo.save(container)
        self._monitors[container.id] = asyncio.create_task(self._monitor(container.id))

    def _prepare(self, container: Container) -> dict[str, Any]:
        """Mount the rootfs, attach the network, write hosts/hostname/resolv.conf (blocking)."""
        image = self._images.resolve(container.image_id)
        cdir = self.container_dir(container.id)
        rootfs = self._runtime.mount_rootfs(self._images.layer_dirs(image), cdir)
        try:
            if self._volumes is not None:
                self._volumes.copy_up(container.mounts, rootfs)
            ports = [PortMapping(container_port=p, protocol=proto, host_ip=ip, host_port=hp)
                     for p, proto, ip, hp in cfg.port_bindings(container.host_config, container.config)]
            # attaches every network and writes hosts/hostname/resolv.conf (engine/networks.py)
            return self._network.attach_container(container, ports, cdir)
        except BaseException:
            self._runtime.unmount_rootfs(cdir)
            raise

    def _spec(self, container: Container, attachment: dict[str, Any]) -> ContainerSpec:
        hc = container.host_config
        c = container.config
        cdir = self.container_dir(container.id)
        mounts = tuple(Mount(source=str(cdir / f), destination=f"/etc/{f}") for f in ("hosts", "hostname", "resolv.conf"))
        if self._volumes is not None:
            mounts += self._volumes.runtime_mounts(container.mounts)
        ulimits = tuple((u["Name"], int(u["Soft"]), int(u["Hard"])) for u in (hc.get("Ulimits") or []))
        return ContainerSpec(
            id=container.id, args=tuple(cfg.process_args(c)), env=tuple(c.get("Env") or []),
            cwd=c.get("WorkingDir") or "/", user=c.get("User") or "", tty=bool(c.get("Tty")),
            open_stdin=bool(c.get("OpenStdin")), stdin_once=bool(c.get("StdinOnce")),
            hostname=c.get("Hostname") or container.id[:12],
            netns_path=attachment.get("netns_path"), mounts=mounts,
            resources=limits.resources(hc), ulimits=ulimits,
            # Labels stay out of the OCI annotations, as in moby: crun acts on `run.oci.*`
            # annotations (one loads a library by path), so users must not be able to set them.
            **security.spec_fields(hc),
        )

    def _host_limits(self) -> limits.HostLimits:
        return limits.HostLimits.current(getattr(self._runtime, "hard_limits", {}))

    async def _fail_start(self, container: Container, err: BerthError) -> None:
        """Undo a half-done start, record the error like moby, honour AutoRemove."""
        for session in self._pending_attach.pop(container.id, []):
            session.connect(None)
        await asyncio.to_thread(self._teardown_sync, container.id, True)
        container.state = ContainerState(status="exited", exit_code=start_error_code(str(err)),
                                         error=str(err), finished_at=now_rfc3339())
        container.network = {}
        self._repo.save(container)
        self._exited.pop(container.id, asyncio.Event()).set()
        self._resolve(self._exit_waiters, container)
        if container.host_config.get("AutoRemove"):
            await self._remove_record(container)

    def _teardown_sync(self, container_id: str, with_network: bool) -> None:
        self._runtime.delete(container_id)
        self._runtime.unmount_rootfs(self.container_dir(container_id))
        if with_network:
            self._network.detach(container_id)

    # --- exit ------------------------------------------------------------------------------------
    async def _monitor(self, container_id: str) -> None:
        try:
            code = await self._runtime.wait_exit(container_id)
        except asyncio.CancelledError:
            return
        except Exception:  # noqa: BLE001 - a monitor must never die silently
            log.exception("waiting for container %s failed", container_id[:12])
            code = 255
        await self._handle_exit(container_id, code)

    async def _handle_exit(self, container_id: str, code: int) -> None:
        self._monitors.pop(container_id, None)
        try:
            container = self.get(container_id)
        except NotFound:
            return
        oom_killed = self._runtime_oom(container_id)  # before teardown removes conmon's marker
        await asyncio.to_thread(self._teardown_sync, container_id, False)
        self._detaching[container_id] = asyncio.create_task(self._detach_network(container_id))
        container.state = ContainerState(
            status="exited", exit_code=code, started_at=container.state.started_at,
            finished_at=now_rfc3339(), oom_killed=oom_killed)
        self._repo.save(container)
        self._publish(container, "die", exitCode=str(code))
        self._exited.get(container_id, asyncio.Event()).set()
        self._resolve(self._exit_waiters, container)
        if self._wants_restart(container, code):
            self._schedule_restart(container)
            return
        if container.host_config.get("AutoRemove"):
            async with self._lock(container_id):
                await self._remove_record(container)

    def _wants_restart(self, container: Container, code: int) -> bool:
        if container.id in self._exit_on_next:
            self._exit_on_next.discard(container.id)
            return False
        return should_restart(RestartPolicy.from_host_config(container.host_config), exit_code=code,
                              manually_stopped=container.manually_stopped,
                              restart_count=container.restart_count)

    def _schedule_restart(self, container: Container) -> None:
        run_seconds = _seconds_between(container.state.started_at, container.state.finished_at)
        delay = next_delay(self._backoff.get(container.id, 0.0), run_seconds)
        self._backoff[container.id] = delay
        container.state.status = "restarting"
        self._repo.save(container)
        self._restarts[container.id] = asyncio.create_task(self._restart_later(container.id, delay))

    async def _restart_later(self, container_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock(container_id):
            self._restarts.pop(container_id, None)
            try:
                container = self.get(container_id)
            except NotFound:
                return
            if container.state.status != "restarting":
                return
            pending = self._detaching.get(container_id)
            if pending is not None:
                await pending
            container.restart_count += 1
            try:
                await self._launch(container)
            except BerthError as err:
                log.warning("restart of %s failed: %s", container_id[:12], err)
                await self._fail_start(container, err)
                return
        self._publish(container, "start")

    def _cancel_restart(self, container_id: str) -> bool:
        task = self._restarts.pop(container_id, None)
        if task is None:
            return False
        task.cancel()
        return True

    def _runtime_oom(self, container_id: str) -> bool:
        probe = getattr(self._runtime, "oom_killed", None)
        return bool(probe(container_id)) if probe else False

    async def _detach_network(self, container_id: str) -> None:
        try:
            await asyncio.to_thread(self._network.detach, container_id)
        except Exception:  # noqa: BLE001 - logged; cleanup_stale retries at next start
            log.exception("network teardown of %s failed", container_id[:12])
        finally:
            self._detaching.pop(container_id, None)

    # --- stop / kill / restart ---------------------------------------------------------------------
    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            container = self.get(container.id)
            if container.state.status == "restarting":
                self._cancel_restart(container.id)
                container.state.status = "exited"
                container.manually_stopped = True
                self._repo.save(container)
                return
            if not container.state.running:
                raise FailedPrecondition("container already stopped")
            container.manually_stopped = True
            self._repo.save(container)
            await self._stop_locked(container, timeout, signal)

    async def _stop_locked(self, container: Container, timeout: int | None, signal: str | None) -> None:
        sig = parse_signal(signal or container.config.get("StopSignal"), signals.SIGTERM)
        if timeout is None:
            timeout = container.config.get("StopTimeout")
            timeout = 10 if timeout is None else int(timeout)
        exited = self._exited.setdefault(container.id, asyncio.Event())
        self._exit_on_next.add(container.id)
        await asyncio.to_thread(self._runtime.kill, container.id, sig)
        try:
            await asyncio.wait_for(exited.wait(), timeout if timeout >= 0 else None)
        except asyncio.TimeoutError:
            await asyncio.to_thread(self._runtime.kill, container.id, signals.SIGKILL)
            await exited.wait()

    async def kill(self, ref: str, signal: str | None) -> None:
        container = self.get(ref)
        sig = parse_signal(signal)
        if not container.state.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        stop_signal = parse_signal(container.config.get("StopSignal"), signals.SIGTERM)
        if sig in (signals.SIGKILL, stop_signal):
            self._exit_on_next.add(container.id)  # moby's ExitOnNext: no policy restart for this exit
        if sig not in _NON_FATAL:
            container.manually_stopped = True
            self._repo.save(container)
        await asyncio.to_thread(self._runtime.kill, container.id, sig)
        if sig == signals.SIGKILL:
            await self._exited.setdefault(container.id, asyncio.Event()).wait()
        self._publish(container, "kill", signal=str(sig))

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            container = self.get(container.id)
            if container.state.running:
                await self._stop_locked(container, timeout, signal)
        await self.start(container.id)
        self._publish(container, "restart")

    # --- update ----------------------------------------------------------------------------------
    async def update(self, ref: str, body: Any) -> list[str]:
        """`docker update`: new limits into HostConfig, and into the cgroup while it runs."""
        container = self.get(ref)
        async with self._lock(container.id):
            container = self.get(container.id)
            host_config = limits.merge_update(container.host_config, body)
            cfg.validate_host_config(host_config)
            limits.validate(host_config, self._host_limits())
            if container.state.running:
                await asyncio.to_thread(self._runtime.update, container.id, limits.resources(host_config))
            container.host_config = host_config
            self._repo.save(container)
        self._publish(container, "update")
        return []

    # --- remove ----------------------------------------------------------------------------------
    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            container = self.get(container.id)
            check_can_remove(container, force)
            self._cancel_restart(container.id)
            if container.state.running:
                await self._stop_locked(container, 0, "KILL")
                container = self.get(container.id)
            await self._remove_record(container, volumes=volumes)

    async def _remove_record(self, container: Container, *, volumes: bool = False) -> None:
        if not self._has(container.id):
            return
        container.state.status = "removing"
        self._repo.save(container)
        pending = self._detaching.get(container.id)
        await asyncio.to_thread(self._teardown_sync, container.id, pending is None)
        await asyncio.to_thread(_remove_tree, self.container_dir(container.id))
        self._repo.delete(container.id)
        if self._volumes is not None and (volumes or container.host_config.get("AutoRemove")):
            await asyncio.to_thread(self._volumes.remove_anonymous, container.mounts, container.id)
        self._locks.pop(container.id, None)
        self._exited.pop(container.id, None)
        self._backoff.pop(container.id, None)
        self._exit_on_next.discard(container.id)
        self._publish(container, "destroy")
        self._resolve(self._removed_waiters, container)

    def _has(self, container_id: str) -> bool:
        try:
            self._repo.get(container_id)
            return True
        except NotFound:
            return False

    # --- wait ------------------------------------------------------------------------------------
    async def wait(self, ref: str, condition: str = "not-running") -> Container:
        """Resolve per Docker's conditions; the caller already flushed its response head
        (so it checks the condition first with `check_wait_condition`)."""
        check_wait_condition(condition)
        container = self.get(ref)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Container] = loop.create_future()
        if condition in ("", "not-running"):
            if not container.state.running:
                return container
            self._exit_waiters.setdefault(container.id, []).append(future)
        elif condition == "next-exit":
            self._exit_waiters.setdefault(container.id, []).append(future)
        elif condition == "removed":
            self._removed_waiters.setdefault(container.id, []).append(future)
        else:
            raise InvalidArgument(f"invalid condition: \"{condition}\"")
        return await future

    def _resolve(self, waiters: dict[str, list[asyncio.Future[Container]]], container: Container) -> None:
        for future in waiters.pop(container.id, []):
            if not future.done():
                future.set_result(container)

    # --- attach, logs, resize ------------------------------------------------------------------------
    async def attach(self, ref: str, *, stdin: bool, stdout: bool, stderr: bool) -> tuple[Container, AttachSession]:
        container = self.get(ref)
        session = AttachSession(stdin=stdin and bool(container.config.get("OpenStdin")), stdout=stdout, stderr=stderr)
        if container.state.running:
            session.connect(await self._runtime.attach(container.id))
        else:
            self._pending_attach.setdefault(container.id, []).append(session)
        return container, session

    def detach_session(self, container_id: str, session: AttachSession) -> None:
        sessions = self._pending_attach.get(container_id, [])
        if session in sessions:
            sessions.remove(session)

    async def logs(self, ref: str, *, follow: bool, since: float, until: float, tail: int | None,
                   timestamps: bool) -> AsyncIterator[tuple[int, bytes]]:
        container = self.get(ref)
        path = self.log_path(container.id)
        if follow and container.state.running:
            def stopped() -> bool:
                try:
                    return not self.get(container.id).state.running
                except NotFound:
                    return True
            async for item in follow_logs(path, since=since, tail=tail, timestamps=timestamps, stopped=stopped):
                yield item
            return
        if not path.exists():
            return
        for item in await asyncio.to_thread(
                lambda: list(read_logs(path, since=since, until=until, tail=tail, timestamps=timestamps))):
            yield item

    async def resize(self, ref: str, height: int, width: int) -> None:
        check_tty_size(height, width)
        container = self.get(ref)
        if not container.state.running:
            raise Conflict(f"Container {container.id} is not running")
        if container.config.get("Tty"):
            await asyncio.to_thread(self._runtime.resize, container.id, height, width)

    # --- pause, rename, top, prune ------------------------------------------------------------------
    async def pause(self, ref: str) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            container = self.get(container.id)
            if container.state.status == "paused":
                raise Conflict(f"Container {container.id} is already paused")
            if not container.state.running:
                raise Conflict(f"Container {container.id} is not running")
            await asyncio.to_thread(self._runtime.pause, container.id)
            container.state.status = "paused"
            self._repo.save(container)
        self._publish(container, "pause")

    async def unpause(self, ref: str) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            container = self.get(container.id)
            if container.state.status != "paused":
                raise Conflict(f"Container {container.id} is not paused")
            await asyncio.to_thread(self._runtime.resume, container.id)
            container.state.status = "running"
            self._repo.save(container)
        self._publish(container, "unpause")

    async def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        if not new_name:
            raise InvalidArgument("Neither old nor new names may be empty")
        name = cfg.validate_name(new_name)
        if name == container.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        old_name = container.name
        self._repo.rename(container, name)
        self._publish(container, "rename", oldName=f"/{old_name}")

    def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        """`docker top`: ps output limited to the container's processes."""
        import subprocess

        container = self.get(ref)
        if not container.state.running:
            raise Conflict(f"Container {container.id} is not running")
        pids = set(self._runtime.processes(container.id))
        args = ps_args.split() if ps_args else ["-ef"]
        out = subprocess.run(["ps", *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise InvalidArgument(f"Error running ps: {out.stderr.strip()}")
        lines = out.stdout.splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise InvalidArgument("Couldn't find PID field in ps output")
        pid_at = titles.index("PID")
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pid_at and fields[pid_at].isdigit() and int(fields[pid_at]) in pids:
                rows.append(fields)
        return {"Titles": titles, "Processes": rows}

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """Remove every stopped container (label/until filters honoured; any other is refused
        before anything is deleted)."""
        filters_mod.check_keys(filters, ("label", "until"))
        until = min((filters_mod.timestamp(v) for v in filters.get("until", [])), default=None)
        deleted = []
        for container in self._repo.all():
            if container.state.status not in ("exited", "created", "dead"):
                continue
            if not container_json.matches_filters(container, {k: v for k, v in filters.items() if k == "label"}):
                continue
            if until is not None and filters_mod.timestamp(container.created) > until:
                continue
            try:
                await self.remove(container.id)
                deleted.append(container.id)
            except BerthError:
                continue
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": 0}

    # --- listing and inspect -----------------------------------------------------------------------
    def list(self, *, all: bool, limit: int, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        container_json.check_list_filters(filters)
        containers = sorted(self._repo.all(), key=lambda c: c.created, reverse=True)
        if not all and limit <= 0:
            containers = [c for c in containers if c.state.running or c.state.status == "restarting"]
        containers = [c for c in containers if container_json.matches_filters(c, filters)]
        if limit > 0:
            containers = containers[:limit]
        return [container_json.list_item(c) for c in containers]

    def inspect(self, ref: str) -> dict[str, Any]:
        c = self.get(ref)
        return container_json.inspect(c, root=str(self.container_dir(c.id)), log_path=str(self.log_path(c.id)))

    # --- daemon lifecycle --------------------------------------------------------------------------
    async def restore(self) -> None:
        """Adopt containers that kept running while no daemon ran; settle the ones that exited.

        Network leftovers are cleaned before anything starts, so a fresh attachment is never
        mistaken for a crash leftover.
        """
        live: list[Container] = []
        exited: list[tuple[Container, int | None]] = []
        for container in self._repo.all():
            if container.state.status == "removing":
                await self._remove_record(container)
            elif container.state.running:
                if await asyncio.to_thread(self._runtime.is_running, container.id):
                    live.append(container)
                else:
                    exited.append((container, await asyncio.to_thread(self._runtime.exit_code, container.id)))
        await asyncio.to_thread(self._network.cleanup_stale, {c.id for c in live})
        for container in live:
            self._exited[container.id] = asyncio.Event()
            await asyncio.to_thread(self._network.adopt, container)  # ports, embedded DNS
            self._monitors[container.id] = asyncio.create_task(self._monitor(container.id))
        for container, code in exited:
            await self._handle_exit(container.id, 255 if code is None else code)
        await self._start_with_daemon({c.id for c in live} | {c.id for c, _ in exited})

    async def _start_with_daemon(self, settled: set[str]) -> None:
        """Restart policies at daemon start: `always`/`unless-stopped` containers run again."""
        for container in self._repo.all():
            if container.id in settled or container.id in self._restarts:
                continue
            policy = RestartPolicy.from_host_config(container.host_config)
            if container.state.status == "restarting" or (
                    container.state.status == "exited"
                    and starts_with_daemon(policy, manually_stopped=container.manually_stopped)):
                container.state.status = "restarting"
                self._repo.save(container)
                self._restarts[container.id] = asyncio.create_task(self._restart_later(container.id, 0))

    async def close(self) -> None:
        """Stop watching (containers keep running under conmon); finish pending network teardown."""
        for task in list(self._monitors.values()) + list(self._restarts.values()):
            task.cancel()
        if self._detaching:
            await asyncio.gather(*self._detaching.values(), return_exceptions=True)

    def _publish(self, container: Container, action: str, **extra: str) -> None:
        attrs = {"name": container.name, "image": container.image, **(container.config.get("Labels") or {})}
        attrs.update(extra)
        self._events.publish("container", action, container.id, attrs)


_NON_FATAL = {signals.SIGWINCH, signals.SIGCONT, signals.SIGCHLD, signals.SIGURG}


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (b - a).total_seconds())


def _remove_tree(path: Path) -> None:
    import shutil

    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
