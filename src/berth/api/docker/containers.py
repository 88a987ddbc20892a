"""Container routes: parse → call ContainerService → serialise (docker-engine-api.md §3.5–3.11)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from berth.api.docker import container_json, wire
from berth.api.docker.backend import Backend
from berth.api.docker.container_spec import spec_from_create, update_from_wire
from berth.api.docker.streams import frame
from berth.api.httpserver import Request, Response, Router, json_response
from berth.api.shapes import check
from berth.engine import stats as stats_mod
from berth.engine.containers import check_wait_condition
from berth.errors import Conflict, InvalidArgument

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


LOG_CHUNK = 64 * 1024


def parse_filters(text: str) -> dict[str, list[str]]:
    """`{"k":{"v":true}}` (current) or `{"k":["v"]}` (old clients) → {k: [v, ...]}."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise InvalidArgument(f"invalid filter: {err}") from err
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid filter")
    result: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            result[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list):
            result[key] = [str(v) for v in value]
        else:
            raise InvalidArgument(f"invalid filter for {key!r}")
    return result


def _timestamp(value: str) -> float:
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError as err:
        raise InvalidArgument(f"invalid timestamp: {value!r}") from err
    if seconds != seconds or abs(seconds) == float("inf"):
        raise InvalidArgument(f"invalid timestamp: {value!r}")
    return seconds


def _tail(text: str) -> int | None:
    """Docker reads `all`, a negative or a non-number as every line (moby's strconv fallback)."""
    if text.isdigit():
        return int(text)
    return None


def _stop_timeout(req: Request) -> int | None:
    """`t` (or API 1.42's `timeout`): whole seconds, -1 waits for ever."""
    name = "t" if req.query("t") else "timeout"
    return req.qint(name) if req.query(name) else None


def _at_least(req: Request, version: str) -> bool:
    """The request's API version is `version` or later (no version in the path: the latest)."""
    if not req.api_version:
        return True
    return tuple(int(x) for x in req.api_version.split(".")) >= tuple(int(x) for x in version.split("."))


def register(router: Router, backend: Backend) -> None:
    svc = backend.containers

    async def create(req: Request) -> Response:
        body = check(await req.json(), wire.CONTAINER_CREATE)
        if isinstance(body.get("Healthcheck"), dict) and not _at_least(req, "1.44"):
            body["Healthcheck"].pop("StartInterval", None)  # moby ignores it before API 1.44
        container = await svc.create(req.query("name") or None, spec_from_create(body))
        return json_response({"Id": container.id, "Warnings": []}, status=201)

    async def list_(req: Request) -> Response:
        found = svc.list(all=req.qbool("all"), limit=req.qint("limit", -1),
                         filters=parse_filters(req.query("filters")))
        return json_response([container_json.list_item(snapshot) for snapshot in found])

    async def inspect(req: Request) -> Response:
        return json_response(container_json.inspect(svc.inspect(req.match["id"])))

    async def start(req: Request) -> Response:
        await req.drain_body()
        await svc.start(req.match["id"])
        return Response(status=204)

    async def stop(req: Request) -> Response:
        await svc.stop(req.match["id"], _stop_timeout(req), req.query("signal") or None)
        return Response(status=204)

    async def restart(req: Request) -> Response:
        await svc.restart(req.match["id"], _stop_timeout(req), req.query("signal") or None)
        return Response(status=204)

    async def kill(req: Request) -> Response:
        await svc.kill(req.match["id"], req.query("signal") or None)
        return Response(status=204)

    async def remove(req: Request) -> Response:
        if req.qbool("link"):  # `rm --link <name>`: a link is /parent/alias (api/docker/networks.py)
            raise Conflict("Conflict, cannot remove the default link name of the container")
        await svc.remove(req.match["id"], force=req.qbool("force"), volumes=req.qbool("v"))
        return Response(status=204)

    async def wait(req: Request) -> Response | None:
        svc.get(req.match["id"])  # 404 and 400 before the head goes out
        check_wait_condition(req.query("condition"))
        stream = await req.stream(200, "application/json")
        container = await svc.wait(req.match["id"], req.query("condition"))
        result: dict[str, Any] = {"StatusCode": container.state.exit_code}
        if container.state.error and req.query("condition") != "removed":
            result["Error"] = {"Message": container.state.error}
        await stream.write_json(result)
        return None

    async def logs(req: Request) -> Response | None:
        container = svc.get(req.match["id"])
        want_out, want_err = req.qbool("stdout"), req.qbool("stderr")
        if not (want_out or want_err):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        tail = _tail(req.query("tail", "all"))
        since, until = _timestamp(req.query("since")), _timestamp(req.query("until"))  # 400 before the head
        tty = container.config.tty
        stream = await req.stream(200, RAW if tty else MULTIPLEXED)

        follow = req.qbool("follow")

        async def copy() -> None:
            # Without follow, frames go out in chunks of up to LOG_CHUNK bytes rather than one HTTP
            # chunk (and one drain) per line; a followed log is written line by line, as it comes.
            pending = bytearray()
            async for number, data in svc.logs(container.id, follow=follow, since=since,
                                               until=until, tail=tail, timestamps=req.qbool("timestamps")):
                if (number == 1 and want_out) or (number == 2 and want_err):
                    pending += data if tty else frame(number, data)
                    if follow or len(pending) >= LOG_CHUNK:
                        await stream.write(bytes(pending))
                        pending.clear()
            await stream.write(bytes(pending))

        if not follow:
            await copy()
            return None
        # An idle followed container writes nothing, so a client that went away would only be
        # noticed at the next write: watch the connection too, and stop at whichever ends first.
        copying, gone = asyncio.create_task(copy()), asyncio.create_task(req.client_gone())
        done, _ = await asyncio.wait({copying, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in (copying, gone):
            task.cancel()
        await asyncio.gather(copying, gone, return_exceptions=True)
        if copying in done:
            copying.result()  # errors raised while copying surface as usual
        return None

    async def resize(req: Request) -> Response:
        await svc.resize(req.match["id"], req.qint("h"), req.qint("w"))
        return Response(status=200, body=b"", content_type="text/plain")

    async def pause(req: Request) -> Response:
        await svc.pause(req.match["id"])
        return Response(status=204)

    async def unpause(req: Request) -> Response:
        await svc.unpause(req.match["id"])
        return Response(status=204)

    async def update(req: Request) -> Response:
        update = update_from_wire(check(await req.json(), wire.CONTAINER_UPDATE))
        warnings = await svc.update(req.match["id"], update)
        return json_response({"Warnings": warnings})

    async def rename(req: Request) -> Response:
        await svc.rename(req.match["id"], req.query("name"))
        return Response(status=204)

    async def top(req: Request) -> Response:
        return json_response(await asyncio.to_thread(svc.top, req.match["id"], req.query("ps_args")))

    async def prune(req: Request) -> Response:
        return json_response(await svc.prune(parse_filters(req.query("filters"))))

    async def stats(req: Request) -> Response | None:
        container = svc.get(req.match["id"])
        streaming = req.qbool("stream", True) and not req.qbool("one-shot")
        out = await req.stream(200, "application/json")
        previous = None
        while True:
            container = svc.get(container.id)
            current = await asyncio.to_thread(
                stats_mod.sample, container.id, container.name, container.state.pid if container.state.running else 0)
            if previous is None and not req.qbool("one-shot"):
                previous = current
                await asyncio.sleep(0.5 if not streaming else 1.0)
                continue
            await out.write_json(stats_mod.with_previous(current, previous))
            if not streaming or not container.state.running:
                return None
            previous = current
            await asyncio.sleep(1.0)

    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/{id}/update", update)
    router.add("GET", "/containers/{id}/top", top)
    router.add("GET", "/containers/{id}/stats", stats)
    router.add("POST", "/containers/prune", prune)
    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/json", list_)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("DELETE", "/containers/{id}", remove)
