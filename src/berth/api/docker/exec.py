"""Exec routes (docker-engine-api.md §3.9)."""

from __future__ import annotations

from berth.api.docker.backend import Backend
from berth.api.docker.containers import MULTIPLEXED, RAW
from berth.api.docker.streams import pump
from berth.api.httpserver import Request, Response, Router, json_response


def register(router: Router, backend: Backend) -> None:
    execs = backend.execs

    async def create(req: Request) -> Response:
        body = await req.json()
        return json_response({"Id": execs.create(req.match["id"], body)}, status=201)

    async def start(req: Request) -> Response | None:
        body = await req.json() or {}
        instance = execs.get(req.match["id"])
        instance = await execs.start(instance.id)
        if body.get("Detach"):
            return Response(status=200, body=b"", content_type="application/json")
        tty = instance.spec.tty
        reader, writer = await req.hijack(RAW if tty else MULTIPLEXED)
        await pump(reader, writer, _Finishing(instance), tty=tty, stdin=instance.attach_stdin,
                   close_stdin_on_eof=True)
        return None

    async def resize(req: Request) -> Response:
        await execs.resize(req.match["id"], req.qint("h"), req.qint("w"))
        return Response(status=200, body=b"", content_type="text/plain")

    async def inspect(req: Request) -> Response:
        return json_response(execs.inspect(req.match["id"]))

    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)


class _Finishing:
    """The exec's stdio, whose end also waits for the exit code (the CLI reads it right after)."""

    def __init__(self, instance) -> None:  # type: ignore[no-untyped-def]
        self._instance = instance
        self._process = instance.process

    async def read(self) -> tuple[int, bytes] | None:
        item = await self._process.read()
        if item is None:
            await self._instance.done.wait()
        return item

    async def write(self, data: bytes) -> None:
        await self._process.write(data)

    async def close_stdin(self) -> None:
        await self._process.close_stdin()
