"""A hijacked stream starts only once the client has read the response head (unix sockets), so a
client that parses the head with a buffered HTTP reader (docker-py) does not lose the first
bytes of the stream."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from pathlib import Path

from berth.api.httpserver import HttpServer, Request, Response


def test_hijack_waits_until_the_client_has_read_the_head() -> None:
    events: list[str] = []

    async def handler(req: Request) -> Response | None:
        reader, writer = await req.hijack("application/vnd.docker.raw-stream")
        events.append("hijacked")
        writer.write(b"stream-bytes")
        await writer.drain()
        writer.close()
        return None

    async def main() -> None:
        server = HttpServer(handler, {"Api-Version": "1.50"})
        path = str(Path(tempfile.mkdtemp()) / "s.sock")
        await server.listen_unix(path)
        try:
            client = socket.socket(socket.AF_UNIX)
            client.connect(path)
            client.setblocking(False)
            client.sendall(b"POST /x HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            loop = asyncio.get_running_loop()
            # the head arrives; the handler stays held while the client has not read it
            began = loop.time()
            while not _readable(client):
                assert loop.time() - began < 10, "no response head"
                await asyncio.sleep(0.005)
            held_since = loop.time()
            while loop.time() - held_since < 0.3:
                assert events == [], "the stream started before the client read the head"
                await asyncio.sleep(0.01)
            head = client.recv(65536)
            assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n") and head.endswith(b"\r\n\r\n")
            assert b"stream-bytes" not in head
            rest = b""
            deadline = time.monotonic() + 10
            while not rest.endswith(b"stream-bytes") and time.monotonic() < deadline:
                try:
                    rest += client.recv(65536)
                except BlockingIOError:
                    await asyncio.sleep(0.005)
            assert rest == b"stream-bytes" and events == ["hijacked"]
            client.close()
        finally:
            await server.close()

    asyncio.run(main())


def _readable(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
