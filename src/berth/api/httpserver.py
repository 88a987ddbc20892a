"""A small HTTP/1.1 server on asyncio streams, built for the Docker Engine API.

Why not aiohttp here: the docker CLI hijacks connections (`Upgrade: tcp`) and then half-closes
its side when stdin ends, while it keeps reading the container's output. aiohttp's protocol closes
the transport on EOF and parses upgraded connections itself; asyncio streams keep the write side
open after the peer's FIN and let a handler own the raw socket. The wire needs are small: keep-alive,
Content-Length and chunked request bodies, fixed and chunked (flushed per message) responses.

Lifecycle of one connection: read a request head → route → the handler answers with a `Response`,
or streams through `Request.stream()`, or takes the socket with `Request.hijack()`. After a normal
answer any unread body is drained and the next request is read; after a hijack the handler owns the
connection until it closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import struct
import tempfile
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from berth.api.websocket import accept_key
from berth.errors import InvalidArgument

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
_REASONS = {
    101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 500: "Internal Server Error",
}


@dataclass
class Response:
    """A complete answer with a fixed body."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(obj).encode() + b"\n")


Handler = Callable[["Request"], Awaitable["Response | None"]]


class HttpError(Exception):
    """Protocol-level failure (bad request line, oversized head); answered with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Request:
    """One parsed request; the body is read lazily from the connection."""

    def __init__(self, conn: "_Connection", method: str, target: str, headers: dict[str, str]) -> None:
        self._conn = conn
        self.method = method
        split = urlsplit(target)
        self.raw_path = unquote(split.path)
        self.path = self.raw_path
        self.query_all = parse_qs(split.query, keep_blank_values=True)
        self.headers = headers
        self.match: dict[str, str] = {}
        self.api_version = ""
        self.hijacked = False
        self.streaming: "StreamWriter | None" = None
        self._body_left = self._initial_body_length()
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()

    def _initial_body_length(self) -> int:
        try:
            return max(0, int(self.headers.get("content-length", "0")))
        except ValueError as err:
            raise HttpError(400, "invalid Content-Length") from err

    # --- query helpers -------------------------------------------------------------------------
    def query(self, name: str, default: str = "") -> str:
        values = self.query_all.get(name)
        return values[-1] if values else default

    def qbool(self, name: str, default: bool = False) -> bool:
        value = self.query(name)
        if value == "":
            return default
        return value.lower() not in ("0", "false", "no")

    def qint(self, name: str, default: int = 0) -> int:
        value = self.query(name)
        if value == "":
            return default
        try:
            return int(value)
        except ValueError as err:
            raise InvalidArgument(f"invalid value for {name}: {value!r}") from err

    # --- body ----------------------------------------------------------------------------------
    async def iter_body(self) -> AsyncIterator[bytes]:
        """Yield the request body in pieces (Content-Length or chunked)."""
        reader = self._conn.reader
        if self._chunked:
            while True:
                size_line = await reader.readline()
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError as err:
                    raise HttpError(400, "invalid chunk size") from err
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self._chunked = False
                    return
                while size:
                    piece = await reader.read(min(size, 1 << 20))
                    if not piece:
                        raise HttpError(400, "unexpected end of chunked body")
                    size -= len(piece)
                    yield piece
                await reader.readline()
        while self._body_left > 0:
            piece = await reader.read(min(self._body_left, 1 << 20))
            if not piece:
                raise HttpError(400, "unexpected end of body")
            self._body_left -= len(piece)
            yield piece

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.iter_body()])

    async def json(self) -> Any:
        """The JSON body, None when empty; malformed JSON is an InvalidArgument (400)."""
        raw = await self.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidArgument(f"invalid JSON: {err}") from err

    async def save_body(self, directory: str, prefix: str = "upload-") -> "Path":
        """Stream the body into a new temp file in `directory` (removed again on failure)."""
        fd, name = tempfile.mkstemp(prefix=prefix, dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                async for piece in self.iter_body():
                    f.write(piece)
        except BaseException:
            os.unlink(name)
            raise
        return Path(name)

    async def client_gone(self) -> None:
        """Returns when the client closes its side (for endpoints that stream while the client
        sends nothing, such as `logs -f`); the body must have been read already."""
        await self.drain_body()
        while await self._conn.reader.read(65536):
            pass

    async def drain_body(self) -> None:
        async for _ in self.iter_body():
            pass

    # --- streaming and hijacking ---------------------------------------------------------------
    async def stream(self, status: int = 200, content_type: str = "application/json",
                     headers: dict[str, str] | None = None) -> "StreamWriter":
        """Send the head now (chunked) and return a writer that flushes every piece."""
        all_headers = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
        all_headers.update(headers or {})
        await self._conn.write_head(status, all_headers)
        self.streaming = StreamWriter(self._conn)
        return self.streaming

    async def hijack(self, content_type: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Answer 101 UPGRADED and hand over the raw connection (already-buffered bytes stay in the reader)."""
        self.hijacked = True
        upgrade = "Upgrade" in self.headers.get("connection", "") or "upgrade" in self.headers
        if upgrade:
            await self._conn.write_head(101, {"Content-Type": content_type, "Connection": "Upgrade",
                                              "Upgrade": "tcp"})
        else:  # pre-1.24 clients: plain 200 with a raw stream
            await self._conn.write_head(200, {"Content-Type": content_type})
        await self._conn.head_taken()
        return self._conn.reader, self._conn.writer

    def check_websocket(self) -> str:
        """The client's Sec-WebSocket-Key once the request is a version-13 websocket handshake;
        InvalidArgument (400) otherwise. Call it before any other work, then `websocket()`."""
        key = self.headers.get("sec-websocket-key", "")
        if self.method != "GET" or "websocket" not in self.headers.get("upgrade", "").lower() or not key:
            raise InvalidArgument("not a websocket handshake: want GET with Upgrade: websocket "
                                  "and a Sec-WebSocket-Key")
        if self.headers.get("sec-websocket-version", "") != "13":
            raise InvalidArgument("unsupported websocket version (want Sec-WebSocket-Version: 13)")
        return key

    async def websocket(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Answer the websocket handshake (101 Switching Protocols) and hand over the connection;
        frames are the caller's (see berth.api.websocket)."""
        key = self.check_websocket()
        self.hijacked = True
        await self._conn.write_head(101, {"Upgrade": "websocket", "Connection": "Upgrade",
                                          "Sec-WebSocket-Accept": accept_key(key)}, reason="Switching Protocols")
        await self._conn.head_taken()
        return self._conn.reader, self._conn.writer


class StreamWriter:
    """Chunked response body writer; each `write` is one flushed chunk."""

    def __init__(self, conn: "_Connection") -> None:
        self._conn = conn
        self.closed = False

    async def write(self, data: bytes) -> None:
        if not data or self.closed:
            return
        w = self._conn.writer
        w.write(b"%x\r\n%s\r\n" % (len(data), data))
        await w.drain()

    async def write_json(self, obj: Any) -> None:
        await self.write(json.dumps(obj).encode() + b"\n")

    async def finish(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.writer.write(b"0\r\n\r\n")
            await self._conn.writer.drain()


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """Routes `METHOD /path/{param}` patterns; `{name:.+}` matches greedily across slashes."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)(?::([^}]+))?\}",
                       lambda m: f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})", path)
        self._routes.append(_Route(method, re.compile(f"^{regex}$"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, params, path_known). path_known lets the caller answer 405 vs 404."""
        path_known = False
        for route in self._routes:
            m = route.pattern.match(path)
            if not m:
                continue
            path_known = True
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route.handler, m.groupdict(), True
        return None, {}, path_known


class _Connection:
    """One client connection: reads requests in a loop until close or hijack."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 dispatch: Callable[[Request], Awaitable[Response | None]],
                 common_headers: dict[str, str]) -> None:
        self.reader = reader
        self.writer = writer
        self._dispatch = dispatch
        self._common = common_headers
        self.keep_alive = True

    async def write_head(self, status: int, headers: dict[str, str], reason: str = "") -> None:
        lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Status')}"]
        merged = {**self._common, **headers}
        lines += [f"{k}: {v}" for k, v in merged.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self.writer.drain()

    async def head_taken(self, timeout: float = 1.0) -> None:
        """Wait (at most `timeout`) until the client has read what was sent, on a unix socket.

        After a hijack, bytes that reach a client together with the response head may be read
        into its HTTP parser's buffer and lost to the stream: docker-py parses the head with
        http.client, then reads the raw socket (so `attach(stream=False, logs=True)` would lose
        logs sent right after the 101). A unix socket's SIOCOUTQ counts the bytes the peer has
        not read yet; the stream starts once it is 0. TCP counts unacknowledged bytes instead, so
        there this is a best effort."""
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
            except OSError:
                return
            if queued <= 0:
                return
            await asyncio.sleep(0.001)

    async def send(self, response: Response, head_only: bool = False) -> None:
        headers = {"Content-Type": response.content_type, "Content-Length": str(len(response.body)),
                   **response.headers}
        if response.status in (204, 304):
            headers.pop("Content-Length", None)
            headers.pop("Content-Type", None)
        if not self.keep_alive:
            headers["Connection"] = "close"
        await self.write_head(response.status, headers)
        if response.body and not head_only and response.status not in (204, 304):
            self.writer.write(response.body)
            await self.writer.drain()

    async def read_request(self) -> Request | None:
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as err:
            raise HttpError(431, "request header too large") from err
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError as err:
            raise HttpError(400, "malformed request line") from err
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if version == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
            self.keep_alive = False
        return Request(self, method, target, headers)

    async def serve(self) -> None:
        try:
            while self.keep_alive:
                request = await self.read_request()
                if request is None:
                    break
                response = await self._dispatch(request)
                if request.hijacked:
                    return  # the handler owns (and has closed) the connection
                if request.streaming is not None:
                    await request.streaming.finish()
                elif response is not None:
                    await self.send(response, head_only=request.method == "HEAD")
                await request.drain_body()
        except HttpError as err:
            body = json.dumps({"message": str(err)}).encode()
            self.keep_alive = False
            with contextlib.suppress(ConnectionError):  # the client may be gone already
                await self.send(Response(status=err.status, body=body))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not self.writer.is_closing():
                self.writer.close()


class HttpServer:
    """Serves a dispatch function on unix sockets and/or TCP addresses."""

    def __init__(self, dispatch: Callable[[Request], Awaitable[Response | None]],
                 common_headers: dict[str, str]) -> None:
        self._dispatch = dispatch
        self._common = common_headers
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await _Connection(reader, writer, self._dispatch, self._common).serve()
        finally:
            self._tasks.discard(task)

    async def listen_unix(self, path: str, mode: int = 0o660) -> None:
        import os

        if os.path.exists(path):
            os.unlink(path)
        server = await asyncio.start_unix_server(self._on_connection, path=path, limit=MAX_HEAD)
        os.chmod(path, mode)
        self._servers.append(server)

    async def listen_tcp(self, host: str, port: int) -> None:
        server = await asyncio.start_server(self._on_connection, host=host, port=port, limit=MAX_HEAD)
        self._servers.append(server)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()
