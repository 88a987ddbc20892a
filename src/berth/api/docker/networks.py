"""Network routes: parse → NetworkService → serialise (`docker network ...`)."""

from __future__ import annotations

import asyncio

from berth.api.docker import wire
from berth.api.docker.create_requests import network_create_from_wire
from berth.api.docker.backend import Backend
from berth.api.docker.container_spec import endpoint_from_wire
from berth.api.docker.containers import parse_filters
from berth.api.httpserver import Request, Response, Router, json_response
from berth.api.shapes import check
from berth.errors import InvalidArgument, NotFound


def register(router: Router, backend: Backend) -> None:
    svc = backend.networks

    async def create(req: Request) -> Response:
        request = network_create_from_wire(check(await req.json(), wire.NETWORK_CREATE))
        return json_response(await asyncio.to_thread(svc.create_json, request), status=201)

    async def list_(req: Request) -> Response:
        filters = parse_filters(req.query("filters"))
        return json_response(await asyncio.to_thread(svc.list_json, filters))

    async def inspect(req: Request) -> Response:
        return json_response(await asyncio.to_thread(svc.inspect_json, req.match["id"]))

    async def remove(req: Request) -> Response:
        await asyncio.to_thread(svc.remove, req.match["id"])
        return Response(status=204)

    async def prune(req: Request) -> Response:
        filters = parse_filters(req.query("filters"))
        return json_response(await asyncio.to_thread(svc.prune, filters))

    async def connect(req: Request) -> Response:
        body = check(await req.json(), wire.NETWORK_CONNECT)
        if not body.get("Container"):
            raise InvalidArgument("container is required")
        await asyncio.to_thread(svc.connect, req.match["id"], body["Container"],
                                endpoint_from_wire(body.get("EndpointConfig")))
        return Response(status=200, body=b"", content_type="text/plain")

    async def disconnect(req: Request) -> Response:
        body = check(await req.json(), wire.NETWORK_DISCONNECT)
        if not body.get("Container"):
            raise InvalidArgument("container is required")
        await asyncio.to_thread(svc.disconnect, req.match["id"], body["Container"], bool(body.get("Force")))
        return Response(status=200, body=b"", content_type="text/plain")

    async def remove_link(req: Request) -> Response:
        """`docker rm --link /parent/alias`; without `link` the path names no container."""
        ref = req.match["ref"]
        if not req.qbool("link"):
            raise NotFound(f"No such container: {ref}")
        await asyncio.to_thread(svc.remove_link, ref)
        return Response(status=204)

    router.add("DELETE", "/containers/{ref:/?[^/]+/[^/]+}", remove_link)
    router.add("POST", "/networks/create", create)
    router.add("GET", "/networks", list_)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)
