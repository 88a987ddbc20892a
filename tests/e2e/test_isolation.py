"""Isolation between networks (BERTH-ISOLATION chains): same network talks, different networks do not."""

from __future__ import annotations

import json
import secrets
import subprocess
import time

import pytest

from tests.helpers import BerthDaemon

pytestmark = pytest.mark.root

WEB = "mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _web(daemon: BerthDaemon, name: str, network: str) -> str:
    daemon.docker("run", "-d", "--name", name, "--hostname", name, "--network", network, "busybox", "sh", "-c", WEB,
                  check=True)
    info = json.loads(daemon.docker("inspect", name, check=True).stdout)[0]
    return str(info["NetworkSettings"]["Networks"][network]["IPAddress"])


def _get(daemon: BerthDaemon, client: str, ip: str, seconds: int = 3) -> tuple[int, str]:
    # busybox wget -T segfaults here; timeout(1) bounds a dropped connection instead
    result = daemon.docker("exec", client, "timeout", str(seconds), "wget", "-q", "-O-", f"http://{ip}/")
    return result.returncode, result.stdout


def _get_when_up(daemon: BerthDaemon, client: str, ip: str) -> tuple[int, str]:
    for _ in range(30):
        code, out = _get(daemon, client, ip)
        if code == 0:
            break
        time.sleep(0.1)
    return code, out


def _mangle_rules() -> str:
    return subprocess.run(["iptables", "-t", "mangle", "-S"], capture_output=True, text=True, check=True).stdout


def _bridge(daemon: BerthDaemon, network: str) -> str:
    return "br-" + json.loads(daemon.docker("network", "inspect", network, check=True).stdout)[0]["Id"][:12]


def test_networks_cannot_reach_each_other_by_ip(daemon: BerthDaemon) -> None:
    n1, n2 = _name("iso1"), _name("iso2")
    w1, w2, w0, c1, c0 = _name("w1"), _name("w2"), _name("w0"), _name("c1"), _name("c0")
    daemon.docker("network", "create", n1, check=True)
    daemon.docker("network", "create", n2, check=True)
    bridges = [_bridge(daemon, n1), _bridge(daemon, n2)]
    try:
        ip1, ip2, ip0 = _web(daemon, w1, n1), _web(daemon, w2, n2), _web(daemon, w0, "bridge")
        for client, network in ((c1, n1), (c0, "bridge")):
            daemon.docker("run", "-d", "--name", client, "--network", network, "busybox", "sleep", "600", check=True)
        assert _get_when_up(daemon, c1, ip1) == (0, f"hello-{w1}\n")  # same network
        assert _get_when_up(daemon, c0, ip0) == (0, f"hello-{w0}\n")  # same (default) network
        # a bridge answers in milliseconds: one second without an answer is a drop
        assert _get(daemon, c1, ip2, 1)[0] != 0  # user network → other user network
        assert _get(daemon, c1, ip0, 1)[0] != 0  # user network → default bridge
        assert _get(daemon, c0, ip1, 1)[0] != 0  # default bridge → user network
        assert f"-o {_bridge(daemon, n2)} -j DROP" in _mangle_rules()
    finally:
        daemon.docker("rm", "-f", w1, w2, w0, c1, c0)
        daemon.docker("network", "rm", n1, n2)
    rules = _mangle_rules()
    assert not any(f" {b} " in rules for b in bridges)


def test_network_rm_removes_its_rules_and_internal_networks_stay_inside(daemon: BerthDaemon) -> None:
    internal = _name("int")
    daemon.docker("network", "create", "--internal", "--subnet", "10.125.9.0/24", internal, check=True)
    bridge = _bridge(daemon, internal)
    rules = _mangle_rules()
    assert f"! -d 10.125.9.0/24 -i {bridge} -j DROP" in rules
    assert f"! -s 10.125.9.0/24 -o {bridge} -j DROP" in rules
    daemon.docker("network", "rm", internal, check=True)
    assert bridge not in _mangle_rules()
