"""The websocket of `/containers/{id}/attach/ws`: RFC 6455 handshake and frames, and a session
through berth's HTTP server driven by aiohttp's websocket client."""

from __future__ import annotations

import asyncio
import os
import struct
import tempfile
from pathlib import Path

import aiohttp
import pytest

from berth.api.httpserver import HttpServer, Request, Response
from berth.api.websocket import (BINARY, CLOSE, PING, TEXT, FrameDecoder, ProtocolError, WebSocketPeer,
                                 accept_key, encode_frame)
from berth.errors import InvalidArgument


def masked(opcode: int, payload: bytes, fin: bool = True, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    size = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack(">H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_accept_key_matches_rfc_6455_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_frames_round_trip_at_every_length_encoding(size: int) -> None:
    payload = os.urandom(size)
    decoder = FrameDecoder()
    wire = masked(BINARY, payload)
    # fed one byte at a time up to the last: nothing comes out before the frame is complete
    assert all(decoder.feed(wire[i : i + 1]) == [] for i in range(min(len(wire) - 1, 300)))
    frames = decoder.feed(wire[min(len(wire) - 1, 300) :])
    assert [(f.opcode, f.fin, f.payload) for f in frames] == [(BINARY, True, payload)]
    assert FrameDecoder().feed(encode_frame(BINARY, payload))[0].payload == payload  # unmasked (server's)


def test_decoder_reads_several_frames_and_fragments() -> None:
    frames = FrameDecoder().feed(masked(TEXT, b"ab", fin=False) + masked(0, b"cd") + masked(PING, b"p"))
    assert [(f.opcode, f.fin, f.payload) for f in frames] == [(TEXT, False, b"ab"), (0, True, b"cd"), (PING, True, b"p")]


@pytest.mark.parametrize("wire, code", [
    (bytes([0x80 | 0x3, 0x80]) + b"\0\0\0\0", 1002),                 # unknown opcode
    (bytes([0x80 | 0x40 | BINARY, 0x80]) + b"\0\0\0\0", 1002),        # reserved bit
    (bytes([PING, 0x80]) + b"\0\0\0\0", 1002),                        # fragmented control frame
    (bytes([0x80 | BINARY, 0x80 | 127]) + struct.pack(">Q", 1 << 40), 1009),
])
def test_decoder_refuses_malformed_frames(wire: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        FrameDecoder().feed(wire)
    assert info.value.code == code


async def _serve(handler):  # type: ignore[no-untyped-def]
    server = HttpServer(handler, {"Api-Version": "1.50"})
    path = str(Path(tempfile.mkdtemp()) / "s.sock")
    await server.listen_unix(path)
    return server, path


def test_session_through_the_server_with_aiohttp() -> None:
    async def echo(req: Request) -> Response | None:
        peer = WebSocketPeer(*await req.websocket())
        while data := await peer.recv():
            await peer.send(b"echo:" + data)
        await peer.close()
        return None

    async def main() -> None:
        server, path = await _serve(echo)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session:
                async with session.ws_connect("http://x/ws", autoping=False) as ws:
                    await ws.send_bytes(b"one")
                    assert (await ws.receive_bytes(timeout=5)) == b"echo:one"
                    await ws.send_str("two")  # text frames are stdin too
                    assert (await ws.receive_bytes(timeout=5)) == b"echo:two"
                    await ws.ping(b"are you there")
                    pong = await ws.receive(timeout=5)
                    assert pong.type == aiohttp.WSMsgType.PONG and pong.data == b"are you there"
                    await ws.close()
                    assert ws.close_code == 1000
        finally:
            await server.close()
    asyncio.run(main())


def test_server_end_closes_with_a_close_frame_and_text_before_1_28() -> None:
    async def talk(req: Request) -> Response | None:
        peer = WebSocketPeer(*await req.websocket(), binary=False)
        await peer.send(b"hello")
        await peer.close()
        return None

    async def main() -> None:
        server, path = await _serve(talk)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session:
                async with session.ws_connect("http://x/ws") as ws:
                    msg = await ws.receive(timeout=5)
                    assert msg.type == aiohttp.WSMsgType.TEXT and msg.data == "hello"
                    assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
        finally:
            await server.close()
    asyncio.run(main())


def test_a_protocol_error_from_the_client_closes_with_1002() -> None:
    async def recv_once(req: Request) -> Response | None:
        peer = WebSocketPeer(*await req.websocket())
        assert await peer.recv() == b""
        await peer.close()
        return None

    async def main() -> None:
        server, path = await _serve(recv_once)
        try:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
            assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
            writer.write(bytes([0x80 | 0x3, 0x80]) + b"\0\0\0\0")
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), 5)
            assert rest[0] == 0x80 | CLOSE and struct.unpack(">H", rest[2:4])[0] == 1002
            writer.close()
        finally:
            await server.close()
    asyncio.run(main())


@pytest.mark.parametrize("headers", [
    {},
    {"upgrade": "websocket"},
    {"upgrade": "websocket", "sec-websocket-key": "k", "sec-websocket-version": "8"},
])
def test_check_websocket_refuses_other_requests(headers: dict[str, str]) -> None:
    req = Request(None, "GET", "/ws", headers)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        req.check_websocket()
