"""Detach keys: moby/term's key names, the escape scanner across reads, and the stdio pump that
ends a session on them while the process runs on."""

from __future__ import annotations

import asyncio

import pytest

from berth.api.docker.streams import frame, hijack_content_type, pump
from berth.engine.attach import DEFAULT_DETACH_KEYS, EscapeScanner, detach_keys, parse_keys
from berth.errors import InvalidArgument


def test_parse_keys_reads_moby_names() -> None:
    assert parse_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_keys("ctrl-@,ctrl-a,ctrl-z,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_") == bytes([0, 1, 26, 27, 28, 29, 30, 31])
    assert parse_keys("a,b") == b"ab"
    assert parse_keys("DEL,x") == b"\x7fx"


@pytest.mark.parametrize("spec", ["ctrl-P", "ctrl-1", "ctrl-p,", "ab", "é", "ctrl-aa"])
def test_parse_keys_refuses_unknown_keys(spec: str) -> None:
    with pytest.raises(ValueError, match="Unknown character"):
        parse_keys(spec)


def test_detach_keys_default_and_dockerd_wording() -> None:
    assert detach_keys("") == DEFAULT_DETACH_KEYS == b"\x10\x11"
    assert detach_keys("ctrl-x,x") == b"\x18x"
    with pytest.raises(InvalidArgument, match=r"^Invalid detach keys \(ctrl-foo\) provided$"):
        detach_keys("ctrl-foo")
    with pytest.raises(InvalidArgument, match=r"^Invalid escape keys \(nope\) provided$"):
        detach_keys("nope", what="escape")


def feed_all(keys: bytes, pieces: list[bytes]) -> tuple[bytes, bool]:
    scanner = EscapeScanner(keys)
    out = b""
    for piece in pieces:
        passed, done = scanner.feed(piece)
        out += passed
        if done:
            return out, True
    return out + scanner.flush(), False


@pytest.mark.parametrize("pieces", [
    [b"abc\x10\x11def"],            # in one read: the bytes before it still go through
    [b"abc\x10", b"\x11def"],       # split across reads
    [b"a", b"b", b"c", b"\x10", b"\x11"],
])
def test_scanner_finds_the_sequence_however_it_is_read(pieces: list[bytes]) -> None:
    assert feed_all(b"\x10\x11", pieces) == (b"abc", True)


def test_scanner_gives_back_a_prefix_that_did_not_complete() -> None:
    assert feed_all(b"\x10\x11", [b"\x10", b"x", b"y"]) == (b"\x10xy", False)
    assert feed_all(b"\x10\x11", [b"\x10\x10", b"\x11"]) == (b"\x10", True)  # restarts on the 2nd ctrl-p
    assert feed_all(b"aab", [b"aaab"]) == (b"a", True)
    assert feed_all(b"\x10\x11", [b"typed ctrl-p last\x10"]) == (b"typed ctrl-p last\x10", False)


def test_scanner_holds_a_partial_match_until_the_next_read() -> None:
    scanner = EscapeScanner(b"\x10\x11")
    assert scanner.feed(b"ab\x10") == (b"ab", False)
    assert scanner.feed(b"c") == (b"\x10c", False)
    with pytest.raises(ValueError):
        EscapeScanner(b"")


def test_hijack_content_type_names_the_framing_from_1_42() -> None:
    assert hijack_content_type(True, True) == "application/vnd.docker.multiplexed-stream"
    assert hijack_content_type(True, False) == "application/vnd.docker.raw-stream"
    assert hijack_content_type(False, True) == "application/vnd.docker.raw-stream"


class FakePeer:
    def __init__(self, incoming: list[bytes]) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        for item in incoming:
            self.incoming.put_nowait(item)
        self.sent: list[bytes] = []
        self.closed = False

    async def recv(self) -> bytes:
        return await self.incoming.get()

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.closed = True


class FakeStdio:
    """A process that echoes its stdin on stdout until stdin closes, then ends."""

    def __init__(self) -> None:
        self.out: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.stdin = b""
        self.stdin_closed = False

    async def read(self) -> tuple[int, bytes] | None:
        return await self.out.get()

    async def write(self, data: bytes) -> None:
        self.stdin += data
        await self.out.put((1, data))

    async def close_stdin(self) -> None:
        self.stdin_closed = True
        await self.out.put((2, b"bye"))
        await self.out.put(None)


def test_pump_detach_keys_end_the_session_and_never_reach_the_process() -> None:
    async def main() -> None:
        peer, stdio = FakePeer([b"hi", b"\x10", b"\x11", b"late"]), FakeStdio()
        detached = await asyncio.wait_for(pump(peer, stdio, multiplexed=False, stdin=True, close_stdin_on_eof=True,
                                               detach_keys=b"\x10\x11"), 5)
        assert detached and peer.closed
        assert stdio.stdin == b"hi" and not stdio.stdin_closed
    asyncio.run(main())


def test_pump_without_keys_copies_until_the_output_ends_and_frames_it() -> None:
    async def main() -> None:
        peer, stdio = FakePeer([b"a\x10\x11b", b""]), FakeStdio()
        detached = await asyncio.wait_for(pump(peer, stdio, multiplexed=True, stdin=True, close_stdin_on_eof=True), 5)
        assert not detached and peer.closed and stdio.stdin_closed
        assert b"".join(peer.sent) == frame(1, b"a\x10\x11b") + frame(2, b"bye")
    asyncio.run(main())


def test_pump_hands_over_a_held_prefix_at_end_of_input() -> None:
    async def main() -> None:
        peer, stdio = FakePeer([b"x\x10", b""]), FakeStdio()
        detached = await asyncio.wait_for(pump(peer, stdio, multiplexed=False, stdin=True, close_stdin_on_eof=True,
                                               detach_keys=b"\x10\x11"), 5)
        assert not detached and stdio.stdin == b"x\x10"
    asyncio.run(main())


def test_pump_ignores_keys_when_stdin_is_not_attached() -> None:
    async def main() -> None:
        peer, stdio = FakePeer([b"\x10\x11"]), FakeStdio()
        task = asyncio.create_task(pump(peer, stdio, multiplexed=False, stdin=False, close_stdin_on_eof=False,
                                        detach_keys=b"\x10\x11"))
        await asyncio.sleep(0)  # the keys are read, and change nothing: output still flows
        await stdio.out.put((1, b"still here"))
        await stdio.out.put(None)
        assert await asyncio.wait_for(task, 5) is False
        assert peer.sent == [b"still here"] and stdio.stdin == b""
    asyncio.run(main())
