"""Docker features berth does not implement, answered in Docker's error shape (501) instead of
"page not found", so the docker CLI says what is missing: swarm mode, engine plugins, and
`docker search` (Docker Hub's index; berth never contacts public registries)."""

from __future__ import annotations

from berth.api.httpserver import Request, Response, Router, json_response
from berth.errors import Unsupported

SWARM = ("swarm", "nodes", "services", "tasks", "secrets", "configs")
SWARM_MESSAGE = "berth does not implement swarm mode (this node is not a swarm manager)"
PLUGIN_MESSAGE = "berth does not support engine plugins"
SEARCH_MESSAGE = ("docker search is not available: berth never contacts public registries, and the "
                  "registry v2 API has no search")


def register(router: Router) -> None:
    def refuse(message: str):  # type: ignore[no-untyped-def]
        async def handler(req: Request) -> Response:
            raise Unsupported(message)
        return handler

    async def no_plugins(req: Request) -> Response:
        return json_response([])  # `docker plugin ls`: there are none

    for area in SWARM:
        for method in ("GET", "POST", "DELETE"):
            router.add(method, f"/{area}", refuse(SWARM_MESSAGE))
            router.add(method, f"/{area}/{{rest:.+}}", refuse(SWARM_MESSAGE))
    router.add("GET", "/plugins", no_plugins)
    for method in ("GET", "POST", "DELETE"):
        router.add(method, "/plugins/{rest:.+}", refuse(PLUGIN_MESSAGE))
    router.add("GET", "/images/search", refuse(SEARCH_MESSAGE))
