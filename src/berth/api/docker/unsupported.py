"""Docker features berth does not run, answered as dockerd answers them, never "page not found".

Swarm mode: berth's node is never part of a swarm, so the swarm endpoints answer as dockerd's
do outside one (503, its wording, which clients such as docker-py treat as "no swarm":
`swarm.leave(force=True)` succeeds); only creating a swarm (init, join) is refused as not
implemented (501). Engine plugins and `docker search` (Docker Hub's index; berth never contacts
public registries) are not implemented either (501).
"""

from __future__ import annotations

from berth.api.httpserver import Request, Response, Router, json_response
from berth.errors import Unsupported

SWARM = ("swarm", "nodes", "services", "tasks", "secrets", "configs")
SWARM_MESSAGE = "berth does not implement swarm mode: it cannot create or join a swarm"
# dockerd's errNoSwarm (leave) and errNoManager (every manager call) outside a swarm, both 503
NOT_IN_SWARM = "This node is not part of a swarm"
NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
                 "to connect this node to swarm and try again.")
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

    def unavailable(message: str):  # type: ignore[no-untyped-def]
        async def handler(req: Request) -> Response:
            return json_response({"message": message}, status=503)
        return handler

    # the first route that matches wins: the specific swarm verbs before the catch-alls
    router.add("POST", "/swarm/leave", unavailable(NOT_IN_SWARM))
    router.add("POST", "/swarm/init", refuse(SWARM_MESSAGE))
    router.add("POST", "/swarm/join", refuse(SWARM_MESSAGE))
    for method in ("GET", "POST", "DELETE"):
        for area in SWARM:
            router.add(method, f"/{area}", unavailable(NOT_A_MANAGER))
            router.add(method, f"/{area}/{{rest:.+}}", unavailable(NOT_A_MANAGER))
    router.add("GET", "/plugins", no_plugins)
    for method in ("GET", "POST", "DELETE"):
        router.add(method, "/plugins/{rest:.+}", refuse(PLUGIN_MESSAGE))
    router.add("GET", "/images/search", refuse(SEARCH_MESSAGE))
