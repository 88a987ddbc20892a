"""Real CNI plugins, namespaces and iptables on a private test bridge (needs root)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.errors import Conflict
from berth.network import Attachment, BridgeConfig, NetworkManager, PortMapping
from berth.network._cniconfig import chain_name

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not Path("/usr/lib/cni/bridge").exists(), reason="needs CNI plugins"),
]

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


@pytest.fixture(
    params=[(0, "plugins"), (1, "plugins"), (0, "batch"), (1, "batch")],
    ids=["direct", "spare", "direct-batch", "spare-batch"],
)
def net(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[NetworkManager, BridgeConfig]]:
    tag = secrets.token_hex(3)
    third = int(tag[:2], 16) % 200 + 20
    cfg = BridgeConfig(
        network_name=f"bt-{tag}",
        bridge=f"bt-{tag}",
        subnet=f"10.123.{third}.0/24",
        gateway=f"10.123.{third}.1",
    )
    spares, rules = request.param
    mgr = manager(tmp_path, cfg, spares=spares, rules=rules)
    yield mgr, cfg
    mgr.destroy()
    assert cfg.bridge not in sh("ip", "-o", "link")


def manager(
    tmp_path: Path, cfg: BridgeConfig, spares: int = 0, rules: str = "plugins"
) -> NetworkManager:
    mgr = NetworkManager(
        state_dir=tmp_path / "state", run_dir=tmp_path / "run", bridge=cfg, spares=spares,
        iptables_rules=rules,
    )
    mgr.cleanup_stale(set())  # as the daemon does at start; also starts the pool
    wait_for_spares(mgr)
    return mgr


def cid() -> str:
    return "t" + secrets.token_hex(16)


def assert_gone(
    mgr: NetworkManager, cfg: BridgeConfig, container_id: str, att: Attachment, veths: int = 0
) -> None:
    """Nothing of the container is left: rules, chains, veth, lease, netns, record."""
    netns = Path(att.netns_path or "")
    cni_id = netns.name  # the container id, or the spare's id it claimed
    rules = sh("iptables-save")
    assert container_id not in rules and cni_id not in rules
    assert chain_name("CNI-", cfg.network_name, cni_id) not in rules
    assert chain_name("CNI-DN-", cfg.network_name, cni_id) not in rules
    spares = wait_for_spares(mgr)
    assert len(sh("ip", "-o", "link", "show", "master", cfg.bridge).splitlines()) == veths + spares
    leases = netns.parent.parent.parent / "state" / "ipam" / cfg.network_name
    assert all(cni_id not in p.read_text() for p in leases.glob("10.*"))
    assert not netns.exists()
    assert cni_id not in sh("ip", "netns", "list")
    assert mgr.attachment(container_id) is None


def wait_for_spares(mgr: NetworkManager) -> int:
    """Wait until the pool is full (its filler idle); returns the number of spares."""
    size = mgr._pool._size
    deadline = time.monotonic() + 5
    while mgr._pool.ready() < size:
        assert time.monotonic() < deadline, "spare pool did not fill"
        time.sleep(0.01)
    return size


def http_get(url: str, deadline: float) -> int:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return int(resp.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_published_port_reaches_httpd_in_the_netns(net, tmp_path: Path) -> None:
    mgr, cfg = net
    web = tmp_path / "www"
    web.mkdir()
    (web / "index.html").write_text("hello\n")
    first = cid()
    att = mgr.attach(first, "bridge", [PortMapping(80, "tcp", "", 0)], name="web")
    port = att.ports[0].host_port
    assert port > 0 and att.ip_address.startswith(cfg.subnet.rsplit(".", 2)[0])
    httpd = subprocess.Popen(
        ["nsenter", f"--net={att.netns_path}", BUSYBOX, "httpd", "-f", "-p", "80", "-h", str(web)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        assert http_get(f"http://127.0.0.1:{port}/", deadline) == 200
        assert http_get(f"http://{att.ip_address}/", deadline) == 200
        # hairpin: the container reaches itself through the gateway's published port (PREROUTING
        # DNAT + SETMARK/MASQUERADE), as another container on the bridge would
        hairpin = subprocess.run(
            ["nsenter", f"--net={att.netns_path}", "timeout", "5", BUSYBOX, "wget", "-q", "-O", "-",
             f"http://{cfg.gateway}:{port}/"], capture_output=True, text=True)  # fmt: skip
        assert hairpin.stdout == "hello\n", hairpin.stderr
        with pytest.raises(
            Conflict, match=f"Bind for 0.0.0.0:{port} failed: port is already allocated"
        ):
            mgr.attach(cid(), "bridge", [PortMapping(8080, "tcp", "", port)], name="web2")
    finally:
        httpd.kill()
        httpd.wait()
    cni_id = Path(att.netns_path or "").name  # the container id, or the spare's id it claimed
    saved = sh("iptables-save")
    # the same rules whichever way they were written (CNI plugins, or berth's one batch)
    assert chain_name("CNI-DN-", cfg.network_name, cni_id) in saved
    assert f":{chain_name('CNI-', cfg.network_name, cni_id)} " in saved
    assert f"-A CNI-FORWARD -s {att.ip_address}/32 -j ACCEPT" in saved
    assert f"-A POSTROUTING -s {att.ip_address}/32 -m comment" in saved
    mgr.detach(first)
    assert_gone(mgr, cfg, first, att)
    mgr.detach(first)  # idempotent


def test_none_mode_has_only_loopback_up(net, tmp_path: Path) -> None:
    mgr, _ = net
    container = cid()
    att = mgr.attach(container, "none", [])
    links = sh("nsenter", f"--net={att.netns_path}", "ip", "-o", "link").splitlines()
    assert len(links) == 1 and ": lo:" in links[0] and "UP" in links[0]
    mgr.detach(container)
    assert not Path(att.netns_path or "x").exists()


def test_cleanup_stale_removes_crash_leftovers(net, tmp_path: Path) -> None:
    mgr, cfg = net
    live, dead = cid(), cid()
    live_att = mgr.attach(live, "bridge", [])
    dead_att = mgr.attach(dead, "bridge", [PortMapping(80, "tcp", "127.0.0.1", 0)])
    wait_for_spares(mgr)
    mgr._pool.close()  # the daemon "crashed": unclaimed spares and dead's state are left over
    mgr._ports.release_all()
    restarted = NetworkManager(state_dir=tmp_path / "state", run_dir=tmp_path / "run", bridge=cfg)
    restarted.reserve_ports(live)
    restarted.cleanup_stale({live})
    assert_gone(restarted, cfg, dead, dead_att, veths=1)
    assert restarted.attachment(live) == live_att
    restarted.detach(live)
    assert_gone(restarted, cfg, live, live_att)


def test_cleanup_stale_waits_for_an_add_that_outlives_its_killed_daemon(tmp_path: Path) -> None:
    """SIGKILL while a spare's bridge ADD runs: the plugin carries on, and once the restarted
    manager's DEL has run and the netns is gone it would still add its masquerade chain, lost
    for good (a DEL without the netns cannot find it). The clean-up must wait for it instead.

    A wrapper holds the bridge ADD, with the netns open, until `go` exists."""
    tag = secrets.token_hex(3)
    third = int(tag[:2], 16) % 200 + 20
    cni, go, started = tmp_path / "cni", tmp_path / "go", tmp_path / "started"
    cni.mkdir()
    for plugin in os.listdir("/usr/lib/cni"):
        (cni / plugin).symlink_to(Path("/usr/lib/cni") / plugin)
    (cni / "bridge").unlink()
    (cni / "bridge").write_text(
        '#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then\n  exec 8<"$CNI_NETNS"\n'
        f"  touch {started}\n  while [ ! -e {go} ]; do sleep 0.01; done\n"
        '  export CNI_NETNS=/proc/$$/fd/8\nfi\nexec /usr/lib/cni/bridge\n'
    )
    (cni / "bridge").chmod(0o755)
    fields = dict(network_name=f"bt-{tag}", bridge=f"bt-{tag}", subnet=f"10.123.{third}.0/24",
                  gateway=f"10.123.{third}.1", cni_path=str(cni))
    cfg = BridgeConfig(**fields)
    state, run = tmp_path / "state", tmp_path / "run"
    daemon = subprocess.Popen([sys.executable, "-c", (
        "from pathlib import Path; from berth.network import BridgeConfig, NetworkManager; "
        f"NetworkManager(state_dir=Path({str(state)!r}), run_dir=Path({str(run)!r}), spares=1, "
        f"bridge=BridgeConfig(**{fields!r})).cleanup_stale(set()); import time; time.sleep(60)")])
    restarted = NetworkManager(state_dir=state, run_dir=run, bridge=cfg)
    try:
        deadline = time.monotonic() + 10
        while not started.exists():
            assert time.monotonic() < deadline, "the spare's ADD did not start"
            time.sleep(0.01)
        daemon.kill()
        daemon.wait()
        [spare] = [p.stem for p in (state / "attachments").glob("spare-*.json")]
        cleanup = threading.Thread(target=restarted.cleanup_stale, args=(set(),))
        cleanup.start()
        cleanup.join(0.3)
        assert cleanup.is_alive(), "cleaned up while the killed daemon's ADD still ran"
        go.touch()
        cleanup.join(15)
        assert not cleanup.is_alive()
        rules = sh("iptables-save")
        assert spare not in rules and chain_name("CNI-", cfg.network_name, spare) not in rules
        assert not list((state / "ipam" / cfg.network_name).glob("10.*")), "lease left"
        assert not (run / "netns" / spare).exists()
    finally:
        go.touch()
        daemon.kill()
        daemon.wait()
        restarted.destroy()
