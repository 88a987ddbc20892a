"""docker-compose (Debian's 1.29, over docker-py): a two-service project on a user network with a
named volume; the services talk by service name; `down -v` removes everything."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root

COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox
    command: sh -c "echo hello-from-web > /data/index.html && exec httpd -f -p 80 -h /data"
    volumes:
      - webdata:/data
    networks: [appnet]
  client:
    image: busybox
    command: sleep 3600
    networks: [appnet]
volumes:
  webdata:
networks:
  appnet:
"""


def _compose(daemon: BerthDaemon, project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker-compose", "-p", "bt", *args], cwd=project_dir, env=daemon.env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_up_talk_down(daemon: BerthDaemon, tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    up = _compose(daemon, tmp_path, "up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        client = daemon.docker("ps", "-q", "--filter", "label=com.docker.compose.service=client",
                               check=True).stdout.strip()
        fetched = None
        for _ in range(50):
            fetched = daemon.docker("exec", client, "wget", "-q", "-O-", "http://web/")
            if fetched.returncode == 0:
                break
            time.sleep(0.1)
        assert fetched is not None and fetched.stdout == "hello-from-web\n", fetched.stderr
        volumes = daemon.docker("volume", "ls", "-q", check=True).stdout.split()
        assert "bt_webdata" in volumes
        net = json.loads(daemon.docker("network", "inspect", "bt_appnet", check=True).stdout)[0]
        # compose numbers its containers (bt_web_1); only the service part of the name is stable.
        names = sorted(m["Name"].rsplit("_", 1)[0] for m in net["Containers"].values())
        assert names == ["bt_client", "bt_web"]
        assert net["Labels"]["com.docker.compose.project"] == "bt"
    finally:
        down = _compose(daemon, tmp_path, "down", "-v")
    assert down.returncode == 0, down.stderr
    assert daemon.docker("ps", "-aq", "--filter", "label=com.docker.compose.project=bt").stdout == ""
    assert "bt_webdata" not in daemon.docker("volume", "ls", "-q", check=True).stdout.split()
    assert daemon.docker("network", "inspect", "bt_appnet").returncode == 1
