"""RUN steps: one short-lived container per step, through the runtime (conmon + crun/runc).

    step_dir/
        upper/ work/ rootfs/     overlay: the parent image's layers + a fresh upper dir
        hosts hostname resolv.conf
        ctr.log                  conmon's log (output is streamed from the attach socket)

The container is always deleted and the rootfs unmounted before `run` returns, success or
not; the CNI teardown (100-200 ms of iptables) runs in the background and `close()` waits
for it, so a build does not pay for it step after step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from berth.network import Attachment, PortMapping
from berth.runtime import AttachStream, ContainerSpec, Mount

log = logging.getLogger(__name__)
CGROUP_PARENT = "berth-build"


@dataclass(frozen=True)
class RunRequest:
    args: tuple[str, ...]
    env: tuple[str, ...]
    user: str = ""
    cwd: str = "/"
    network: str = "bridge"      # "bridge" | "none" | "host"
    extra_hosts: tuple[tuple[str, str], ...] = ()   # (name, ip) for /etc/hosts; ip may be "host-gateway"


class RuntimeLike(Protocol):
    def mount_rootfs(self, layer_dirs: list[Path], container_dir: Path) -> Path: ...
    def unmount_rootfs(self, container_dir: Path) -> None: ...
    def create(self, spec: ContainerSpec, rootfs_path: Path, log_path: Path) -> int: ...
    def start(self, container_id: str) -> None: ...
    def delete(self, container_id: str) -> None: ...
    async def attach(self, container_id: str) -> AttachStream: ...
    async def wait_exit(self, container_id: str) -> int: ...


class NetworkLike(Protocol):
    def attach(self, container_id: str, mode: str, ports: list[PortMapping], name: str = "") -> Attachment: ...
    def detach(self, container_id: str) -> None: ...


Output = Callable[[int, bytes], Awaitable[None]]
"""Receives (1 = stdout | 2 = stderr, data) as the RUN command writes it."""


class ContainerRunner:
    def __init__(self, runtime: RuntimeLike, network: NetworkLike) -> None:
        self._runtime = runtime
        self._network = network
        self._detaching: set[asyncio.Future[None]] = set()

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(32)

    async def run(self, container_id: str, req: RunRequest, layers: list[Path], step_dir: Path,
                  output: Output) -> int:
        """Run `req` on top of `layers`; the step's changes end up in `step_dir/upper`."""
        rootfs = await asyncio.to_thread(self._runtime.mount_rootfs, layers, step_dir)
        attached = False
        try:
            attachment = await asyncio.to_thread(self._network.attach, container_id, req.network, [])
            attached = True
            mounts = await asyncio.to_thread(_write_etc_files, step_dir, container_id, attachment,
                                             req.extra_hosts)
            spec = ContainerSpec(
                id=container_id, args=req.args, env=req.env, cwd=req.cwd or "/", user=req.user,
                hostname=container_id[:12], netns_path=attachment.netns_path, mounts=mounts,
                cgroup_parent=CGROUP_PARENT)
            return await self._execute(spec, rootfs, step_dir, output)
        finally:
            await asyncio.to_thread(self._runtime.delete, container_id)
            await asyncio.to_thread(self._runtime.unmount_rootfs, step_dir)
            if attached:
                self._detach_later(container_id)

    async def _execute(self, spec: ContainerSpec, rootfs: Path, step_dir: Path, output: Output) -> int:
        await asyncio.to_thread(self._runtime.create, spec, rootfs, step_dir / "ctr.log")
        stream = await self._runtime.attach(spec.id)
        await asyncio.to_thread(self._runtime.start, spec.id)
        while (item := await stream.read()) is not None:
            await output(item[0], item[1])
        return await self._runtime.wait_exit(spec.id)

    def _detach_later(self, container_id: str) -> None:
        # Submitted to the executor right now (not when a task first runs), so even a loop that
        # ends straight after the build waits for it in shutdown_default_executor().
        future = asyncio.get_running_loop().run_in_executor(None, self._safe_detach, container_id)
        self._detaching.add(future)
        future.add_done_callback(self._detaching.discard)

    def _safe_detach(self, container_id: str) -> None:
        try:
            self._network.detach(container_id)
        except Exception:  # noqa: BLE001 - cleanup_stale at the next start catches what is left
            log.exception("network teardown of build container %s failed", container_id[:12])

    async def close(self) -> None:
        """Wait for background network teardowns."""
        if self._detaching:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._detaching), return_exceptions=True)


def _write_etc_files(step_dir: Path, container_id: str, attachment: Attachment,
                     extra_hosts: tuple[tuple[str, str], ...] = ()) -> tuple[Mount, ...]:
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if getattr(attachment, "ip_address", ""):
        hosts.append(f"{attachment.ip_address}\t{container_id[:12]}")
    gateway = getattr(attachment, "gateway", "") or "127.0.0.1"
    for name, ip in extra_hosts:  # `--add-host` on build; host-gateway is the bridge's gateway
        hosts.append(f"{gateway if ip == 'host-gateway' else ip}\t{name}")
    files = {"hosts": "\n".join(hosts) + "\n", "hostname": container_id[:12] + "\n",
             "resolv.conf": _resolv_conf(getattr(attachment, "mode", "bridge") == "host")}
    mounts = []
    for name, text in files.items():
        (step_dir / name).write_text(text)
        mounts.append(Mount(source=str(step_dir / name), destination=f"/etc/{name}"))
    return tuple(mounts)


def _resolv_conf(host_network: bool) -> str:
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        lines = []
    if not host_network:  # loopback resolvers are unreachable from the container's netns
        lines = [ln for ln in lines if not (ln.startswith("nameserver") and (" 127." in ln or " ::1" in ln))]
    return "\n".join(lines) + "\n"
