"""Composition root: builds every service from the config, serves the APIs, stops on SIGTERM.

Containers live under conmon, not inside this process, so stopping the daemon leaves them
running; the next daemon adopts them (`ContainerService.restore`).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import platform
import signal
from pathlib import Path
from typing import Any

from berth import __version__
from berth.api.docker.backend import Backend
from berth.api.docker.server import ENGINE_VERSION, make_server
from berth.daemon.config import DaemonConfig, parse_host
from berth.engine.container_model import ContainerRepository
from berth.engine.containers import ContainerService
from berth.engine.events import EventBus
from berth.engine.execs import ExecService
from berth.engine.images import ImageService
from berth.errors import Unavailable
from berth.images import ImageStore
from berth.network import BridgeConfig, NetworkManager
from berth.runtime import Runtime
from berth.state import Database

log = logging.getLogger("berth.daemon")


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self._lock_file: Any = None

    def _take_lock(self) -> None:
        """One daemon per root: a second one on the same root would corrupt state."""
        self._lock_file = open(self.config.root / "daemon.lock", "w")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise Unavailable(f"another berth daemon is using {self.config.root}") from err

    def build(self) -> Backend:
        c = self.config
        for path in (c.root, c.run_root, c.root / "tmp"):
            path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self.db = Database(c.root / "state.db")
        self.image_store = ImageStore(c.root, self.db)
        self.image_store.recover()
        self.runtime = Runtime(run_dir=c.run_root / "runtime", runtime=c.runtime)
        log.info("OCI runtime: %s (%s)", self.runtime.name, self.runtime.selection_reason)
        bridge = BridgeConfig(network_name=c.network_name, bridge=c.bridge_name,
                              subnet=c.bridge_subnet, gateway=c.bridge_gateway)
        self.network = NetworkManager(state_dir=c.root / "network", run_dir=c.run_root / "netns",
                                      bridge=bridge)
        self.events = EventBus()
        self.containers = ContainerService(
            root=c.root, repo=ContainerRepository(self.db), images=self.image_store,
            runtime=self.runtime, network=self.network, events=self.events)
        self.execs = ExecService(containers=self.containers, runtime=self.runtime)
        self.images = ImageService(self.image_store)
        return Backend(containers=self.containers, execs=self.execs, images=self.images,
                       image_store=self.image_store, events=self.events, info=self.info,
                       tmp_dir=str(c.root / "tmp"))

    def info(self) -> dict[str, Any]:
        containers = self.containers.list(all=True, limit=-1, filters={})
        states = [c["State"] for c in containers]
        return {
            "ID": "berth", "Name": platform.node(), "ServerVersion": ENGINE_VERSION,
            "OSType": "linux", "OperatingSystem": _os_name(), "Architecture": platform.machine(),
            "KernelVersion": platform.release(), "NCPU": os.cpu_count(), "MemTotal": _mem_total(),
            "Containers": len(states), "ContainersRunning": states.count("running"),
            "ContainersPaused": states.count("paused"),
            "ContainersStopped": len(states) - states.count("running") - states.count("paused"),
            "Images": len(self.image_store.list()), "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["k8s-file"]},
            "LoggingDriver": "k8s-file", "CgroupDriver": "cgroupfs", "CgroupVersion": "1",
            "DockerRootDir": str(self.config.root), "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"]},
            "Runtimes": {self.runtime.name: {"path": self.runtime.name}},
            "DefaultRuntime": self.runtime.name, "SecurityOptions": ["name=seccomp,profile=builtin"],
            "ExperimentalBuild": False, "LiveRestoreEnabled": True, "Swarm": {"LocalNodeState": "inactive"},
            "Labels": [f"berth.version={__version__}"], "Warnings": [],
        }

    async def serve(self) -> None:
        backend = self.build()
        await self.containers.restore()
        server = make_server(backend)
        for spec in self.config.docker_hosts:
            kind, where = parse_host(spec)
            if kind == "unix":
                Path(str(where)).parent.mkdir(parents=True, exist_ok=True)
                await server.listen_unix(str(where))
            else:
                await server.listen_tcp(kind.split(":", 1)[1], int(where))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        (self.config.run_root / "berth.pid").write_text(str(os.getpid()))
        log.info("berth daemon ready: %s", ", ".join(self.config.docker_hosts))
        await stop.wait()
        log.info("shutting down")
        await server.close()
        await self.containers.close()
        self.db.close()
        (self.config.run_root / "berth.pid").unlink(missing_ok=True)


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run(config: DaemonConfig) -> int:
    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(Daemon(config).serve())
    except Unavailable as err:
        log.error("%s", err)
        return 1
    return 0
