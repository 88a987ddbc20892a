"""ContainerService: Docker's container semantics over the image store, runtime and network.

It keeps the public surface the API layer and the other engine services use, and the lifecycle
(create, start, stop, kill, restart, update, pause, remove). Helpers, each given what it needs:

    _checks.py            pure checks: signals, wait conditions, tty sizes, start exit codes
    _launch.py            Launcher: rootfs + network + OCI spec → runtime create/start; teardown
    _exits.py             ExitTracker: exit monitors, `exited` events, `docker wait` futures,
                          background network teardown
    _restarts.py          RestartScheduler: restart policies, back-off, ExitOnNext
    _ops.py               top / prune / rename logic
    _restore.py           what a starting daemon finds (ContainerService.restore applies it)
    ../health_monitor.py  HealthMonitor: HEALTHCHECK probes while a container runs unpaused

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
from functools import partial
import logging
import secrets
import shutil
import signal as signals
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from berth.engine.containers import _config as cfg
from berth.engine.containers import _limits as limits
from berth.engine.containers import _ops as ops
from berth.engine.containers import _restore as container_restore
from berth.engine.containers import _security as security
from berth.engine import secret_env as secrets_env
from berth.engine.attach import AttachSession
from berth.engine.awslogs import AwslogsShipper, LogSink
from berth.engine.containers._checks import (
    NON_FATAL_SIGNALS, check_tty_size, check_wait_condition, parse_signal, start_error_code,
)
from berth.engine.containers._exits import ExitTracker
from berth.engine.containers._list_filters import check_list_filters, matches_filters
from berth.engine.containers._launch import ImageLayers, Launcher, MountRecords, NetworkAttacher, VolumeMounts
from berth.engine.containers._model import (
    Container, ContainerRepository, ContainerState, check_can_remove, event_attributes, now_rfc3339, rfc3339_at,
)
from berth.engine.background import Background
from berth.engine.events import EventBus
from berth.engine.health_monitor import ExecProber, HealthMonitor
from berth.engine.containers._restarts import RestartScheduler
from berth.engine.containers._snapshot import ContainerSnapshot, snapshot_of
from berth.engine.volumes import LookupFn, tree_size
from berth.errors import AlreadyExists, BerthError, Conflict, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from berth.images import ImageUser
from berth.types.container import ContainerSpec, EndpointSettings
from berth.types.host_config import ContainerUpdate, HostConfig
from berth.runtime import Runtime, follow_logs, read_logs_async

# Re-exported: the API layer, ExecService and the tests import these from here.
__all__ = ["ContainerService", "check_tty_size", "check_wait_condition", "parse_signal", "start_error_code"]

log = logging.getLogger(__name__)
_NAME_DRAWS = 20  # attempts at a free generated name before the conflict is reported


class ContainerNetworks(NetworkAttacher, Protocol):
    """berth.engine.networks.NetworkService, as containers use it (blocking calls); `detach`
    also serves the ExitTracker."""

    def validate_create(self, host_config: HostConfig, endpoints: dict[str, EndpointSettings],
                        mac_address: str) -> str:
        """Check the networks a create request names (normalising `endpoints` in place);
        return the NetworkMode to record."""

    def cleanup_stale(self, live_ids: set[str]) -> None: ...
    def adopt(self, container: Container) -> None: ...


class ContainerVolumes(VolumeMounts, Protocol):
    """berth.engine.volumes.VolumeService, as containers use it (blocking calls)."""

    def plan_container(self, host_config: HostConfig, config_volumes: Iterable[str],
                       image_config: Mapping[str, Any], lookup: LookupFn) -> list[dict[str, Any]]:
        """The container's mount records (volumes created as needed)."""

    def remove_anonymous(self, records: MountRecords, container_id: str) -> None: ...
    def restore_mounts(self, running: Iterable[tuple[str, MountRecords]]) -> None: ...


class ContainerService:
    def __init__(self, *, root: Path, repo: ContainerRepository, images: ImageLayers, runtime: Runtime,
                 network: ContainerNetworks, events: EventBus, volumes: ContainerVolumes | None = None,
                 secret_dir: Path | None = None, log_sink: LogSink | None = None,
                 aws_region: str = "us-east-1") -> None:
        # log_sink: where `--log-driver awslogs` ships (berth.logs.EngineSink); None: that driver fails at start
        # volumes: None plans no mounts for any container (binds and volumes are left out)
        # secret_dir: on the run root (tmpfs), where secret environment values live (secret_env.py)
        containers_dir = root / "containers"
        containers_dir.mkdir(parents=True, exist_ok=True)
        self._repo = repo
        self._images = images
        self._runtime = runtime
        self._network = network
        self._events = events
        self._volumes = volumes
        self._secrets = secrets_env.SecretEnvStore(secret_dir) if secret_dir is not None else None
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending_attach: dict[str, list[AttachSession]] = {}   # attached before start
        self._launcher = Launcher(containers_dir=containers_dir, images=images, runtime=runtime,
                                  network=network, volumes=volumes)
        # Teardowns that follow an answer (after an exit, after rm) share low-priority workers.
        self._background = Background()
        self._exits = ExitTracker(runtime=runtime, network=network, background=self._background)
        self._awslogs = AwslogsShipper(log_sink, default_region=aws_region)
        # Host clean-up of removed `--rm` containers (runtime delete, unmount, files), done after
        # the removal is reported so `docker run --rm` does not wait for it; close() awaits them.
        self._cleanups: dict[str, asyncio.Task[None]] = {}
        self._restarts = RestartScheduler(repo=repo, lock=self.lock, relaunch=self._relaunch)
        self._health = HealthMonitor(records=repo, prober=ExecProber(runtime), publish=self._publish_health,
                                     alive=_init_alive)

    # --- lookups ---------------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        return self._repo.get(ref)

    def container_dir(self, container_id: str) -> Path:
        return self._launcher.container_dir(container_id)

    def log_path(self, container_id: str) -> Path:
        return self._launcher.log_path(container_id)

    def lock(self, container_id: str) -> asyncio.Lock:
        """The container's lifecycle lock; other engine services take it to keep a start away
        (docker cp on a stopped container mounts its rootfs meanwhile)."""
        return self._locks.setdefault(container_id, asyncio.Lock())

    def image_users(self, image_id: str) -> list[ImageUser]:
        """Containers built on an image, for `docker rmi`'s in-use checks."""
        return [ImageUser(container_id=c.id, running=c.state.running)
                for c in self._repo.all() if c.image_id == image_id]

    # --- create ----------------------------------------------------------------------------------
    async def create(self, name: str | None, spec: ContainerSpec, *,
                     secret_env: Mapping[str, str] | None = None) -> Container:
        """`secret_env`: variables whose values stay off --root (secret_env.py); the spec's Env
        should carry a placeholder for each, which is what the record and inspect show."""
        request = spec.config
        if not request.image:
            raise InvalidArgument("Config cannot be empty in order to create a container")
        if secret_env:
            if self._secrets is None:
                raise Unavailable("this engine has no run root to keep a secret environment in")
            secrets_env.check_names(secret_env)
        cfg.validate_config(request)
        if request.stop_signal:
            parse_signal(request.stop_signal)
        host_config = cfg.normalize_host_config(spec.host_config)
        cfg.validate_host_config(host_config)
        if host_config.runtime and host_config.runtime != self._runtime.name:
            # one OCI runtime per daemon (Info.Runtimes lists it); moby's words for any other name
            raise InvalidArgument(f"unknown or invalid runtime name: {host_config.runtime}")
        host_config = limits.normalize(host_config)
        limits.validate(host_config, self._launcher.host_limits())
        await asyncio.to_thread(security.validate, host_config)  # stats --device paths
        cfg.network_mode(host_config)
        # before the image lookup, as moby: a conflict is reported even for a missing image
        cfg.check_container_mode(request, host_config, spec.networking)
        image = await asyncio.to_thread(self._images.resolve, request.image)
        container_id = secrets.token_hex(32)
        config = cfg.merge_config(request, (image.config or {}).get("config") or {}, container_id)
        cfg.port_bindings(host_config, config)  # validates every port spec now, not at start
        generated = not name
        name = cfg.validate_name(name) if name else cfg.generate_name(self._repo.names())
        self._repo.check_name_free(name)  # before volumes and bind dirs are made for it
        endpoints = dict(spec.networking)
        network_mode = await asyncio.to_thread(self._network.validate_create, host_config, endpoints,
                                               request.mac_address)
        host_config = replace(host_config, network_mode=network_mode)
        mounts = await asyncio.to_thread(self._volumes.plan_container, host_config, config.volumes or (),
                                         image.config or {}, self._mount_lookup) if self._volumes else []
        container = Container(
            id=container_id, name=name, created=now_rfc3339(), image=request.image, image_id=image.id,
            config=config, host_config=host_config, endpoints=endpoints, mounts=mounts,
            secret_env=sorted(secret_env or {}),
        )
        cdir = self.container_dir(container_id)
        try:
            if secret_env and self._secrets is not None:
                await asyncio.to_thread(self._secrets.put, container_id, secret_env)
            cdir.mkdir(parents=True)
            self._add_record(container, name_generated=generated)
        except BaseException:
            await asyncio.to_thread(_remove_tree, cdir)
            if self._secrets is not None:
                self._secrets.remove(container_id)
            if self._volumes:  # the anonymous volumes planned for it belong to no one now
                await asyncio.to_thread(self._volumes.remove_anonymous, mounts, container_id)
            raise
        self._publish(container, "create")
        return container

    def _add_record(self, container: Container, *, name_generated: bool) -> None:
        """A generated name another create took meanwhile (both picked it while free, then
        awaited) is drawn again, as moby does: only a name the user gave is a conflict."""
        for _ in range(_NAME_DRAWS):
            try:
                self._repo.add(container)
                return
            except AlreadyExists:
                if not name_generated:
                    raise
                container.name = cfg.generate_name(self._repo.names())
        self._repo.add(container)

    def _mount_lookup(self, ref: str) -> tuple[str, list[dict[str, Any]]]:
        container = self.get(ref)
        return container.id, container.mounts

    # --- start -----------------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        container = self.get(ref)
        async with self.lock(container.id):
            container = self.get(container.id)
            if container.state.running:
                raise FailedPrecondition("container already started")
            if container.state.status == "removing":
                raise Conflict(f"cannot start container {container.id[:12]}: removal in progress")
            await self._exits.network_detached(container.id)
            self._restarts.reset(container.id)
            container.manually_stopped = False
            container.restart_count = 0
            try:
                await self._launch(container)
            except BerthError as err:
                await self._fail_start(container, err)
                raise
            except Exception as err:  # a bug must not leave mounts and networks behind
                log.exception("start of %s failed", container.id[:12])
                failure = Unavailable(f"cannot start container {container.id[:12]}: {err}")
                await self._fail_start(container, failure)
                raise failure from err
        self._publish(container, "start")

    async def _relaunch(self, container_id: str) -> None:
        """A policy restart, with the lock held (RestartScheduler calls it after the back-off)."""
        try:
            container = self.get(container_id)
        except NotFound:
            return
        if container.state.status != "restarting":
            return
        await self._exits.network_detached(container_id)
        container.restart_count += 1
        try:
            await self._launch(container)
        except BerthError as err:
            log.warning("restart of %s failed: %s", container_id[:12], err)
            await self._fail_start(container, err)
            return
        except Exception as err:  # as in start: an OSError must not leave it "restarting"
            log.exception("restart of %s failed", container_id[:12])
            await self._fail_start(container, Unavailable(f"cannot start container {container_id[:12]}: {err}"))
            return
        self._publish(container, "start")

    async def _launch(self, container: Container) -> None:
        secret_values = await asyncio.to_thread(self._secret_values, container)
        self._exits.arm(container.id)
        await self._awslogs.prepare(container)  # a missing log group fails the start, as in dockerd
        pid = await self._launcher.create(container, secret_values)
        for session in self._pending_attach.pop(container.id, []):
            try:
                session.connect(await self._runtime.attach(container.id))
            except BerthError:
                session.connect(None)
        await self._launcher.start(container.id)
        container.state = ContainerState(status="running", pid=pid, started_at=now_rfc3339())
        container.runtime = self._runtime.name
        self._repo.save(container)
        self._exits.watch(container.id, self._handle_exit)
        self._awslogs.follow(container, self.log_path(container.id))
        self._health.start(container, reset=True)

    def _secret_values(self, container: Container) -> dict[str, str]:
        """The container's secret environment from the run root (FailedPrecondition when gone)."""
        if not container.secret_env:
            return {}
        values = self._secrets.get(container.id) if self._secrets is not None else None
        if values is None or not set(container.secret_env) <= set(values):
            raise secrets_env.missing(container.id, container.secret_env)
        return values

    async def _fail_start(self, container: Container, err: BerthError) -> None:
        """Undo a half-done start, record the error like moby, honour AutoRemove."""
        for session in self._pending_attach.pop(container.id, []):
            session.connect(None)
        await asyncio.to_thread(self._launcher.teardown, container.id, True)
        container.state = ContainerState(status="exited", exit_code=start_error_code(str(err)),
                                         error=str(err), finished_at=now_rfc3339())
        container.network = {}
        self._repo.save(container)
        self._exits.notify_exit(container)
        if container.host_config.auto_remove:
            await self._remove_record(container)

    # --- exit (the monitor's callback: never takes the lock before the exit is recorded) -------
    async def _handle_exit(self, container_id: str, code: int) -> None:
        self._exits.unwatch(container_id)
        self._awslogs.exited(container_id)  # ships the log's tail, then stops
        await self._health.stop(container_id)  # probes start again with the next run
        try:
            container = self.get(container_id)
        except NotFound:
            return
        oom_killed = self._runtime.oom_killed(container_id)  # before teardown removes conmon's marker
        # conmon writes the exit file when the process ends: its time is FinishedAt, also for a
        # container that exited while no daemon ran (restore handles it later).
        exited_at = self._runtime.exit_time(container_id)
        auto_remove = container.host_config.auto_remove  # never with a restart policy
        try:
            if not auto_remove:
                await asyncio.to_thread(self._launcher.teardown, container_id, False)
            self._exits.detach_network_later(container_id)
            # Read again: a rename (or update) may have saved the record during the teardown.
            container = self.get(container_id)
            container.state = ContainerState(
                status="exited", exit_code=code, started_at=container.state.started_at,
                finished_at=rfc3339_at(exited_at) if exited_at else now_rfc3339(), oom_killed=oom_killed)
            self._repo.save(container)
            self._publish(container, "die", exitCode=str(code))
        finally:
            # Whatever failed above, stop/kill/rm -f and `docker wait` must learn of the exit.
            self._exits.notify_exit(container)
        if self._restarts.after_exit(container, code):
            return
        if auto_remove:
            async with self.lock(container_id):
                try:
                    current = self.get(container_id)
                except NotFound:
                    return
                if current.state.running:  # a `docker start` took the lock first: it runs again
                    return
                await self._remove_record(current, clean_up_later=True)

    # --- stop / kill / restart ---------------------------------------------------------------------
    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        container = self.get(ref)
        async with self.lock(container.id):
            container = self.get(container.id)
            if container.state.status == "restarting":
                self._restarts.cancel(container.id)
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
        sig = parse_signal(signal or container.config.stop_signal, signals.SIGTERM)
        if timeout is None:
            timeout = container.config.stop_timeout
            timeout = 10 if timeout is None else int(timeout)
        exited = self._exits.exited(container.id)
        self._restarts.exit_on_next(container.id)
        await asyncio.to_thread(self._runtime.kill, container.id, sig)
        await self._thaw_if_paused(container)
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
        stop_signal = parse_signal(container.config.stop_signal, signals.SIGTERM)
        if sig in (signals.SIGKILL, stop_signal):
            self._restarts.exit_on_next(container.id)  # moby's ExitOnNext: no policy restart
        if sig not in NON_FATAL_SIGNALS:
            container.manually_stopped = True
            self._repo.save(container)
        exited = self._exits.exited(container.id)  # before the await: a removal drops it
        await asyncio.to_thread(self._runtime.kill, container.id, sig)
        if sig in (signals.SIGKILL, stop_signal):
            await self._thaw_if_paused(container)
        if sig == signals.SIGKILL:
            await exited.wait()
        self._publish(container, "kill", signal=str(sig))

    async def _thaw_if_paused(self, container: Container) -> None:
        """A frozen process gets its signal only when thawed (moby resumes after the kill too)."""
        if container.state.status != "paused":
            return
        await asyncio.to_thread(self._runtime.resume, container.id)
        current = self.get(container.id)
        if current.state.status == "paused":
            current.state.status = "running"
            self._repo.save(current)
            self._health.start(current, reset=False)  # if it survives the signal (the exit stops it)

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        container = self.get(ref)
        async with self.lock(container.id):
            container = self.get(container.id)
            if container.state.running:
                await self._stop_locked(container, timeout, signal)
        await self.start(container.id)
        self._publish(container, "restart")

    # --- update, pause --------------------------------------------------------------------------
    async def update(self, ref: str, update: ContainerUpdate) -> list[str]:
        """`docker update`: new limits into HostConfig, and into the cgroup while it runs."""
        container = self.get(ref)
        async with self.lock(container.id):
            container = self.get(container.id)
            host_config = limits.merge_update(container.host_config, update)
            cfg.validate_host_config(host_config)
            limits.validate(host_config, self._launcher.host_limits())
            if container.state.running:
                new = limits.resources(host_config)
                lifted = limits.resources(container.host_config).pids_limit > 0 >= new.pids_limit
                await asyncio.to_thread(partial(self._runtime.update, container.id, new, lift_pids=lifted))
            container.host_config = host_config
            self._repo.save(container)
        self._publish(container, "update")
        return []

    async def pause(self, ref: str) -> None:
        container = self.get(ref)
        async with self.lock(container.id):
            container = self.get(container.id)
            if container.state.status == "paused":
                raise Conflict(f"Container {container.id} is already paused")
            if not container.state.running:
                raise Conflict(f"Container {container.id} is not running")
            await self._health.stop(container.id)  # first: a frozen probe could not be killed
            try:
                await asyncio.to_thread(self._runtime.pause, container.id)
            except BaseException:
                self._health.start(self.get(container.id), reset=False)
                raise
            container.state.status = "paused"
            self._repo.save(container)
        self._publish(container, "pause")

    async def unpause(self, ref: str) -> None:
        container = self.get(ref)
        async with self.lock(container.id):
            container = self.get(container.id)
            if container.state.status != "paused":
                raise Conflict(f"Container {container.id} is not paused")
            await asyncio.to_thread(self._runtime.resume, container.id)
            container.state.status = "running"
            self._repo.save(container)
            self._health.start(container, reset=False)
        self._publish(container, "unpause")

    # --- remove ----------------------------------------------------------------------------------
    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        container = self.get(ref)
        async with self.lock(container.id):
            container = self.get(container.id)
            check_can_remove(container, force)
            self._restarts.cancel(container.id)
            if container.state.running:
                await self._stop_locked(container, 0, "KILL")
                container = self.get(container.id)
            # The record goes now; the host clean-up (runtime delete, rootfs unmount, files) runs
            # after the answer, as for `--rm` (compose removes 50 containers one request each).
            await self._remove_record(container, volumes=volumes, clean_up_later=True)

    async def _remove_record(self, container: Container, *, volumes: bool = False,
                             clean_up_later: bool = False) -> None:
        if not self._has(container.id):
            return
        await self._health.stop(container.id)
        await self._awslogs.forget(container.id)  # before its log file goes
        container.state.status = "removing"
        self._repo.save(container)
        # A background teardown already detaches the network; otherwise do it here.
        with_network = not self._exits.detaching(container.id)
        if clean_up_later:
            self._cleanups[container.id] = asyncio.create_task(self._clean_up(container.id, with_network))
        else:
            await asyncio.to_thread(self._launcher.teardown, container.id, with_network)
            await asyncio.to_thread(_remove_tree, self.container_dir(container.id))
        self._repo.delete(container.id)
        if self._secrets is not None:
            self._secrets.remove(container.id)
        if self._volumes is not None and (volumes or container.host_config.auto_remove):
            await asyncio.to_thread(self._volumes.remove_anonymous, container.mounts, container.id)
        self._locks.pop(container.id, None)
        self._restarts.forget(container.id)
        self._publish(container, "destroy")
        self._exits.notify_removed(container)

    async def _clean_up(self, container_id: str, with_network: bool) -> None:
        try:
            await self._background.run(partial(self._launcher.teardown, container_id, with_network))
            await self._background.run(partial(_remove_tree, self.container_dir(container_id)))
        except Exception:  # noqa: BLE001 - logged; restore() sweeps what is left at the next start
            log.exception("clean-up of removed container %s failed", container_id[:12])
        finally:
            self._cleanups.pop(container_id, None)

    async def _sweep_orphans(self) -> None:
        """Container dirs without a record (a crash during a deferred clean-up): remove them."""
        known = {c.id for c in self._repo.all()}
        if self._secrets is not None:
            await asyncio.to_thread(self._secrets.sweep, known)
        for entry in self._launcher.containers_dir.iterdir():
            if entry.is_dir() and len(entry.name) == 64 and entry.name not in known:
                await self._clean_up(entry.name, with_network=True)

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
        if condition == "removed":
            return await self._exits.removal(container.id)
        if condition != "next-exit" and not container.state.running:  # "" or "not-running"
            return container
        return await self._exits.next_exit(container.id)

    # --- attach, logs, resize ------------------------------------------------------------------------
    async def attach(self, ref: str, *, stdin: bool, stdout: bool, stderr: bool) -> tuple[Container, AttachSession]:
        container = self.get(ref)
        session = AttachSession(stdin=stdin and container.config.open_stdin, stdout=stdout, stderr=stderr)
        if container.state.running:
            session.connect(await self._runtime.attach(container.id))
        else:
            self._pending_attach.setdefault(container.id, []).append(session)
        return container, session

    def publish_attach(self, container_id: str, *, detached: bool = False) -> None:
        """dockerd's `attach` event (each attach, once any logs are sent), and `detach` when the
        client left with the detach keys."""
        try:
            self._publish(self.get(container_id), "detach" if detached else "attach")
        except NotFound:
            pass

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
            async for item in follow_logs(path, since=since, until=until, tail=tail, timestamps=timestamps,
                                          stopped=stopped):
                yield item
            return
        # Streamed in bounded batches (each read in a thread): memory does not grow with the log.
        async for item in read_logs_async(path, since=since, until=until, tail=tail, timestamps=timestamps):
            yield item

    async def resize(self, ref: str, height: int, width: int) -> None:
        check_tty_size(height, width)
        container = self.get(ref)
        if not container.state.running:
            raise Conflict(f"Container {container.id} is not running")
        if container.config.tty:
            await asyncio.to_thread(self._runtime.resize, container.id, height, width)

    # --- rename, top, prune (logic in _ops.py) -------------------------------------------
    async def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        name = ops.check_rename(container, new_name)
        old_name = container.name
        self._repo.rename(container, name)
        self._publish(container, "rename", oldName=f"/{old_name}")

    def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        """`docker top`: ps output limited to the container's processes (blocking)."""
        container = self.get(ref)
        if not container.state.running:
            raise Conflict(f"Container {container.id} is not running")
        pids = set(self._runtime.processes(container.id))
        return ops.ps_table(ops.run_ps(ps_args), pids)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """Remove every stopped container (label/until filters honoured; any other is refused
        before anything is deleted)."""
        deleted, reclaimed = [], 0
        for container in ops.prune_candidates(self._repo.all(), filters):
            # what moby counts: the size of the container's read-write layer
            size = await asyncio.to_thread(_rw_layer_size, self.container_dir(container.id))
            try:
                await self.remove(container.id)
                deleted.append(container.id)
                reclaimed += size
            except BerthError:
                continue
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # --- listing and inspect -----------------------------------------------------------------------
    def list(self, *, all: bool, limit: int, filters: dict[str, list[str]]) -> list[ContainerSnapshot]:
        """`docker ps`: the newest first; without `all`, only running (and restarting) ones."""
        check_list_filters(filters)
        containers = sorted(self._repo.all(), key=lambda c: c.created, reverse=True)
        if not all and limit <= 0:
            containers = [c for c in containers if c.state.running or c.state.status == "restarting"]
        containers = [c for c in containers if matches_filters(c, filters)]
        if limit > 0:
            containers = containers[:limit]
        return [self._snapshot(c) for c in containers]

    def inspect(self, ref: str) -> ContainerSnapshot:
        """`docker inspect`: the container, typed (api/docker/container_json.py renders it)."""
        return self._snapshot(self.get(ref))

    def _snapshot(self, c: Container) -> ContainerSnapshot:
        return snapshot_of(c, dir=str(self.container_dir(c.id)), log_path=str(self.log_path(c.id)),
                           default_runtime=self._runtime.name)

    # --- daemon lifecycle --------------------------------------------------------------------------
    async def restore(self) -> None:
        """Adopt containers that kept running while no daemon ran; settle the ones that exited.

        Network leftovers are cleaned before anything starts, so a fresh attachment is never
        mistaken for a crash leftover.
        """
        found = await container_restore.survey(self._repo.all(), self._runtime)
        for container in found.removing:
            await self._remove_record(container)
        for container in found.half_started:  # before the network clean-up: its process goes first
            log.warning("container %s was being started when the daemon died: stopping it", container.id[:12])
            await asyncio.to_thread(self._launcher.teardown, container.id, False)
        for container_id in found.strays:  # no record: only its runtime container (+ dir: swept next)
            log.warning("runtime container %s has no record: deleting it", container_id[:12])
            await asyncio.to_thread(self._runtime.delete, container_id)
        await self._sweep_orphans()
        await asyncio.to_thread(self._network.cleanup_stale, {c.id for c in found.live})
        if self._volumes is not None:  # live containers keep their volume mounts; the rest go
            await asyncio.to_thread(self._volumes.restore_mounts, [(c.id, c.mounts) for c in found.live])
        for container in found.live:
            self._exits.arm(container.id)
            await asyncio.to_thread(self._network.adopt, container)  # ports, embedded DNS
            self._exits.watch(container.id, self._handle_exit)
            if container.state.status == "running":  # a paused one is probed after unpause
                self._health.start(container, reset=True)  # moby's initHealthMonitor: "starting" again
        for container, code in found.exited:
            await self._handle_exit(container.id, code)
        live = {c.id for c in found.live}
        for container in self._repo.all():  # awslogs: follow the live, ship the tails of the rest
            if container.id in live:
                self._awslogs.follow(container, self.log_path(container.id))
            else:
                self._awslogs.drain_later(container, self.log_path(container.id))
        self._restarts.start_with_daemon(found.settled)

    async def close(self) -> None:
        """Stop watching (containers keep running under conmon); finish pending network teardown."""
        await self._health.close()
        self._restarts.close()
        await self._exits.close()
        await self._awslogs.close()  # each shipper records where it is; the next daemon resumes there
        if self._cleanups:
            await asyncio.gather(*self._cleanups.values(), return_exceptions=True)
        await asyncio.to_thread(self._background.close)

    def _publish_health(self, container_id: str, action: str) -> None:
        """A health_status event with the container's current name and labels (renames happen)."""
        try:
            self._publish(self.get(container_id), action)
        except NotFound:
            pass

    def _publish(self, container: Container, action: str, **extra: str) -> None:
        self._events.publish("container", action, container.id, event_attributes(container, **extra))


def _init_alive(container: Container) -> bool:
    """Whether the container's init process still runs (not gone, not a zombie)."""
    pid = container.state.pid
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _rw_layer_size(cdir: Path) -> int:
    """Bytes in the container's overlay upper dir (0 when it never had a rootfs)."""
    upper = cdir / "upper"
    return tree_size(upper) if upper.is_dir() else 0


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
