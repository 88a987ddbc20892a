"""System routes: _ping, version, info, events."""

from __future__ import annotations

import asyncio
import platform
import time
from pathlib import Path

from berth.api.docker import container_json
from berth.api.docker.backend import Backend
from berth.api.docker.containers import parse_filters
from berth.api.docker.versions import API_VERSION, ENGINE_VERSION, MIN_API_VERSION
from berth.api.httpserver import Request, Response, Router, json_response
from berth.engine import system_info
from berth.engine.containers import init_version_component
from berth.engine.events import matches
from berth.engine.volumes import tree_size
from berth.errors import InvalidArgument


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version_json() -> dict[str, object]:
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Arch": _arch(), "Os": "linux",
               "KernelVersion": platform.release(), "GitCommit": "berth", "GoVersion": "n/a"}
    return {
        "Platform": {"Name": "berth"}, "Version": ENGINE_VERSION, "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION, "GitCommit": "berth", "GoVersion": "n/a", "Os": "linux",
        "Arch": _arch(), "KernelVersion": platform.release(), "Experimental": False,
        "BuildTime": "", "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details},
                                        *filter(None, [init_version_component()])],
    }


def _since_ns(text: str) -> int | None:
    """Unix seconds (fractional allowed) as nanoseconds; 400 for anything else."""
    if not text:
        return None
    try:
        return int(float(text) * 1_000_000_000)
    except (ValueError, OverflowError) as err:
        raise InvalidArgument(f"invalid timestamp: {text!r}") from err


def register(router: Router, backend: Backend) -> None:
    async def ping(req: Request) -> Response:
        headers = {"Builder-Version": "1", "Swarm": "inactive",
                   "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
        return Response(status=200, body=b"OK", content_type="text/plain; charset=utf-8", headers=headers)

    async def version(req: Request) -> Response:
        return json_response(version_json())

    async def info(req: Request) -> Response:
        engine = backend.info()
        host = system_info.live_fields(str(engine.get("DefaultRuntime") or ""), backend.events.listeners)
        return json_response({**host, **engine})

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

    async def df(req: Request) -> Response:
        return json_response(await asyncio.to_thread(disk_usage, backend))

    router.add("GET", "/system/df", df)
    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
    router.add("GET", "/events", events)


def disk_usage(backend: Backend) -> dict[str, object]:
    """`docker system df`: images with their container counts, containers with their
    read-write layer size, volumes with their data size."""
    containers = [container_json.list_item(c) for c in backend.containers.list(all=True, limit=-1, filters={})]
    images = backend.images.list_json(all=False, filters={})
    for image in images:
        image["Containers"] = sum(1 for c in containers if c["ImageID"] == image["Id"])
        image["SharedSize"] = 0
    for c in containers:
        upper = backend.containers.container_dir(c["Id"]) / "upper"
        c["SizeRw"] = tree_size(upper) if upper.exists() else 0
        c["SizeRootFs"] = c["SizeRw"] + next((i["Size"] for i in images if i["Id"] == c["ImageID"]), 0)
    volumes = []
    for v in backend.volumes.list_json({}).get("Volumes") or []:
        mountpoint = Path(v.get("Mountpoint", ""))
        refs = sum(1 for c in containers for m in c.get("Mounts") or [] if m.get("Name") == v["Name"])
        # a volume with driver options (tmpfs, a bind of a host tree) is not measured: -1, as moby
        mounted = set(v.get("Options") or {}) - {"com.docker.volume.anonymous"}  # that one is ignored
        measured = mountpoint.is_dir() and not mounted
        v["UsageData"] = {"Size": tree_size(mountpoint) if measured else -1, "RefCount": refs}
        volumes.append(v)
    return {"LayersSize": sum(i["Size"] for i in images), "Images": images, "Containers": containers,
            "Volumes": volumes, "BuildCache": []}
