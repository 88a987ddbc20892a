"""`POST /build` (docker-engine-api.md §3.3): the legacy builder's JSON stream.

The context body is spooled to a temp file, then the builder runs. Messages stream as they
happen; the response starts with the first one, so a Dockerfile that does not parse is a plain
400 ("Error response from daemon: ..."), while a failure after output began is an
`errorDetail` whose `code` the CLI exits with (a RUN step's exit status).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

from berth.api.docker.backend import Backend
from berth.api.docker.containers import parse_filters
from berth.api.httpserver import Request, Response, Router, StreamWriter, json_response
from berth.builder import BuildOptions, StepFailed
from berth.engine.filters import check_keys, timestamp
from berth.errors import BerthError, InvalidArgument, Unavailable


_NETWORK_MODES = ("", "default", "bridge", "host", "none")


def parse_options(req: Request) -> BuildOptions:
    """Query parameters -> BuildOptions; JSON-valued ones are checked here, at the edge.

    `dockerfile` is read as Go's FormValue reads it, the first value: docker-py 7 sends the
    parameter twice for a Dockerfile outside the context (its generated name, then the text).
    """
    return BuildOptions(
        dockerfile=_first(req, "dockerfile") or "Dockerfile",
        tags=tuple(t for t in req.query_all.get("t", []) if t),
        build_args=_json_map(req, "buildargs"),
        labels={k: str(v) for k, v in _json_map(req, "labels").items()},
        target=req.query("target"),
        no_cache=req.qbool("nocache"),
        pull=req.qbool("pull"),
        cache_from=tuple(_json_list(req, "cachefrom")),
        quiet=req.qbool("q"),
        network_mode=_network_mode(req),
        platform=req.query("platform"),
        extra_hosts=tuple(extra_host(h) for h in req.query_all.get("extrahosts", []) if h),
    )


def extra_host(value: str) -> tuple[str, str]:
    """`name:ip` / `name=ip` -> (name, ip), checked as the CLI's opts.ValidateExtraHost does."""
    name, sep, ip = value.partition("=")
    if not sep:
        name, sep, ip = value.partition(":")
    if not sep or not name or ":" in name:
        raise InvalidArgument(f"bad format for add-host: {json.dumps(value)}")
    if ip != "host-gateway":
        if len(ip) > 1 and ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        try:
            ipaddress.ip_address(ip)
        except ValueError as err:
            raise InvalidArgument(f"invalid IP address in add-host: {json.dumps(ip)}") from err
    return name, ip


def _first(req: Request, name: str) -> str:
    values = req.query_all.get(name)
    return values[0] if values else ""


def _network_mode(req: Request) -> str:
    mode = req.query("networkmode")
    if mode not in _NETWORK_MODES:
        raise InvalidArgument(f"network mode {mode!r} is not supported by berth's builder: "
                              "use default, bridge, host or none")
    return mode


def _json_map(req: Request, name: str) -> dict[str, Any]:
    value = _json(req, name, {})
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {name}: expected a JSON object")
    return value


def _json_list(req: Request, name: str) -> list[str]:
    value = _json(req, name, [])
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid {name}: expected a JSON list")
    return [str(v) for v in value]


def _json(req: Request, name: str, default: Any) -> Any:  # any JSON value; the callers check its kind
    raw = req.query(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError as err:
        raise InvalidArgument(f"invalid {name}: {err}") from err


class _LazyStream:
    """Starts the 200 response with the first message (errors before it stay plain HTTP errors)."""

    def __init__(self, req: Request) -> None:
        self._req = req
        self.stream: StreamWriter | None = None

    async def emit(self, message: dict[str, Any]) -> None:
        if self.stream is None:
            self.stream = await self._req.stream(200, "application/json")
        await self.stream.write_json(message)

    async def error(self, message: str, code: int) -> None:
        await self.emit({"errorDetail": {"code": code, "message": message}, "error": message})


def register(router: Router, backend: Backend) -> None:
    async def build(req: Request) -> Response | None:
        builder = backend.builder
        if builder is None:
            raise Unavailable("the builder is not enabled in this daemon")
        options = parse_options(req)
        path = await req.save_body(backend.tmp_dir, prefix="context-")
        out = _LazyStream(req)
        try:
            await builder.build(options, path, out.emit)
        except StepFailed as err:
            await out.error(str(err), err.code)
        except BerthError as err:
            if out.stream is None:
                raise
            await out.error(str(err), 1)
        finally:
            path.unlink(missing_ok=True)
        return None

    async def prune(req: Request) -> Response:
        """`docker builder prune` (and `docker system prune`): the build cache's entries."""
        filters = parse_filters(req.query("filters"))
        check_keys(filters, ("until",))
        until = min((timestamp(v) for v in filters.get("until", [])), default=None)
        builder = backend.builder
        keys = [] if builder is None else await asyncio.to_thread(builder.clear_cache, until)
        return json_response({"CachesDeleted": keys or None, "SpaceReclaimed": 0})

    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)
