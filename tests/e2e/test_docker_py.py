"""docker-py (the `docker` package) against a berth daemon."""

from __future__ import annotations

import time
import urllib.request

import docker
import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root


@pytest.fixture()
def client(daemon: BerthDaemon):  # type: ignore[no-untyped-def]
    c = docker.DockerClient(base_url=daemon.host, version="1.50", timeout=60)
    yield c
    c.close()


def test_run_with_ports_env_logs_exec_wait_remove(client) -> None:  # type: ignore[no-untyped-def]
    script = "echo value=$GREETING; mkdir /www; echo py > /www/index.html; exec httpd -f -p 8000 -h /www"
    container = client.containers.run("busybox", ["sh", "-c", script], detach=True,
                                      environment={"GREETING": "hello"}, ports={"8000/tcp": ("127.0.0.1", 18181)})
    try:
        body = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen("http://127.0.0.1:18181/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.05)
        assert body == b"py\n"
        stream = container.logs(stream=True, follow=True)
        assert next(stream).startswith(b"value=hello")
        code, output = container.exec_run(["sh", "-c", "echo $GREETING; exit 0"])
        assert code == 0 and output == b"hello\n"
        container.reload()
        assert container.status == "running"
        assert container.ports == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18181"}]}
        container.kill()
        assert container.wait(timeout=10)["StatusCode"] == 137
    finally:
        container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)


def test_run_foreground_returns_output(client) -> None:  # type: ignore[no-untyped-def]
    assert client.containers.run("busybox", ["echo", "from-py"], remove=True) == b"from-py\n"


def test_errors(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("nosuch-image:1")
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("nosuch")
    with pytest.raises(docker.errors.ContainerError) as info:
        client.containers.run("busybox", ["sh", "-c", "exit 2"], remove=True)
    assert info.value.exit_status == 2
