"""Attach edges clients rely on (issue 11 §1): detach keys from the query and from the CLI's config
file, `stream=0&logs=1` answering at once, and the websocket attach."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import docker
import pytest

from tests.helpers import BerthDaemon, api, drive_pty, wait_for

pytestmark = pytest.mark.root

# A TTY whose program hands every byte straight back: what reaches the container is visible.
ECHO_TTY = ["sh", "-c", "stty raw -echo; echo ready; exec cat"]


@pytest.fixture()
def client(daemon: BerthDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=daemon.host, version="1.50", timeout=60)
    yield c
    c.close()


@pytest.fixture()
def config_dir() -> Iterator[Path]:
    """A DOCKER_CONFIG whose config.json sets detachKeys to ctrl-x,x."""
    with tempfile.TemporaryDirectory(prefix="berth-docker-config-") as path:
        (Path(path) / "config.json").write_text(json.dumps({"detachKeys": "ctrl-x,x"}))
        yield Path(path)


def drive(env: dict[str, str], args: list[str], actions: list[tuple[bytes, bytes]],
          timeout: float = 30) -> tuple[int | None, bytes]:
    return drive_pty(env, args, actions, timeout=timeout)


def read_until(sock: socket.socket, done: Callable[[bytes], bool], timeout: float = 20) -> bytes:
    """What the socket sends until `done(data)` holds or it closes (then the caller checks)."""
    data = b""
    deadline = time.monotonic() + timeout
    while not done(data) and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(sock: socket.socket, timeout: float = 20) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    return True


def status(daemon: BerthDaemon, name: str) -> str:
    return json.loads(daemon.docker("inspect", name).stdout)[0]["State"]["Status"]


def started(client: docker.DockerClient, *, tty: bool, cmd: list[str] | None = None) -> docker.models.containers.Container:
    container = client.containers.run("busybox", cmd or ECHO_TTY, detach=True, tty=tty, stdin_open=True)
    wait_for("container output", lambda: b"ready" in container.logs() or None)
    return container


def test_cli_sends_the_config_files_detach_keys(daemon: BerthDaemon, config_dir: Path) -> None:
    env = {**daemon.env, "DOCKER_CONFIG": str(config_dir)}
    try:
        # ctrl-p ctrl-q are ordinary keys now: they reach the container and come back...
        rc, out = drive(env, ["run", "-it", "--name", "cfgkeys", "busybox", *ECHO_TTY],
                        [(b"ready", b"abc"), (b"abc", b"\x10\x11"), (b"abc\x10\x11", b"\x18x")])
        # ...and ctrl-x x ends the attach, leaving the container running
        assert rc == 0 and b"abc\x10\x11" in out, out
        assert status(daemon, "cfgkeys") == "running"
        rc, out = drive(env, ["attach", "cfgkeys"],
                        [(b"", b"again"), (b"again", b"\x10\x11"), (b"again\x10\x11", b"\x18x")])
        # `docker attach` reports its own detach as "read escape sequence", exit 1 (so with dockerd)
        assert rc == 1 and b"again\x10\x11read escape sequence" in out, out
        assert status(daemon, "cfgkeys") == "running"
    finally:
        daemon.docker("rm", "-f", "cfgkeys")


def test_detach_keys_query_parameter_ends_the_attach(client: docker.DockerClient, daemon: BerthDaemon) -> None:
    container = started(client, tty=True)
    try:
        for params, keys in (({"detachKeys": "ctrl-a,a"}, [b"\x01", b"a"]), ({}, [b"\x10\x11"])):
            sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stream": 1, **params})._sock
            try:
                sock.sendall(b"typed")
                assert read_until(sock, lambda d: b"typed" in d).endswith(b"typed")
                for key in keys:  # however the keys arrive: together or one read each
                    sock.sendall(key)
                assert closed_by_server(sock)
            finally:
                sock.close()
            container.reload()
            assert container.status == "running"
        assert b"\x01" not in container.logs() and b"\x10" not in container.logs()
    finally:
        container.remove(force=True)


def test_detach_keys_pass_through_without_a_tty(client: docker.DockerClient) -> None:
    container = started(client, tty=False, cmd=["sh", "-c", "echo ready; exec cat"])
    try:
        sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stream": 1})._sock
        try:
            sock.sendall(b"x\x10\x11y")  # dockerd watches for the keys on TTYs only
            data = read_until(sock, lambda d: d.endswith(b"x\x10\x11y"))
            assert data == b"\x01\x00\x00\x00\x00\x00\x00\x04x\x10\x11y", data
        finally:
            sock.close()
    finally:
        container.remove(force=True)


def test_invalid_detach_keys_answer_400(daemon: BerthDaemon, client: docker.DockerClient) -> None:
    container = started(client, tty=True)
    try:
        code, body = api(daemon.sock, "POST", f"/containers/{container.id}/attach?stream=1&stdin=1&detachKeys=ctrl-foo")
        assert (code, body) == (400, {"message": "Invalid detach keys (ctrl-foo) provided"})
        code, body = api(daemon.sock, "GET", f"/containers/{container.id}/attach/ws?stream=1&detachKeys=ctrl-foo",
                         headers=WS_HEADERS)
        assert (code, body) == (400, {"message": "Invalid detach keys (ctrl-foo) provided"})
    finally:
        container.remove(force=True)


def test_attach_logs_without_stream_returns_at_once(client: docker.DockerClient) -> None:
    container = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2; exec sleep 300"], detach=True)
    try:
        wait_for("both lines logged", lambda: (b"err" in container.logs() and b"out" in container.logs()) or None)
        began = time.monotonic()
        # docker-py reads until the server closes: with stream=0 that is right after the logs. It
        # parses the 101 with http.client and then reads the raw socket, so the logs must not
        # reach it together with the head (repeated: that was a race).
        for _ in range(5):
            assert client.api.attach(container.id, stream=False, logs=True, demux=True) == (b"out\n", b"err\n")
            assert client.api.attach(container.id, stdout=True, stderr=False, stream=False, logs=True) == b"out\n"
        assert client.api.attach(container.id, stream=False, logs=False) == b""
        assert time.monotonic() - began < 30
        container.reload()
        assert container.status == "running"
    finally:
        container.remove(force=True)


def test_attach_logs_then_stream(client: docker.DockerClient) -> None:
    container = started(client, tty=False, cmd=["sh", "-c", "echo ready; while read l; do echo got-$l; done"])
    try:
        sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stream": 1, "logs": 1})._sock
        try:
            first = read_until(sock, lambda d: b"ready" in d)
            sock.sendall(b"live\n")
            rest = read_until(sock, lambda d: b"got-live" in d)
            assert first.startswith(b"\x01\x00\x00\x00") and b"ready\n" in first
            assert b"got-live\n" in rest
        finally:
            sock.close()
    finally:
        container.remove(force=True)


WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def ws_collect(ws: aiohttp.ClientWebSocketResponse, until: bytes | tuple[bytes, ...],
                     timeout: float = 20) -> tuple[bytes, set[aiohttp.WSMsgType]]:
    """Frames until every one of `until` has arrived (stdout and stderr are separate pipes: their
    lines reach the client in either order)."""
    wanted = (until,) if isinstance(until, bytes) else until
    data, kinds = b"", set()
    deadline = time.monotonic() + timeout
    while not all(w in data for w in wanted):
        msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        kinds.add(msg.type)
        if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            break
        data += msg.data if isinstance(msg.data, bytes) else msg.data.encode()
    return data, kinds


def test_websocket_attach_sends_input_and_reads_output(daemon: BerthDaemon, client: docker.DockerClient) -> None:
    script = "echo ready; while read l; do echo out-$l; echo err-$l >&2; done"
    container = started(client, tty=False, cmd=["sh", "-c", script])

    async def main() -> None:
        url = f"http://docker/v1.50/containers/{container.id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1&logs=1"
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=daemon.sock)) as session:
            async with session.ws_connect(url) as ws:
                data, kinds = await ws_collect(ws, b"ready\n")  # logs=1: the history first
                await ws.send_bytes(b"one\n")
                await ws.send_str("two\n")
                more, more_kinds = await ws_collect(ws, (b"out-one\n", b"err-one\n", b"out-two\n", b"err-two\n"))
                data += more
                # never multiplexed: raw bytes of both streams in binary frames
                assert kinds | more_kinds == {aiohttp.WSMsgType.BINARY}
                assert all(line in data for line in (b"out-one\n", b"err-one\n", b"out-two\n", b"err-two\n"))
                assert b"\x01\x00\x00\x00" not in data
            # only stdout asked for
            async with session.ws_connect(url.replace("stderr=1", "stderr=0").replace("&logs=1", "")) as ws:
                await ws.send_bytes(b"three\n")
                data, _ = await ws_collect(ws, b"out-three\n")
                assert b"err-three" not in data

    try:
        asyncio.run(main())
        container.reload()
        assert container.status == "running"  # closing the websocket leaves the container alone
    finally:
        container.remove(force=True)  # the daemon is the whole session's: leave it empty


def test_websocket_attach_detach_keys_and_end_of_container(daemon: BerthDaemon, client: docker.DockerClient) -> None:
    container = started(client, tty=True)

    async def main() -> None:
        url = f"http://docker/containers/{container.id}/attach/ws?stream=1&stdin=1&stdout=1&detachKeys=ctrl-a,a"
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=daemon.sock)) as session:
            async with session.ws_connect(url) as ws:
                await ws.send_bytes(b"keys\x10\x11")  # ordinary keys under ctrl-a,a
                data, _ = await ws_collect(ws, b"keys\x10\x11")
                assert data.endswith(b"keys\x10\x11")
                await ws.send_bytes(b"\x01a")
                msg = await ws.receive(timeout=20)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            container.reload()
            assert container.status == "running"
            async with session.ws_connect(url) as ws:  # the container's end closes the websocket
                await ws.send_bytes(b"x")
                await ws_collect(ws, b"x")
                container.kill()
                msg = await ws.receive(timeout=20)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg

    try:
        asyncio.run(main())
    finally:
        container.remove(force=True)


def test_websocket_attach_errors(daemon: BerthDaemon) -> None:
    code, body = api(daemon.sock, "GET", "/containers/nosuch-ws/attach/ws?stream=1", headers=WS_HEADERS)
    assert code == 404 and body == {"message": "No such container: nosuch-ws"}
    code, body = api(daemon.sock, "GET", "/containers/nosuch-ws/attach/ws?stream=1")
    assert code == 400 and "websocket" in body["message"]


def test_websocket_attach_of_old_api_versions(daemon: BerthDaemon, client: docker.DockerClient) -> None:
    """Before API 1.28 output goes out in text frames; before 1.42 the websocket always carries
    stdin, stdout and stderr, whatever the query asks."""
    container = started(client, tty=False, cmd=["sh", "-c", "echo ready; while read l; do echo err-$l >&2; done"])

    async def main() -> None:
        url = f"http://docker/v1.25/containers/{container.id}/attach/ws?stream=1"
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=daemon.sock)) as session:
            async with session.ws_connect(url) as ws:
                await ws.send_str("old\n")
                data, kinds = await ws_collect(ws, b"err-old\n")
                assert kinds == {aiohttp.WSMsgType.TEXT} and data.endswith(b"err-old\n")

    try:
        asyncio.run(main())
    finally:
        container.remove(force=True)


def test_attach_and_detach_events(client: docker.DockerClient, daemon: BerthDaemon) -> None:
    since = time.time() - 1
    container = started(client, tty=True)
    try:
        sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stream": 1})._sock
        try:
            sock.sendall(b"\x10\x11")
            assert closed_by_server(sock)
        finally:
            sock.close()

        def seen() -> list[str] | None:
            stream = client.events(since=since, until=time.time() + 0.2, filters={"container": container.id},
                                   decode=True)
            actions = [e["Action"] for e in stream if e["Action"] in ("attach", "detach")]
            return actions if len(actions) >= 2 else None

        assert wait_for("attach and detach events", seen) == ["attach", "detach"]
    finally:
        container.remove(force=True)
