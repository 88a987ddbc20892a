"""System routes: _ping, version, info, events."""

from __future__ import annotations

import asyncio
import platform
import time

from berth.api.docker.backend import Backend
from berth.api.docker.containers import parse_filters
from berth.api.httpserver import Request, Response, Router, json_response
from berth.engine.events import matches


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version_json() -> dict[str, object]:
    from berth.api.docker.server import API_VERSION, ENGINE_VERSION, MIN_API_VERSION

    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Arch": _arch(), "Os": "linux",
               "KernelVersion": platform.release(), "GitCommit": "berth", "GoVersion": "n/a"}
    return {
        "Platform": {"Name": "berth"}, "Version": ENGINE_VERSION, "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION, "GitCommit": "berth", "GoVersion": "n/a", "Os": "linux",
        "Arch": _arch(), "KernelVersion": platform.release(), "Experimental": False,
        "BuildTime": "", "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details}],
    }


def _since_ns(text: str) -> int | None:
    if not text:
        return None
    return int(float(text) * 1_000_000_000)


def register(router: Router, backend: Backend) -> None:
    async def ping(req: Request) -> Response:
        headers = {"Builder-Version": "1", "Swarm": "inactive",
                   "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
        return Response(status=200, body=b"OK", content_type="text/plain; charset=utf-8", headers=headers)

    async def version(req: Request) -> Response:
        return json_response(version_json())

    async def info(req: Request) -> Response:
        return json_response(backend.info())

    async def events(req: Request) -> Response | None:
        filters = parse_filters(req.query("filters"))
        since, until = _since_ns(req.query("since")), _since_ns(req.query("until"))
        queue = backend.events.subscribe()
        stream = await req.stream(200, "application/json")
        try:
            if since is not None:
                for event in backend.events.since(since):
                    if (until is None or event["timeNano"] <= until) and matches(event, filters):
                        await stream.write_json(event)
            while True:
                timeout = None if until is None else max(0.0, until / 1e9 - time.time())
                if timeout == 0.0:
                    break
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                if matches(event, filters):
                    await stream.write_json(event)
        finally:
            backend.events.unsubscribe(queue)
        return None

    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
    router.add("GET", "/events", events)
