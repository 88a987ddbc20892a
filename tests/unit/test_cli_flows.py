"""The `berth` client end to end against a fake Docker API daemon on a unix socket.

The fake speaks just enough of the Engine API (hijacked attach/exec with stdcopy frames, a
`/wait` that sends its headers at once, chunked logs) to check the request order and the exit
codes docker's CLI produces. Each test runs the real entry point in a subprocess.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socketserver
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

CID = "c" * 64
IMAGE_ID = "sha256:" + "a" * 64


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


class FakeDaemon:
    """Shared state of the fake: the calls it saw and the events that pace a run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.started = threading.Event()
        self.exited = threading.Event()
        self.tty = False
        self.exit_code = 3
        self.mode = ""

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _, _ in self.calls]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeDaemon

    def log_message(self, *args: Any) -> None:
        pass

    # -- plumbing ---------------------------------------------------------------------------
    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        path = re.sub(r"^/v\d+\.\d+", "", url.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding") == "chunked":
            raw = self._read_chunked()
        body = json.loads(raw) if raw and self.headers.get("Content-Type") == "application/json" else raw
        self.fake.calls.append((method, path, query, body))
        for pattern, handler in ROUTES.get(method, []):
            match = re.fullmatch(pattern, path)
            if match:
                handler(self, *match.groups(), query=query, body=body)
                return
        self.reply(404, {"message": "page not found"})

    def _read_chunked(self) -> bytes:
        data = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def reply(self, status: int, payload: Any = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Api-Version", "1.50")
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def begin_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def upgrade(self) -> None:
        self.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                         b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    # -- endpoints --------------------------------------------------------------------------
    def create(self, query: dict, body: dict) -> None:
        if body["Image"] in ("missing", "badpull"):
            self.reply(404, {"message": f"No such image: {body['Image']}:latest"})
            return
        self.fake.tty = bool(body.get("Tty"))
        self.reply(201, {"Id": CID, "Warnings": ["a warning"] if body["Image"] == "warn" else []})

    def pull(self, query: dict, body: Any) -> None:
        if query["fromImage"][0].endswith("badpull"):
            self.reply(404, {"message": "pull access denied for badpull, repository does not exist"})
            return
        self.reply(404, {"message": "no registry here"})

    def attach(self, cid: str, query: dict, body: Any) -> None:
        self.upgrade()
        self.fake.started.wait(5)
        stdin = b""
        if "hang" in self.fake.mode:
            self.fake.exited.wait(5)
        elif "stdin" in query:
            while chunk := self.connection.recv(4096):
                stdin += chunk
        if self.fake.tty:
            self.wfile.write(b"tty-out\r\n" + stdin)
        else:
            self.wfile.write(frame(1, b"hello\n") + frame(2, b"oops\n") + (frame(1, stdin) if stdin else b""))
        if "detach" not in self.fake.mode:
            self.fake.exited.set()

    def wait(self, cid: str, query: dict, body: Any) -> None:
        self.begin_chunked("application/json")
        self.fake.exited.wait(5)
        self.chunk(json.dumps({"StatusCode": self.fake.exit_code}).encode() + b"\n")
        self.chunk(b"")

    def start(self, cid: str, query: dict, body: Any) -> None:
        image = next(b["Image"] for m, p, q, b in self.fake.calls if p == "/containers/create")
        if image == "badcmd":
            self.reply(400, {"message": 'exec: "nope": executable file not found in $PATH'})
            self.fake.exited.set()
            return
        self.fake.started.set()
        self.reply(204)

    def inspect(self, cid: str, query: dict, body: Any) -> None:
        if cid != "web" and cid != CID:
            self.reply(404, {"message": f"No such container: {cid}"})
            return
        self.reply(200, {"Id": CID, "Name": "/web", "Config": {"Tty": False}, "State": {"Running": True}})

    def logs(self, cid: str, query: dict, body: Any) -> None:
        self.begin_chunked("application/vnd.docker.multiplexed-stream")
        self.chunk(frame(1, b"line1\n")[:5])
        self.chunk(frame(1, b"line1\n")[5:] + frame(2, b"err1\n"))
        self.chunk(b"")

    def kill(self, cid: str, query: dict, body: Any) -> None:
        self.fake.exit_code = 130
        self.fake.exited.set()
        self.reply(204)

    def stop(self, cid: str, query: dict, body: Any) -> None:
        self.reply(204) if cid == "web" else self.reply(404, {"message": f"No such container: {cid}"})

    def exec_create(self, cid: str, query: dict, body: Any) -> None:
        self.reply(201, {"Id": "e1"})

    def exec_start(self, eid: str, query: dict, body: Any) -> None:
        if body.get("Detach"):
            self.reply(200)
            return
        self.upgrade()
        self.wfile.write(frame(1, b"exec-out\n"))

    def exec_inspect(self, eid: str, query: dict, body: Any) -> None:
        self.reply(200, {"ID": eid, "Running": False, "ExitCode": 4})

    def list_containers(self, query: dict, body: Any) -> None:
        self.reply(200, [{"Id": CID, "Names": ["/web"], "Image": "busybox", "Command": "sleep 100",
                          "Created": 0, "Status": "Up 2 seconds",
                          "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]}])

    def list_images(self, query: dict, body: Any) -> None:
        self.reply(200, [{"Id": IMAGE_ID, "RepoTags": ["busybox:latest"], "Created": 0, "Size": 2048000}])

    def image_inspect(self, name: str, query: dict, body: Any) -> None:
        if name == "busybox":
            self.reply(200, {"Id": IMAGE_ID, "RepoTags": ["busybox:latest"]})
        else:
            self.reply(404, {"message": f"No such image: {name}"})

    def bootstrap(self, query: dict, body: Any) -> None:
        self.reply(200, {"Id": IMAGE_ID})

    def rmi(self, name: str, query: dict, body: Any) -> None:
        self.reply(200, [{"Untagged": f"{name}:latest"}, {"Deleted": IMAGE_ID}])

    def load(self, query: dict, body: Any) -> None:
        self.begin_chunked("application/json")
        self.chunk(json.dumps({"stream": f"Loaded image: busybox:latest ({len(body)} bytes)\n"}).encode())
        self.chunk(b"")

    def save(self, query: dict, body: Any) -> None:
        self.begin_chunked("application/x-tar")
        self.chunk(b"TAR:" + ",".join(query["names"]).encode())
        self.chunk(b"")

    def version(self, query: dict, body: Any) -> None:
        self.reply(200, {"Version": "0.1.0", "ApiVersion": "1.50", "MinAPIVersion": "1.24", "Os": "linux",
                         "Arch": "amd64", "Platform": {"Name": "berth"}})

    def ping(self, query: dict, body: Any) -> None:
        self.reply(200)


ROUTES = {
    "POST": [
        (r"/containers/create", Handler.create),
        (r"/images/create", Handler.pull),
        (r"/containers/(\w+)/attach", Handler.attach),
        (r"/containers/(\w+)/wait", Handler.wait),
        (r"/containers/(\w+)/start", Handler.start),
        (r"/containers/(\w+)/stop", Handler.stop),
        (r"/containers/(\w+)/kill", Handler.kill),
        (r"/containers/(\w+)/exec", Handler.exec_create),
        (r"/exec/(\w+)/start", Handler.exec_start),
        (r"/berth/images/bootstrap", Handler.bootstrap),
        (r"/images/load", Handler.load),
    ],
    "GET": [
        (r"/containers/json", Handler.list_containers),
        (r"/containers/(\w+)/json", Handler.inspect),
        (r"/containers/(\w+)/logs", Handler.logs),
        (r"/exec/(\w+)/json", Handler.exec_inspect),
        (r"/images/json", Handler.list_images),
        (r"/images/get", Handler.save),
        (r"/images/(.+)/json", Handler.image_inspect),
        (r"/version", Handler.version),
        (r"/_ping", Handler.ping),
    ],
    "DELETE": [(r"/images/(.+)", Handler.rmi)],
}


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # BaseHTTPRequestHandler wants an address tuple for its logs
        conn, _ = self.socket.accept()
        return conn, ("fake", 0)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that detach or exit early break pipes; that is what some tests do


@pytest.fixture
def daemon(tmp_path: Path):
    fake = FakeDaemon()
    handler = type("BoundHandler", (Handler,), {"fake": fake})
    sock = str(tmp_path / "docker.sock")
    server = Server(sock, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.host = f"unix://{sock}"
    yield fake
    server.shutdown()
    server.server_close()


def berth(daemon: FakeDaemon, *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": daemon.host}
    return subprocess.run([sys.executable, "-m", "berth.cli.main", *argv], input=stdin,
                          capture_output=True, env=env, timeout=30)


def test_run_attached_demuxes_and_exits_with_status(daemon: FakeDaemon) -> None:
    result = berth(daemon, "run", "--rm", "busybox", "echo", "hi")
    assert result.returncode == 3, result.stderr
    assert result.stdout == b"hello\n" and result.stderr == b"oops\n"
    order = [p for p in daemon.paths() if not p.endswith("/_ping")]
    assert order == ["POST /containers/create", f"POST /containers/{CID}/attach",
                     f"POST /containers/{CID}/wait", f"POST /containers/{CID}/start"]
    wait_query = daemon.calls[2][2]
    assert wait_query == {"condition": ["removed"]}
    assert daemon.calls[0][3]["Cmd"] == ["echo", "hi"]


def test_run_interactive_forwards_stdin_then_half_closes(daemon: FakeDaemon) -> None:
    result = berth(daemon, "run", "-i", "busybox", "cat", stdin=b"piped input\n")
    assert result.returncode == 3, result.stderr
    assert result.stdout == b"hello\npiped input\n"
    attach_query = daemon.calls[1][2]
    assert attach_query["stdin"] == ["1"]


def test_run_tty_without_terminal_is_rejected(daemon: FakeDaemon) -> None:
    result = berth(daemon, "run", "-it", "busybox", "sh")
    assert result.returncode == 1
    assert b"the input device is not a TTY" in result.stderr


def test_run_tty_output_is_raw(daemon: FakeDaemon) -> None:
    result = berth(daemon, "run", "-t", "busybox", "sh")
    assert result.returncode == 3, result.stderr
    assert result.stdout == b"tty-out\r\n"


def test_run_detached_prints_full_id(daemon: FakeDaemon) -> None:
    result = berth(daemon, "run", "-d", "--name", "web", "-p", "8080:80", "warn")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == CID + "\n"
    assert b"WARNING: a warning" in result.stderr
    method, path, query, body = daemon.calls[0]
    assert query == {"name": ["web"]}
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}


def test_run_missing_image_tries_pull_then_exits_125(daemon: FakeDaemon) -> None:
    result = berth(daemon, "run", "badpull")
    assert result.returncode == 125
    err = result.stderr.decode()
    assert "Unable to find image 'badpull:latest' locally" in err
    assert "Error response from daemon: pull access denied for badpull" in err
    pull = next(c for c in daemon.calls if c[1] == "/images/create")
    assert pull[2] == {"fromImage": ["docker.io/library/badpull"], "tag": ["latest"]}


def test_run_start_failure_maps_to_127(daemon: FakeDaemon) -> None:
    result = berth(daemon, "run", "badcmd")
    assert result.returncode == 127
    assert b"executable file not found" in result.stderr
    assert b"Traceback" not in result.stderr


def test_exec_exits_with_exec_code(daemon: FakeDaemon) -> None:
    result = berth(daemon, "exec", "-e", "A=1", "web", "ls", "-l")
    assert result.returncode == 4, result.stderr
    assert result.stdout == b"exec-out\n"
    create = next(c for c in daemon.calls if c[1] == "/containers/web/exec")
    assert create[3]["Cmd"] == ["ls", "-l"] and create[3]["Env"] == ["A=1"]


def test_exec_detached(daemon: FakeDaemon) -> None:
    result = berth(daemon, "exec", "-d", "web", "sleep", "1")
    assert result.returncode == 0, result.stderr
    start = next(c for c in daemon.calls if c[1] == "/exec/e1/start")
    assert start[3] == {"Detach": True, "Tty": False}


def test_logs_demuxes_split_frames(daemon: FakeDaemon) -> None:
    result = berth(daemon, "logs", "--tail", "5", "web")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"line1\n" and result.stderr == b"err1\n"
    logs = next(c for c in daemon.calls if c[1].endswith("/logs"))
    assert logs[2] == {"stdout": ["1"], "stderr": ["1"], "tail": ["5"]}


def test_ps_table(daemon: FakeDaemon) -> None:
    result = berth(daemon, "ps", "-a", "-f", "name=web")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert lines[1].startswith(CID[:12]) and "0.0.0.0:8080->80/tcp" in lines[1] and lines[1].endswith("web")
    query = daemon.calls[-1][2]
    assert query == {"all": ["1"], "filters": ['{"name":{"web":true}}']}


def test_images_and_quiet(daemon: FakeDaemon) -> None:
    table = berth(daemon, "images").stdout.decode().splitlines()
    assert table[1].split()[:3] == ["busybox", "latest", "a" * 12] and table[1].endswith("2.05MB")
    assert berth(daemon, "images", "-q").stdout == b"a" * 12 + b"\n"


def test_stop_reports_each_and_fails_if_any(daemon: FakeDaemon) -> None:
    result = berth(daemon, "stop", "-t", "3", "web", "ghost")
    assert result.returncode == 1
    assert result.stdout == b"web\n"
    assert result.stderr == b"Error response from daemon: No such container: ghost\n"
    assert daemon.calls[-2][2] == {"t": ["3"]}


def test_inspect_probes_and_reports_missing(daemon: FakeDaemon) -> None:
    result = berth(daemon, "inspect", "busybox", "ghost")
    assert result.returncode == 1
    assert json.loads(result.stdout)[0]["Id"] == IMAGE_ID
    assert result.stderr == b"Error: No such object: ghost\n"
    formatted = berth(daemon, "inspect", "-f", "{{.State.Running}} {{.Name}}", "web")
    assert formatted.stdout == b"true /web\n"


def test_image_bootstrap(daemon: FakeDaemon) -> None:
    result = berth(daemon, "image", "bootstrap", "busybox")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == IMAGE_ID + "\n"
    method, path, query, _ = daemon.calls[-1]
    assert (method, path, query) == ("POST", "/berth/images/bootstrap", {"name": ["busybox"], "tag": ["latest"]})


def test_rmi_load_save(daemon: FakeDaemon, tmp_path: Path) -> None:
    assert berth(daemon, "rmi", "-f", "busybox").stdout.decode() == f"Untagged: busybox:latest\nDeleted: {IMAGE_ID}\n"
    assert daemon.calls[-1][2] == {"force": ["1"]}
    archive = tmp_path / "img.tar"
    archive.write_bytes(b"x" * 1000)
    loaded = berth(daemon, "load", "-i", str(archive))
    assert loaded.stdout == b"Loaded image: busybox:latest (1000 bytes)\n", loaded.stderr
    piped = berth(daemon, "load", stdin=b"y" * 10)
    assert piped.stdout == b"Loaded image: busybox:latest (10 bytes)\n", piped.stderr
    out = tmp_path / "out.tar"
    assert berth(daemon, "save", "-o", str(out), "busybox", "alpine").returncode == 0
    assert out.read_bytes() == b"TAR:busybox,alpine"


def test_version_and_errors(daemon: FakeDaemon) -> None:
    result = berth(daemon, "version")
    assert result.returncode == 0 and b"Server: berth" in result.stdout
    assert b"1.50 (minimum version 1.24)" in result.stdout


def test_unreachable_daemon(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    result = subprocess.run([sys.executable, "-m", "berth.cli.main", "ps"], capture_output=True, env=env, timeout=30)
    assert result.returncode == 1
    expected = f"Cannot connect to the berth daemon at unix://{tmp_path}/none.sock: is the daemon running?\n"
    assert result.stderr.decode() == expected
    flag = subprocess.run([sys.executable, "-m", "berth.cli.main", "-H", f"unix://{tmp_path}/x.sock", "images"],
                          capture_output=True, env=env, timeout=30)
    assert f"unix://{tmp_path}/x.sock" in flag.stderr.decode()


def test_help_lists_verbs_and_usage_errors_exit_125() -> None:
    result = subprocess.run([sys.executable, "-m", "berth.cli.main", "--help"], capture_output=True, timeout=30)
    text = result.stdout.decode()
    for verb in ("run", "ps", "logs", "exec", "stop", "rm", "images", "inspect", "tag", "rmi", "load", "save",
                 "import", "start", "kill", "restart", "version", "info", "image"):
        assert re.search(rf"^\s+{verb}\s+\S", text, re.M), verb
    bad = subprocess.run([sys.executable, "-m", "berth.cli.main", "ps", "--bogus"], capture_output=True, timeout=30)
    assert bad.returncode == 125


def test_sigint_is_forwarded_to_the_container(daemon: FakeDaemon) -> None:
    daemon.mode = "hang"
    env = {**os.environ, "DOCKER_HOST": daemon.host}
    proc = subprocess.Popen([sys.executable, "-m", "berth.cli.main", "run", "busybox", "sleep", "100"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert daemon.started.wait(10)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    kill = next(c for c in daemon.calls if c[1].endswith("/kill"))
    assert kill[2] == {"signal": ["INT"]}


def test_tty_detach_keys_leave_container_running(daemon: FakeDaemon) -> None:
    daemon.mode = "detach"
    master, slave = pty.openpty()
    env = {**os.environ, "DOCKER_HOST": daemon.host}
    proc = subprocess.Popen([sys.executable, "-m", "berth.cli.main", "run", "-it", "busybox", "sh"],
                            stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    try:
        assert daemon.started.wait(10)
        os.write(master, b"echo hi\r\x10\x11")
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    assert not any(c[1].endswith(("/kill", "/stop")) for c in daemon.calls)
    create = daemon.calls[0][3]
    assert create["Tty"] and create["AttachStdin"] and create["HostConfig"]["ConsoleSize"] != [0, 0]
