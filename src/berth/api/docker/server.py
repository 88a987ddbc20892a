"""The Docker Engine API application: version prefixes, common headers, one error mapper."""

from __future__ import annotations

import logging
import platform
import re

from berth import __version__
from berth.api.docker import containers, distribution, exec as exec_routes, images, system
from berth.api.docker import archive, attach, networks, volumes
from berth.api.docker import build as build_routes
from berth.api.docker import unsupported
from berth.api.docker.backend import Backend
from berth.api.docker.versions import API_VERSION, ENGINE_VERSION, MIN_API_VERSION
from berth.api.httpserver import HttpError, HttpServer, Request, Response, Router, json_response
from berth.errors import (
    AlreadyExists, BerthError, Conflict, FailedPrecondition, InvalidArgument, NotFound, Unavailable, Unsupported,
)

log = logging.getLogger(__name__)

_VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")

# One place that maps error kinds to Docker's HTTP statuses (moby's httpstatus.FromError).
_STATUS: list[tuple[type[BerthError], int]] = [
    (NotFound, 404), (AlreadyExists, 409), (Conflict, 409), (InvalidArgument, 400),
    (FailedPrecondition, 304), (Unavailable, 500), (Unsupported, 501),
]


def status_for(err: BerthError) -> int:
    for kind, status in _STATUS:
        if isinstance(err, kind):
            return status
    return 500


def version_refusal(requested: str) -> str | None:
    """dockerd's answer (a 400) to a `/vX.Y/` prefix outside [MIN_API_VERSION, API_VERSION]."""
    wanted = _version_key(requested)
    if wanted < _version_key(MIN_API_VERSION):
        return (f"client version {requested} is too old. Minimum supported API version is {MIN_API_VERSION}, "
                "please upgrade your client to a newer version")
    if wanted > _version_key(API_VERSION):
        return f"client version {requested} is too new. Maximum supported API version is {API_VERSION}"
    return None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def error_response(status: int, message: str) -> Response:
    return json_response({"message": message}, status=status)


def common_headers() -> dict[str, str]:
    return {"Api-Version": API_VERSION, "Ostype": "linux", "Docker-Experimental": "false",
            "Server": f"Docker/{ENGINE_VERSION} (linux) berth/{__version__} ({platform.machine()})"}


def build_router(backend: Backend) -> Router:
    router = Router()
    system.register(router, backend)
    exec_routes.register(router, backend)
    distribution.register(router, backend)
    images.register(router, backend)
    containers.register(router, backend)
    attach.register(router, backend)
    volumes.register(router, backend)
    networks.register(router, backend)
    archive.register(router, backend)
    build_routes.register(router, backend)
    unsupported.register(router)
    return router


def make_dispatch(router: Router):  # type: ignore[no-untyped-def]
    async def dispatch(request: Request) -> Response | None:
        m = _VERSION_PREFIX.match(request.path)
        if m:
            request.api_version, request.path = m.group(1), m.group(2)
            refusal = version_refusal(request.api_version)
            if refusal is not None:
                return error_response(400, refusal)
        handler, params, path_known = router.resolve(request.method, request.path)
        if handler is None:
            return error_response(405 if path_known else 404, "page not found")
        request.match = params
        try:
            return await handler(request)
        except FailedPrecondition:
            return Response(status=304)
        except BerthError as err:
            return await _late_error(request, status_for(err), str(err))
        except (ConnectionError, TimeoutError, HttpError):
            raise  # a broken request body: the connection answers it (400) and closes
        except Exception as err:  # noqa: BLE001 - the client gets a message, the log gets the trace
            log.exception("%s %s failed", request.method, request.path)
            return await _late_error(request, 500, str(err) or type(err).__name__)
    return dispatch


async def _late_error(request: Request, status: int, message: str) -> Response | None:
    """Errors after a stream began go into the stream (Docker's errorDetail), else a plain answer."""
    if request.hijacked:
        return None
    if request.streaming is not None:
        await request.streaming.write_json({"errorDetail": {"message": message}, "error": message})
        return None
    return error_response(status, message)


def make_server(backend: Backend) -> HttpServer:
    return HttpServer(make_dispatch(build_router(backend)), common_headers())
