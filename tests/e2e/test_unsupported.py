"""What berth does not implement answers in Docker's error shape (501 + message), never 404."""

from __future__ import annotations

import pytest

from tests.helpers import BerthDaemon, api

pytestmark = pytest.mark.root


@pytest.mark.parametrize(("args", "words"), [
    (("search", "busybox"), "docker search is not available"),
    (("swarm", "init"), "does not implement swarm mode"),
    (("node", "ls"), "This node is not a swarm manager."),  # dockerd's answers outside a swarm
    (("service", "ls"), "This node is not a swarm manager."),
    (("secret", "ls"), "This node is not a swarm manager."),
    (("swarm", "leave"), "This node is not part of a swarm"),
    (("plugin", "install", "vieux/sshfs"), "does not support engine plugins"),
])
def test_cli_gets_a_clear_refusal(daemon: BerthDaemon, args: tuple[str, ...], words: str) -> None:
    result = daemon.docker(*args)
    assert result.returncode != 0 and words in result.stderr
    assert "page not found" not in result.stderr


def test_wire_shape_and_empty_plugin_list(daemon: BerthDaemon) -> None:
    status, body = api(daemon.sock, "GET", "/v1.45/swarm")
    assert status == 503 and "not a swarm manager" in body["message"]
    status, body = api(daemon.sock, "GET", "/plugins")
    assert (status, body) == (200, [])
    assert daemon.docker("plugin", "ls", "-q").stdout == ""
    assert daemon.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive"
