"""Image routes (docker-engine-api.md §3.4, §3.13, §3.15–3.17; load/save/import)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile

from berth.api.docker import distribution
from berth.api.docker.backend import Backend
from berth.api.docker.containers import parse_filters
from berth.api.httpserver import Request, Response, Router, json_response
from berth.errors import NotFound


def register(router: Router, backend: Backend) -> None:
    svc = backend.images
    containers = backend.containers

    async def list_(req: Request) -> Response:
        filters = parse_filters(req.query("filters"))
        if req.query("filter"):  # pre-1.25 clients: ?filter=NAME
            filters.setdefault("reference", []).append(req.query("filter"))
        return json_response(await asyncio.to_thread(svc.list_json, all=req.qbool("all"), filters=filters))

    async def inspect(req: Request) -> Response:
        return json_response(await asyncio.to_thread(svc.inspect_json, req.match["name"]))

    async def history(req: Request) -> Response:
        return json_response(await asyncio.to_thread(svc.history_json, req.match["name"]))

    async def tag(req: Request) -> Response:
        await asyncio.to_thread(svc.tag, req.match["name"], req.query("repo"), req.query("tag") or None)
        return Response(status=201, body=b"")

    async def remove(req: Request) -> Response:
        users = containers.image_users
        result = await asyncio.to_thread(svc.remove, req.match["name"], force=req.qbool("force"),
                                         noprune=req.qbool("noprune"), users=users)
        return json_response(result)

    async def load(req: Request) -> Response | None:
        path = await req.save_body(backend.tmp_dir)
        try:
            # dockerd answers 200 once the body is in and reports a failed load inside the stream
            # (`errorDetail`, which docker-py raises as ImageLoadError); the error mapper writes it.
            stream = await req.stream(200, "application/json")
            with path.open("rb") as f:
                messages = await asyncio.to_thread(svc.load, f, req.qbool("quiet"))
        finally:
            path.unlink(missing_ok=True)
        for message in messages:
            await stream.write_json({"stream": message.rstrip("\n") + "\n"})
        return None

    async def save(req: Request) -> Response | None:
        names = req.query_all.get("names") or ([req.match["name"]] if "name" in req.match else [])
        fd, name = tempfile.mkstemp(prefix="save-", dir=backend.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                await asyncio.to_thread(svc.save, names, out)
            stream = await req.stream(200, "application/x-tar")
            with open(name, "rb") as f:
                while piece := await asyncio.to_thread(f.read, 1 << 20):
                    await stream.write(piece)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        return None

    async def create(req: Request) -> Response | None:
        """`docker import` (fromSrc=-) here; pulls (fromImage) arrive with the registry issue."""
        if req.query("fromSrc") == "-":
            path = await req.save_body(backend.tmp_dir)
            try:
                with path.open("rb") as f:
                    image_id = await asyncio.to_thread(
                        svc.import_, f, req.query("repo") or None, req.query("tag") or None,
                        req.query_all.get("changes", []), req.query("message"))
            finally:
                path.unlink(missing_ok=True)
            stream = await req.stream(200, "application/json")
            await stream.write_json({"status": image_id})
            return None
        if req.query("fromImage"):
            return await distribution.pull(req, backend)
        raise NotFound("fromImage or fromSrc is required")

    async def bootstrap(req: Request) -> Response:
        reference = f"{req.query('name', 'busybox')}:{req.query('tag', 'latest')}"
        image = await asyncio.to_thread(backend.image_store.bootstrap_busybox, reference)
        return json_response({"Id": image.id})

    async def prune(req: Request) -> Response:
        filters = parse_filters(req.query("filters"))
        return json_response(await asyncio.to_thread(svc.prune, filters, containers.image_users))

    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/json", list_)
    router.add("POST", "/images/load", load)
    router.add("GET", "/images/get", save)
    router.add("POST", "/images/create", create)
    router.add("POST", "/berth/images/bootstrap", bootstrap)
    router.add("GET", "/images/{name:.+}/json", inspect)
    router.add("GET", "/images/{name:.+}/history", history)
    router.add("GET", "/images/{name:.+}/get", save)
    router.add("POST", "/images/{name:.+}/tag", tag)
    router.add("DELETE", "/images/{name:.+}", remove)
