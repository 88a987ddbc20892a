"""Registry routes: `POST /auth`, `POST /images/{name}/push`, and the pull half of
`POST /images/create` (docker-engine-api.md §3.12, §3.14, §3.15)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from berth.api.docker import wire
from berth.api.docker.backend import Backend
from berth.api.httpserver import Request, Response, Router, json_response
from berth.api.shapes import check
from berth.errors import Unavailable
from berth.images.distribution import Credentials, RegistryError, decode_registry_auth

Message = dict[str, Any]


def _credentials(req: Request) -> Credentials:
    return decode_registry_auth(req.headers.get("x-registry-auth", ""))


async def stream_work(req: Request, work: Callable[[Callable[[Message], None]], None]) -> None:
    """Run blocking `work(emit)` in a thread and stream what it emits as JSON messages.

    The response starts with the first message, so an error raised before it propagates as an
    ordinary HTTP error; one raised later reaches the dispatcher after the stream began and is
    written into it as `errorDetail` (dockerd's WriteFlusher behaviour).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Message] = asyncio.Queue()

    def emit(message: Message) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, message)

    task = asyncio.ensure_future(asyncio.to_thread(work, emit))
    while True:
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            break
        await _write(req, getter.result())
    while not queue.empty():  # everything emitted before the thread ended is queued by now
        await _write(req, queue.get_nowait())
    task.result()
    if req.streaming is None:
        await req.stream(200, "application/json")


async def _write(req: Request, message: Message) -> None:
    stream = req.streaming or await req.stream(200, "application/json")
    await stream.write_json(message)


async def pull(req: Request, backend: Backend) -> Response | None:
    """`POST /images/create?fromImage=NAME&tag=TAG[&platform=os/arch]`."""
    svc = backend.distribution
    credentials = _credentials(req)
    image, tag, platform = req.query("fromImage"), req.query("tag"), req.query("platform")
    await stream_work(req, lambda emit: svc.pull(image, tag, credentials, emit, platform=platform))
    return None


def register(router: Router, backend: Backend) -> None:
    async def auth(req: Request) -> Response:
        body = check(await req.json(), wire.AUTH_CONFIG)
        try:
            return json_response(await asyncio.to_thread(backend.distribution.login, body))
        except RegistryError as err:
            if err.status == 401:
                return json_response({"message": str(err)}, status=401)
            raise Unavailable(str(err)) from err

    async def push(req: Request) -> Response | None:
        svc = backend.distribution
        credentials = _credentials(req)
        name, tag = req.match["name"], req.query("tag")
        await stream_work(req, lambda emit: svc.push(name, tag, credentials, emit))
        return None

    router.add("POST", "/auth", auth)
    router.add("POST", "/images/{name:.+}/push", push)
