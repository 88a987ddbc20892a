"""A container's iptables rules in one iptables-restore batch (network/_iptrules.py), and the
manager's `iptables_rules="batch"` path, against recorded fakes (no root needed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from berth.errors import Unavailable
from berth.network import BridgeConfig, NetworkManager, PortMapping
from berth.network._cniconfig import chain_name
from berth.network._iptrules import (
    ContainerRules, ContainerRuleSet, add_batch, delete_batch, missing_shared, present, publishable,
)  # fmt: skip
from berth.network.testing import FakeIptables, FakeNetns, FakePlugins

NET = "bp-13b134"
CID = "c13b134"
DN = chain_name("CNI-DN-", NET, CID)
MASQ = chain_name("CNI-", NET, CID)
WEB = PortMapping(80, "tcp", "", 18455)
DNS = PortMapping(53, "udp", "127.0.0.1", 18456)
TAG = f'"name: \\"{NET}\\" id: \\"{CID}\\""'
DNAT_TAG = f'"dnat name: \\"{NET}\\" id: \\"{CID}\\""'

# What bridge (ipMasq), portmap 1.1.1 (snat) and firewall wrote for this container on this host,
# as iptables-save prints it.
PLUGIN_NAT = f"""\
-A {MASQ} -d 10.124.77.0/24 -m comment --comment {TAG} -j ACCEPT
-A {MASQ} ! -d 224.0.0.0/4 -m comment --comment {TAG} -j MASQUERADE
-A {DN} -s 10.124.77.0/24 -p tcp -m tcp --dport 18455 -j CNI-HOSTPORT-SETMARK
-A {DN} -s 127.0.0.1/32 -p tcp -m tcp --dport 18455 -j CNI-HOSTPORT-SETMARK
-A {DN} -p tcp -m tcp --dport 18455 -j DNAT --to-destination 10.124.77.2:80
-A {DN} -s 10.124.77.0/24 -d 127.0.0.1/32 -p udp -m udp --dport 18456 -j CNI-HOSTPORT-SETMARK
-A {DN} -s 127.0.0.1/32 -d 127.0.0.1/32 -p udp -m udp --dport 18456 -j CNI-HOSTPORT-SETMARK
-A {DN} -d 127.0.0.1/32 -p udp -m udp --dport 18456 -j DNAT --to-destination 10.124.77.2:53
-A POSTROUTING -s 10.124.77.2/32 -m comment --comment {TAG} -j {MASQ}
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment {DNAT_TAG} -m multiport --dports 18455 -j {DN}
-A CNI-HOSTPORT-DNAT -p udp -m comment --comment {DNAT_TAG} -m multiport --dports 18456 -j {DN}"""
PLUGIN_FILTER = """\
-A CNI-FORWARD -d 10.124.77.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A CNI-FORWARD -s 10.124.77.2/32 -j ACCEPT"""

RULES = ContainerRuleSet(NET, CID, "10.124.77.2/24", (WEB, DNS))


def test_add_batch_writes_the_plugins_rules_in_one_transaction() -> None:
    lines = add_batch(RULES).splitlines()
    nat_end = lines.index("COMMIT")
    assert lines[:3] == ["*nat", f":{MASQ} - [0:0]", f":{DN} - [0:0]"]
    assert "\n".join(lines[3:nat_end]) == PLUGIN_NAT
    assert lines[nat_end + 1] == "*filter" and lines[-1] == "COMMIT"
    assert "\n".join(lines[nat_end + 2 : -1]) == PLUGIN_FILTER
    assert len(DN) == len(MASQ) == 28


def test_ports_only_batch_is_the_port_chain_and_its_jumps() -> None:
    lines = add_batch(RULES, ports_only=True).splitlines()
    assert lines[:2] == ["*nat", f":{DN} - [0:0]"] and lines[-1] == "COMMIT"
    assert all(DN in line for line in lines[1:-1]) and len(lines) == 11
    assert "*filter" not in lines


def test_jump_rules_dedupe_ports_and_chunk_by_fifteen() -> None:
    ports = [PortMapping(80, "tcp", "", 20000 + i) for i in range(16)]
    ports.append(PortMapping(80, "tcp", "127.0.0.1", 20000))  # same host port, other address
    jumps = [r for r in ContainerRuleSet(NET, CID, "10.1.0.2/24", tuple(ports)).hook_rules()["nat"]
             if "multiport" in r]
    assert len(jumps) == 2
    assert "--dports " + ",".join(str(20000 + i) for i in range(15)) + " -j" in jumps[0]
    assert "--dports 20015 -j" in jumps[1]


def test_only_ipv4_mappings_with_a_host_port_get_rules() -> None:
    kept = publishable([WEB, PortMapping(80, "tcp", "::1", 8080), PortMapping(80, "tcp", "", 0)])
    assert kept == [WEB]


def test_delete_batch_and_what_is_present() -> None:
    batch = delete_batch(RULES.hook_rules(), RULES.chains()).splitlines()
    assert batch[0] == "*nat" and batch[1].startswith("-D POSTROUTING -s 10.124.77.2/32")
    assert batch[4:8] == [f":{MASQ} - [0:0]", f":{DN} - [0:0]", f"-X {MASQ}", f"-X {DN}"]
    assert batch[-3:] == ["-D CNI-FORWARD -d 10.124.77.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                          "-D CNI-FORWARD -s 10.124.77.2/32 -j ACCEPT", "COMMIT"]

    saved = "\n".join(["*nat", f":{DN} - [0:0]", PLUGIN_NAT.split("\n")[-1], "-A X -j CNI-DN-other",
                       "COMMIT", "*filter", PLUGIN_FILTER.split("\n")[1], "COMMIT"])
    hooks, chains = present(saved, RULES)
    assert chains == [DN] and len(hooks["nat"]) == 1 and hooks["nat"][0].endswith(f"-j {DN}")
    assert hooks["filter"] == ["-A CNI-FORWARD -s 10.124.77.2/32 -j ACCEPT"]


def test_missing_shared_lists_only_what_is_absent() -> None:
    chains, rules = missing_shared("", with_ports=True)
    assert [c for _, c in chains] == ["CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-DNAT",
                                      "CNI-FORWARD", "CNI-ADMIN"]
    forms = [r.add_form() for r in rules]
    # inserted first, as portmap and firewall do: per-container ACCEPTs must not shadow them
    assert '-I POSTROUTING 1 -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ' in forms
    assert '-I FORWARD 1 -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD' in forms
    assert [c for _, c in missing_shared("", with_ports=False)[0]] == ["CNI-FORWARD", "CNI-ADMIN"]
    saved = ["*nat", *(f":{c} - [0:0]" for t, c in chains if t == "nat"), *(r.saved for r in rules if r.table == "nat"),
             "COMMIT", "*filter", *(f":{c} - [0:0]" for t, c in chains if t == "filter"),
             *(r.saved for r in rules if r.table == "filter"), "COMMIT"]
    assert missing_shared("\n".join(saved), with_ports=True) == ([], [])


def rules(tmp_path: Path, fake: FakeIptables) -> ContainerRules:
    (tmp_path / "br0").mkdir(exist_ok=True)
    return ContainerRules(NET, "br0", runner=fake, sysctl_dir=tmp_path)


def test_add_is_one_restore_and_route_localnet_only_with_ports(tmp_path: Path) -> None:
    fake = FakeIptables()
    rules(tmp_path, fake).add(CID, "10.124.77.2/24", [])
    assert [argv for argv, _ in fake.calls] == [["iptables-restore", "--noflush", "-w"]]
    assert not (tmp_path / "br0" / "route_localnet").exists()
    rules(tmp_path, fake).add(CID, "10.124.77.2/24", [WEB])
    assert len(fake.calls) == 2 and (tmp_path / "br0" / "route_localnet").read_text() == "1\n"
    rules(tmp_path, fake).add(CID, "10.124.77.2/24", [], ports_only=True)  # nothing to do
    assert len(fake.calls) == 2


def test_add_creates_missing_shared_chains_then_retries(tmp_path: Path) -> None:
    fake = FakeIptables(fail_restores=1)
    rules(tmp_path, fake).add(CID, "10.124.77.2/24", [WEB])
    tools = [argv[0] if argv[0] != "iptables" else " ".join(argv[-2:]) for argv, _ in fake.calls]
    assert tools == [
        "iptables-restore", "iptables-save", "-N CNI-HOSTPORT-SETMARK", "-N CNI-HOSTPORT-MASQ",
        "-N CNI-HOSTPORT-DNAT", "-N CNI-FORWARD", "-N CNI-ADMIN", "iptables-restore", "iptables-restore",
    ]  # fmt: skip
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in fake.batches()[1]


def test_add_failure_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="iptables-restore"):
        rules(tmp_path, FakeIptables(fail_restores=3)).add(CID, "10.124.77.2/24", [WEB])


def test_remove_is_one_restore_with_a_save_fallback_and_idempotent(tmp_path: Path) -> None:
    fake = FakeIptables()
    rules(tmp_path, fake).remove(CID, "10.124.77.2/24", [WEB])
    assert len(fake.calls) == 1 and fake.batches()[0].startswith("*nat\n-D POSTROUTING")

    gone = FakeIptables(fail_restores=1, saved="*nat\nCOMMIT\n*filter\nCOMMIT\n")
    rules(tmp_path, gone).remove(CID, "10.124.77.2/24", [WEB])
    assert [argv[0] for argv, _ in gone.calls] == ["iptables-restore", "iptables-save"]

    saved = f"*nat\n:{DN} - [0:0]\n:{MASQ} - [0:0]\n{PLUGIN_NAT}\nCOMMIT\n*filter\n{PLUGIN_FILTER}\nCOMMIT\n"
    partial = FakeIptables(fail_restores=1, saved=saved)
    rules(tmp_path, partial).remove(CID, "10.124.77.2/24", [WEB])
    hooks, chains = partial.batches()[1], partial.batches()[2]
    assert hooks.count("-D ") == 5 and "-X " not in hooks
    assert f"-X {MASQ}" in chains and f"-X {DN}" in chains and "-D " not in chains


def test_remove_deletes_a_duplicated_hook_before_its_chain(tmp_path: Path) -> None:
    hook = next(line for line in PLUGIN_NAT.splitlines() if line.startswith("-A POSTROUTING"))
    saved = f"*nat\n:{DN} - [0:0]\n:{MASQ} - [0:0]\n{PLUGIN_NAT}\n{hook}\nCOMMIT\n*filter\n{PLUGIN_FILTER}\nCOMMIT\n"
    twice = FakeIptables(fail_restores=1, saved=saved)
    rules(tmp_path, twice).remove(CID, "10.124.77.2/24", [WEB])
    assert hook not in twice.saved and f":{MASQ} " not in twice.saved and f":{DN} " not in twice.saved


# -- NetworkManager(iptables_rules="batch") ------------------------------------------------------

CFG = BridgeConfig(network_name="unit", bridge="bt-unit", subnet="10.123.9.0/24", gateway="10.123.9.1")


class Env:
    def __init__(self, tmp: Path, spares: int = 0) -> None:
        self.plugins, self.iptables = FakePlugins(), FakeIptables()
        self.mgr = NetworkManager(
            state_dir=tmp / "state", run_dir=tmp / "run", bridge=CFG, executor=self.plugins,
            netns_ops=FakeNetns(), spares=spares, iptables_rules="batch", iptables=self.iptables,
        )  # fmt: skip
        self.mgr._rules._sysctl_dir = tmp  # type: ignore[attr-defined]
        (tmp / CFG.bridge).mkdir(exist_ok=True)


@pytest.fixture
def env(tmp_path: Path):
    e = Env(tmp_path)
    yield e
    e.mgr._pool.close()
    e.mgr._ports.release_all()


def local(port: int = 0) -> PortMapping:
    return PortMapping(80, "tcp", "127.0.0.1", port)


def test_attach_runs_only_bridge_without_ipmasq_and_one_restore(env: Env) -> None:
    att = env.mgr.attach("c1", "bridge", [local()], name="web")
    assert env.plugins.commands() == [("bridge", "ADD")]
    assert env.plugins.calls[0].config["ipMasq"] is False
    (batch,) = env.iptables.batches()
    port = att.ports[0].host_port
    assert f"-d 127.0.0.1/32 -p tcp -m tcp --dport {port} -j DNAT --to-destination {att.ip_address}:80" in batch
    assert f"-A POSTROUTING -s {att.ip_address}/32" in batch and "-A CNI-FORWARD" in batch

    env.plugins.calls.clear()
    env.mgr.detach("c1")
    assert env.plugins.commands() == [("bridge", "DEL")]
    assert env.iptables.batches()[1].startswith("*nat\n-D POSTROUTING")


def test_failed_rules_roll_the_cni_add_back(env: Env) -> None:
    env.iptables.fail_restores = 3
    with pytest.raises(Unavailable):
        env.mgr.attach("c1", "bridge", [local()])
    assert env.plugins.commands()[-1] == ("bridge", "DEL")
    assert env.mgr.attachment("c1") is None and not env.mgr._ports.held_by("c1")


def test_ports_are_free_once_the_rules_are_gone_not_after_the_slow_del(env: Env) -> None:
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
        att = env.mgr.attach("new", "bridge", [local(port)])  # does not wait for the DEL
        assert att.ports[0].host_port == port
    finally:
        release.set()
        detacher.join(5)


def test_claimed_spare_gets_only_port_rules_under_its_cni_id(tmp_path: Path) -> None:
    e = Env(tmp_path, spares=1)
    try:
        e.mgr.cleanup_stale(set())
        deadline = time.monotonic() + 30
        while not e.mgr._pool.ready():
            assert time.monotonic() < deadline, "the spare pool filled nothing in 30 s"
            threading.Event().wait(0.01)
        spare_id = e.plugins.calls[0].env["CNI_CONTAINERID"]
        assert chain_name("CNI-", CFG.network_name, spare_id) in e.iptables.batches()[0]
        dnat = chain_name("CNI-DN-", CFG.network_name, spare_id)
        seen = len(e.iptables.batches())
        e.plugins.calls.clear()
        e.mgr.attach("c1", "bridge", [local()])
        # the pool refills in the background meanwhile (its own ADD and batch), so the claim's
        # batch is found by its chain, and c1 itself ran no plugin: it took the spare's netns
        claims = [b for b in e.iptables.batches()[seen:] if dnat in b]
        assert len(claims) == 1 and "POSTROUTING" not in claims[0]
        assert all(c.env["CNI_CONTAINERID"] != "c1" for c in e.plugins.calls)
        seen = len(e.iptables.batches())
        e.mgr.detach("c1")
        assert any(dnat in b for b in e.iptables.batches()[seen:])
        e.mgr.close()
        assert e.mgr._pool.ready() == 0
    finally:
        e.mgr._pool.close()
        e.mgr._ports.release_all()


def test_unknown_rules_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="iptables_rules"):
        NetworkManager(state_dir=tmp_path, run_dir=tmp_path, iptables_rules="nft")
