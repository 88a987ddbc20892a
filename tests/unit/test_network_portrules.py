"""Published ports as one iptables-restore batch (network/_portrules.py), and the manager's
`ports_via="iptables"` path, against recorded fakes (no root needed)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from berth.errors import Unavailable
from berth.network import BridgeConfig, NetworkManager, PortMapping
from berth.network._cniconfig import chain_name
from berth.network._portrules import (
    PortRules, add_batch, delete_batch, existing_jumps, jump_rules, missing_shared, publishable,
)  # fmt: skip
from berth.network.testing import FakeIptables, FakeNetns, FakePlugins

NET = "bp-13b134"
CID = "c13b134"
CHAIN = chain_name("CNI-DN-", NET, CID)
WEB = PortMapping(80, "tcp", "", 18455)
DNS = PortMapping(53, "udp", "127.0.0.1", 18456)

# What portmap 1.1.1 wrote for these two mappings on this host (iptables-save -t nat).
PORTMAP_RULES = f"""\
-A {CHAIN} -s 10.124.77.0/24 -p tcp -m tcp --dport 18455 -j CNI-HOSTPORT-SETMARK
-A {CHAIN} -s 127.0.0.1/32 -p tcp -m tcp --dport 18455 -j CNI-HOSTPORT-SETMARK
-A {CHAIN} -p tcp -m tcp --dport 18455 -j DNAT --to-destination 10.124.77.2:80
-A {CHAIN} -s 10.124.77.0/24 -d 127.0.0.1/32 -p udp -m udp --dport 18456 -j CNI-HOSTPORT-SETMARK
-A {CHAIN} -s 127.0.0.1/32 -d 127.0.0.1/32 -p udp -m udp --dport 18456 -j CNI-HOSTPORT-SETMARK
-A {CHAIN} -d 127.0.0.1/32 -p udp -m udp --dport 18456 -j DNAT --to-destination 10.124.77.2:53
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"{NET}\\" id: \\"{CID}\\"" -m multiport --dports 18455 -j {CHAIN}
-A CNI-HOSTPORT-DNAT -p udp -m comment --comment "dnat name: \\"{NET}\\" id: \\"{CID}\\"" -m multiport --dports 18456 -j {CHAIN}"""


def test_add_batch_writes_portmaps_rules_in_one_transaction() -> None:
    batch = add_batch(NET, CID, "10.124.77.2/24", [WEB, DNS])
    lines = batch.splitlines()
    assert lines[:2] == ["*nat", f":{CHAIN} - [0:0]"] and lines[-1] == "COMMIT"
    assert "\n".join(lines[2:-1]) == PORTMAP_RULES
    assert CHAIN.startswith("CNI-DN-") and len(CHAIN) == 28


def test_jump_rules_dedupe_ports_and_chunk_by_fifteen() -> None:
    ports = [PortMapping(80, "tcp", "", 20000 + i) for i in range(16)]
    ports.append(PortMapping(80, "tcp", "127.0.0.1", 20000))  # same host port, other address
    rules = jump_rules(NET, CID, ports)
    assert len(rules) == 2
    assert "--dports " + ",".join(str(20000 + i) for i in range(15)) + " -j" in rules[0]
    assert "--dports 20015 -j" in rules[1]


def test_only_ipv4_mappings_with_a_host_port_get_rules() -> None:
    kept = publishable([WEB, PortMapping(80, "tcp", "::1", 8080), PortMapping(80, "tcp", "", 0)])
    assert kept == [WEB]


def test_delete_batch_and_existing_jumps() -> None:
    saved = f":{CHAIN} - [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n{PORTMAP_RULES}\n-A CNI-HOSTPORT-DNAT -p tcp -j CNI-DN-other\n"
    jumps = existing_jumps(saved, CHAIN)
    assert len(jumps) == 2 and all(j.startswith("-A CNI-HOSTPORT-DNAT ") for j in jumps)
    batch = delete_batch(CHAIN, jumps).splitlines()
    assert batch[0] == "*nat" and batch[-1] == "COMMIT"
    assert batch[1].startswith("-D CNI-HOSTPORT-DNAT -p tcp ")
    assert batch[-3:-1] == [f":{CHAIN} - [0:0]", f"-X {CHAIN}"]  # declared: -X works even if absent


def test_missing_shared_lists_only_what_is_absent() -> None:
    chains, rules = missing_shared("")
    assert chains == ["CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-DNAT"]
    assert len(rules) == 5
    # portmap prepends the masquerade hook: bridge's per-container ACCEPT must not shadow it
    assert '-I POSTROUTING 1 -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ' in rules
    saved = [rule.replace("-I POSTROUTING 1 ", "-A POSTROUTING ") for rule in rules]
    complete = "\n".join(
        [":CNI-HOSTPORT-SETMARK - [0:0]", ":CNI-HOSTPORT-MASQ - [0:0]", ":CNI-HOSTPORT-DNAT - [0:0]", *saved]
    )
    assert missing_shared(complete) == ([], [])


def rules(tmp_path: Path, fake: FakeIptables) -> PortRules:
    (tmp_path / "br0").mkdir(exist_ok=True)
    return PortRules(NET, "br0", runner=fake, sysctl_dir=tmp_path)


def test_add_is_one_restore_and_enables_route_localnet(tmp_path: Path) -> None:
    fake = FakeIptables()
    rules(tmp_path, fake).add(CID, "10.124.77.2/24", [WEB])
    assert [argv for argv, _ in fake.calls] == [["iptables-restore", "--noflush", "-w"]]
    assert (tmp_path / "br0" / "route_localnet").read_text() == "1\n"
    rules(tmp_path, fake).add(CID, "10.124.77.2/24", [])  # nothing to publish: no exec
    assert len(fake.calls) == 1


def test_add_creates_missing_shared_chains_then_retries(tmp_path: Path) -> None:
    fake = FakeIptables(fail_restores=1)
    rules(tmp_path, fake).add(CID, "10.124.77.2/24", [WEB])
    tools = [argv[0] if argv[0] != "iptables" else " ".join(argv[-2:]) for argv, _ in fake.calls]
    assert tools == [
        "iptables-restore", "iptables-save", "-N CNI-HOSTPORT-SETMARK", "-N CNI-HOSTPORT-MASQ",
        "-N CNI-HOSTPORT-DNAT", "iptables-restore", "iptables-restore",
    ]  # fmt: skip
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in fake.batches()[1]


def test_add_failure_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="publishing ports"):
        rules(tmp_path, FakeIptables(fail_restores=3)).add(CID, "10.124.77.2/24", [WEB])


def test_remove_is_one_restore_with_a_save_fallback_and_idempotent(tmp_path: Path) -> None:
    fake = FakeIptables()
    rules(tmp_path, fake).remove(CID, [WEB])
    assert len(fake.calls) == 1 and fake.batches()[0].startswith("*nat\n-D CNI-HOSTPORT-DNAT -p tcp")

    gone = FakeIptables(fail_restores=1, saved=":CNI-HOSTPORT-DNAT - [0:0]\n")
    rules(tmp_path, gone).remove(CID, [WEB])
    assert [argv[0] for argv, _ in gone.calls] == ["iptables-restore", "iptables-save"]

    partial = FakeIptables(fail_restores=1, saved=f":{CHAIN} - [0:0]\n{PORTMAP_RULES}\n")
    rules(tmp_path, partial).remove(CID, [WEB])
    assert len(partial.batches()) == 2 and partial.batches()[1].count("-D CNI-HOSTPORT-DNAT") == 2


# -- NetworkManager(ports_via="iptables") --------------------------------------------------------

CFG = BridgeConfig(network_name="unit", bridge="bt-unit", subnet="10.123.9.0/24", gateway="10.123.9.1")


class Env:
    def __init__(self, tmp: Path, spares: int = 0) -> None:
        self.plugins, self.iptables = FakePlugins(), FakeIptables()
        self.mgr = NetworkManager(
            state_dir=tmp / "state", run_dir=tmp / "run", bridge=CFG, executor=self.plugins,
            netns_ops=FakeNetns(), spares=spares, ports_via="iptables", iptables=self.iptables,
        )  # fmt: skip
        self.mgr._port_rules._sysctl_dir = tmp  # type: ignore[attr-defined]
        (tmp / CFG.bridge).mkdir()


@pytest.fixture
def env(tmp_path: Path):
    e = Env(tmp_path)
    yield e
    e.mgr._pool.close()
    e.mgr._ports.release_all()


def local(port: int = 0) -> PortMapping:
    return PortMapping(80, "tcp", "127.0.0.1", port)


def test_attach_runs_bridge_and_firewall_and_one_restore(env: Env) -> None:
    att = env.mgr.attach("c1", "bridge", [local()], name="web")
    assert env.plugins.commands() == [("bridge", "ADD"), ("firewall", "ADD")]
    (batch,) = env.iptables.batches()
    port = att.ports[0].host_port
    assert f"-d 127.0.0.1/32 -p tcp -m tcp --dport {port} -j DNAT --to-destination {att.ip_address}:80" in batch
    assert chain_name("CNI-DN-", CFG.network_name, "c1") in batch

    env.plugins.calls.clear()
    env.mgr.detach("c1")
    assert env.plugins.commands() == [("firewall", "DEL"), ("bridge", "DEL")]
    assert env.iptables.batches()[1].startswith("*nat\n-D CNI-HOSTPORT-DNAT")


def test_none_published_means_no_iptables_exec(env: Env) -> None:
    env.mgr.attach("c1", "bridge", [])
    env.mgr.detach("c1")
    assert env.iptables.calls == []


def test_failed_rules_roll_the_cni_add_back(env: Env) -> None:
    env.iptables.fail_restores = 3
    with pytest.raises(Unavailable):
        env.mgr.attach("c1", "bridge", [local()])
    assert env.plugins.commands()[-2:] == [("firewall", "DEL"), ("bridge", "DEL")]
    assert env.mgr.attachment("c1") is None and not env.mgr._ports.held_by("c1")


def test_ports_are_free_once_the_rules_are_gone_not_after_the_slow_dels(env: Env) -> None:
    first = env.mgr.attach("old", "bridge", [local()])
    port = first.ports[0].host_port
    release, in_del = threading.Event(), threading.Event()
    real = env.plugins.__call__

    def slow(path: str, e, stdin: bytes) -> bytes:
        if e["CNI_COMMAND"] == "DEL":
            in_del.set()
            release.wait(5)
        return real(path, e, stdin)

    env.mgr._cni._exec = slow  # type: ignore[attr-defined]
    detacher = threading.Thread(target=env.mgr.detach, args=("old",))
    detacher.start()
    assert in_del.wait(5)
    try:
        att = env.mgr.attach("new", "bridge", [local(port)])  # does not wait for the DELs
        assert att.ports[0].host_port == port
    finally:
        release.set()
        detacher.join(5)


def test_claimed_spare_gets_rules_under_its_cni_id(tmp_path: Path) -> None:
    e = Env(tmp_path, spares=1)
    try:
        e.mgr.cleanup_stale(set())
        for _ in range(500):
            if e.mgr._pool.ready():
                break
            threading.Event().wait(0.01)
        spare_id = e.plugins.calls[0].env["CNI_CONTAINERID"]
        e.plugins.calls.clear()
        e.mgr.attach("c1", "bridge", [local()])
        assert chain_name("CNI-DN-", CFG.network_name, spare_id) in e.iptables.batches()[0]
        assert ("portmap", "ADD") not in e.plugins.commands()
        e.mgr.detach("c1")
        assert chain_name("CNI-DN-", CFG.network_name, spare_id) in e.iptables.batches()[1]
        e.mgr.close()
        assert e.mgr._pool.ready() == 0
    finally:
        e.mgr._pool.close()
        e.mgr._ports.release_all()


def test_unknown_port_driver_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="ports_via"):
        NetworkManager(state_dir=tmp_path, run_dir=tmp_path, ports_via="nft")
