"""The server side of RFC 6455 that `/containers/{id}/attach/ws` needs.

Scope, as dockerd's attach websocket uses it: after the handshake (`accept_key`), the server
sends each piece of output as one unmasked binary frame (text frames before API 1.28); what the
client sends in data frames (text, binary or continuation, fragmented or not) is one byte
stream of stdin. Pings are answered, a close frame is answered and ends the input. Frames are
decoded by `FrameDecoder`, a parser fed with bytes (no I/O), and `WebSocketPeer` drives both
over asyncio streams.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct
from dataclasses import dataclass

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA = (CONTINUATION, TEXT, BINARY)
_CONTROL = (CLOSE, PING, PONG)
MAX_PAYLOAD = 16 << 20  # a client's frame larger than this ends the session (close 1009)
NORMAL_CLOSURE, PROTOCOL_ERROR, MESSAGE_TOO_BIG = 1000, 1002, 1009


class ProtocolError(Exception):
    """The client broke RFC 6455; `code` is the close status to answer with."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (servers never mask)."""
    size = len(payload)
    if size < 126:
        head = struct.pack(">BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        head = struct.pack(">BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack(">BBQ", 0x80 | opcode, 127, size)
    return head + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack(">H", code) + reason.encode()[:120]


@dataclass(frozen=True)
class Frame:
    opcode: int
    fin: bool
    payload: bytes


class FrameDecoder:
    """Turns bytes from the client into frames; raises ProtocolError on a malformed one."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._max = max_payload

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        return frames

    def _next(self) -> Frame | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        fin, rsv, opcode = buf[0] & 0x80, buf[0] & 0x70, buf[0] & 0x0F
        masked, size, offset = buf[1] & 0x80, buf[1] & 0x7F, 2
        if rsv:
            raise ProtocolError("reserved bits set without a negotiated extension")
        if opcode not in _DATA and opcode not in _CONTROL:
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        if opcode in _CONTROL and (not fin or size > 125):
            raise ProtocolError("control frames must be final and at most 125 bytes")
        if size >= 126:
            width = 2 if size == 126 else 8
            if len(buf) < offset + width:
                return None
            size = int.from_bytes(buf[offset : offset + width], "big")
            offset += width
        if size > self._max:
            raise ProtocolError(f"frame of {size} bytes is over the limit", MESSAGE_TOO_BIG)
        mask = b""
        if masked:
            if len(buf) < offset + 4:
                return None
            mask, offset = bytes(buf[offset : offset + 4]), offset + 4
        if len(buf) < offset + size:
            return None
        payload = bytes(buf[offset : offset + size])
        del buf[: offset + size]
        if mask:
            payload = _unmask(payload, mask)
        return Frame(opcode, bool(fin), payload)


def _unmask(payload: bytes, mask: bytes) -> bytes:
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


class WebSocketPeer:
    """A client end over a websocket: `recv` yields stdin bytes, `send` writes one data frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, binary: bool = True) -> None:
        self._reader = reader
        self._writer = writer
        self._opcode = BINARY if binary else TEXT
        self._decoder = FrameDecoder()
        self._pending: list[Frame] = []
        self._closing = False

    async def recv(self) -> bytes:
        """The next data the client sent; b"" once it closed (or broke the protocol)."""
        while True:
            while self._pending:
                frame = self._pending.pop(0)
                if frame.opcode in _DATA and frame.payload:
                    return frame.payload
                if frame.opcode == PING:
                    await self._send_frame(PONG, frame.payload)
                elif frame.opcode == CLOSE:
                    await self._close(frame.payload[:2] or close_payload(NORMAL_CLOSURE))
                    return b""
            data = await self._reader.read(65536)
            if not data:
                return b""
            try:
                self._pending = self._decoder.feed(data)
            except ProtocolError as err:
                await self._close(close_payload(err.code, str(err)))
                return b""

    async def send(self, data: bytes) -> None:
        if data:
            await self._send_frame(self._opcode, data)

    async def close(self) -> None:
        await self._close(close_payload(NORMAL_CLOSURE))
        with contextlib.suppress(Exception):
            self._writer.close()

    async def _close(self, payload: bytes) -> None:
        if not self._closing:
            self._closing = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._send_frame(CLOSE, payload, force=True)

    async def _send_frame(self, opcode: int, payload: bytes, force: bool = False) -> None:
        if self._closing and not force:
            raise ConnectionResetError("websocket is closing")
        self._writer.write(encode_frame(opcode, payload))
        await self._writer.drain()
