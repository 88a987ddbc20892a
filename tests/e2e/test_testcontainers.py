"""testcontainers-python (which drives docker-py) starts a container with an exposed port on berth."""

from __future__ import annotations

import os
import time
import urllib.request

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root


def test_testcontainers_exposed_port(daemon: BerthDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    # Ryuk, the reaper, is an image from a public registry; the test removes its container itself.
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = DockerContainer("busybox").with_exposed_ports(80).with_command(
        ["sh", "-c", "echo tc > /tmp/index.html && echo serving && exec httpd -f -p 80 -h /tmp"]
    ).waiting_for(LogMessageWaitStrategy("serving"))
    with container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(80)
        body = b""
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=2).read()
                break
            except OSError:
                time.sleep(0.05)
        assert body == b"tc\n"
    assert os.environ["DOCKER_HOST"] == daemon.host
