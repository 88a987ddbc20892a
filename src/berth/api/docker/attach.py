"""Attach routes: `POST /containers/{id}/attach` (hijacked) and `GET /containers/{id}/attach/ws`
(websocket), as dockerd's ContainerAttach serves them.

- `logs=1` first sends the container's whole log; `stream=1` then attaches to the live stdio
  (without `stream`, the answer ends right after the logs, so `stream=0&logs=1` returns at once).
- On a TTY container the client's stdin is watched for the detach keys (`detachKeys`, the
  docker CLI sends its config file's setting there; ctrl-p ctrl-q by default): they end the
  attach and leave the container running.
- The websocket is never multiplexed: output goes out as binary frames (text before API 1.28),
  and before API 1.42 it always carries stdin, stdout and stderr.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from berth.api.docker.backend import Backend
from berth.api.docker.streams import Peer, RawPeer, api_at_least, frame, hijack_content_type, pump
from berth.api.httpserver import Request, Response, Router
from berth.api.websocket import WebSocketPeer
from berth.engine.attach import detach_keys
from berth.engine.containers import Container
from berth.errors import BerthError, Conflict


def register(router: Router, backend: Backend) -> None:
    svc = backend.containers

    def attachable(req: Request) -> Container:
        """The container, once it can be attached to (dockerd's checks and wording)."""
        ref = req.match["id"]
        container = svc.get(ref)
        if container.state.status == "paused":
            raise Conflict(f"container {ref} is paused, unpause the container before attach")
        if container.state.status == "restarting":
            raise Conflict(f"container {ref} is restarting, wait until the container is running")
        return container

    async def serve(req: Request, container: Container, upgrade: Callable[[], Awaitable[Peer]], *, multiplexed: bool,
                    keys: bytes, stdin: bool, stdout: bool, stderr: bool) -> None:
        """Join the container's stdio *before* upgrading (dockerd's order too): `docker run`
        calls /start once it has the 101, and output from before the join would be lost."""
        tty = container.config.tty
        session, peer = None, None
        try:
            if req.qbool("stream"):
                container, session = await svc.attach(container.id, stdin=stdin, stdout=stdout, stderr=stderr)
            peer = await upgrade()
            if req.qbool("logs"):
                await send_logs(peer, container.id, multiplexed, stdout=stdout, stderr=stderr)
            svc.publish_attach(container.id)
            if session is not None:
                detached = await pump(peer, session, multiplexed=multiplexed, stdin=session.stdin,
                                      close_stdin_on_eof=container.config.stdin_once and not tty,
                                      detach_keys=keys if tty else b"")
                if detached:
                    svc.publish_attach(container.id, detached=True)
        finally:
            if session is not None:
                svc.detach_session(container.id, session)
                with contextlib.suppress(Exception):
                    await session.close()
            if peer is not None:
                await peer.close()

    async def send_logs(peer: Peer, container_id: str, multiplexed: bool, *, stdout: bool, stderr: bool) -> None:
        try:
            async for number, data in svc.logs(container_id, follow=False, since=0, until=0, tail=None,
                                               timestamps=False):
                if (number == 1 and stdout) or (number == 2 and stderr):
                    await peer.send(frame(number, data) if multiplexed else data)
        except BerthError as err:  # e.g. a log driver that cannot be read back
            message = f"Error attaching: {err}\n".encode()
            await peer.send(frame(1, message) if multiplexed else message)

    async def attach(req: Request) -> Response | None:
        keys = detach_keys(req.query("detachKeys"))
        container = attachable(req)
        multiplexed = not container.config.tty
        content_type = hijack_content_type(multiplexed, api_at_least(req.api_version, (1, 42)))

        async def upgrade() -> Peer:
            return RawPeer(*await req.hijack(content_type))

        await serve(req, container, upgrade, multiplexed=multiplexed, keys=keys,
                    stdin=req.qbool("stdin"), stdout=req.qbool("stdout"), stderr=req.qbool("stderr"))
        return None

    async def attach_ws(req: Request) -> Response | None:
        req.check_websocket()
        keys = detach_keys(req.query("detachKeys"))
        container = attachable(req)
        every = not api_at_least(req.api_version, (1, 42))

        async def upgrade() -> Peer:
            return WebSocketPeer(*await req.websocket(), binary=api_at_least(req.api_version, (1, 28)))

        await serve(req, container, upgrade, multiplexed=False, keys=keys, stdin=every or req.qbool("stdin"),
                    stdout=every or req.qbool("stdout"), stderr=every or req.qbool("stderr"))
        return None

    router.add("POST", "/containers/{id}/attach", attach)
    router.add("GET", "/containers/{id}/attach/ws", attach_ws)
