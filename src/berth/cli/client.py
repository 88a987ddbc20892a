"""Finding and talking to the berth daemon over the Docker Engine API (docker-py's APIClient).

docker-py's public methods cover most verbs; the helpers here cover what they do not expose the
way the docker CLI uses it: raw JSON GETs, streamed bodies read as they arrive, and filters in the
`{"key":{"value":true}}` shape.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import docker
import requests
from docker.errors import DockerException

from berth.cli.failures import CliError
from berth.cli.progress import split_json_lines

DEFAULT_HOST = "unix:///run/berth/docker.sock"
API_VERSION = "1.50"
READ_SIZE = 64 * 1024

Handler = Callable[[docker.APIClient, Any], "int | None"]


def resolve_host(flag: str | None, environ: Mapping[str, str]) -> str:
    """`-H/--host`, then `DOCKER_HOST`, then the default socket: docker's order."""
    return flag or environ.get("DOCKER_HOST") or DEFAULT_HOST


def connect(host: str) -> docker.APIClient:
    """An API client for `host`. No request is made yet, so this never fails on a dead daemon.

    Raises:
        CliError: the host string is not a usable address.
    """
    try:
        # No timeout: `wait`, `logs -f` and attach legitimately block for as long as the container runs.
        return docker.APIClient(base_url=host, version=API_VERSION, timeout=None)
    except DockerException as err:
        raise CliError(f"invalid host {host!r}: {err}") from None


def client_command(handler: Handler) -> Callable[[Any], int | None]:
    """Adapt `handler(api, args)` to the parser's `func(args)` by connecting to the chosen host."""

    def run(args: Any) -> int | None:
        host = resolve_host(getattr(args, "host", None), os.environ)
        args.resolved_host = host
        return handler(connect(host), args)

    return run


def get_json(api: docker.APIClient, path: str, *parts: str, params: Mapping[str, Any] | None = None) -> Any:
    """GET a versioned path (`parts` fill `{0}`, `{1}`... URL-quoted) and decode the JSON body."""
    return api._result(api._get(api._url(path, *parts), params=params), json=True)


def post_json(
    api: docker.APIClient,
    path: str,
    *parts: str,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    versioned: bool = True,
) -> Any:
    """POST (an optional JSON body) and decode the JSON answer; None for an empty answer."""
    url = api._url(path, *parts, versioned_api=versioned)
    if body is None:
        response = api._post(url, params=params)
    else:
        response = api._post(url, params=params, data=json.dumps(body), headers={"Content-Type": "application/json"})
    api._raise_for_status(response)
    return response.json() if response.content else None


def delete(api: docker.APIClient, path: str, *parts: str, params: Mapping[str, Any] | None = None) -> Any:
    """DELETE and decode the JSON answer (None when empty)."""
    response = api._delete(api._url(path, *parts), params=params)
    api._raise_for_status(response)
    return response.json() if response.content else None


def flags_param(**flags: bool) -> dict[str, int]:
    """Boolean query flags the way docker-cli sends them: `name=1`, and absent when false."""
    return {name: 1 for name, on in flags.items() if on}


def open_stream(
    api: docker.APIClient,
    method: str,
    path: str,
    *parts: str,
    params: Mapping[str, Any] | None = None,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """Send a request whose answer is read incrementally; raises the daemon's error on non-2xx."""
    url = api._url(path, *parts)
    sender = {"GET": api._get, "POST": api._post}[method]
    answer: requests.Response = sender(url, params=params, data=data, headers=dict(headers or {}), stream=True)
    api._raise_for_status(answer)
    return answer


def iter_body(response: requests.Response) -> Iterator[bytes]:
    """Body bytes as they arrive (chunked or not), without waiting to fill a fixed-size buffer."""
    # http.client's read1 decodes chunked framing and returns whatever is available; requests'
    # iter_content would block until a whole buffer (or the end) for non-chunked bodies.
    raw: Any = response.raw._fp
    try:
        while True:
            data = raw.read1(READ_SIZE)
            if not data:
                return
            yield data
    finally:
        response.close()


def iter_messages(response: requests.Response) -> Iterator[dict[str, Any]]:
    """The JSON objects of a streamed answer (pull, load, import)."""
    return split_json_lines(iter_body(response))
