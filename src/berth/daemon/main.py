"""Composition root: builds every service from the config, serves the APIs, stops on SIGTERM.

Containers live under conmon, not inside this process, so stopping the daemon leaves them
running; the next daemon adopts them (`ContainerService.restore`).
"""

from __future__ import annotations

import asyncio
import fcntl
import grp
import logging
import os
import platform
import signal
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from berth import __version__
from berth.api import aws
from berth.api.aws.ecr import ecr_service
from berth.api.aws.ecs import ecs_service
from berth.api.aws.elbv2 import elbv2_handler
from berth.api.aws.logs import logs_service
from berth.api.aws.secretsmanager import secretsmanager_service
from berth.api.aws.ssm import ssm_service
from berth.ecs import model as ecs_model
from berth.elb import ElbService
from berth.elb.ecs_targets import ElbTargets
from berth.elb.haproxy.plane import HaproxyPlane
from berth.agent import Agent, AgentConfig, RegistryAuth, host_resources
from berth.agent.engine_adapter import EngineAdapter
from berth.controllers.service_controller import ServiceController
from berth.ecs import Context, EcsService, LocalControlPlane, Repo
from berth.api.docker.backend import Backend
from berth.api.docker.server import make_server
from berth.api.docker.versions import ENGINE_VERSION
from berth.builder import Builder
from berth.daemon.config import DaemonConfig, parse_host
from berth.engine.containers import ContainerRepository, ContainerService, init_info_fields
from berth.engine.distribution import DistributionConfig, DistributionService
from berth.ecr import EcrService, EcrTokens, import_legacy_repositories
from berth.ecr.registry_adapter import RegistryImages
from berth.engine.events import EventBus
from berth.engine import stats as engine_stats
from berth.engine.stats import host_memory
from berth.engine.execs import ExecService
from berth.engine.images import ImageService
from berth.errors import InvalidArgument, Unavailable
from berth.images import ImageStore
from berth.logs import EngineSink, LogsService
from berth.images.distribution import Credentials, RegistryHosts
from berth.network import (
    BridgeConfig, EmbeddedDns, EndpointManager, NetworkIsolation, NetworkManager, NetworkRegistry,
)
from berth.engine.archive import ArchiveService
from berth.engine.networks import NetworkService
from berth.engine.volumes import VolumeService
from berth.volumes import VolumeStore
from berth.registry import RegistryConfig, RegistryServer, parse_listen_addr
from berth.runtime import Runtime
from berth.secrets import Secrets
from berth.state import Database, SqliteStore

if TYPE_CHECKING:  # for annotations only: the daemon imports these modules where it starts the servers
    from berth.agent.metadata import MetadataServer
    from berth.daemon.metrics import MetricsServer

log = logging.getLogger("berth.daemon")


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self._lock_file: TextIO | None = None   # held (flocked) for the daemon's life

    def _take_lock(self) -> None:
        """One daemon per root: a second one on the same root would corrupt state."""
        self._lock_file = lock_file = open(self.config.root / "daemon.lock", "w")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise Unavailable(f"another berth daemon is using {self.config.root}") from err

    def build(self) -> Backend:
        c = self.config
        for path in (c.root, c.run_root, c.root / "tmp"):
            path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self.db = Database(c.root / "state.db")
        # The control-plane store (ECR repositories, ECS objects): ONE instance, so every
        # writer's changes reach every watcher.
        self.control_store = SqliteStore(self.db)
        import_legacy_repositories(self.db, self.control_store)  # the pre-store ecr_repositories table
        # CloudWatch Logs, before the engine: the awslogs driver writes here even with the AWS endpoint off.
        self.logs = LogsService(self.control_store, c.root / "logs")
        self.logs.recover()
        # SSM parameters + Secrets Manager (sealed under <root>/secrets/master.key); `self.secrets.resolver`
        # resolves ECS `secrets[].valueFrom`.
        self.secrets = Secrets.open(self.control_store, c.root)
        self.image_store = ImageStore(c.root, self.db)
        self.image_store.recover()
        self.runtime = Runtime(run_dir=c.run_root / "runtime", runtime=c.runtime,
                               cgroup_fix=c.crun_cgroup_fix)
        log.info("OCI runtime: %s (%s)", self.runtime.name, self.runtime.selection_reason)
        bridge = BridgeConfig(network_name=c.network_name, bridge=c.bridge_name,
                              subnet=c.bridge_subnet, gateway=c.bridge_gateway)
        self.network = NetworkManager(state_dir=c.root / "network", run_dir=c.run_root / "netns",
                                      bridge=bridge, spares=c.network_spares,
                                      iptables_rules=c.network_iptables_rules)
        self.events = EventBus()
        repo = ContainerRepository(self.db)
        self.volumes = VolumeService(VolumeStore(c.root, self.db),
                                     users=lambda: [(ct.id, ct.mounts) for ct in repo.all()])
        self.networks = NetworkService(
            manager=self.network, registry=NetworkRegistry(state_dir=c.root / "network", reserved=(bridge.subnet,)),
            endpoints=EndpointManager(state_dir=c.root / "network", ipam_dir=c.root / "network" / "ipam",
                                      iptables_rules=c.network_iptables_rules),
            repo=repo, containers_dir=c.root / "containers", bridge=bridge,
            dns=EmbeddedDns(), isolation=NetworkIsolation())
        self.containers = ContainerService(
            root=c.root, repo=repo, images=self.image_store,
            runtime=self.runtime, network=self.networks, events=self.events, volumes=self.volumes,
            secret_dir=c.run_root / "secrets",
            log_sink=EngineSink(self.logs), aws_region=aws.DEFAULT_REGION)  # `--log-driver awslogs` ships here
        self.archive = ArchiveService(containers=self.containers, images=self.image_store, runtime=self.runtime,
                                      tmp_dir=c.root / "tmp", events=self.events,
                                      volume_dir=self.volumes.content_dir)
        self.execs = ExecService(containers=self.containers, runtime=self.runtime, events=self.events)
        self.images = ImageService(self.image_store)
        self.distribution = DistributionService(self.image_store, self.db, DistributionConfig(
            hosts=RegistryHosts(insecure=c.insecure_registries, mirrors=c.registry_mirrors),
            tmp_dir=c.root / "tmp"))
        self.builder = Builder(images=self.image_store, db=self.db, runtime=self.runtime, network=self.network,
                               work_root=c.root / "tmp" / "builds", architecture=_architecture(),
                               pull_base=self._pull_base)
        self.builder.recover()
        return Backend(builder=self.builder, containers=self.containers, execs=self.execs, images=self.images,
                       image_store=self.image_store, events=self.events, info=self.info,
                       tmp_dir=str(c.root / "tmp"), distribution=self.distribution,
                       volumes=self.volumes, networks=self.networks, archive=self.archive)

    def _pull_base(self, reference: str, emit: Callable[[dict[str, Any]], None]) -> None:  # emit: JSON progress
        """FROM of an image that is not here: pull it anonymously (the builder calls this in a thread)."""
        self.distribution.pull(reference, "", Credentials(), emit)

    def info(self) -> dict[str, Any]:  # `GET /info`'s JSON
        containers = self.containers.list(all=True, limit=-1, filters={})
        states = [c.container.state.status for c in containers]
        return {
            "ID": "berth", "Name": platform.node(), "ServerVersion": ENGINE_VERSION,
            "OSType": "linux", "OperatingSystem": _os_name(), "Architecture": platform.machine(),
            "KernelVersion": platform.release(), "NCPU": os.cpu_count(), "MemTotal": host_memory(),
            "Containers": len(states), "ContainersRunning": states.count("running"),
            "ContainersPaused": states.count("paused"),
            "ContainersStopped": len(states) - states.count("running") - states.count("paused"),
            "Images": len(self.image_store.list()), "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["k8s-file"]},
            "LoggingDriver": "k8s-file", "CgroupDriver": "cgroupfs", "CgroupVersion": "1",
            "DockerRootDir": str(self.config.root), "IndexServerAddress": "",
            "RegistryConfig": {"IndexConfigs": {}, "Mirrors": list(self.config.registry_mirrors),
                               "InsecureRegistryCIDRs": self.distribution.hosts.insecure_cidrs()},
            "Runtimes": {self.runtime.name: {"path": self.runtime.name}},
            "DefaultRuntime": self.runtime.name, "SecurityOptions": ["name=seccomp,profile=builtin"],
            "ExperimentalBuild": False, "LiveRestoreEnabled": True, "Swarm": {"LocalNodeState": "inactive"},
            "Labels": [f"berth.version={__version__}"], "Warnings": [], **init_info_fields(),
        }

    async def _start_registry(self) -> RegistryServer | None:
        """The OCI registry role; its blobs hardlink the engine's where both hold a digest."""
        c = self.config
        listen = parse_listen_addr(c.registry_addr)
        if listen is None:
            return None
        # ECR's GetAuthorizationToken passwords log `AWS` in to this registry.
        self.ecr_tokens = EcrTokens.from_file(c.root / "ecr" / "token.key")
        registry = RegistryServer(RegistryConfig(
            root=c.root / "registry", shared_blob_dirs=(c.root / "blobs" / "sha256",), htpasswd=c.registry_htpasswd,
            anonymous_pull=c.registry_anonymous_pull, anonymous_push=c.registry_anonymous_push),
            extra_authenticators=[self.ecr_tokens])
        host = listen[0] if listen[0] not in ("0.0.0.0", "::", "") else "127.0.0.1"
        # Before the registry serves (on its own thread): ECR's tag guard must hold from the first push.
        self.ecr = EcrService(self.control_store, RegistryImages(registry.registry), self.ecr_tokens,
                              f"{host}:{listen[1]}")
        try:
            await registry.start(*listen)
        except OSError as err:
            await registry.close()
            raise Unavailable(f"registry: cannot listen on {c.registry_addr}: {err.strerror or err}") from err
        self.registry = registry
        self.ecr.registry_host = f"{host}:{registry.port}"  # the bound port, when asked for port 0
        return registry

    async def _start_aws(self, registry: RegistryServer | None) -> aws.AwsServer | None:
        """The AWS endpoint: ECR when the registry runs (ECS and ELBv2 register here too)."""
        c = self.config
        listen = aws.parse_listen_addr(c.aws_addr)
        if listen is None:
            return None
        self.aws_api = aws.AwsApi(authenticator=self._aws_authenticator(listen))
        if registry is not None:
            self.aws_api.add_json_service(ecr_service(self.ecr))
        self.aws_api.add_json_service(ecs_service(self._build_ecs()))
        self.aws_api.add_json_service(logs_service(self.logs))
        self.aws_api.add_json_service(ssm_service(self.secrets.ssm))
        self.aws_api.add_json_service(secretsmanager_service(self.secrets.secretsmanager))
        handler, render_error = elbv2_handler(self._build_elb())
        self.aws_api.add_query_service("elasticloadbalancing", handler, render_error=render_error)
        server = aws.AwsServer(self.aws_api)
        try:
            await server.start(*listen)
        except OSError as err:
            await server.close()
            raise Unavailable(f"AWS APIs: cannot listen on {c.aws_addr}: {err.strerror or err}") from err
        return server

    def _aws_authenticator(self, listen: tuple[str, int]) -> aws.Authenticator:
        """SigV4 against the generated key pair, `--aws-credentials` keys and task-role keys."""
        c = self.config
        try:
            own = aws.KeyFile(c.root).ensure()  # made even with auth off: switching it on needs no step
            static = aws.StaticKeys.from_files(c.aws_credentials)
            static.add(own)
        except (InvalidArgument, OSError) as err:
            raise Unavailable(f"AWS APIs: {err}") from err
        # The ECS credentials endpoint issues task-role keys through this store.
        self.aws_temporary_credentials = aws.TemporaryCredentials(path=c.root / "aws" / "task-credentials.json")
        if c.aws_auth == "none":
            log.warning("AWS endpoint authentication is OFF (--aws-auth none): anyone who can reach %s:%s "
                        "can run privileged containers as root", *listen)
        else:
            log.info("AWS endpoint: SigV4 required, %d static key(s); `berth aws-credentials --root %s` "
                     "prints the generated pair", len(static), c.root)
        mode: aws.AuthMode = "none" if c.aws_auth == "none" else "sigv4"
        return aws.Authenticator([static, self.aws_temporary_credentials], mode=mode)

    def _build_ecs(self) -> EcsService:
        """The ECS control plane over the shared state database (one store: its watches wake
        the controllers and agents)."""
        c = self.config
        self.ecs = EcsService(Context(Repo(self.control_store), stopped_task_retention=c.ecs_task_retention,
                                      healthy_after=c.ecs_healthy_after))
        return self.ecs

    def _build_elb(self) -> ElbService:
        """ELBv2 over the shared control-plane store, served by one HAProxy per daemon (it keeps
        running across daemon restarts and is adopted, as containers are)."""
        c = self.config
        self.elb_plane = HaproxyPlane(c.run_root / "elb")
        self.elb = ElbService(self.control_store, self.elb_plane, resolve_instance=self._resolve_instance,
                              bind=c.elb_bind)
        return self.elb

    def _resolve_instance(self, instance_id: str) -> str | None:
        """An instance target's address: this host's container instances publish their tasks'
        ports on this host, so loopback reaches them."""
        ecs = getattr(self, "ecs", None)
        if ecs is None:
            return None
        known = any(i.ec2_instance_id == instance_id for i in ecs.repo.list(ecs_model.ContainerInstance))
        return "127.0.0.1" if known else None

    async def _elb_loop(self) -> None:
        """Bring HAProxy to the stored configuration, then drop drained targets as their
        deregistration delay ends."""
        # No listener stored and no HAProxy left running: nothing to serve, no proxy to start.
        if self.control_store.list("elb.listener") or self.elb_plane.supervisor.running():
            try:
                await asyncio.to_thread(self.elb.sync)
            except Exception:  # noqa: BLE001 - the API still answers; the next change retries
                log.exception("ELB data plane: could not apply the stored configuration")
        ticks = 0
        while True:
            await asyncio.sleep(0.05)
            ticks += 1
            try:
                # new targets turn healthy on their first passing check (cheap when there is none)
                await asyncio.to_thread(self.elb_plane.promote)
                if ticks % 20 == 0:
                    await asyncio.to_thread(self.elb.tick)
            except Exception:  # noqa: BLE001 - one failed tick must not end the loop
                log.exception("ELB data plane: tick failed")

    def _metrics_text(self) -> str:
        """/metrics: the ELB listeners' and targets' HAProxy stats (berth.elb.metrics)."""
        from berth.elb import metrics

        if getattr(self, "elb", None) is None:
            return metrics.render([])
        rows: list[dict[str, str]] = []
        if self.elb_plane.supervisor.running():
            try:
                rows = self.elb_plane.supervisor.runtime.stat()
            except Unavailable:
                rows = []
        config = self.elb_plane.config or self.elb.config()
        names = metrics.names_from_store(self.control_store, config)
        return metrics.render(metrics.samples(rows, names, self.elb_plane.health()))

    async def _start_metrics(self) -> MetricsServer | None:
        from berth.daemon.metrics import MetricsServer, parse_metrics_addr

        try:
            listen = parse_metrics_addr(self.config.metrics_addr)
        except ValueError as err:
            raise Unavailable(str(err)) from err
        if listen is None:
            return None
        server = MetricsServer(self._metrics_text)
        try:
            await server.start(*listen)
        except OSError as err:
            await server.close()
            raise Unavailable(f"metrics: cannot listen on {self.config.metrics_addr}: {err.strerror or err}") from err
        log.info("metrics: GET http://%s:%s/metrics (no authentication)", listen[0], server.port)
        return server

    async def _start_ecs(self) -> None:
        """The service controller, and this host's agent(s) on the local engine."""
        if getattr(self, "ecs", None) is None:
            return
        c = self.config
        elb = getattr(self, "elb", None)
        self.service_controller = ServiceController(self.ecs, targets=ElbTargets(elb) if elb is not None else None)
        self.service_controller.start()
        self.agents: list[Agent] = []
        if not c.ecs_agent:
            return
        self.agent_engine = EngineAdapter(self.containers, self.image_store, self.distribution, self.volumes,
                                          self.networks, self.events, c.bridge_gateway, c.bridge_subnet)
        control = LocalControlPlane(self.ecs, aws.DEFAULT_REGION, aws.DEFAULT_ACCOUNT)
        metadata = await self._start_task_metadata()
        for index in range(c.ecs_agents):
            zone = f"local-1{'abcdefghij'[index % 10]}"
            agent_id = f"{platform.node()}-{index}" if c.ecs_agents > 1 else platform.node()
            agent = Agent(control, self.agent_engine, AgentConfig(
                cluster=c.ecs_cluster, agent_id=agent_id,
                resources=host_resources(cpu=c.ecs_agent_cpu, memory=c.ecs_agent_memory, zone=zone),
                metadata_base=metadata.base_url, credentials_for=metadata.relative_uri,
                on_task_started=lambda task, _ids: self.task_metadata_tasks.remember(task),
                on_task_stopped=metadata.task_stopped, registry_auth=self._own_registry_auth,
                secrets=self.secrets.resolver))
            await agent.start()
            self.agents.append(agent)

    async def _start_task_metadata(self) -> MetadataServer:
        """The task metadata and task-role credentials endpoint on the bridge's gateway, and
        169.254.170.2:80 DNATed to it for the bridge's containers (berth.agent.metadata)."""
        from berth.agent import metadata as md

        c = self.config
        credentials = md.TaskRoleCredentials(self.aws_temporary_credentials,
                                             md.load_key(c.root / "ecs" / "credentials.key"))
        self.task_metadata_tasks = md.RepoTasks(self.ecs.repo)
        self.task_metadata = md.MetadataServer(self.task_metadata_tasks, md.EngineContainers(self.containers, engine_stats.sample, engine_stats.with_previous),
                                               credentials, host=c.bridge_gateway, allowed=(c.bridge_subnet,))
        try:
            port = await self.task_metadata.start()
        except OSError as err:
            raise Unavailable(f"ECS task metadata: cannot listen on {c.bridge_gateway}: {err.strerror or err}") from err
        try:
            await asyncio.to_thread(md.install_dnat, c.bridge_name, c.bridge_gateway, port)
        except OSError as err:
            log.warning("ECS: %s; tasks reach their credentials at %s only", err, self.task_metadata.base_url)
        return self.task_metadata

    def _own_registry_auth(self, image: str) -> RegistryAuth | None:
        """An ECR login for images on berth's own registry (ECR repository URIs), so tasks pull
        them however the registry's anonymous access is set."""
        ecr = getattr(self, "ecr", None)
        if ecr is None or "/" not in image:
            return None
        host = image.split("/", 1)[0]
        port = ecr.registry_host.rsplit(":", 1)[-1]
        if host != ecr.registry_host and host not in (f"localhost:{port}", f"127.0.0.1:{port}"):
            return None
        password, _expires = self.ecr_tokens.issue(aws.DEFAULT_ACCOUNT)
        return RegistryAuth("AWS", password, host)

    async def _stop_ecs(self) -> None:
        for agent in getattr(self, "agents", []):
            await agent.close()
        if getattr(self, "task_metadata", None) is not None:
            from berth.agent import metadata as md

            await self.task_metadata.close()
            await asyncio.to_thread(md.remove_dnat, self.config.bridge_name)
        if getattr(self, "agent_engine", None) is not None:
            await self.agent_engine.close()
        if getattr(self, "service_controller", None) is not None:
            await self.service_controller.close()

    async def _ecr_lifecycle(self) -> None:
        """ECR applies lifecycle policies in the background; so do we, every interval."""
        while True:
            await asyncio.sleep(self.config.ecr_lifecycle_interval)
            try:
                await asyncio.to_thread(self.ecr.apply_lifecycle)
            except Exception:  # noqa: BLE001 - one failed sweep must not end the loop
                log.exception("ECR lifecycle sweep failed")

    async def _logs_retention(self) -> None:
        """CloudWatch Logs retention: segments wholly older than their group's retention go, every 10 min."""
        while True:
            try:
                freed = await asyncio.to_thread(self.logs.apply_retention)
                if freed:
                    log.info("logs retention: deleted %d bytes of expired events", freed)
            except Exception:  # noqa: BLE001 - one failed sweep must not end the loop
                log.exception("logs retention sweep failed")
            await asyncio.sleep(600)

    async def serve(self) -> None:
        backend = self.build()
        await asyncio.to_thread(self.networks.ensure_isolation)  # before any container talks
        await self.containers.restore()
        # The registry and AWS endpoints listen before the Docker API does: a client that sees the
        # API socket answer (as `berth daemon` readiness checks do) finds them all up.
        registry = await self._start_registry()
        aws_server = await self._start_aws(registry)
        elb_loop = asyncio.create_task(self._elb_loop()) if getattr(self, "elb", None) is not None else None
        metrics_server = await self._start_metrics()
        await self._start_ecs()
        server = make_server(backend)
        for spec in self.config.docker_hosts:
            kind, where = parse_host(spec)
            if kind == "unix":
                Path(str(where)).parent.mkdir(parents=True, exist_ok=True)
                await server.listen_unix(str(where), mode=0o660)
                _give_socket_to_group(str(where), self.config.socket_group)
            else:
                await server.listen_tcp(kind.split(":", 1)[1], int(where))
        sweeper = asyncio.create_task(self._ecr_lifecycle()) if registry is not None else None
        logs_retention = asyncio.create_task(self._logs_retention())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        (self.config.run_root / "berth.pid").write_text(str(os.getpid()))
        log.info("berth daemon ready: %s", ", ".join(self.config.docker_hosts))
        await stop.wait()
        log.info("shutting down")
        await server.close()
        if sweeper is not None:
            sweeper.cancel()
        logs_retention.cancel()
        if aws_server is not None:
            await aws_server.close()
        if metrics_server is not None:
            await metrics_server.close()
        await self._stop_ecs()
        if elb_loop is not None:
            elb_loop.cancel()
            await asyncio.to_thread(self.elb_plane.detach)  # HAProxy keeps serving; the next daemon adopts it
        if registry is not None:
            await registry.close()
        await self.containers.close()
        await asyncio.to_thread(self.network.close)  # unclaimed spare namespaces
        await asyncio.to_thread(self.networks.close_dns)  # containers keep running; the next daemon reopens
        await self.builder.close()
        self.db.close()
        (self.config.run_root / "berth.pid").unlink(missing_ok=True)


def _give_socket_to_group(path: str, group: str) -> None:
    """root:root 0660 by default, like dockerd without a docker group; `--group` opens it to one."""
    if not group:
        return
    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as err:
        raise Unavailable(f"can't find group {group!r} for the API socket {path}") from err
    os.chown(path, 0, gid)


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"




class _ClientHttpErrors(logging.Filter):
    """aiohttp logs a client's malformed HTTP (bad Content-Length, oversized head) as an ERROR
    with a traceback; it already answered 400, so one INFO line is what happened."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            said = record.getMessage().replace("Error handling request", "refused a malformed request")
            record.msg, record.args = f"{said}: {error.message or error!r}", ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def run(config: DaemonConfig) -> int:
    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.server").addFilter(_ClientHttpErrors())  # registry and AWS endpoints
    try:
        asyncio.run(Daemon(config).serve())
    except Unavailable as err:
        log.error("%s", err)
        return 1
    return 0
