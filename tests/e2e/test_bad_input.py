"""Bad input on every API surface gets a clear error in the wire's own shape and loses nothing.

One private daemon serves the Docker API (unix socket), the registry and the AWS JSON API (TCP).
A table of malformed requests runs against every route: invalid JSON, wrong JSON types, missing
fields, unknown ids, path traversal in names, absurd query values, oversized heads, truncated
and cut bodies. Each answer must be a 4xx (or the route's documented status) in the wire's error
shape (Docker `{"message"}`, registry `{"errors": [...]}`, AWS `{"__type", "message"}`), carry no
traceback, leave the daemon serving and its log free of unhandled exceptions. After the table:
no stray temp files, nothing half-created, nothing written outside the daemon's root.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import secrets
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BERTH, BerthDaemon, UnixHTTPConnection, api, free_port

pytestmark = pytest.mark.root

TOKEN = secrets.token_hex(4)
ESCAPE = f"berth-escape-{TOKEN}"          # any host file whose name holds this escaped the root
SECRET = f"BERTH-SECRET-{TOKEN}"          # content of a host file no request may ever return
UP = "../" * 12                           # enough `..` to climb from any depth of the root to /
ECR = "AmazonEC2ContainerRegistry_V20150921"
LOG_ALARMS = ("Traceback", "exception was never retrieved", "Error handling request", "Unhandled exception")
ZERO = "sha256:" + "0" * 64


# --- crafted payloads ------------------------------------------------------------------------


def _tar(members: list[tuple[str, str, bytes | str]]) -> bytes:
    """(kind, name, data) with kind file|dir|symlink|hardlink; data is the link target for links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            info.linkname = str(data)
            tar.addfile(info)
    return buf.getvalue()


def _escaping_entries(tag: str) -> list[tuple[str, str, bytes | str]]:
    """A layer/context/archive tar that tries every way out of the directory it lands in."""
    return [
        ("file", f"{UP}tmp/{ESCAPE}-{tag}-dotdot", b"x"),
        ("file", f"/tmp/{ESCAPE}-{tag}-abs", b"x"),
        ("symlink", "abs-link", "/tmp"),
        ("file", f"abs-link/{ESCAPE}-{tag}-via-abs-link", b"x"),
        ("symlink", "rel-link", f"{UP}tmp"),
        ("file", f"rel-link/{ESCAPE}-{tag}-via-rel-link", b"x"),
        ("hardlink", "hard", f"{UP}tmp/{ESCAPE}-hardlink-target"),
        ("file", "inside.txt", b"inside"),
    ]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _saved_image(layer: bytes, config_name: str = "config.json", layer_name: str = "layer.tar",
                 repo_tag: str = "bi-evil:latest") -> bytes:
    """A `docker save` archive holding `layer` (names in manifest.json may point anywhere)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]}}).encode()
    manifest = json.dumps([{"Config": config_name, "RepoTags": [repo_tag], "Layers": [layer_name]}]).encode()
    return _tar([("file", "manifest.json", manifest), ("file", "config.json", config),
                 ("file", "layer.tar", layer)])


def _context(dockerfile: str, extra: Sequence[tuple[str, str, bytes | str]] = ()) -> bytes:
    return _tar([("file", "Dockerfile", dockerfile.encode()), *extra])


# --- the daemon --------------------------------------------------------------------------------


@dataclass
class Env:
    d: BerthDaemon
    registry_port: int
    aws_port: int
    container: str = ""
    marker: Path = Path()
    hardlink_target: Path = Path()
    baseline: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.d.root


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    reg, aws = free_port(), free_port()
    d = BerthDaemon(extra_args=("--registry-addr", f"127.0.0.1:{reg}", "--aws-addr", f"127.0.0.1:{aws}",
                                "--registry-anonymous-push", "true"))
    marker = Path("/tmp") / f"berth-marker-{TOKEN}"
    marker.write_text(SECRET)
    hardlink_target = Path("/tmp") / f"{ESCAPE}-hardlink-target"
    hardlink_target.write_text(SECRET)
    try:
        d.start()
        d.bootstrap_busybox()
        status, body = api(d.sock, "POST", "/containers/create?name=bi-target", {"Image": "busybox", "Cmd": ["true"]})
        assert status == 201, body
        e = Env(d, reg, aws, container=body["Id"], marker=marker, hardlink_target=hardlink_target)
        assert aws_call(e, "CreateRepository", {"repositoryName": "bi-repo"})[0] == 200
        e.baseline = inventory(e)
        yield e
    finally:
        d.destroy()
        marker.unlink(missing_ok=True)
        hardlink_target.unlink(missing_ok=True)
        for path in Path("/tmp").glob(f"*{ESCAPE}*"):
            path.unlink(missing_ok=True)


def inventory(e: Env) -> dict[str, Any]:
    """What exists, per API: the after-table check compares this with the start."""
    sock = e.d.sock
    return {
        "containers": sorted(c["Id"] for c in api(sock, "GET", "/containers/json?all=1")[1]),
        "images": sorted(i["Id"] for i in api(sock, "GET", "/images/json?all=1")[1]),
        "tags": sorted(t for i in api(sock, "GET", "/images/json?all=1")[1] for t in i.get("RepoTags") or []),
        "volumes": sorted(v["Name"] for v in api(sock, "GET", "/volumes")[1].get("Volumes") or []),
        "networks": sorted(n["Name"] for n in api(sock, "GET", "/networks")[1]),
        "repositories": sorted(r["repositoryName"] for r in aws_call(e, "DescribeRepositories", {})[1]["repositories"]),
        "catalog": registry_get(e, "/v2/_catalog")[1].get("repositories"),
    }


# --- one request, on each surface ---------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def docker_call(e: Env, method: str, path: str, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 20) -> Answer:
    conn = UnixHTTPConnection(e.d.sock, timeout=timeout)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return Answer(resp.status, payload, {k.lower(): v for k, v in resp.getheaders()})


def raw_exchange(e: Env, data: bytes, shut_write: bool = True, timeout: float = 20) -> bytes:
    """Send bytes as they are (cut bodies, broken heads) and read until the daemon closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(e.d.sock)
        s.sendall(data)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while piece := s.recv(65536):
            chunks.append(piece)
    return b"".join(chunks)


def tcp_call(port: int, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return Answer(resp.status, payload, {k.lower(): v for k, v in resp.getheaders()})


def aws_call(e: Env, operation: str, params: Any, raw: bytes | None = None) -> tuple[int, Any]:
    answer = aws_raw(e, operation, raw if raw is not None else json.dumps(params).encode())
    return answer.status, answer.json()


def aws_raw(e: Env, operation: str, body: bytes, target: str | None = None) -> Answer:
    """Signed with the daemon's keys (SigV4 passes), so the request reaches the protocol layer."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": target if target is not None else f"{ECR}.{operation}"}
    if target == "":
        headers.pop("X-Amz-Target")
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{e.aws_port}/", data=body, headers=headers)
    SigV4Auth(Credentials(*e.d.aws_credentials()), "ecr", "us-east-1").add_auth(request)
    return tcp_call(e.aws_port, "POST", "/", body, dict(request.headers.items()))


def registry_get(e: Env, path: str) -> tuple[int, Any]:
    answer = tcp_call(e.registry_port, "GET", path)
    return answer.status, answer.json()


# --- the checks every answer gets ----------------------------------------------------------------


class LogWatch:
    """The part of the daemon log written while a case ran."""

    def __init__(self, e: Env) -> None:
        self.path = e.d.base / "daemon.log"
        self.start = self.path.stat().st_size

    def new_text(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace")


def assert_healthy(e: Env, watch: LogWatch, case: str) -> None:
    assert api(e.d.sock, "GET", "/_ping")[0] == 200, f"{case}: Docker API stopped serving"
    assert tcp_call(e.registry_port, "GET", "/v2/").status in (200, 401), f"{case}: registry stopped serving"
    assert aws_raw(e, "DescribeRegistry", b"{}").status == 200, f"{case}: AWS API stopped serving"
    logged = watch.new_text()
    for alarm in LOG_ALARMS:
        assert alarm not in logged, f"{case}: the daemon logged an unhandled exception:\n{logged[-3000:]}"
    assert SECRET not in logged, f"{case}: a host file's content reached the log"


def assert_docker_error(answer: Answer, expect: tuple[int, ...], case: str) -> None:
    text = answer.body.decode(errors="replace")
    assert "Traceback" not in text and SECRET not in text, f"{case}: {text[:2000]}"
    assert answer.status in expect, f"{case}: status {answer.status}, want {expect}: {text[:500]}"
    if answer.status >= 400:
        body = answer.json()
        assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], \
            f"{case}: not Docker's error shape: {text[:500]}"
    elif answer.status == 200 and answer.headers.get("content-type", "").startswith("application/json") \
            and "\n" in text.strip():
        # a stream that began before the failure carries it as Docker's errorDetail
        assert "errorDetail" in text, f"{case}: stream without errorDetail: {text[:500]}"


def assert_registry_error(answer: Answer, expect: tuple[int, ...], case: str) -> None:
    text = answer.body.decode(errors="replace")
    assert "Traceback" not in text and SECRET not in text, f"{case}: {text[:2000]}"
    assert answer.status in expect, f"{case}: status {answer.status}, want {expect}: {text[:500]}"
    if answer.status >= 400 and answer.status != 431:
        errors = answer.json().get("errors")
        assert isinstance(errors, list) and errors and all(
            isinstance(x.get("code"), str) and isinstance(x.get("message"), str) for x in errors), \
            f"{case}: not the registry's error shape: {text[:500]}"


def assert_aws_error(answer: Answer, case: str, ok_too: bool = False) -> None:
    text = answer.body.decode(errors="replace")
    assert "Traceback" not in text and SECRET not in text, f"{case}: {text[:2000]}"
    if ok_too and answer.status == 200:
        return
    assert answer.status == 400, f"{case}: status {answer.status}: {text[:500]}"
    body = answer.json()
    assert isinstance(body.get("__type"), str) and isinstance(body.get("message"), str), \
        f"{case}: not AWS's error shape: {text[:500]}"
    assert answer.headers.get("x-amzn-requestid"), f"{case}: no request id"


# --- the Docker API table ------------------------------------------------------------------------

BAD, MISSING, CONFLICT = (400,), (404,), (409,)
LOAD = (200,)  # dockerd answers a failed load with 200 and an errorDetail in the stream
CLIENT = (400, 404, 409)
C = "{c}"  # replaced by the created container's id


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    body: Any = None
    raw: bytes | None = None
    expect: tuple[int, ...] = BAD
    headers: tuple[tuple[str, str], ...] = ()


NOT_JSON = b'{"Image": '
DOCKER_ROWS: dict[str, Row] = {
    # containers/create: bodies
    "create-invalid-json": Row("POST", "/containers/create", raw=NOT_JSON),
    "create-list-body": Row("POST", "/containers/create", body=[]),
    "create-string-body": Row("POST", "/containers/create", body="busybox"),
    "create-null-body": Row("POST", "/containers/create", raw=b"null"),
    "create-empty-body": Row("POST", "/containers/create", raw=b""),
    "create-no-image": Row("POST", "/containers/create", body={"Cmd": ["true"]}),
    "create-image-int": Row("POST", "/containers/create", body={"Image": 5}),
    "create-image-null": Row("POST", "/containers/create", body={"Image": None}),
    "create-image-unknown": Row("POST", "/containers/create", body={"Image": "bi-nosuch:1"}, expect=MISSING),
    "create-image-traversal": Row("POST", "/containers/create", body={"Image": "../../etc"}, expect=(400, 404)),
    "create-cmd-int": Row("POST", "/containers/create", body={"Image": "busybox", "Cmd": 5}),
    "create-cmd-list-of-ints": Row("POST", "/containers/create", body={"Image": "busybox", "Cmd": [1, 2]}),
    "create-env-string": Row("POST", "/containers/create", body={"Image": "busybox", "Env": "A=1"}),
    "create-env-dict": Row("POST", "/containers/create", body={"Image": "busybox", "Env": {"A": "1"}}),
    "create-labels-list": Row("POST", "/containers/create", body={"Image": "busybox", "Labels": ["a"]}),
    "create-labels-int-values": Row("POST", "/containers/create", body={"Image": "busybox", "Labels": {"a": 1}}),
    "create-exposed-list": Row("POST", "/containers/create", body={"Image": "busybox", "ExposedPorts": ["80"]}),
    "create-exposed-bad-port": Row("POST", "/containers/create",
                                   body={"Image": "busybox", "ExposedPorts": {"99999/tcp": {}}}),
    "create-hostconfig-list": Row("POST", "/containers/create", body={"Image": "busybox", "HostConfig": []}),
    "create-hostconfig-string": Row("POST", "/containers/create", body={"Image": "busybox", "HostConfig": "x"}),
    "create-memory-string": Row("POST", "/containers/create",
                                body={"Image": "busybox", "HostConfig": {"Memory": "lots"}}),
    "create-memory-huge": Row("POST", "/containers/create",
                              body={"Image": "busybox", "HostConfig": {"Memory": 10 ** 30}}),
    "create-memory-negative": Row("POST", "/containers/create",
                                  body={"Image": "busybox", "HostConfig": {"Memory": -5}}),
    "create-cpushares-float-inf": Row("POST", "/containers/create",
                                      raw=b'{"Image": "busybox", "HostConfig": {"CpuShares": 1e400}}'),
    "create-nanocpus-huge": Row("POST", "/containers/create",
                                body={"Image": "busybox", "HostConfig": {"NanoCpus": 10 ** 30}}),
    "create-pids-string": Row("POST", "/containers/create",
                              body={"Image": "busybox", "HostConfig": {"PidsLimit": "many"}}),
    "create-ulimits-bad": Row("POST", "/containers/create",
                              body={"Image": "busybox", "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": "x"}]}}),
    "create-portbindings-list": Row("POST", "/containers/create",
                                    body={"Image": "busybox", "HostConfig": {"PortBindings": ["80"]}}),
    "create-hostport-huge": Row("POST", "/containers/create", body={
        "Image": "busybox", "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}}),
    "create-hostport-word": Row("POST", "/containers/create", body={
        "Image": "busybox", "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "eighty"}]}}}),
    "create-portbinding-string": Row("POST", "/containers/create", body={
        "Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": "8080"}}}),
    "create-restart-bogus": Row("POST", "/containers/create",
                                body={"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "bogus"}}}),
    "create-restart-count-string": Row("POST", "/containers/create", body={
        "Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": "x"}}}),
    "create-network-unknown": Row("POST", "/containers/create",
                                  body={"Image": "busybox", "HostConfig": {"NetworkMode": "bi-nosuch"}},
                                  expect=(400, 404)),
    "create-binds-string": Row("POST", "/containers/create",
                               body={"Image": "busybox", "HostConfig": {"Binds": "/tmp:/x"}}),
    "create-bind-relative": Row("POST", "/containers/create",
                                body={"Image": "busybox", "HostConfig": {"Binds": [f"{UP}tmp/{ESCAPE}:/x"]}}),
    "create-bind-bad-mode": Row("POST", "/containers/create",
                                body={"Image": "busybox", "HostConfig": {"Binds": ["/tmp:/x:zz"]}}),
    # moby's parser reads a one-part spec as a destination: an anonymous volume at /tmp
    "create-bind-destination-only": Row("POST", "/containers/create",
                                        body={"Image": "busybox", "HostConfig": {"Binds": ["/tmp"]}}, expect=(201,)),
    "create-bind-destination-and-mode": Row("POST", "/containers/create",
                                            body={"Image": "busybox", "HostConfig": {"Binds": ["/tmp:rw"]}}),
    "create-mount-volume-traversal": Row("POST", "/containers/create", body={
        "Image": "busybox",
        "HostConfig": {"Mounts": [{"Type": "volume", "Source": f"{UP}tmp/{ESCAPE}", "Target": "/x"}]}}),
    "create-mount-bad-type": Row("POST", "/containers/create", body={
        "Image": "busybox", "HostConfig": {"Mounts": [{"Type": "bogus", "Source": "a", "Target": "/x"}]}}),
    "create-mount-relative-target": Row("POST", "/containers/create", body={
        "Image": "busybox", "HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "x"}]}}),
    "create-mounts-dict": Row("POST", "/containers/create",
                              body={"Image": "busybox", "HostConfig": {"Mounts": {"a": "b"}}}),
    "create-volumes-list": Row("POST", "/containers/create", body={"Image": "busybox", "Volumes": ["/x"]}),
    "create-volumes-relative": Row("POST", "/containers/create", body={"Image": "busybox", "Volumes": {"x": {}}}),
    "create-workdir-relative": Row("POST", "/containers/create", body={"Image": "busybox", "WorkingDir": "rel"}),
    "create-workdir-int": Row("POST", "/containers/create", body={"Image": "busybox", "WorkingDir": 5}),
    "create-stopsignal-bogus": Row("POST", "/containers/create",
                                   body={"Image": "busybox", "StopSignal": "SIGBOGUS"}),
    "create-healthcheck-list": Row("POST", "/containers/create", body={"Image": "busybox", "Healthcheck": []}),
    "create-devices-bad": Row("POST", "/containers/create", body={
        "Image": "busybox", "HostConfig": {"Devices": [{"PathOnHost": f"{UP}tmp/{ESCAPE}"}]}}),
    # CapAdd is a StrSlice: one string is one capability (dockerd takes "ALL" so), here an unknown one
    "create-capadd-string": Row("POST", "/containers/create",
                                body={"Image": "busybox", "HostConfig": {"CapAdd": "CAP_BOGUS"}}),
    "create-capadd-bogus": Row("POST", "/containers/create",
                               body={"Image": "busybox", "HostConfig": {"CapAdd": ["CAP_BOGUS"]}}),
    "create-securityopt-bogus": Row("POST", "/containers/create",
                                    body={"Image": "busybox", "HostConfig": {"SecurityOpt": ["bogus"]}}),
    "create-seccomp-file": Row("POST", "/containers/create", body={
        "Image": "busybox", "HostConfig": {"SecurityOpt": [f"seccomp={UP}etc/passwd"]}}),
    "create-tmpfs-list": Row("POST", "/containers/create", body={"Image": "busybox", "HostConfig": {"Tmpfs": ["/x"]}}),
    "create-dns-string": Row("POST", "/containers/create", body={"Image": "busybox", "HostConfig": {"Dns": "1.1.1.1"}}),
    "create-extrahosts-bad": Row("POST", "/containers/create",
                                 body={"Image": "busybox", "HostConfig": {"ExtraHosts": ["nocolon"]}}),
    "create-logconfig-bogus": Row("POST", "/containers/create",
                                  body={"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "bogus"}}}),
    "create-networkingconfig-list": Row("POST", "/containers/create",
                                        body={"Image": "busybox", "NetworkingConfig": []}),
    "create-endpoints-bad": Row("POST", "/containers/create", body={
        "Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"bridge": "x"}}}),
    "create-user-list": Row("POST", "/containers/create", body={"Image": "busybox", "User": ["root"]}),
    "create-entrypoint-dict": Row("POST", "/containers/create", body={"Image": "busybox", "Entrypoint": {"a": 1}}),
    "create-name-traversal": Row("POST", f"/containers/create?name=..%2F..%2F{ESCAPE}", body={"Image": "busybox"}),
    "create-name-dotdot": Row("POST", "/containers/create?name=..", body={"Image": "busybox"}),
    "create-name-slash-only": Row("POST", "/containers/create?name=%2F", body={"Image": "busybox"}),
    "create-name-taken": Row("POST", "/containers/create?name=bi-target", body={"Image": "busybox"},
                             expect=CONFLICT),
    "create-name-taken-with-volumes": Row("POST", "/containers/create?name=bi-target", body={
        "Image": "busybox", "Volumes": {"/data": {}}, "HostConfig": {"Binds": ["bi-leak:/y"]}}, expect=CONFLICT),
    # containers: queries and unknown ids
    "ps-filters-not-json": Row("GET", "/containers/json?filters=nope"),
    "ps-filters-list": Row("GET", "/containers/json?filters=%5B1%5D"),
    "ps-filters-bad-value": Row("GET", "/containers/json?filters=%7B%22status%22%3A5%7D"),
    "ps-filters-bad-status": Row("GET", "/containers/json?filters=%7B%22status%22%3A%5B%22bogus%22%5D%7D"),
    "ps-limit-word": Row("GET", "/containers/json?limit=ten"),
    "ps-limit-huge": Row("GET", "/containers/json?limit=99999999999999999999999", expect=(200, 400)),
    "inspect-unknown": Row("GET", "/containers/bi-nosuch/json", expect=MISSING),
    "inspect-traversal": Row("GET", "/containers/..%2F..%2Fetc/json", expect=MISSING),
    "inspect-dotdot": Row("GET", "/containers/../json", expect=MISSING),
    "start-unknown": Row("POST", "/containers/bi-nosuch/start", expect=MISSING),
    "start-bad-body": Row("POST", "/containers/bi-nosuch/start", raw=NOT_JSON, expect=(400, 404)),
    "stop-unknown": Row("POST", "/containers/bi-nosuch/stop", expect=MISSING),
    "stop-t-word": Row("POST", f"/containers/{C}/stop?t=soon"),
    "stop-t-float": Row("POST", f"/containers/{C}/stop?t=1.5"),
    "stop-t-huge": Row("POST", f"/containers/{C}/stop?t=99999999999999999999999", expect=(304, 400)),
    "stop-signal-bogus": Row("POST", f"/containers/{C}/stop?signal=SIGBOGUS", expect=(304, 400)),
    "restart-unknown": Row("POST", "/containers/bi-nosuch/restart", expect=MISSING),
    "restart-t-word": Row("POST", f"/containers/{C}/restart?t=soon"),
    "kill-unknown": Row("POST", "/containers/bi-nosuch/kill", expect=MISSING),
    "kill-signal-bogus": Row("POST", f"/containers/{C}/kill?signal=SIGBOGUS", expect=(400, 409)),
    "kill-signal-huge": Row("POST", f"/containers/{C}/kill?signal=99999999999", expect=(400, 409)),
    "wait-unknown": Row("POST", "/containers/bi-nosuch/wait", expect=MISSING),
    "wait-condition-bogus": Row("POST", f"/containers/{C}/wait?condition=bogus"),
    "attach-unknown": Row("POST", "/containers/bi-nosuch/attach?stream=1&stdout=1", expect=MISSING),
    "attach-detach-keys-bogus": Row("POST", f"/containers/{C}/attach?stream=1&stdin=1&detachKeys=ctrl-nope"),
    "attach-ws-unknown": Row("GET", "/containers/bi-nosuch/attach/ws?stream=1", expect=MISSING, headers=(
        ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))),
    "attach-ws-not-a-websocket": Row("GET", f"/containers/{C}/attach/ws?stream=1"),
    "logs-unknown": Row("GET", "/containers/bi-nosuch/logs?stdout=1", expect=MISSING),
    "logs-no-stream": Row("GET", f"/containers/{C}/logs"),
    "logs-since-word": Row("GET", f"/containers/{C}/logs?stdout=1&since=yesterday"),
    "logs-until-word": Row("GET", f"/containers/{C}/logs?stdout=1&until=tomorrow"),
    "logs-since-huge": Row("GET", f"/containers/{C}/logs?stdout=1&since=1e400", expect=(200, 400)),
    "logs-tail-negative": Row("GET", f"/containers/{C}/logs?stdout=1&tail=-5", expect=(200,)),
    "logs-tail-word": Row("GET", f"/containers/{C}/logs?stdout=1&tail=some", expect=(200,)),
    "logs-tail-huge": Row("GET", f"/containers/{C}/logs?stdout=1&tail=99999999999999999999999", expect=(200,)),
    "resize-unknown": Row("POST", "/containers/bi-nosuch/resize?h=10&w=10", expect=MISSING),
    "resize-h-word": Row("POST", f"/containers/{C}/resize?h=tall&w=10"),
    "resize-huge": Row("POST", f"/containers/{C}/resize?h=99999999999&w=99999999999", expect=(400, 409)),
    "resize-negative": Row("POST", f"/containers/{C}/resize?h=-1&w=-1", expect=(400, 409)),
    "pause-unknown": Row("POST", "/containers/bi-nosuch/pause", expect=MISSING),
    "unpause-unknown": Row("POST", "/containers/bi-nosuch/unpause", expect=MISSING),
    "rename-unknown": Row("POST", "/containers/bi-nosuch/rename?name=x", expect=MISSING),
    "rename-empty": Row("POST", f"/containers/{C}/rename?name="),
    "rename-traversal": Row("POST", f"/containers/{C}/rename?name=..%2F..%2F{ESCAPE}"),
    "rename-dotdot": Row("POST", f"/containers/{C}/rename?name=.."),
    "update-unknown": Row("POST", "/containers/bi-nosuch/update", body={"Memory": 1 << 30}, expect=MISSING),
    "update-invalid-json": Row("POST", f"/containers/{C}/update", raw=NOT_JSON),
    "update-list": Row("POST", f"/containers/{C}/update", body=[1]),
    "update-string": Row("POST", f"/containers/{C}/update", body="x"),
    "update-memory-string": Row("POST", f"/containers/{C}/update", body={"Memory": "lots"}),
    "update-memory-negative": Row("POST", f"/containers/{C}/update", body={"Memory": -5}),
    "update-memory-huge": Row("POST", f"/containers/{C}/update", body={"Memory": 10 ** 30}),
    "update-cpus-inf": Row("POST", f"/containers/{C}/update", raw=b'{"NanoCpus": 1e400}'),
    "update-restart-bogus": Row("POST", f"/containers/{C}/update", body={"RestartPolicy": {"Name": "bogus"}}),
    "update-restart-list": Row("POST", f"/containers/{C}/update", body={"RestartPolicy": ["always"]}),
    "top-unknown": Row("GET", "/containers/bi-nosuch/top", expect=MISSING),
    "top-not-running": Row("GET", f"/containers/{C}/top?ps_args=aux", expect=CONFLICT),
    "stats-unknown": Row("GET", "/containers/bi-nosuch/stats?stream=0", expect=MISSING),
    "prune-filters-not-json": Row("POST", "/containers/prune?filters=nope"),
    "prune-until-word": Row("POST", "/containers/prune?filters=%7B%22until%22%3A%5B%22soon%22%5D%7D"),
    "prune-label-dict": Row("POST", "/containers/prune?filters=%7B%22label%22%3A%22x%22%7D"),
    "remove-unknown": Row("DELETE", "/containers/bi-nosuch", expect=MISSING),
    "remove-traversal": Row("DELETE", f"/containers/..%2F..%2F{ESCAPE}", expect=MISSING),
    # archive, changes, commit
    "archive-get-unknown": Row("GET", "/containers/bi-nosuch/archive?path=/", expect=MISSING),
    "archive-head-unknown": Row("HEAD", "/containers/bi-nosuch/archive?path=/", expect=MISSING),
    "archive-get-no-path": Row("GET", f"/containers/{C}/archive", expect=(400, 404)),
    "archive-get-host-file": Row("GET", f"/containers/{C}/archive?path={UP}tmp/berth-marker-{TOKEN}",
                                 expect=MISSING),
    "archive-get-relative": Row("GET", f"/containers/{C}/archive?path=etc", expect=(200, 400, 404)),
    "archive-put-unknown": Row("PUT", "/containers/bi-nosuch/archive?path=/", raw=b"x" * 1024, expect=MISSING),
    "archive-put-no-path": Row("PUT", f"/containers/{C}/archive", raw=b"x" * 1024),
    "archive-put-not-tar": Row("PUT", f"/containers/{C}/archive?path=/", raw=b"this is not a tar" * 100),
    "archive-put-truncated-tar": Row("PUT", f"/containers/{C}/archive?path=/",
                                     raw=_tar([("file", "big", b"y" * 5000)])[:3000]),
    "archive-put-missing-dir": Row("PUT", f"/containers/{C}/archive?path=/bi-nosuch/dir",
                                   raw=_tar([("file", "a", b"a")]), expect=MISSING),
    "changes-unknown": Row("GET", "/containers/bi-nosuch/changes", expect=MISSING),
    "commit-unknown": Row("POST", "/commit?container=bi-nosuch", expect=MISSING),
    "commit-no-container": Row("POST", "/commit", expect=(400, 404)),
    "commit-invalid-json": Row("POST", f"/commit?container={C}", raw=NOT_JSON),
    "commit-repo-traversal": Row("POST", f"/commit?container={C}&repo=..%2F..%2F{ESCAPE}"),
    "commit-repo-upper": Row("POST", f"/commit?container={C}&repo=UPPER"),
    "commit-tag-bad": Row("POST", f"/commit?container={C}&repo=bi-commit&tag=no%20spaces"),
    "commit-changes-bogus": Row("POST", f"/commit?container={C}&repo=bi-commit&changes=BOGUS%20x"),
    "commit-config-list": Row("POST", f"/commit?container={C}&repo=bi-commit", body=[1], expect=(400,)),
    # exec
    "exec-create-unknown": Row("POST", "/containers/bi-nosuch/exec", body={"Cmd": ["true"]}, expect=MISSING),
    "exec-create-invalid-json": Row("POST", f"/containers/{C}/exec", raw=NOT_JSON),
    "exec-create-list": Row("POST", f"/containers/{C}/exec", body=["true"]),
    "exec-create-no-cmd": Row("POST", f"/containers/{C}/exec", body={}, expect=(400, 409)),
    "exec-create-cmd-int": Row("POST", f"/containers/{C}/exec", body={"Cmd": 5}, expect=(400, 409)),
    "exec-create-not-running": Row("POST", f"/containers/{C}/exec", body={"Cmd": ["true"]}, expect=CONFLICT),
    "exec-start-unknown": Row("POST", "/exec/bi-nosuch/start", body={"Detach": True}, expect=MISSING),
    "exec-start-invalid-json": Row("POST", "/exec/bi-nosuch/start", raw=NOT_JSON),
    "exec-start-list": Row("POST", "/exec/bi-nosuch/start", body=[1]),
    "exec-start-string": Row("POST", "/exec/bi-nosuch/start", body="detach"),
    "exec-resize-unknown": Row("POST", "/exec/bi-nosuch/resize?h=1&w=1", expect=MISSING),
    "exec-resize-word": Row("POST", "/exec/bi-nosuch/resize?h=tall&w=1", expect=(400, 404)),
    "exec-inspect-unknown": Row("GET", "/exec/bi-nosuch/json", expect=MISSING),
    # images
    "images-filters-not-json": Row("GET", "/images/json?filters=nope"),
    "images-filters-dangling-bogus": Row("GET", "/images/json?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D"),
    "images-filters-before-unknown": Row("GET", "/images/json?filters=%7B%22before%22%3A%5B%22bi-nosuch%22%5D%7D",
                                         expect=(400, 404)),
    "image-inspect-unknown": Row("GET", "/images/bi-nosuch/json", expect=MISSING),
    "image-inspect-traversal": Row("GET", f"/images/{UP}etc/json", expect=(400, 404)),
    "image-inspect-digest-bad": Row("GET", "/images/sha256:zz/json", expect=(400, 404)),
    "image-history-unknown": Row("GET", "/images/bi-nosuch/history", expect=MISSING),
    "image-tag-unknown": Row("POST", "/images/bi-nosuch/tag?repo=x", expect=MISSING),
    "image-tag-no-repo": Row("POST", "/images/busybox/tag", expect=BAD),
    "image-tag-traversal": Row("POST", f"/images/busybox/tag?repo=..%2F..%2F{ESCAPE}"),
    "image-tag-upper": Row("POST", "/images/busybox/tag?repo=UPPER"),
    "image-tag-bad-tag": Row("POST", "/images/busybox/tag?repo=bi-x&tag=no%20spaces"),
    "image-tag-long-tag": Row("POST", "/images/busybox/tag?repo=bi-x&tag=" + "t" * 200),
    "image-remove-unknown": Row("DELETE", "/images/bi-nosuch", expect=MISSING),
    "image-remove-traversal": Row("DELETE", f"/images/{UP}etc", expect=(400, 404)),
    "image-remove-in-use": Row("DELETE", "/images/busybox", expect=CONFLICT),
    "images-save-unknown": Row("GET", "/images/get?names=bi-nosuch", expect=MISSING),
    "images-save-traversal": Row("GET", f"/images/get?names={UP}etc", expect=(400, 404)),
    "image-save-unknown": Row("GET", "/images/bi-nosuch/get", expect=MISSING),
    "images-load-garbage": Row("POST", "/images/load", raw=b"not a tar" * 1000, expect=LOAD),
    "images-load-empty": Row("POST", "/images/load", raw=b"", expect=LOAD),
    "images-load-truncated": Row("POST", "/images/load", raw=_saved_image(b"z" * 4096)[:2500], expect=LOAD),
    "images-load-no-manifest": Row("POST", "/images/load", raw=_tar([("file", "x", b"x")]), expect=LOAD),
    "images-load-manifest-bad-json": Row("POST", "/images/load", raw=_tar([("file", "manifest.json", b"{")]), expect=LOAD),
    "images-load-manifest-object": Row("POST", "/images/load", raw=_tar([("file", "manifest.json", b"{}")]), expect=LOAD),
    "images-load-manifest-wrong-types": Row("POST", "/images/load", raw=_tar([
        ("file", "manifest.json", b'[{"Config": 5, "RepoTags": "x", "Layers": {}}]')]), expect=LOAD),
    "images-load-config-traversal": Row("POST", "/images/load", raw=_saved_image(
        _tar([("file", "a", b"a")]), config_name=f"{UP}tmp/berth-marker-{TOKEN}"), expect=LOAD),
    "images-load-layer-traversal": Row("POST", "/images/load", raw=_saved_image(
        _tar([("file", "a", b"a")]), layer_name=f"{UP}tmp/berth-marker-{TOKEN}"), expect=LOAD),
    "images-load-layer-not-tar": Row("POST", "/images/load", raw=_saved_image(b"garbage" * 100), expect=LOAD),
    "images-load-bad-reference": Row("POST", "/images/load", raw=_saved_image(
        _tar([("file", "a", b"a")]), repo_tag=f"..%2F{ESCAPE}:UPPER TAG"), expect=LOAD),
    "images-create-nothing": Row("POST", "/images/create", expect=(400, 404)),
    "images-import-garbage": Row("POST", "/images/create?fromSrc=-", raw=b"not a tar" * 1000),
    "images-import-bad-repo": Row("POST", f"/images/create?fromSrc=-&repo=..%2F{ESCAPE}",
                                  raw=_tar([("file", "a", b"a")])),
    "images-import-bad-change": Row("POST", "/images/create?fromSrc=-&changes=BOGUS%20x",
                                    raw=_tar([("file", "a", b"a")])),
    "images-pull-traversal": Row("POST", f"/images/create?fromImage=..%2F..%2F{ESCAPE}"),
    "images-pull-upper": Row("POST", "/images/create?fromImage=UPPER&tag=latest"),
    # nothing listens there: the registry is unreachable, a fault outside the request (Docker: 500)
    "images-pull-unreachable": Row("POST", "/images/create?fromImage=127.0.0.1%3A1%2Fx&tag=latest",
                                   expect=(404, 500)),
    "images-pull-bad-tag": Row("POST", "/images/create?fromImage=busybox&tag=no%20spaces"),
    "images-pull-bad-platform": Row("POST", "/images/create?fromImage=busybox&tag=latest&platform=bogus",
                                    expect=(400, 404)),
    "images-pull-bad-auth": Row("POST", "/images/create?fromImage=busybox&tag=latest",
                                headers=(("X-Registry-Auth", "!!!not-base64!!!"),), expect=(400, 404)),
    "images-push-unknown": Row("POST", "/images/bi-nosuch/push?tag=latest", expect=MISSING),
    "images-push-traversal": Row("POST", f"/images/{UP}etc/push", expect=(400, 404)),
    "images-push-bad-auth": Row("POST", "/images/busybox/push?tag=latest",
                                headers=(("X-Registry-Auth", "bm90IGpzb24"),), expect=(400, 404)),  # "not json"
    "images-prune-filters-not-json": Row("POST", "/images/prune?filters=nope"),
    "images-prune-dangling-bogus": Row("POST", "/images/prune?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D"),
    "bootstrap-traversal": Row("POST", f"/berth/images/bootstrap?name=..%2F..%2F{ESCAPE}"),
    "bootstrap-bad-tag": Row("POST", "/berth/images/bootstrap?name=bi-bb&tag=no%20spaces"),
    # auth
    "auth-invalid-json": Row("POST", "/auth", raw=NOT_JSON),
    "auth-list": Row("POST", "/auth", body=[1]),
    "auth-wrong-types": Row("POST", "/auth", body={"username": ["x"], "password": 5, "serveraddress": {}},
                            expect=(400, 401)),
    # build
    "build-buildargs-not-json": Row("POST", "/build?buildargs=nope", raw=_context("FROM busybox\n")),
    "build-labels-list": Row("POST", "/build?labels=%5B1%5D", raw=_context("FROM busybox\n")),
    "build-cachefrom-object": Row("POST", "/build?cachefrom=%7B%7D", raw=_context("FROM busybox\n")),
    "build-not-tar": Row("POST", "/build", raw=b"not a tar" * 100, expect=(200, 400)),
    "build-empty": Row("POST", "/build", raw=b"", expect=(200, 400)),
    "build-no-dockerfile": Row("POST", "/build", raw=_tar([("file", "x", b"x")]), expect=(200, 400)),
    "build-dockerfile-traversal": Row("POST", f"/build?dockerfile={UP}tmp/berth-marker-{TOKEN}",
                                      raw=_context("FROM busybox\n"), expect=(200, 400)),
    "build-dockerfile-garbage": Row("POST", "/build", raw=_context("BOGUS INSTRUCTION\n"), expect=(200, 400)),
    "build-bad-tag": Row("POST", "/build?t=UPPER%20CASE", raw=_context("FROM busybox\n"), expect=(200, 400)),
    "build-from-traversal": Row("POST", "/build", raw=_context(f"FROM {UP}etc\n"), expect=(200, 400)),
    "build-copy-dotdot": Row("POST", "/build?t=bi-build-escape:1",
                             raw=_context(f"FROM busybox\nCOPY ../../../tmp/berth-marker-{TOKEN} /m\n"),
                             expect=(200, 400)),
    "build-copy-via-symlink": Row("POST", "/build?t=bi-build-escape:2", raw=_context(
        f"FROM busybox\nCOPY lnk/berth-marker-{TOKEN} /m\n", [("symlink", "lnk", "/tmp")]), expect=(200, 400)),
    "build-copy-via-rel-symlink": Row("POST", "/build?t=bi-build-escape:3", raw=_context(
        f"FROM busybox\nCOPY lnk/berth-marker-{TOKEN} /m\n", [("symlink", "lnk", f"{UP}tmp")]), expect=(200, 400)),
    "build-context-escapes": Row("POST", "/build", raw=_context(
        "FROM busybox\n", _escaping_entries("build")), expect=(200, 400)),
    "build-add-url": Row("POST", "/build", raw=_context("FROM busybox\nADD http://127.0.0.1:1/x /x\n"),
                         expect=(200, 400)),
    # networks
    "network-create-invalid-json": Row("POST", "/networks/create", raw=NOT_JSON),
    "network-create-list": Row("POST", "/networks/create", body=[]),
    "network-create-null": Row("POST", "/networks/create", raw=b"null"),
    "network-create-no-name": Row("POST", "/networks/create", body={}),
    "network-create-name-int": Row("POST", "/networks/create", body={"Name": 5}),
    # dockerd takes any name that is not blank (libnetwork's IsValidName); berth keys every file of
    # a network by its id, so a name like a path is only a name: created, nothing outside the root.
    "network-create-traversal": Row("POST", "/networks/create", body={"Name": f"{UP}tmp/{ESCAPE}"}, expect=(201,)),
    "network-create-dotdot": Row("POST", "/networks/create", body={"Name": ".."}, expect=(201,)),
    "network-create-long": Row("POST", "/networks/create", body={"Name": "n" * 300}, expect=(201, 400)),
    "network-create-driver-bogus": Row("POST", "/networks/create", body={"Name": "bi-net", "Driver": "bogus"},
                                       expect=(400, 404)),
    "network-create-subnet-bogus": Row("POST", "/networks/create", body={
        "Name": "bi-net", "IPAM": {"Config": [{"Subnet": "not-a-cidr"}]}}),
    "network-create-gateway-outside": Row("POST", "/networks/create", body={
        "Name": "bi-net", "IPAM": {"Config": [{"Subnet": "10.251.7.0/24", "Gateway": "10.9.9.9"}]}}),
    "network-create-ipam-list": Row("POST", "/networks/create", body={"Name": "bi-net", "IPAM": []}),
    "network-create-config-dict": Row("POST", "/networks/create", body={"Name": "bi-net", "IPAM": {"Config": {}}}),
    "network-create-options-string": Row("POST", "/networks/create", body={"Name": "bi-net", "Options": "x"}),
    "network-create-labels-list": Row("POST", "/networks/create", body={"Name": "bi-net", "Labels": ["x"]}),
    "network-create-taken": Row("POST", "/networks/create", body={"Name": "bridge"}, expect=(400, 403, 409)),
    "networks-filters-not-json": Row("GET", "/networks?filters=nope"),
    "network-inspect-unknown": Row("GET", "/networks/bi-nosuch", expect=MISSING),
    "network-inspect-dotdot": Row("GET", "/networks/..", expect=MISSING),
    "network-remove-unknown": Row("DELETE", "/networks/bi-nosuch", expect=MISSING),
    "network-remove-dotdot": Row("DELETE", "/networks/..", expect=MISSING),
    "network-remove-predefined": Row("DELETE", "/networks/bridge", expect=(400, 403, 409)),
    "networks-prune-filters-not-json": Row("POST", "/networks/prune?filters=nope"),
    "network-connect-unknown": Row("POST", "/networks/bi-nosuch/connect", body={"Container": "bi-target"},
                                   expect=MISSING),
    "network-connect-invalid-json": Row("POST", "/networks/bridge/connect", raw=NOT_JSON),
    "network-connect-list": Row("POST", "/networks/bridge/connect", body=[1]),
    "network-connect-no-container": Row("POST", "/networks/bridge/connect", body={}),
    "network-connect-container-int": Row("POST", "/networks/bridge/connect", body={"Container": 5},
                                         expect=(400, 404)),
    "network-connect-container-unknown": Row("POST", "/networks/bridge/connect", body={"Container": "bi-nosuch"},
                                             expect=(400, 404)),
    "network-connect-endpoint-list": Row("POST", "/networks/bridge/connect",
                                         body={"Container": "bi-target", "EndpointConfig": [1]},
                                         expect=(400, 403, 409)),
    "network-disconnect-unknown": Row("POST", "/networks/bi-nosuch/disconnect", body={"Container": "bi-target"},
                                      expect=MISSING),
    "network-disconnect-list": Row("POST", "/networks/bridge/disconnect", body=["x"]),
    "network-disconnect-string": Row("POST", "/networks/bridge/disconnect", body="x"),
    "network-disconnect-container-unknown": Row("POST", "/networks/bridge/disconnect",
                                                body={"Container": "bi-nosuch"}, expect=(400, 404)),
    # volumes
    "volume-create-invalid-json": Row("POST", "/volumes/create", raw=NOT_JSON),
    "volume-create-list": Row("POST", "/volumes/create", body=[]),
    "volume-create-name-int": Row("POST", "/volumes/create", body={"Name": 5}),
    "volume-create-traversal": Row("POST", "/volumes/create", body={"Name": f"{UP}tmp/{ESCAPE}"}),
    "volume-create-dotdot": Row("POST", "/volumes/create", body={"Name": ".."}),
    "volume-create-dot": Row("POST", "/volumes/create", body={"Name": "."}),
    "volume-create-slash": Row("POST", "/volumes/create", body={"Name": "a/b"}),
    "volume-create-long": Row("POST", "/volumes/create", body={"Name": "v" * 300}),
    "volume-create-driver-bogus": Row("POST", "/volumes/create", body={"Name": "bi-vol", "Driver": "bogus"},
                                      expect=(400, 404)),
    "volume-create-labels-list": Row("POST", "/volumes/create", body={"Name": "bi-vol", "Labels": ["x"]}),
    "volume-create-opts-string": Row("POST", "/volumes/create", body={"Name": "bi-vol", "DriverOpts": "x"}),
    "volume-create-bind-opts": Row("POST", "/volumes/create", body={
        "Name": "bi-vol", "DriverOpts": {"type": "none", "o": "bind", "device": f"{UP}tmp/{ESCAPE}-dev"}},
                                   expect=(400, 404)),
    "volumes-filters-not-json": Row("GET", "/volumes?filters=nope"),
    "volumes-filters-dangling-bogus": Row("GET", "/volumes?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D"),
    "volume-inspect-unknown": Row("GET", "/volumes/bi-nosuch", expect=MISSING),
    "volume-inspect-dotdot": Row("GET", "/volumes/..", expect=(400, 404)),
    "volume-inspect-dot": Row("GET", "/volumes/.", expect=(400, 404)),
    "volume-remove-unknown": Row("DELETE", "/volumes/bi-nosuch", expect=MISSING),
    "volume-remove-dotdot": Row("DELETE", "/volumes/..", expect=(400, 404)),
    "volume-remove-dot": Row("DELETE", "/volumes/.?force=1", expect=(204, 400, 404)),  # force: missing is fine
    "volumes-prune-filters-not-json": Row("POST", "/volumes/prune?filters=nope"),
    # system
    "events-since-word": Row("GET", "/events?since=yesterday"),
    "events-until-word": Row("GET", "/events?until=tomorrow"),
    "events-since-inf": Row("GET", "/events?since=1e400&until=1", expect=(200, 400)),
    "events-filters-not-json": Row("GET", "/events?filters=nope&until=1"),
    "ping-with-body": Row("GET", "/_ping?junk=%FF", raw=NOT_JSON, expect=(200,)),
    "version-junk-query": Row("GET", f"/version?x={UP}etc", expect=(200,)),
    "info-junk-query": Row("GET", "/info?filters=nope", expect=(200,)),
    "df-type-bogus": Row("GET", "/system/df?type=bogus", expect=(200, 400)),
    "unknown-route": Row("GET", "/bi-nosuch", expect=MISSING),
    "wrong-method": Row("DELETE", "/_ping", expect=(404, 405)),
    "version-too-old": Row("GET", "/v0.1/containers/json", expect=(200, 400)),
    "version-garbage": Row("GET", "/vx.y/containers/json", expect=MISSING),
    "head-unknown": Row("HEAD", "/containers/bi-nosuch/json", expect=MISSING),
    # export, builder prune
    "export-unknown": Row("GET", "/containers/bi-nosuch/export", expect=MISSING),
    "export-dotdot": Row("GET", "/containers/../export", expect=MISSING),
    "build-prune-filters-not-json": Row("POST", "/build/prune?filters=nope"),
    "build-prune-filter-bogus": Row("POST", "/build/prune?filters=%7B%22bogus%22%3A%5B%221%22%5D%7D"),
    "build-prune-until-word": Row("POST", "/build/prune?filters=%7B%22until%22%3A%5B%22someday%22%5D%7D"),
    # not implemented: 501 in Docker's shape (plugin ls lists none); swarm: dockerd's 503 outside a swarm
    "plugins-list": Row("GET", "/plugins?filters=nope", expect=(200,)),
    "images-search": Row("GET", "/images/search?term=busybox", expect=(501,)),
    "swarm-leave-outside-a-swarm": Row("POST", "/swarm/leave?force=1", expect=(503,)),
    "swarm-init-unsupported": Row("POST", "/swarm/init", body={"ListenAddr": "0.0.0.0:2377"}, expect=(501,)),
    "swarm-join-unsupported": Row("POST", "/swarm/join", body={"RemoteAddrs": ["x"]}, expect=(501,)),
    **{f"unsupported-{method.lower()}-{area}{suffix.replace('/', '-')}": Row(method, f"/{area}{suffix}", expect=(501, 503))
       for area in ("swarm", "nodes", "services", "tasks", "secrets", "configs", "plugins")
       for suffix in ("", "/x") for method in ("GET", "POST", "DELETE") if not (area == "plugins" and not suffix)},
}


@pytest.mark.parametrize("case", list(DOCKER_ROWS))
def test_docker_api_rejects(env: Env, case: str) -> None:
    row = DOCKER_ROWS[case]
    watch = LogWatch(env)
    answer = docker_call(env, row.method, row.path.replace(C, env.container), row.body, row.raw,
                         dict(row.headers))
    _undo_creation(env, row, answer)
    if row.method == "HEAD":
        assert answer.status in row.expect, f"{case}: {answer.status}"
    else:
        assert_docker_error(answer, row.expect, case)
    assert_healthy(env, watch, case)


def _undo_creation(e: Env, row: Row, answer: Answer) -> None:
    """A request that should have failed but created something: remove it so later rows still
    meet the state they expect (the case fails on its status all the same)."""
    if answer.status != 201:
        return
    body = answer.json()
    if row.path.startswith("/containers/create"):
        api(e.d.sock, "DELETE", f"/containers/{body['Id']}?force=1&v=1")
    elif row.path.startswith("/networks/create"):
        api(e.d.sock, "DELETE", f"/networks/{body['Id']}")
    elif row.path.startswith("/volumes/create"):
        api(e.d.sock, "DELETE", f"/volumes/{body['Name']}?force=1")


def test_the_docker_table_covers_every_route() -> None:
    """Each `router.add` route of the Docker API has at least one row above."""
    from types import SimpleNamespace
    from urllib.parse import unquote, urlsplit

    from berth.api.docker.server import build_router

    router = build_router(SimpleNamespace(containers=None, execs=None, images=None, image_store=None, events=None,
                                          info=None, tmp_dir="", builder=None, distribution=None, volumes=None,
                                          networks=None, archive=None))  # type: ignore[arg-type]
    tried = [(row.method, unquote(urlsplit(row.path.replace(C, "x")).path)) for row in DOCKER_ROWS.values()]
    missing = [f"{r.method} {r.pattern.pattern}" for r in router._routes  # noqa: SLF001 - the table to cover
               if not any(method in (r.method, "HEAD") and r.pattern.match(path) for method, path in tried)]
    assert missing == []


# --- the Docker API at the protocol level -------------------------------------------------------

JSON_HEAD = b"Content-Type: application/json\r\n"
PROTOCOL_ROWS: dict[str, tuple[bytes, int]] = {
    "garbage-request-line": (b"GARBAGE\r\n\r\n", 400),
    "bad-content-length": (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400),
    "oversized-head": (b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", 431),
    "cut-mid-body": (b"POST /containers/create HTTP/1.1\r\nHost: x\r\n" + JSON_HEAD
                     + b"Content-Length: 100\r\n\r\n" + b'{"Image": "bus', 400),
    "truncated-chunked": (b"POST /containers/create HTTP/1.1\r\nHost: x\r\n" + JSON_HEAD
                          + b"Transfer-Encoding: chunked\r\n\r\n20\r\n" + b'{"Image": "bus', 400),
    "bad-chunk-size": (b"POST /containers/create HTTP/1.1\r\nHost: x\r\n" + JSON_HEAD
                       + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
    "huge-chunk-size": (b"POST /volumes/create HTTP/1.1\r\nHost: x\r\n" + JSON_HEAD
                        + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{}", 400),
    "load-cut-mid-body": (b"POST /images/load HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                          + b"x" * 5000, 400),
    "load-truncated-chunked": (b"POST /images/load HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               + b"10000\r\n" + b"x" * 5000, 400),
    "import-cut-mid-body": (b"POST /images/create?fromSrc=- HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n"
                            + b"x" * 100, 400),
    "build-cut-mid-body": (b"POST /build HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n" + b"x" * 100, 400),
    "archive-put-cut-mid-body": (b"PUT /containers/bi-target/archive?path=/ HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 99999\r\n\r\n" + b"x" * 100, 400),
}


@pytest.mark.parametrize("case", list(PROTOCOL_ROWS))
def test_docker_protocol_errors(env: Env, case: str) -> None:
    data, status = PROTOCOL_ROWS[case]
    watch = LogWatch(env)
    reply = raw_exchange(env, data)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), f"{case}: no HTTP answer: {reply[:300]!r}"
    assert int(head.split()[1]) == status, f"{case}: {reply[:500]!r}"
    assert b"Traceback" not in reply
    message = json.loads(body)["message"]
    assert isinstance(message, str) and message
    assert_healthy(env, watch, case)


def test_client_vanishing_mid_body_keeps_serving(env: Env) -> None:
    """The client closes the whole socket half-way through an upload: nothing to answer, nothing kept."""
    watch = LogWatch(env)
    for path in (b"/images/load", b"/build", b"/containers/create"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(env.d.sock)
            s.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    assert_healthy(env, watch, "client vanished")


# --- archive paths that lead out of the container --------------------------------------------------


def test_archive_put_cannot_escape_the_container(env: Env) -> None:
    watch = LogWatch(env)
    base = f"/containers/{env.container}/archive"
    answer = docker_call(env, "PUT", f"{base}?path=/", raw=_tar(_escaping_entries("archive")))
    assert_docker_error(answer, (200, 400), "archive escapes")
    # symlinks inside the container that point out of it, then used as paths
    answer = docker_call(env, "PUT", f"{base}?path=/", raw=_tar([
        ("symlink", "out-abs", "/tmp"), ("symlink", "out-rel", f"{UP}tmp")]))
    assert_docker_error(answer, (200,), "archive symlinks")
    for link in ("out-abs", "out-rel"):
        answer = docker_call(env, "GET", f"{base}?path=/{link}/berth-marker-{TOKEN}")
        assert_docker_error(answer, MISSING, f"archive get via {link}")
        answer = docker_call(env, "HEAD", f"{base}?path=/{link}/berth-marker-{TOKEN}")
        assert answer.status == 404, f"archive head via {link}: {answer.status}"
        answer = docker_call(env, "PUT", f"{base}?path=/{link}",
                             raw=_tar([("file", f"{ESCAPE}-put-into-{link}", b"x")]))
        assert_docker_error(answer, (200, 400, 404), f"archive put into {link}")
    assert_healthy(env, watch, "archive")
    assert_nothing_escaped(env)


def test_loaded_layers_cannot_escape_the_root(env: Env) -> None:
    watch = LogWatch(env)
    answer = docker_call(env, "POST", "/images/load", raw=_saved_image(_tar(_escaping_entries("layer")),
                                                                       repo_tag="bi-evil-layer:latest"))
    assert_docker_error(answer, (200, 400), "load escaping layer")
    if answer.status == 200:
        docker_call(env, "DELETE", "/images/bi-evil-layer:latest?force=1")
    assert_healthy(env, watch, "load escaping layer")
    assert_nothing_escaped(env)


def test_builds_never_read_host_files(env: Env) -> None:
    """If a COPY through `..` or a symlink built anything, the image must not hold the host file."""
    for tag in ("bi-build-escape:1", "bi-build-escape:2", "bi-build-escape:3"):
        answer = docker_call(env, "GET", f"/images/{tag}/get")
        assert SECRET.encode() not in answer.body, f"{tag} holds a host file"


def assert_nothing_escaped(e: Env) -> None:
    escaped = []
    for top in (Path("/tmp"), e.d.base):
        for dirpath, dirnames, filenames in os.walk(top):
            if Path(dirpath).is_relative_to(e.root) or len(Path(dirpath).parts) > 6:
                dirnames[:] = []
                continue
            escaped += [os.path.join(dirpath, n) for n in dirnames + filenames
                        if ESCAPE in n and not n.endswith("-hardlink-target")]
    assert escaped == [], f"written outside the daemon root: {escaped}"
    assert e.hardlink_target.stat().st_nlink == 1, "a tar hard link reached a host file"
    assert e.marker.read_text() == SECRET and e.hardlink_target.read_text() == SECRET


# --- the registry --------------------------------------------------------------------------------

REG_ROWS: dict[str, tuple[str, str, bytes | None, dict[str, str], tuple[int, ...]]] = {
    "unknown-endpoint": ("GET", "/v2/bi/nothing-here", None, {}, (404,)),
    "base-junk-query": ("GET", f"/v2/?n=-1&last={UP}etc", None, {}, (200, 401)),  # the login challenge
    "base-head-with-body": ("HEAD", "/v2/", b"{", {}, (200, 401)),
    "blob-head-unknown": ("HEAD", f"/v2/bi-repo/blobs/{ZERO}", None, {}, (404,)),
    "name-traversal": ("GET", "/v2/..%2F..%2Fetc/tags/list", None, {}, (400, 404)),
    "name-dotdot-segments": ("GET", "/v2/a/../../etc/tags/list", None, {}, (400, 404)),
    "name-upper": ("GET", "/v2/UPPER/tags/list", None, {}, (400,)),
    "name-too-long": ("GET", "/v2/" + "a" * 300 + "/tags/list", None, {}, (400,)),
    "tags-unknown-repo": ("GET", "/v2/bi-nosuch/tags/list", None, {}, (404,)),
    "catalog-n-word": ("GET", "/v2/_catalog?n=ten", None, {}, (400,)),
    "catalog-n-negative": ("GET", "/v2/_catalog?n=-1", None, {}, (400,)),
    "catalog-n-huge": ("GET", "/v2/_catalog?n=99999999999999999999999", None, {}, (200, 400)),
    "tags-n-huge": ("GET", "/v2/bi-repo/tags/list?n=99999999999999999999999", None, {}, (200, 400, 404)),
    "manifest-unknown": ("GET", "/v2/bi-repo/manifests/nosuch", None, {}, (404,)),
    "manifest-bad-reference": ("GET", "/v2/bi-repo/manifests/bad!tag", None, {}, (400, 404)),
    "manifest-bad-digest": ("GET", "/v2/bi-repo/manifests/sha256:zz", None, {}, (400,)),
    "manifest-other-algorithm": ("GET", "/v2/bi-repo/manifests/sha512:" + "0" * 128, None, {}, (400, 404)),
    "manifest-head-unknown": ("HEAD", "/v2/bi-repo/manifests/nosuch", None, {}, (404,)),
    "manifest-put-invalid-json": ("PUT", "/v2/bi-repo/manifests/v1", b"{", {}, (400,)),
    "manifest-put-list": ("PUT", "/v2/bi-repo/manifests/v1", b"[]", {}, (400,)),
    "manifest-put-empty": ("PUT", "/v2/bi-repo/manifests/v1", b"", {}, (400,)),
    "manifest-put-wrong-types": ("PUT", "/v2/bi-repo/manifests/v1",
                                 b'{"schemaVersion": "2", "config": 5, "layers": {}}', {}, (400,)),
    "manifest-put-bad-descriptor": ("PUT", "/v2/bi-repo/manifests/v1", json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "nope", "size": "x"},
        "layers": []}).encode(), {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, (400,)),
    "manifest-put-unknown-blobs": ("PUT", "/v2/bi-repo/manifests/v1", json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": ZERO, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ZERO, "size": 5}]}).encode(),
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, (400,)),
    "manifest-put-index-unknown": ("PUT", "/v2/bi-repo/manifests/v1", json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ZERO, "size": 5,
                       "platform": "linux"}]}).encode(),
        {"Content-Type": "application/vnd.oci.image.index.v1+json"}, (400,)),
    "manifest-put-bad-tag": ("PUT", "/v2/bi-repo/manifests/.bad", b"{}", {}, (400,)),
    "manifest-put-digest-mismatch": ("PUT", f"/v2/bi-repo/manifests/{ZERO}", json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": ZERO, "size": 2},
        "layers": []}).encode(), {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, (400,)),
    "manifest-put-too-large": ("PUT", "/v2/bi-repo/manifests/v1", b" " * (5 << 20), {}, (400, 413)),
    "manifest-delete-unknown": ("DELETE", "/v2/bi-repo/manifests/" + ZERO, None, {}, (401, 404, 405)),
    "manifest-delete-tag": ("DELETE", "/v2/bi-repo/manifests/latest", None, {}, (400, 401, 404, 405)),
    "blob-unknown": ("GET", f"/v2/bi-repo/blobs/{ZERO}", None, {}, (404,)),
    "blob-bad-digest": ("GET", "/v2/bi-repo/blobs/sha256:zz", None, {}, (400,)),
    "blob-delete-unknown": ("DELETE", f"/v2/bi-repo/blobs/{ZERO}", None, {}, (401, 404, 405)),
    "upload-start-bad-digest": ("POST", "/v2/bi-repo/blobs/uploads/?digest=sha256:zz", b"x", {}, (400,)),
    "upload-monolithic-mismatch": ("POST", f"/v2/bi-repo/blobs/uploads/?digest={ZERO}", b"hello", {}, (400,)),
    "upload-mount-bad-digest": ("POST", "/v2/bi-repo/blobs/uploads/?mount=nope&from=../../etc", None, {}, (400,)),
    "upload-mount-bad-from": ("POST", f"/v2/bi-repo/blobs/uploads/?mount={ZERO}&from=..%2F..%2Fetc",
                              None, {}, (202, 400)),
    "upload-status-unknown": ("GET", "/v2/bi-repo/blobs/uploads/bi-nosuch", None, {}, (404,)),
    "upload-status-traversal": ("GET", "/v2/bi-repo/blobs/uploads/..%2F..%2Fetc", None, {}, (400, 404)),
    "upload-patch-unknown": ("PATCH", "/v2/bi-repo/blobs/uploads/bi-nosuch", b"x", {}, (404,)),
    "upload-patch-traversal": ("PATCH", f"/v2/bi-repo/blobs/uploads/..%2F..%2F{ESCAPE}", b"x", {}, (400, 404)),
    "upload-put-unknown": ("PUT", f"/v2/bi-repo/blobs/uploads/bi-nosuch?digest={ZERO}", b"x", {}, (404,)),
    "upload-put-traversal": ("PUT", f"/v2/bi-repo/blobs/uploads/..%2F{ESCAPE}?digest={ZERO}", b"x", {},
                             (400, 404)),
    "upload-delete-unknown": ("DELETE", "/v2/bi-repo/blobs/uploads/bi-nosuch", None, {}, (404,)),
    "referrers-bad-digest": ("GET", "/v2/bi-repo/referrers/nope", None, {}, (400, 404)),
    "base-wrong-method": ("DELETE", "/v2/", None, {}, (401, 405)),
    "tags-wrong-method": ("POST", "/v2/bi-repo/tags/list", None, {}, (405,)),
    # anonymous pull is on here: a credential that does not parse reads as no credential
    "auth-garbage-basic": ("GET", "/v2/bi-repo/tags/list", None, {"Authorization": "Basic !!!"}, (200, 401, 404)),
    "auth-basic-no-colon": ("GET", "/v2/bi-repo/tags/list", None, {"Authorization": "Basic Ym9i"},
                            (200, 401, 404)),
    "auth-garbage-bearer": ("GET", "/v2/bi-repo/tags/list", None, {"Authorization": "Bearer a.b.c"},
                            (200, 401, 404)),
    "auth-unknown-scheme": ("GET", "/v2/bi-repo/tags/list", None, {"Authorization": "Digest x"}, (200, 401, 404)),
    "token-garbage-basic": ("GET", "/token?scope=repository:bi-repo:pull", None, {"Authorization": "Basic !!!"},
                            (200, 401)),
    "token-bad-scope": ("GET", "/token?scope=nonsense&scope=repository:..%2F..:pull,push", None, {},
                        (200, 400, 401)),
    "oauth-not-a-form": ("POST", "/token", b'{"x": 1}', {"Content-Type": "application/json"}, (400, 401)),
    "oauth-bad-grant": ("POST", "/token", b"grant_type=refresh_token&refresh_token=x",
                        {"Content-Type": "application/x-www-form-urlencoded"}, (400, 401)),
}


@pytest.mark.parametrize("case", list(REG_ROWS))
def test_registry_rejects(env: Env, case: str) -> None:
    method, path, body, headers, expect = REG_ROWS[case]
    watch = LogWatch(env)
    answer = tcp_call(env.registry_port, method, path, body, headers)
    if answer.status == 202 and "location" in answer.headers and "/blobs/uploads/" in answer.headers["location"]:
        tcp_call(env.registry_port, "DELETE", answer.headers["location"])  # a session the protocol allows
    if method == "HEAD":
        assert answer.status in expect, f"{case}: {answer.status}"
    else:
        assert_registry_error(answer, expect, case)
    assert_healthy(env, watch, case)


def test_the_registry_table_covers_every_endpoint() -> None:
    from urllib.parse import unquote, urlsplit

    from berth.registry._http import RegistryApp
    from berth.registry._routes import match

    app = RegistryApp.__new__(RegistryApp)
    RegistryApp.__init__(app, registry=None, auth=None)  # type: ignore[arg-type]
    tried = set()
    for method, path, *_ in REG_ROWS.values():
        route = match(unquote(urlsplit(path).path).removeprefix("/v2/")) if path.startswith("/v2/") else None
        if route is not None:
            tried.add((route.kind, method))
    missing = sorted(set(app._handlers) - tried)  # noqa: SLF001 - the table to cover
    assert missing == []


def test_registry_failed_uploads_leave_nothing(env: Env) -> None:
    """A chunk with a bad Content-Range, a wrong final digest and a body cut short all end clean."""
    watch = LogWatch(env)
    port = env.registry_port
    start = tcp_call(port, "POST", "/v2/bi-repo/blobs/uploads/")
    assert start.status == 202, start.body
    location = start.headers["location"]
    bad_range = tcp_call(port, "PATCH", location, b"abc", {"Content-Range": "bytes=zz"})
    assert_registry_error(bad_range, (400, 416), "bad Content-Range")
    wrong_start = tcp_call(port, "PATCH", location, b"abc", {"Content-Range": "5-7"})
    assert_registry_error(wrong_start, (416,), "out-of-order chunk")
    wrong = tcp_call(port, "PUT", f"{location}?digest={ZERO}", b"hello")
    assert_registry_error(wrong, (400,), "digest mismatch")
    assert tcp_call(port, "GET", location).status == 404, "a failed upload must end its session"
    # a body that stops before its Content-Length
    start = tcp_call(port, "POST", "/v2/bi-repo/blobs/uploads/")
    location = start.headers["location"]
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode() + b"x" * 500)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    # The session may stay open for a resume but holds none of the cut chunk. The server may still
    # be rolling the chunk back when our socket closes (416 "another request is writing").
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = tcp_call(port, "GET", location)
        if status.status == 404:
            break
        assert status.status == 204, status.body
        if tcp_call(port, "DELETE", location).status == 204:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the cut upload's session stayed busy")
    assert_healthy(env, watch, "cut upload")


# --- the TCP endpoints at the protocol level ----------------------------------------------------------

_CUT_MANIFEST = (b"PUT /v2/bi-repo/manifests/cut HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1000\r\n\r\n"
                 b'{"schemaVersion": 2, "config": ')
_CUT_AWS = (f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {ECR}.CreateRepository\r\n"
            f"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 500\r\n\r\n").encode() \
    + b'{"repositoryName": "bi-cut'
TCP_ROWS: dict[str, tuple[str, bytes]] = {
    "registry-oversized-head": ("registry", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"),
    "registry-garbage-line": ("registry", b"GARBAGE\r\n\r\n"),
    "registry-cut-manifest": ("registry", _CUT_MANIFEST),
    "registry-bad-content-length": ("registry", b"PUT /v2/bi-repo/manifests/x HTTP/1.1\r\nHost: x\r\n"
                                                b"Content-Length: ten\r\n\r\n"),
    "aws-oversized-head": ("aws", b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"),
    "aws-garbage-line": ("aws", b"GARBAGE\r\n\r\n"),
    "aws-cut-body": ("aws", _CUT_AWS),
}


@pytest.mark.parametrize("case", list(TCP_ROWS))
def test_tcp_protocol_errors(env: Env, case: str) -> None:
    """aiohttp answers broken HTTP itself (a 4xx, or a close): no traceback, nothing stored."""
    surface, data = TCP_ROWS[case]
    watch = LogWatch(env)
    port = env.registry_port if surface == "registry" else env.aws_port
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while piece := s.recv(65536):
            chunks.append(piece)
    reply = b"".join(chunks)
    assert reply == b"" or reply.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), f"{case}: {reply[:300]!r}"
    assert b"Traceback" not in reply
    assert_healthy(env, watch, case)
    assert tcp_call(env.registry_port, "GET", "/v2/bi-repo/manifests/cut").status == 404
    assert aws_call(env, "DescribeRepositories", {"repositoryNames": ["bi-cut"]})[0] == 400


# --- the AWS JSON API --------------------------------------------------------------------------------

AWS_PROTOCOL_ROWS: dict[str, tuple[str | None, bytes]] = {
    "no-target": ("", b"{}"),
    "unknown-service": ("Bogus_20200101.CreateRepository", b"{}"),
    "unknown-operation": (f"{ECR}.Bogus", b"{}"),
    "target-without-dot": ("CreateRepository", b"{}"),
    "invalid-json": (None, b'{"repositoryName": '),
    "list-body": (None, b"[]"),
    "string-body": (None, b'"x"'),
    "not-utf8": (None, b"\xff\xfe{}"),
}


@pytest.mark.parametrize("case", list(AWS_PROTOCOL_ROWS))
def test_aws_protocol_errors(env: Env, case: str) -> None:
    target, body = AWS_PROTOCOL_ROWS[case]
    watch = LogWatch(env)
    assert_aws_error(aws_raw(env, "CreateRepository", body, target=target), case)
    assert_healthy(env, watch, case)


# Each ECR parameter the handlers read, with values of every wrong JSON type.
ECR_PARAMS = (
    "repositoryName", "registryId", "imageTagMutability", "imageTagMutabilityExclusionFilters",
    "imageScanningConfiguration", "encryptionConfiguration", "tags", "repositoryNames", "force", "resourceArn",
    "tagKeys", "imageIds", "filter", "maxResults", "nextToken", "acceptedMediaTypes", "imageManifest", "imageTag",
    "imageDigest", "imageManifestMediaType", "lifecyclePolicyText", "policyText",
)
WRONG_VALUES: tuple[Any, ...] = (None, 5, 10 ** 30, "x", [5], {"a": [1]}, True, [{"Key": []}], "../../etc")


def _ecr_operations() -> list[str]:
    from berth.api.aws.ecr import EcrHandlers

    return sorted(n for n in dir(EcrHandlers) if n[:1].isupper())


@pytest.mark.parametrize("operation", _ecr_operations())
def test_ecr_rejects_wrong_types(env: Env, operation: str) -> None:
    """Every operation, with each parameter set to each wrong type: a 400 in AWS's shape (or a 200
    where the operation does not read that parameter), never a server fault."""
    watch = LogWatch(env)
    failures = []
    for key in ECR_PARAMS:
        for value in WRONG_VALUES:
            aws_call(env, "CreateRepository", {"repositoryName": "bi-fuzz"})
            params = {"repositoryName": "bi-fuzz", key: value}
            answer = aws_raw(env, operation, json.dumps(params).encode())
            try:
                assert_aws_error(answer, f"{operation} {key}={value!r}", ok_too=True)
            except AssertionError as err:
                failures.append(str(err))
    for params in ({}, {"repositoryName": "bi-nosuch"}, {"repositoryName": f"{UP}tmp/{ESCAPE}"}):
        answer = aws_raw(env, operation, json.dumps(params).encode())
        try:
            ok_too = operation in READ_NO_NAME or (operation == "CreateRepository" and ESCAPE not in str(params))
            assert_aws_error(answer, f"{operation} {params}", ok_too=ok_too)
        except AssertionError as err:
            failures.append(str(err))
    for name in ("bi-fuzz", "bi-nosuch"):
        aws_call(env, "DeleteRepository", {"repositoryName": name, "force": True})
    assert failures == [], "\n".join(failures[:20])
    assert_healthy(env, watch, operation)


READ_NO_NAME = {"DescribeRegistry", "DescribeRepositories", "GetAuthorizationToken",
                "GetRegistryScanningConfiguration", "PutRegistryScanningConfiguration"}  # ignore repositoryName


def test_ecr_rejected_input_changes_nothing(env: Env) -> None:
    """A refused CreateRepository leaves no repository; a refused PutImage stores no manifest."""
    for params in ({"repositoryName": "bi-half", "imageTagMutability": "SOMETIMES"},
                   {"repositoryName": "bi-half", "tags": "x"},
                   {"repositoryName": "bi-half", "encryptionConfiguration": {"encryptionType": "BOGUS"}},
                   {"repositoryName": "Bi-Half"}):
        status, body = aws_call(env, "CreateRepository", params)
        assert status == 400, (params, body)
    status, body = aws_call(env, "PutImage", {"repositoryName": "bi-repo", "imageTag": "v1", "imageManifest": "{"})
    assert status == 400, body
    status, body = aws_call(env, "ListImages", {"repositoryName": "bi-repo"})
    assert status == 200 and body["imageIds"] == [], body


# --- after the whole table -------------------------------------------------------------------------


def test_zz_nothing_half_created_or_left_behind(env: Env) -> None:
    """Runs last in this module (pytest keeps file order): compare with the inventory taken at start."""
    now = inventory(env)
    assert now == env.baseline
    leftovers = []
    tmp = env.root / "tmp"
    for dirpath, _dirnames, filenames in os.walk(tmp):
        leftovers += [os.path.join(dirpath, n) for n in filenames]
    for name in ("uploads", "_uploads", "ingest"):
        for path in (env.root / "registry").rglob(name):
            leftovers += [str(p) for p in path.rglob("*") if p.is_file()]
    assert leftovers == [], f"stray temp files: {leftovers}"
    assert_nothing_escaped(env)


# --- the berth CLI ------------------------------------------------------------------------------------

CLI_CASES: dict[str, tuple[str, ...]] = {
    "unknown-verb": ("bogus-verb",),
    "unknown-flag": ("ps", "--bogus"),
    "bad-memory": ("run", "--memory", "lots", "busybox"),
    "bad-publish": ("run", "-p", "99999:80", "busybox"),
    "bad-cpus": ("run", "--cpus", "many", "busybox"),
    "bad-restart": ("run", "--restart", "sometimes", "busybox"),
    "bad-env-file": ("run", "--env-file", f"/tmp/{ESCAPE}-missing", "busybox"),
    "missing-args": ("rm",),
    "inspect-unknown": ("inspect", "bi-nosuch"),
    "rm-unknown": ("rm", "bi-nosuch"),
    "logs-unknown": ("logs", "bi-nosuch"),
    "bad-tag": ("tag", "busybox", "UPPER CASE"),
    "bad-filter": ("ps", "--filter", "nonsense"),
    "bad-format": ("ps", "--format", "{{.Bogus"),
    "stop-bad-time": ("stop", "-t", "soon", "bi-target"),
    "load-missing-file": ("load", "-i", f"/tmp/{ESCAPE}-missing.tar"),
    "pull-traversal": ("pull", "../../etc"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_reports_errors_without_traceback(env: Env, case: str) -> None:
    result = subprocess.run([BERTH, *CLI_CASES[case]], env=env.d.env, capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: exit 0: {output}"
    assert "Traceback" not in output and "unexpected error" not in output, f"{case}: {output}"
    assert result.stderr.strip(), f"{case}: no message"


def test_cli_without_daemon(env: Env) -> None:
    missing = env.d.base / "no-daemon.sock"
    for args in (("ps",), ("info",), ("run", "busybox", "true"), ("-H", "tcp://999.999.0.1:1", "ps"),
                 ("-H", "nonsense://x", "images")):
        result = subprocess.run([BERTH, *args], env={**env.d.env, "DOCKER_HOST": f"unix://{missing}"},
                                capture_output=True, text=True, timeout=30)
        output = result.stdout + result.stderr
        assert result.returncode != 0 and "Traceback" not in output and "unexpected error" not in output, \
            f"{args}: {output}"
