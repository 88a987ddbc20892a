"""Volume routes: parse → VolumeService → serialise (`docker volume ...`)."""

from __future__ import annotations

import asyncio

from berth.api.docker import wire
from berth.api.docker.create_requests import volume_create_from_wire
from berth.api.docker.backend import Backend
from berth.api.docker.containers import parse_filters
from berth.api.httpserver import Request, Response, Router, json_response
from berth.api.shapes import check


def _at_least(req: Request, version: str) -> bool:
    if not req.api_version:
        return True
    major, minor = (int(x) for x in req.api_version.split("."))
    want_major, want_minor = (int(x) for x in version.split("."))
    return (major, minor) >= (want_major, want_minor)


def register(router: Router, backend: Backend) -> None:
    svc = backend.volumes

    async def create(req: Request) -> Response:
        request = volume_create_from_wire(check(await req.json(), wire.VOLUME_CREATE))
        return json_response(await asyncio.to_thread(svc.create_json, request), status=201)

    async def list_(req: Request) -> Response:
        filters = parse_filters(req.query("filters"))
        return json_response(await asyncio.to_thread(svc.list_json, filters))

    async def inspect(req: Request) -> Response:
        return json_response(await asyncio.to_thread(svc.inspect_json, req.match["name"]))

    async def remove(req: Request) -> Response:
        await asyncio.to_thread(svc.remove, req.match["name"], force=req.qbool("force"))
        return Response(status=204)

    async def prune(req: Request) -> Response:
        filters = parse_filters(req.query("filters"))
        # API 1.42 made prune skip named volumes unless asked (`docker volume prune -a`).
        everything = not _at_least(req, "1.42") or "true" in [v.lower() for v in filters.pop("all", [])]
        return json_response(await asyncio.to_thread(svc.prune, filters, all_volumes=everything))

    router.add("POST", "/volumes/create", create)
    router.add("GET", "/volumes", list_)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)
