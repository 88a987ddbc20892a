"""User networks and volumes across a daemon crash: endpoints, hosts files and clean-up survive."""

from __future__ import annotations

import time

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root


def _endpoint_files(d: BerthDaemon) -> list[str]:
    root = d.root / "network" / "endpoints"
    return sorted(p.name for p in root.rglob("*.json")) if root.exists() else []


def test_user_network_survives_daemon_kill(private: BerthDaemon) -> None:
    private.docker("network", "create", "app", check=True)
    private.docker("run", "-d", "--name", "na", "--network", "app", "-v", "keep:/data", "busybox", "sleep", "600",
                   check=True)
    private.docker("run", "-d", "--name", "nb", "--network", "app", "busybox", "sleep", "600", check=True)
    private.kill()
    private.start()
    hosts = private.docker("exec", "na", "cat", "/etc/hosts", check=True).stdout
    assert "\tnb " in hosts
    private.docker("run", "-d", "--name", "nc", "--network", "app", "busybox", "sleep", "600", check=True)
    assert "\tnc " in private.docker("exec", "na", "cat", "/etc/hosts", check=True).stdout
    private.docker("rm", "-f", "na", "nb", "nc", check=True)
    deadline = time.monotonic() + 10
    while _endpoint_files(private) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _endpoint_files(private) == []
    assert private.docker("network", "rm", "app").returncode == 0
    assert private.docker("volume", "rm", "keep").returncode == 0
