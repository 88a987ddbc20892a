"""Exec edges clients rely on (issue 11 §1): the output's framing follows the `Tty` of the start
request (as dockerd's router decides it), the start's ConsoleSize, and detach keys on exec."""

from __future__ import annotations

import json
import time
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.utils.socket import frames_iter

from tests.e2e.test_attach_edges import ECHO_TTY, closed_by_server, drive, read_until
from tests.helpers import BerthDaemon, api, wait_for

pytestmark = pytest.mark.root

HELLO = ["sh", "-c", "echo hello out; echo hello err >&2"]


@pytest.fixture()
def client(daemon: BerthDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=daemon.host, version="1.50", timeout=60)
    yield c
    c.close()


@pytest.fixture()
def box(client: docker.DockerClient) -> Iterator[docker.models.containers.Container]:
    container = client.containers.run("busybox", ["sleep", "600"], detach=True)
    yield container
    container.remove(force=True)


def test_tty_exec_started_without_tty_gets_frames(client: docker.DockerClient, box) -> None:  # type: ignore[no-untyped-def]
    # docker-py's exec_start sends {"Tty": false} unless told: the frames carry the TTY's output
    eid = client.api.exec_create(box.id, HELLO, tty=True)["Id"]
    assert b"".join(client.api.exec_start(eid, stream=True)) == b"hello out\r\nhello err\r\n"
    eid = client.api.exec_create(box.id, HELLO, tty=True)["Id"]
    sock = client.api.exec_start(eid, socket=True)
    try:
        frames = list(frames_iter(sock, tty=False))
    finally:
        sock.close()
    assert b"".join(data for _, data in frames) == b"hello out\r\nhello err\r\n"
    assert {stream for stream, _ in frames} == {1}  # a TTY merges stderr into stdout
    eid = client.api.exec_create(box.id, HELLO, tty=True)["Id"]
    assert client.api.exec_start(eid) == b"hello out\r\nhello err\r\n"


def test_exec_framing_follows_the_start_request(client: docker.DockerClient, daemon: BerthDaemon, box) -> None:  # type: ignore[no-untyped-def]
    # created without a TTY, started with Tty: raw bytes, no frame headers
    eid = client.api.exec_create(box.id, ["sh", "-c", "echo plain"], tty=False)["Id"]
    assert client.api.exec_start(eid, tty=True) == b"plain\n"
    # without a TTY on both: frames, separable by stream
    eid = client.api.exec_create(box.id, HELLO)["Id"]
    assert client.api.exec_start(eid, demux=True) == (b"hello out\n", b"hello err\n")
    # exec_run with tty: raw, as the start says
    code, output = box.exec_run(HELLO, tty=True)
    assert code == 0 and output == b"hello out\r\nhello err\r\n"
    eid = client.api.exec_create(box.id, ["true"], tty=True)["Id"]
    sock = client.api.exec_start(eid, socket=True)
    sock.close()
    wait_for("exec ended", lambda: client.api.exec_inspect(eid)["Running"] is False or None)
    # the 101's Content-Type names the framing of the start (API 1.42+), whatever the create said
    for start_tty, kind in ((False, b"multiplexed-stream"), (True, b"raw-stream")):
        eid = client.api.exec_create(box.id, HELLO, tty=not start_tty)["Id"]
        head, body = raw_start(daemon.sock, eid, {"Tty": start_tty})
        assert head.startswith(b"HTTP/1.1 101 ") and b"Content-Type: application/vnd.docker." + kind in head
        assert body.startswith(b"hello") is start_tty


def raw_start(sock_path: str, exec_id: str, body: dict[str, bool]) -> tuple[bytes, bytes]:
    """POST /exec/{id}/start with the Upgrade headers the CLI sends: (response head, stream)."""
    payload = json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(sock_path)
        sock.sendall(b"POST /v1.50/exec/%s/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
                     b"Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (exec_id.encode(), len(payload), payload))
        data = read_until(sock, lambda d: False)  # to the end of the stream
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


# The size the exec's TTY gets, once set: the runtime sizes the pty after the process may have
# started (a first `stty size` can still see 0 0), so the script waits for it, a bounded while.
SIZE_SCRIPT = ("i=0; while [ $i -lt 500 ]; do s=$(stty size 2>/dev/null); "
               "[ -n \"$s\" ] && [ \"$s\" != \"0 0\" ] && break; i=$((i+1)); done; echo $s > /size")


def test_start_console_size_replaces_the_created_one(client: docker.DockerClient, daemon: BerthDaemon, box) -> None:  # type: ignore[no-untyped-def]
    for start, size in (({"ConsoleSize": [33, 111]}, b"33 111\n"), ({}, b"10 20\n")):
        code, body = api(daemon.sock, "POST", f"/containers/{box.id}/exec",
                         {"Cmd": ["sh", "-c", SIZE_SCRIPT], "Tty": True, "ConsoleSize": [10, 20]})
        assert code == 201, body
        code, _ = api(daemon.sock, "POST", f"/exec/{body['Id']}/start", {"Detach": True, "Tty": True, **start})
        assert code == 200
        exec_id = body["Id"]
        wait_for("stty ran", lambda: client.api.exec_inspect(exec_id)["Running"] is False or None)  # noqa: B023
        assert box.exec_run(["cat", "/size"]).output == size


def _running_in(box, marker: str) -> bool:  # type: ignore[no-untyped-def]
    return marker in box.exec_run(["ps", "-o", "args"]).output.decode()


@pytest.mark.parametrize("detach_keys, keys", [(None, [b"\x10\x11"]), ("ctrl-a,a", [b"\x01", b"a"])])
def test_tty_exec_detach_keys_end_the_session(client: docker.DockerClient, box, detach_keys, keys) -> None:  # type: ignore[no-untyped-def]
    eid = client.api.exec_create(box.id, ECHO_TTY, tty=True, stdin=True, detach_keys=detach_keys)["Id"]
    sock = client.api.exec_start(eid, socket=True, tty=True)._sock
    try:
        assert b"ready" in read_until(sock, lambda d: b"ready" in d)
        sock.sendall(b"typed")
        assert read_until(sock, lambda d: b"typed" in d).endswith(b"typed")
        for key in keys:
            sock.sendall(key)
        assert closed_by_server(sock)
    finally:
        sock.close()
    inspect = client.api.exec_inspect(eid)
    assert inspect["Running"] is True and inspect["ExitCode"] is None
    assert _running_in(box, "cat")  # the box runs only `sleep` besides


def test_keys_pass_through_a_non_tty_exec(client: docker.DockerClient, box) -> None:  # type: ignore[no-untyped-def]
    eid = client.api.exec_create(box.id, ["sh", "-c", "head -c 4"], stdin=True)["Id"]
    sock = client.api.exec_start(eid, socket=True)._sock
    try:
        sock.sendall(b"x\x10\x11y")
        data = read_until(sock, lambda d: d.endswith(b"x\x10\x11y"))
        assert data == b"\x01\x00\x00\x00\x00\x00\x00\x04x\x10\x11y", data
    finally:
        sock.close()
    wait_for("exec ended", lambda: client.api.exec_inspect(eid)["ExitCode"] == 0 or None)


def test_invalid_exec_detach_keys_answer_400(daemon: BerthDaemon, box) -> None:  # type: ignore[no-untyped-def]
    code, body = api(daemon.sock, "POST", f"/containers/{box.id}/exec", {"Cmd": ["true"], "DetachKeys": "ctrl-nope"})
    assert (code, body) == (400, {"message": "Invalid escape keys (ctrl-nope) provided"})


def test_cli_exec_uses_the_config_files_detach_keys(daemon: BerthDaemon, box) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory(prefix="berth-docker-config-") as config:
        (Path(config) / "config.json").write_text(json.dumps({"detachKeys": "ctrl-x,x"}))
        env = {**daemon.env, "DOCKER_CONFIG": config}
        rc, out = drive(env, ["exec", "-it", box.id, *ECHO_TTY],
                        [(b"ready", b"abc"), (b"abc", b"\x10\x11"), (b"abc\x10\x11", b"\x18x")])
    # ctrl-p ctrl-q reached the exec; ctrl-x x detached (the CLI reports "read escape sequence")
    assert b"abc\x10\x11" in out and b"read escape sequence" in out, out
    assert rc == 1
    assert _running_in(box, "cat")


def test_docker_py_sends_the_config_files_detach_keys(daemon: BerthDaemon, box, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory(prefix="berth-docker-config-") as config:
        (Path(config) / "config.json").write_text(json.dumps({"detachKeys": "ctrl-x,x"}))
        monkeypatch.setenv("DOCKER_CONFIG", config)
        configured = docker.APIClient(base_url=daemon.host, version="1.50", timeout=60)
    try:
        # exec create carries them as `detachKeys` (lower case: Go matches field names ignoring case)
        eid = configured.exec_create(box.id, ECHO_TTY, tty=True, stdin=True)["Id"]
        sock = configured.exec_start(eid, socket=True, tty=True)._sock
        try:
            assert b"ready" in read_until(sock, lambda d: b"ready" in d)
            sock.sendall(b"\x10\x11")  # not the keys any more: the exec gets them
            assert read_until(sock, lambda d: d.endswith(b"\x10\x11")).endswith(b"\x10\x11")
            sock.sendall(b"\x18x")
            assert closed_by_server(sock)
        finally:
            sock.close()
        assert configured.exec_inspect(eid)["Running"] is True
    finally:
        configured.close()


def _actions(client: docker.DockerClient, container_id: str, since: float) -> list[dict[str, object]]:
    """The container's events from `since` until now (the stream ends at `until`)."""
    stream = client.events(since=since, until=time.time() + 0.2, filters={"container": container_id},
                           decode=True)
    return [{"Action": e["Action"], **e["Actor"]["Attributes"]} for e in stream]


def test_exec_and_attach_publish_dockerds_events(client: docker.DockerClient, box) -> None:  # type: ignore[no-untyped-def]
    since = time.time() - 1
    eid = client.api.exec_create(box.id, ["sh", "-c", "exit 3"])["Id"]
    client.api.exec_start(eid)
    wait_for("the exec's exit", lambda: client.api.exec_inspect(eid)["ExitCode"] == 3)
    # a TTY exec left with the detach keys: exec_detach, the process runs on
    tty = client.api.exec_create(box.id, ECHO_TTY, tty=True, stdin=True)["Id"]
    sock = client.api.exec_start(tty, socket=True, tty=True)._sock
    try:
        assert b"ready" in read_until(sock, lambda d: b"ready" in d)
        sock.sendall(b"\x10\x11")
        assert closed_by_server(sock)
    finally:
        sock.close()
    # an attach (logs only: it returns at once) is an `attach` event
    client.api.attach(box.id, stream=False, logs=True)

    def seen() -> list[dict[str, object]] | None:
        found = [e for e in _actions(client, box.id, since) if e["Action"] != "create" and e["Action"] != "start"]
        return found if len(found) >= 7 else None

    events = wait_for("the exec and attach events", seen)
    assert [e["Action"] for e in events[:3]] == ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3",
                                                  "exec_die"]
    assert all(e["execID"] == eid and e["name"] == box.name for e in events[:3])
    assert events[2]["exitCode"] == "3"
    assert [e["Action"] for e in events[3:6]] == [f"exec_create: {' '.join(ECHO_TTY)}",
                                                  f"exec_start: {' '.join(ECHO_TTY)}", "exec_detach"]
    assert events[5]["execID"] == tty
    assert events[6]["Action"] == "attach" and "execID" not in events[6]
