"""The agent of one container instance: runs the tasks the control plane assigns to it on the
host's engine, and reports every state change (with a sequence number) back.

One asyncio task per ECS task (`_TaskRunner`) drives it through PENDING (pull), ACTIVATING,
RUNNING, then STOPPING/STOPPED; it is woken by assignment changes and by container exits.
Everything it needs to know after a restart is on the engine's containers (their labels), so a
restarted daemon adopts running tasks, reports the ones whose containers died meanwhile, and
removes containers of tasks the control plane no longer knows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from berth.agent import _secrets as secrets
from berth.agent import _specs as sp
from berth.agent._engine import ContainerEngine, ContainerStatus, ImageNotAvailable, RegistryAuth
from berth.ecs import ContainerReport, ControlPlane, InstanceResources, TaskAssignment, TaskReport
from berth.ecs import model as m
from berth.ecs import ContainerDefinition, TaskDefinitionSpec, parse_task_definition
from berth.errors import BerthError

log = logging.getLogger("berth.agent")

DEPENDENCY_TIMEOUT = 180.0        # ECS's default startTimeout for a dependency condition
DEFAULT_STOP_TIMEOUT = 30
DRAIN_MARGIN = 15.0               # beyond a load-balanced task's deregistration delay, before stopping anyway


@dataclass(frozen=True)
class AgentConfig:
    cluster: str
    agent_id: str
    resources: InstanceResources
    metadata_base: str = ""           # http://<bridge gateway>:<port> of the metadata endpoint
    region: str = "us-east-1"
    resync: float = 10.0
    on_task_started: Callable[[m.Task, dict[str, str]], None] | None = None   # (task, container name → engine id)
    on_task_stopped: Callable[[m.Task], None] | None = None
    credentials_for: Callable[[m.Task], str] | None = None   # task → AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
    # image reference → registry credentials: the daemon answers for its own registry (ECR's
    # login, as the ECS agent's ecr-auth), None for anything else
    registry_auth: Callable[[str], RegistryAuth | None] | None = None
    # resolves `secrets` and `repositoryCredentials` (berth.secrets.SecretResolver); None: a
    # task that has any stops with ECS's ResourceInitializationError
    secrets: secrets.SecretSource | None = None


class Agent:
    def __init__(self, control: ControlPlane, engine: ContainerEngine, config: AgentConfig) -> None:
        self.control = control
        self.engine = engine
        self.config = config
        self.instance_arn = ""
        self._runners: dict[str, _TaskRunner] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._main: asyncio.Task[None] | None = None
        self._seq = 0

    def next_seq(self) -> int:
        # Wall-clock nanoseconds: increasing across daemon restarts, so the control plane can
        # drop a report older than one it already applied.
        self._seq = max(self._seq + 1, time.time_ns())
        return self._seq

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        instance = await asyncio.to_thread(self.control.register_agent_instance, self.config.cluster,
                                           self.config.agent_id, self.config.resources)
        self.instance_arn = instance.arn
        log.info("agent %s registered container instance %s in cluster %s", self.config.agent_id,
                 instance.arn, self.config.cluster)
        self._unsubscribe.append(self.control.watch_assignments(self.instance_arn, self.wake))
        self._unsubscribe.append(self.engine.on_exit(self._on_container_event))
        await self.reconcile()
        self._main = asyncio.create_task(self._run(), name=f"ecs-agent-{self.config.agent_id}")

    async def close(self) -> None:
        """Stop managing (containers keep running, as the engine's do across a daemon restart)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._main is not None:
            await _cancel(self._main)
            self._main = None
        for runner in list(self._runners.values()):
            await runner.cancel()
        try:
            await asyncio.to_thread(self.control.set_agent_connected, self.instance_arn, False)
        except Exception:  # noqa: BLE001 - the store may already be closing
            log.debug("could not mark the agent disconnected", exc_info=True)

    def wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def _on_container_event(self, container_id: str) -> None:
        owners = [r for r in self._runners.values() if r.owns(container_id)]
        for runner in owners or self._runners.values():   # unknown (just being created): wake them all
            runner.poke()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.resync)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                log.exception("agent reconcile failed")

    async def reconcile(self) -> None:
        assignments = await asyncio.to_thread(self.control.assignments, self.instance_arn)
        known = {a.task.arn: a for a in assignments}
        mine = [c for c in self.engine.list_labelled(sp.LABEL_TASK)
                if c.labels.get(sp.LABEL_AGENT) == self.config.agent_id]
        by_task: dict[str, list[ContainerStatus]] = {}
        for c in mine:
            by_task.setdefault(c.labels.get(sp.LABEL_TASK, ""), []).append(c)
        # containers of tasks the control plane no longer knows: expired, or never known
        for task_arn, containers in by_task.items():
            if task_arn not in known and task_arn not in self._runners:
                log.info("removing %d containers of unknown task %s", len(containers), task_arn)
                for c in containers:
                    await self.engine.remove(c.id)
                await self.remove_volumes(task_arn, {v for c in containers
                                                      for v in c.labels.get(sp.LABEL_VOLUMES, "").split(",") if v})
        for arn, assignment in known.items():
            runner = self._runners.get(arn)
            if runner is None:
                if assignment.task.last_status == "STOPPED" and not by_task.get(arn):
                    continue
                runner = _TaskRunner(self, assignment, by_task.get(arn, []))
                self._runners[arn] = runner
                runner.start()
            else:
                runner.update(assignment)
        for arn, runner in list(self._runners.items()):
            if arn not in known:
                runner.forget()

    async def remove_volumes(self, task_arn: str, names: set[str]) -> None:
        for name in sorted(names):
            try:
                await self.engine.remove_volume(name)
            except BerthError as err:
                log.warning("could not remove volume %s of task %s: %s", name, task_arn, err)

    def runner_done(self, arn: str) -> None:
        self._runners.pop(arn, None)

    def report(self, report: TaskReport) -> None:
        self.control.report(report)


@dataclass
class _Local:
    """What the runner knows about each container of its task."""

    name: str
    engine_id: str = ""
    started: bool = False
    status: ContainerStatus | None = None
    reason: str = ""
    started_mono: float = 0.0             # time.monotonic() when the agent started it (startTimeout)


@dataclass
class _TaskRunner:
    agent: Agent
    assignment: TaskAssignment
    adopted: list[ContainerStatus]
    locals: dict[str, _Local] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task_handle: asyncio.Task[None] | None = None
    last_report: TaskReport | None = None
    forgotten: bool = False
    pause_id: str = ""                    # awsvpc: the container holding the task's network namespace
    parsed: TaskDefinitionSpec | None = None
    ran: bool = False                     # reported RUNNING (so it may be behind a load balancer)
    # container name → its resolved `secrets`: in memory only, handed to the engine at create
    secret_env: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def task(self) -> m.Task:
        return self.assignment.task

    def start(self) -> None:
        self.task_handle = asyncio.create_task(self._main(), name=f"ecs-task-{self.task.task_id}")

    def update(self, assignment: TaskAssignment) -> None:
        # Only a stop request changes what the runner does; every report of every task comes
        # back here, and waking all runners for each would make the agent quadratic.
        previous = self.assignment.task
        self.assignment = assignment
        if (assignment.task.desired_status != previous.desired_status
                or assignment.task.lb_drain_until != previous.lb_drain_until):
            self.wake.set()

    def owns(self, container_id: str) -> bool:
        return container_id == self.pause_id or any(loc.engine_id == container_id for loc in self.locals.values())

    def poke(self) -> None:
        self.wake.set()

    def forget(self) -> None:
        self.forgotten = True
        self.wake.set()

    async def cancel(self) -> None:
        if self.task_handle is not None:
            await _cancel(self.task_handle)

    # --- reporting ------------------------------------------------------------------------------

    def _report(self, status: str, **kw: object) -> None:
        final = status == "STOPPED"
        containers = tuple(self._container_report(c, final) for c in self.locals.values())
        health = self._task_health()
        previous = self.last_report
        report = TaskReport(
            task_arn=self.task.arn, seq=self.agent.next_seq(), last_status=status, containers=containers,
            health_status=health, **kw)  # type: ignore[arg-type]
        if previous is not None and _same(previous, report):
            return
        self.ran = self.ran or status == "RUNNING"
        self.last_report = report
        self.agent.report(report)

    def _container_report(self, local: _Local, final: bool = False) -> ContainerReport:
        """`final`: the task is STOPPED, so is every container of it (ECS never leaves one PENDING)."""
        st = local.status
        if st is None:
            return ContainerReport(local.name, local.engine_id, "STOPPED" if local.reason or final else "PENDING",
                                   reason=local.reason)
        running = st.state in ("running", "paused", "restarting")
        last = "RUNNING" if running else ("STOPPED" if local.started or final or st.state in ("exited", "dead")
                                          else "PENDING")
        bindings = tuple(m.NetworkBinding(p.container_port, p.host_port, p.protocol, p.host_ip or "0.0.0.0")
                         for p in st.ports if p.host_port)
        if running and not bindings:
            bindings = self._host_bindings(local.name)
        health = {"healthy": "HEALTHY", "unhealthy": "UNHEALTHY"}.get(st.health, "UNKNOWN")
        reason = local.reason or (("OutOfMemoryError: Container killed due to memory usage" if st.oom_killed
                                   else st.error) if last == "STOPPED" else "")
        return ContainerReport(local.name, st.id, last, st.exit_code if last == "STOPPED" else None, reason,
                               bindings, health, st.image_digest)

    def _host_bindings(self, name: str) -> tuple[m.NetworkBinding, ...]:
        """networkMode host: the container's ports are the host's, and ECS reports them as bindings
        (hostPort = containerPort); the engine publishes nothing to read them back from."""
        spec = self._spec()
        if sp.task_network_mode(spec) != "host":
            return ()
        c = next((c for c in spec.containers if c.name == name), None)
        if c is None:
            return ()
        return tuple(m.NetworkBinding(p.container_port, p.host_port or p.container_port, p.protocol)
                     for p in c.port_mappings)

    def _task_health(self) -> str:
        spec = self._spec()
        states = []
        for c in spec.containers:
            local = self.locals.get(c.name)
            if c.essential and c.health_check is not None:
                states.append(local.status.health if local and local.status else "")
        if not states:
            return "UNKNOWN"
        if "unhealthy" in states:
            return "UNHEALTHY"
        return "HEALTHY" if all(s == "healthy" for s in states) else "UNKNOWN"

    def _spec(self) -> TaskDefinitionSpec:
        # A task's definition never changes (revisions are immutable): parse it once.
        if self.parsed is None:
            self.parsed = parse_task_definition(self.assignment.definition_params)
        return self.parsed

    def _ctx(self) -> sp.TaskContext:
        creds = self.agent.config.credentials_for(self.task) if self.agent.config.credentials_for else ""
        return sp.TaskContext(task=self.task, spec=self._spec(), family=self.assignment.family,
                              revision=self.assignment.revision, cluster_name=self.assignment.cluster_name,
                              agent_id=self.agent.config.agent_id, metadata_base=self.agent.config.metadata_base,
                              credentials_uri=creds, region=self.agent.config.region)

    def _refresh(self) -> None:
        for local in self.locals.values():
            if local.engine_id:
                local.status = self.agent.engine.inspect(local.engine_id)

    # --- the lifecycle ------------------------------------------------------------------------

    async def _main(self) -> None:
        try:
            await self._drive()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a bug must not leave the task hanging unreported
            log.exception("task %s failed in the agent", self.task.arn)
            try:
                await self._stop_all("TaskFailedToStart", f"berth agent error: {err}")
            except Exception:  # noqa: BLE001
                log.exception("could not stop task %s", self.task.arn)
        finally:
            self.agent.runner_done(self.task.arn)

    async def _drive(self) -> None:
        spec = self._spec()
        for c in spec.containers:
            self.locals[c.name] = _Local(c.name)
        pause = [c for c in self.adopted if c.labels.get(sp.LABEL_CONTAINER) == sp.PAUSE_NAME]
        for found in self.adopted:
            local = self.locals.get(found.labels.get(sp.LABEL_CONTAINER, ""))
            if local is not None:
                local.engine_id, local.status = found.id, found
                local.started, local.started_mono = found.started_at is not None, time.monotonic()
        self.pause_id = pause[0].id if pause else ""
        task = self.task
        if task.last_status == "STOPPED":
            await self._wait_until_forgotten()
            return
        if task.reached_running:
            # adopted after a daemon restart: it ran, so never start it again. A container that
            # died meanwhile shows exited (its exit code is the engine's); one removed meanwhile
            # is gone, which the monitor reports as an exit too.
            for local in self.locals.values():
                if not local.engine_id:
                    local.reason = "CannotInspectContainerError: the container was removed while berth was down"
                local.started = True
            self._refresh()
            if self.agent.config.on_task_started is not None and task.desired_status == "RUNNING":
                self.agent.config.on_task_started(task, {n: loc.engine_id for n, loc in self.locals.items()})
        elif task.desired_status == "RUNNING" and not self._all_started():
            started = await self._start_task()
            if not started:
                await self._wait_until_forgotten()
                return
        await self._monitor()
        await self._wait_until_forgotten()

    def _all_started(self) -> bool:
        return all(local.started for local in self.locals.values())

    async def _start_task(self) -> bool:
        """PENDING (pull) → ACTIVATING (create, start in dependency order) → RUNNING. Returns
        False when the task stopped instead."""
        spec = self._spec()
        now = time.time()
        self._report("PENDING", pull_started_at=now)
        images: dict[str, str] = {}
        for c in spec.containers:
            try:
                auth = await self._registry_auth(c)   # repositoryCredentials: before its pull, as ECS
                await self.agent.engine.ensure_image(c.image, auth)
                images[c.name] = c.image
            except secrets.SecretsUnavailable as err:
                self.locals[c.name].reason = str(err)
                await self._stop_all("TaskFailedToStart", str(err), pull_stopped_at=time.time())
                return False
            except ImageNotAvailable as err:
                self.locals[c.name].reason = f"CannotPullContainerError: {err}"
                await self._stop_all("TaskFailedToStart", f"CannotPullContainerError: pull image manifest has been "
                                     f"retried 1 time(s): {err}", pull_stopped_at=time.time())
                return False
            if self._stop_requested():
                await self._stop_all("", "")
                return False
        pulled = time.time()
        try:
            await self._resolve_secrets(spec)    # after the pulls, as ECS
        except secrets.SecretsUnavailable as err:
            await self._stop_all("TaskFailedToStart", str(err), pull_started_at=now, pull_stopped_at=pulled)
            return False
        self._report("PENDING", pull_started_at=now, pull_stopped_at=pulled)
        ctx = self._ctx()
        try:
            sp.preflight(ctx)   # what would fail at create time fails before anything exists
            await self._volumes(ctx)
            network_mode = await self._network(ctx)
            self._report("ACTIVATING", pull_started_at=now, pull_stopped_at=pulled, private_ip=self._private_ip())
            ok = await self._create_and_start(ctx, images, network_mode)
        except (sp.TaskSetupError, BerthError) as err:
            text = str(err)
            if isinstance(err, BerthError) and not text.startswith(("CannotCreate", "CannotStart", "Resource")):
                text = f"CannotStartContainerError: {text}"
            await self._stop_all("TaskFailedToStart", text)
            return False
        if not ok:
            return False
        self._refresh()
        started_at = time.time()
        self._report("RUNNING", pull_started_at=now, pull_stopped_at=pulled, started_at=started_at,
                     private_ip=self._private_ip())
        if self.agent.config.on_task_started is not None:
            self.agent.config.on_task_started(self.task, {n: loc.engine_id for n, loc in self.locals.items()})
        return True

    async def _registry_auth(self, c: ContainerDefinition) -> RegistryAuth | None:
        """The credentials of the container's pull: its repositoryCredentials when it has any
        (they need the task's execution role), else the daemon's for its own registry."""
        config = self.agent.config
        if not c.repository_credentials:
            return config.registry_auth(c.image) if config.registry_auth else None
        if not self.task.execution_role_arn:
            raise secrets.SecretsUnavailable(secrets.missing_execution_role(c.repository_credentials))
        source = self._secret_source()
        auth = await asyncio.to_thread(secrets.resolve_registry_auth, source, c.repository_credentials,
                                       account=self._account(), region=config.region)
        host = c.image.split("/", 1)[0] if "/" in c.image else ""
        return RegistryAuth(auth.username, auth.password, host)

    async def _resolve_secrets(self, spec: TaskDefinitionSpec) -> None:
        """Every container's `secrets`; on failure the container's reason is set and
        SecretsUnavailable raised."""
        for c in spec.containers:
            if not c.secrets:
                continue
            try:
                source = self._secret_source()
                self.secret_env[c.name] = await asyncio.to_thread(
                    secrets.resolve_secrets, source, c, account=self._account(), region=self.agent.config.region)
            except secrets.SecretsUnavailable as err:
                self.locals[c.name].reason = str(err)
                raise

    def _secret_source(self) -> secrets.SecretSource:
        source = self.agent.config.secrets
        if source is None:
            raise secrets.SecretsUnavailable(f"{secrets.PREFIX}this berth daemon has no SSM or Secrets Manager "
                                             "to resolve secrets from")
        return source

    def _account(self) -> str:
        """The task's account (arn:aws:ecs:<region>:<account>:task/...)."""
        parts = self.task.arn.split(":")
        return parts[4] if len(parts) > 5 else ""

    def _stop_requested(self) -> bool:
        return self.task.desired_status == "STOPPED" or self.forgotten

    async def _volumes(self, ctx: sp.TaskContext) -> None:
        for vol in ctx.spec.volumes:
            if vol.host_source_path or getattr(vol, "other", None):
                continue
            docker = vol.docker
            name = sp.volume_name(self.task, vol)
            if docker is not None and docker.scope == "shared" and not docker.autoprovision:
                continue  # must exist; the engine's mount reports it if not
            await self.agent.engine.ensure_volume(
                name, {sp.LABEL_TASK: self.task.arn} if not (docker and docker.scope == "shared") else dict(
                    docker.labels), docker.driver if docker else None, dict(docker.driver_opts) if docker else {})

    async def _network(self, ctx: sp.TaskContext) -> str:
        mode = sp.task_network_mode(ctx.spec)
        if mode != "awsvpc":
            return mode
        if not self.pause_id:
            image = await self.agent.engine.ensure_pause_image()
            name = sp.engine_name(ctx.family, ctx.revision, "internalecspause")
            from berth.agent._engine import ContainerSpec

            pause_spec = ContainerSpec(name=name, image=image, labels=sp.labels(ctx, sp.PAUSE_NAME),
                                       command=("sleep", "2147483647"), network_mode="bridge", init=False)
            self.pause_id = await self.agent.engine.create(pause_spec)
        status = self.agent.engine.inspect(self.pause_id)
        if status is None or status.state != "running":
            await self.agent.engine.start(self.pause_id)
        return f"container:{self.pause_id}"

    def _private_ip(self) -> str:
        if not self.pause_id:
            return ""
        status = self.agent.engine.inspect(self.pause_id)
        return status.ip_address if status else ""

    async def _create_and_start(self, ctx: sp.TaskContext, images: dict[str, str], network_mode: str) -> bool:
        ids: dict[str, str] = {n: loc.engine_id for n, loc in self.locals.items() if loc.engine_id}
        names: dict[str, str] = {n: loc.status.name for n, loc in self.locals.items() if loc.status is not None}
        order = sp.start_order(ctx.spec)
        essential = {c.name for c in ctx.spec.containers if c.essential}
        pending = [c for c in order if not self.locals[c.name].started]
        while pending:
            if self._stop_requested():
                await self._stop_all("", "")
                return False
            self._refresh()
            if any(self._exited(n) for n in essential):
                # an essential container that already ran stopped while others wait on conditions
                await self._stop_all("EssentialContainerExited", "Essential container in task exited")
                return False
            progressed = False
            for c in list(pending):
                verdict = self._dependencies_ready(c)
                if verdict is None:
                    continue
                if verdict:
                    await self._stop_all("TaskFailedToStart", verdict)
                    return False
                local = self.locals[c.name]
                if not local.engine_id:
                    name = sp.engine_name(ctx.family, ctx.revision, c.name)
                    spec = sp.container_spec(ctx, c, name=name, image=images[c.name], network_mode=network_mode,
                                             engine_ids=ids, engine_names=names,
                                             metadata_id=f"{self.task.task_id}-{c.name}",
                                             secret_env=self.secret_env.get(c.name))
                    local.engine_id = await self.agent.engine.create(spec)
                    ids[c.name], names[c.name] = local.engine_id, name
                try:
                    await self.agent.engine.start(local.engine_id)
                except BerthError as err:
                    local.reason = f"CannotStartContainerError: {err}"
                    await self._stop_all("TaskFailedToStart", f"CannotStartContainerError: {err}")
                    return False
                local.started, local.started_mono = True, time.monotonic()
                pending.remove(c)
                progressed = True
            if not pending:
                break
            if not progressed:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
        return True

    def _dependencies_ready(self, c: ContainerDefinition) -> str | None:
        """"" when every dependency condition holds, None while waiting, or the stopped reason
        when one can never hold."""
        for dep in c.depends_on:
            local = self.locals.get(dep.container_name)
            st = local.status if local else None
            if local is None or not local.started or st is None:
                return None
            exited = st.state in ("exited", "dead")
            if dep.condition == "START":
                continue
            if dep.condition == "COMPLETE":
                if exited:
                    continue
            elif dep.condition == "SUCCESS":
                if exited and st.exit_code != 0:
                    return (f"DependencyConditionFailed: container {dep.container_name} exited with code "
                            f"{st.exit_code}; {c.name} needs it to succeed")
                if exited:
                    continue
            elif dep.condition == "HEALTHY":
                if st.health == "healthy":
                    continue
                if exited or st.health == "unhealthy":
                    return f"DependencyConditionFailed: container {dep.container_name} did not become healthy"
            # not met yet: ECS gives up after the dependency's startTimeout
            target = self._definition(dep.container_name)
            limit = float(target.start_timeout) if target is not None and target.start_timeout else DEPENDENCY_TIMEOUT
            if time.monotonic() - local.started_mono > limit:
                return (f"DependencyTimeout: container {dep.container_name} did not reach {dep.condition} "
                        f"within {limit:g} seconds; {c.name} was not started")
            return None
        for link in c.links + tuple(v.source_container for v in c.volumes_from):
            local = self.locals.get(link.split(":", 1)[0])
            if local is not None and not local.engine_id:
                return None
        return ""

    def _definition(self, name: str) -> ContainerDefinition | None:
        return next((c for c in self._spec().containers if c.name == name), None)

    def _exited(self, name: str) -> bool:
        local = self.locals[name]
        return local.started and (local.status is None or local.status.state in ("exited", "dead"))

    async def _monitor(self) -> None:
        """RUNNING: watch the containers until an essential one exits or a stop is requested."""
        spec = self._spec()
        essential = {c.name for c in spec.containers if c.essential}
        while True:
            self._refresh()
            if self._stop_requested():
                task = self.task
                await self._stop_all(task.stop_code or "UserInitiated", task.stopped_reason or "Task stopped by user")
                return
            if any(self._exited(n) for n in essential):
                await self._stop_all("EssentialContainerExited", "Essential container in task exited")
                return
            self._report("RUNNING", private_ip=self._private_ip())
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), 5.0)
            except asyncio.TimeoutError:
                pass

    async def _stop_all(self, stop_code: str, reason: str, **kw: object) -> None:
        """DEACTIVATING → STOPPING (SIGTERM, SIGKILL after stopTimeout, dependents first) →
        DEPROVISIONING → STOPPED with every container's exit code."""
        now = time.time()
        self._report("DEACTIVATING", stopping_at=now, stop_code=stop_code, stopped_reason=reason, **kw)
        await self._drain()
        self._report("STOPPING", stopping_at=now, stop_code=stop_code, stopped_reason=reason, **kw)
        spec = self._spec()
        timeouts = {c.name: c.stop_timeout for c in spec.containers}
        # Dependents first (ECS stops in the reverse order of dependencies), each wave at once.
        deps = {c.name: set(sp.dependencies(c)) for c in spec.containers}
        remaining = {c.name for c in spec.containers if self.locals[c.name].engine_id}
        while remaining:
            wave = sorted(n for n in remaining if not any(n in deps[o] for o in remaining if o != n)) \
                or sorted(remaining)
            await asyncio.gather(*[self.agent.engine.stop(self.locals[n].engine_id,
                                                          timeouts.get(n) or DEFAULT_STOP_TIMEOUT) for n in wave])
            remaining.difference_update(wave)
        if self.pause_id:
            await self.agent.engine.stop(self.pause_id, 0)   # it only holds the namespace: no grace
        self._refresh()
        self._report("DEPROVISIONING", stopping_at=now, stop_code=stop_code, stopped_reason=reason, **kw)
        self._report("STOPPED", stopping_at=now, stopped_at=time.time(), stop_code=stop_code,
                     stopped_reason=reason, **kw)
        if self.agent.config.on_task_stopped is not None:
            self.agent.config.on_task_stopped(self.task)

    async def _drain(self) -> None:
        """DEACTIVATING: a load-balanced task that ran keeps its containers until the control plane
        has deregistered its targets and their deregistration delay has passed (`lb_drain_until`),
        so requests in flight finish; at most the delay plus a margin, whatever the controller does."""
        task = self.task
        if not task.load_balanced or not (self.ran or task.reached_running):
            return
        began = time.monotonic()
        while not self.forgotten:
            task = self.task
            cap = task.lb_drain_seconds + DRAIN_MARGIN - (time.monotonic() - began)
            left = cap if task.lb_drain_until is None else min(cap, task.lb_drain_until - time.time())
            if left <= 0:
                return
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass

    async def _wait_until_forgotten(self) -> None:
        """A STOPPED task keeps its containers until the control plane forgets it (retention)."""
        while not self.forgotten:
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), 30.0)
            except asyncio.TimeoutError:
                pass
        await self._cleanup()

    async def _cleanup(self) -> None:
        for local in self.locals.values():
            if local.engine_id:
                await self.agent.engine.remove(local.engine_id)
        if self.pause_id:
            await self.agent.engine.remove(self.pause_id)
        try:
            spec = self._spec()
        except BerthError:
            return
        await self.agent.remove_volumes(self.task.arn, set(sp.task_volumes(self.task, spec)))


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for its end. Cancels again while it runs on: Python 3.11's
    asyncio.wait_for drops a cancellation that arrives as its inner wait completes, which would
    leave a runner looping (and the daemon's shutdown waiting) forever."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    if not task.cancelled() and task.exception() is not None:
        log.debug("task %s ended with %r while shutting down", task.get_name(), task.exception())


def _same(a: TaskReport, b: TaskReport) -> bool:
    return (a.last_status, a.containers, a.health_status, a.private_ip, a.stop_code) == (
        b.last_status, b.containers, b.health_status, b.private_ip, b.stop_code)
