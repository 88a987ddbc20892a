"""Turning a container record into a running process, and undoing that (blocking calls).

    create:   mount rootfs → mount volumes with driver options → copy volumes up
              → attach networks (hosts/hostname/resolv.conf)
              → runtime create      (the caller then connects waiting attach sessions)
    start:    runtime start
    teardown: runtime delete → unmount rootfs → release volumes [→ detach networks]

The Launcher holds no per-container state: locking, recording the state and watching for the
exit stay with ContainerService (engine/containers/_service.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from berth.engine.containers import _config as cfg
from berth.engine.containers import _init as container_init
from berth.engine.containers import _limits as limits
from berth.engine.containers import _security as security
from berth.engine import etc_files
from berth.engine import secret_env
from berth.engine.containers._model import Container
from berth.images import Image
from berth.network import PortMapping
from berth.runtime import ContainerSpec, Mount, Runtime

ETC_FILES = etc_files.FILES

# Mount records are berth.volumes.MountPoint records as Container.mounts keeps them (JSON).
MountRecords = Iterable[Mapping[str, Any]]


class ImageLayers(Protocol):
    """berth.images.ImageStore: a container's image and the layer dirs its rootfs stacks."""

    def resolve(self, name: str) -> Image: ...
    def layer_dirs(self, image: Image) -> list[Path]: ...


class NetworkAttacher(Protocol):
    """berth.engine.networks.NetworkService: a container's networks, attached and detached."""

    def attach_container(self, container: Container, ports: list[PortMapping], cdir: Path) -> dict[str, Any]:
        """Attach every network the container names; returns the attachment (JSON, kept as
        Container.network)."""

    def detach(self, container_id: str) -> None: ...


class VolumeMounts(Protocol):
    """berth.engine.volumes.VolumeService: a container's volumes for the length of a run."""

    def activate(self, container_id: str, records: MountRecords) -> None: ...
    def deactivate(self, container_id: str) -> None: ...
    def copy_up(self, records: MountRecords, rootfs: Path) -> None: ...
    def runtime_mounts(self, records: MountRecords) -> tuple[Mount, ...]: ...


class Launcher:
    def __init__(self, *, containers_dir: Path, images: ImageLayers, runtime: Runtime, network: NetworkAttacher,
                 volumes: VolumeMounts | None) -> None:
        self._dir = containers_dir
        self._images = images
        self._runtime = runtime
        self._network = network
        self._volumes = volumes

    @property
    def containers_dir(self) -> Path:
        return self._dir

    def container_dir(self, container_id: str) -> Path:
        return self._dir / container_id

    def log_path(self, container_id: str) -> Path:
        return self.container_dir(container_id) / "ctr.log"

    def host_limits(self) -> limits.HostLimits:
        return limits.HostLimits.current(self._runtime.hard_limits)

    async def create(self, container: Container, secret_values: Mapping[str, str] | None = None) -> int:
        """Prepare the container and create its process (not started yet); return its pid.
        Sets `container.network`. Attach sessions connect between this and `start`.
        `secret_values` override their Env variables in the bundle only (secret_env.py)."""
        # --init without an init binary fails here, before anything is mounted or attached.
        init = container_init.lookup() if container_init.wanted(container.host_config) else None
        attachment = await asyncio.to_thread(self._prepare, container)
        container.network = attachment
        if attachment.get("mode") == "container":
            # moby copies the joined container's names into the joiner's Config at start
            container.config = replace(container.config, hostname=attachment["hostname"],
                                       domainname=attachment.get("domainname") or "")
        spec = self._spec(container, attachment, init, secret_values or {})
        rootfs = self.container_dir(container.id) / "rootfs"
        return await asyncio.to_thread(self._runtime.create, spec, rootfs, self.log_path(container.id))

    async def start(self, container_id: str) -> None:
        await asyncio.to_thread(self._runtime.start, container_id)

    def teardown(self, container_id: str, with_network: bool) -> None:
        """Delete the runtime container and unmount its rootfs; detach networks too if asked."""
        # try/finally: a failed delete or rootfs unmount must not leave the volume holds (a
        # mount no one releases) or the network attachments behind; the first error propagates.
        try:
            self._runtime.delete(container_id)
            self._runtime.unmount_rootfs(self.container_dir(container_id))
        finally:
            try:
                if self._volumes is not None:  # after the delete: no process of its own holds them now
                    self._volumes.deactivate(container_id)
            finally:
                if with_network:
                    self._network.detach(container_id)

    def _prepare(self, container: Container) -> dict[str, Any]:
        """Mount the rootfs, attach the network, write hosts/hostname/resolv.conf (blocking)."""
        image = self._images.resolve(container.image_id)
        cdir = self.container_dir(container.id)
        rootfs = self._runtime.mount_rootfs(self._images.layer_dirs(image), cdir)
        try:
            if self._volumes is not None:
                self._volumes.activate(container.id, container.mounts)
                self._volumes.copy_up(container.mounts, rootfs)
            ports = [PortMapping(container_port=p, protocol=proto, host_ip=ip, host_port=hp)
                     for p, proto, ip, hp in cfg.port_bindings(container.host_config, container.config)]
            # attaches every network and writes hosts/hostname/resolv.conf (engine/networks.py)
            network: dict[str, Any] = self._network.attach_container(container, ports, cdir)
            return network
        except BaseException:
            if self._volumes is not None:
                self._volumes.deactivate(container.id)
            self._runtime.unmount_rootfs(cdir)
            raise

    def _spec(self, container: Container, attachment: dict[str, Any], init: str | None = None,
              secret_values: Mapping[str, str] | None = None) -> ContainerSpec:
        hc = container.host_config
        c = container.config
        # `container:<ref>` mounts the joined container's files: its hosts updates reach both
        etc_dir = Path(attachment.get("etc_dir") or self.container_dir(container.id))
        mounts = etc_files.etc_mounts(etc_dir, read_only=hc.readonly_rootfs)
        if self._volumes is not None:
            mounts += self._volumes.runtime_mounts(container.mounts)
        # Same reading as container_limits.check_ulimits, which validated them at create.
        ulimits = tuple((u.name, u.soft, u.hard) for u in hc.ulimits or ())
        args = tuple(cfg.process_args(c))
        if init is not None:  # --init: tini as PID 1 (engine/containers/_init.py)
            args, mounts = container_init.wrap(args, mounts, init)
        return ContainerSpec(
            id=container.id, args=args, env=secret_env.merge(_with_link_env(list(c.env), attachment),
                                                           secret_values or {}),
            cwd=c.working_dir or "/", user=c.user, tty=c.tty,
            group_add=hc.group_add or (),
            console_size=_console_size(hc.console_size), open_stdin=c.open_stdin, stdin_once=c.stdin_once,
            hostname=c.hostname or container.id[:12],
            netns_path=attachment.get("netns_path"), mounts=mounts,
            resources=limits.resources(hc), ulimits=ulimits,
            # Labels stay out of the OCI annotations, as in moby: crun acts on `run.oci.*`
            # annotations (one loads a library by path), so users must not be able to set them.
            **security.spec_fields(hc),
        )


def _with_link_env(env: list[str], attachment: Mapping[str, Any]) -> list[str]:
    """Legacy --link variables first (engine/legacy_links.py); the container's own Env wins."""
    link_env = attachment.get("link_env") or []
    return cfg.merge_env(list(link_env), env) if link_env else env


def _console_size(value: tuple[int, int]) -> tuple[int, int]:
    """HostConfig.ConsoleSize `[height, width]` (the CLI's terminal at `docker run -it`); a
    size no terminal has is ignored."""
    return value if all(0 <= v <= 0xFFFF for v in value) else (0, 0)
