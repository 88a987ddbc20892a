"""Exec routes (docker-engine-api.md §3.9)."""

from __future__ import annotations

from berth.api.docker import wire
from berth.api.docker.backend import Backend
from berth.api.docker.containers import MULTIPLEXED, RAW
from berth.api.docker.streams import frame, pump
from berth.api.httpserver import Request, Response, Router, json_response
from berth.api.shapes import check
from berth.errors import BerthError


def register(router: Router, backend: Backend) -> None:
    execs = backend.execs

    async def create(req: Request) -> Response:
        body = check(await req.json(), wire.EXEC_CREATE)
        return json_response({"Id": execs.create(req.match["id"], body)}, status=201)

    async def start(req: Request) -> Response | None:
        body = check(await req.json(), wire.EXEC_START)
        if body.get("Detach"):
            instance = await execs.start(req.match["id"])
            await instance.process.detach()
            return Response(status=200, body=b"", content_type="application/json")
        instance = execs.check_startable(req.match["id"])
        tty = instance.spec.tty
        # Upgrade first, then start the process (moby's order): output written in the same
        # segment as the 101 head would land in a client's HTTP read buffer and be lost
        # (docker-py reads the stream from the raw socket after parsing the head).
        reader, writer = await req.hijack(RAW if tty else MULTIPLEXED)
        try:
            instance = await execs.start(instance.id)
        except BerthError as err:
            writer.write(str(err).encode() + b"\n" if tty else frame(2, str(err).encode() + b"\n"))
            writer.close()
            return None
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
