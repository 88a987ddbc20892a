from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from berth.api.docker.containers import parse_filters
from berth.api.httpserver import HttpServer, Request, Response, Router, json_response
from berth.errors import InvalidArgument

import pytest


def test_router_greedy_names() -> None:
    router = Router()

    async def h(req: Request) -> Response:
        return Response()

    router.add("GET", "/images/{name:.+}/json", h)
    router.add("DELETE", "/images/{name:.+}", h)
    handler, params, _ = router.resolve("GET", "/images/127.0.0.1:5000/bob/cats:latest/json")
    assert handler is h and params == {"name": "127.0.0.1:5000/bob/cats:latest"}
    assert router.resolve("POST", "/images/x/json")[2] is True  # known path, wrong method
    assert router.resolve("GET", "/nothing")[0] is None


def test_parse_filters_both_forms() -> None:
    assert parse_filters('{"name":{"web":true}}') == {"name": ["web"]}
    assert parse_filters('{"name":["web"]}') == {"name": ["web"]}
    with pytest.raises(InvalidArgument):
        parse_filters("{bad")


async def _roundtrip(raw: bytes) -> bytes:
    async def dispatch(req: Request) -> Response | None:
        if req.path == "/stream":
            s = await req.stream()
            await s.write_json({"n": 1})
            return None
        body = await req.json()
        return json_response({"path": req.path, "body": body, "q": req.query("a")})

    server = HttpServer(dispatch, {"Api-Version": "1.50"})
    path = str(Path(tempfile.mkdtemp()) / "s.sock")
    await server.listen_unix(path)
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(raw)
    await writer.drain()
    writer.write_eof()
    data = await reader.read()
    writer.close()
    await server.close()
    return data


def test_chunked_body_and_keepalive() -> None:
    req = (b"POST /x?a=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4\r\n{\"k\"\r\n4\r\n: 1}\r\n0\r\n\r\n"
           b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
    out = asyncio.run(_roundtrip(req))
    first, _, rest = out.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK") and b"Api-Version: 1.50" in first
    body = rest.split(b"HTTP/1.1")[0]
    assert json.loads(body) == {"path": "/x", "body": {"k": 1}, "q": "1"}
    assert b"Transfer-Encoding: chunked" in out and b'{"n": 1}' in out and out.endswith(b"0\r\n\r\n")
