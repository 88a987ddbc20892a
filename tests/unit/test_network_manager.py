"""NetworkManager against recorded fake plugins and fake namespaces (no root needed).

Port reservations bind real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from berth.errors import Conflict, InvalidArgument, Unavailable
from berth.network import Attachment, BridgeConfig, NetworkManager, PortMapping
from berth.network.testing import FakeNetns, FakePlugins

CFG = BridgeConfig(
    network_name="unit", bridge="bt-unit", subnet="10.123.9.0/24", gateway="10.123.9.1"
)


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.plugins = FakePlugins()
        self.netns = FakeNetns()
        self.managers: list[NetworkManager] = []

    def manager(self) -> NetworkManager:
        mgr = NetworkManager(
            state_dir=self.tmp / "state",
            run_dir=self.tmp / "run",
            bridge=CFG,
            executor=self.plugins,
            netns_ops=self.netns,
        )
        self.managers.append(mgr)
        return mgr

    def netns_path(self, cid: str) -> Path:
        return self.tmp / "run" / "netns" / cid


@pytest.fixture
def env(tmp_path: Path):
    e = Env(tmp_path)
    yield e
    for mgr in e.managers:
        mgr._pool.close()
        mgr._ports.release_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def local(port: int = 0, container: int = 80) -> PortMapping:
    return PortMapping(container, "tcp", "127.0.0.1", port)


def test_bridge_attach_wires_netns_plugins_and_ports(env: Env) -> None:
    mgr = env.manager()
    att = mgr.attach("c1", "bridge", [local(0)], name="web")
    assert att.mode == "bridge" and att.netns_path == str(env.netns_path("c1"))
    assert (att.ip_address, att.prefix_len, att.gateway) == ("10.123.9.2", 24, "10.123.9.1")
    assert att.mac_address == "02:00:00:00:00:03"
    (mapping,) = att.ports
    assert mapping.host_port > 0 and port_is_taken(mapping.host_port)
    assert env.plugins.commands() == [("bridge", "ADD"), ("portmap", "ADD"), ("firewall", "ADD")]
    add = env.plugins.calls[1]
    assert add.env["CNI_NETNS"] == att.netns_path and add.env["CNI_CONTAINERID"] == "c1"
    assert add.config["runtimeConfig"]["portMappings"] == [
        {
            "hostPort": mapping.host_port,
            "containerPort": 80,
            "protocol": "tcp",
            "hostIP": "127.0.0.1",
        }
    ]
    assert env.plugins.calls[0].config["ipam"]["dataDir"] == str(env.tmp / "state" / "ipam")
    assert mgr.attachment("c1") == att


def test_published_port_conflict_uses_docker_wording_and_leaves_nothing(env: Env) -> None:
    mgr = env.manager()
    port = free_port()
    mgr.attach("c1", "bridge", [PortMapping(80, "tcp", "", port)], name="one")
    calls = len(env.plugins.calls)
    with pytest.raises(Conflict) as err:
        mgr.attach("c2", "bridge", [PortMapping(80, "tcp", "0.0.0.0", port)], name="two")
    assert str(err.value) == (
        "driver failed programming external connectivity on endpoint two (c2): "
        f"Bind for 0.0.0.0:{port} failed: port is already allocated"
    )
    assert len(env.plugins.calls) == calls
    assert not env.netns_path("c2").exists() and mgr.attachment("c2") is None


def test_port_held_by_another_process_conflicts(env: Env) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(Conflict, match=f"Bind for 127.0.0.1:{port} failed"):
            env.manager().attach("c1", "bridge", [local(port)], name="web")


def test_plugin_failure_rolls_everything_back(env: Env) -> None:
    env.plugins.fail[("firewall", "ADD")] = "iptables: no chain"
    mgr = env.manager()
    port = free_port()
    with pytest.raises(Unavailable, match="iptables: no chain"):
        mgr.attach("c1", "bridge", [local(port)])
    assert env.plugins.commands()[-3:] == [
        ("firewall", "DEL"),
        ("portmap", "DEL"),
        ("bridge", "DEL"),
    ]
    assert not env.netns_path("c1").exists() and mgr.attachment("c1") is None
    assert not port_is_taken(port)


def test_detach_deletes_in_reverse_then_releases_and_is_idempotent(env: Env) -> None:
    mgr = env.manager()
    att = mgr.attach("c1", "bridge", [local(0)])
    env.plugins.calls.clear()
    mgr.detach("c1")
    assert env.plugins.commands() == [("firewall", "DEL"), ("portmap", "DEL"), ("bridge", "DEL")]
    assert env.plugins.calls[0].env["CNI_NETNS"] == att.netns_path
    assert (
        env.plugins.calls[1].config["runtimeConfig"]["portMappings"][0]["hostPort"]
        == att.ports[0].host_port
    )
    assert not env.netns_path("c1").exists() and mgr.attachment("c1") is None
    assert not port_is_taken(att.ports[0].host_port)
    mgr.detach("c1")
    assert len(env.plugins.calls) == 3


def test_failed_delete_keeps_state_for_a_retry(env: Env) -> None:
    mgr = env.manager()
    att = mgr.attach("c1", "bridge", [local(0)])
    env.plugins.fail[("bridge", "DEL")] = "netlink busy"
    with pytest.raises(Unavailable):
        mgr.detach("c1")
    assert mgr.attachment("c1") == att and env.netns_path("c1").exists()
    del env.plugins.fail[("bridge", "DEL")]
    mgr.detach("c1")
    assert mgr.attachment("c1") is None


def test_none_and_host_modes(env: Env) -> None:
    mgr = env.manager()
    none = mgr.attach("n1", "none", [local(0)])
    host = mgr.attach("h1", "host", [local(0)])
    assert none == Attachment(netns_path=str(env.netns_path("n1")), mode="none")
    assert host == Attachment(netns_path=None, mode="host")
    assert env.plugins.calls == [] and env.netns_path("n1") in env.netns.live
    assert mgr.attachment("n1") == none and mgr.attachment("h1") == host
    mgr.detach("n1")
    mgr.detach("h1")
    assert not env.netns_path("n1").exists() and mgr.attachment("h1") is None


def test_bad_arguments(env: Env) -> None:
    mgr = env.manager()
    with pytest.raises(InvalidArgument):
        mgr.attach("c1", "overlay", [])
    with pytest.raises(InvalidArgument):
        mgr.attach("../etc", "bridge", [])
    with pytest.raises(InvalidArgument):
        mgr.attach("c1", "bridge", [PortMapping(80, "sctp")])
    mgr.attach("c1", "none", [])
    with pytest.raises(Conflict, match="already attached"):
        mgr.attach("c1", "none", [])


def test_state_survives_a_restart(env: Env) -> None:
    first = env.manager()
    att = first.attach("c1", "bridge", [local(0)])
    first._ports.release_all()  # the old process is gone
    port = att.ports[0].host_port
    assert not port_is_taken(port)
    second = env.manager()
    assert second.attachment("c1") == att
    second.reserve_ports("c1")
    assert port_is_taken(port)
    second.reserve_ports("c1")  # no-op when already held
    second.detach("c1")
    assert not port_is_taken(port)


def test_cleanup_stale_tears_down_dead_containers_only(env: Env) -> None:
    first = env.manager()
    first.attach("live", "bridge", [])
    dead = first.attach("dead", "bridge", [])
    first.attach("deadnone", "none", [])
    # A crash mid-ADD: a lease and a netns without a cached record.
    lease_dir = env.tmp / "state" / "ipam" / "unit"
    lease_dir.mkdir(parents=True, exist_ok=True)
    (lease_dir / "10.123.9.200").write_text("ghost\r\neth0")
    env.netns.create(env.netns_path("ghost"))
    env.plugins.calls.clear()

    env.manager().cleanup_stale({"live"})

    dels = [(c.plugin, c.env["CNI_CONTAINERID"]) for c in env.plugins.calls]
    assert ("bridge", "dead") in dels and ("bridge", "ghost") in dels
    assert all(cid != "live" for _, cid in dels)
    dead_bridge = next(
        c for c in env.plugins.calls if c.env["CNI_CONTAINERID"] == "dead" and c.plugin == "bridge"
    )
    assert dead_bridge.config["prevResult"]["ips"][0]["address"] == f"{dead.ip_address}/24"
    remaining = sorted(p.name for p in (env.tmp / "run" / "netns").iterdir())
    assert remaining == ["live"]


def test_attach_waits_for_a_background_detach_holding_its_port(env: Env) -> None:
    mgr = env.manager()
    port = free_port()
    mgr.attach("old", "bridge", [local(port)])
    release = threading.Event()
    real = env.plugins.__call__

    def slow(path: str, e, stdin: bytes) -> bytes:
        if e["CNI_COMMAND"] == "DEL":
            release.wait(5)
        return real(path, e, stdin)

    mgr._cni._exec = slow  # type: ignore[attr-defined]
    detacher = threading.Thread(target=mgr.detach, args=("old",))
    detacher.start()
    result: list[Attachment] = []
    attacher = threading.Thread(
        target=lambda: result.append(mgr.attach("new", "bridge", [local(port)]))
    )
    attacher.start()
    attacher.join(0.2)
    assert attacher.is_alive() and not result  # waiting for the old DEL
    release.set()
    detacher.join(5)
    attacher.join(5)
    assert result and result[0].ports[0].host_port == port


def wait_for_spares(mgr: NetworkManager, count: int) -> None:
    deadline = time.monotonic() + 5
    while mgr._pool.ready() < count:
        assert time.monotonic() < deadline, "spare pool did not fill"
        time.sleep(0.01)


def spare_manager(env: Env) -> NetworkManager:
    mgr = NetworkManager(
        state_dir=env.tmp / "state",
        run_dir=env.tmp / "run",
        bridge=CFG,
        executor=env.plugins,
        netns_ops=env.netns,
        spares=1,
    )
    env.managers.append(mgr)
    mgr.cleanup_stale(set())  # the daemon's start-up call also starts the pool
    wait_for_spares(mgr, 1)
    return mgr


def test_attach_claims_a_spare_and_only_adds_ports(env: Env) -> None:
    mgr = spare_manager(env)
    (spare_call,) = env.plugins.calls[:1]
    spare_id = spare_call.env["CNI_CONTAINERID"]
    assert spare_id.startswith("spare-")
    env.plugins.calls.clear()

    att = mgr.attach("c1", "bridge", [local(0)], name="web")

    assert att.netns_path == str(env.netns_path(spare_id)) and att.ip_address == "10.123.9.2"
    claim = env.plugins.calls[0]
    assert (claim.plugin, claim.command, claim.env["CNI_CONTAINERID"]) == (
        "portmap",
        "ADD",
        spare_id,
    )
    assert claim.config["prevResult"]["ips"][0]["address"] == "10.123.9.2/24"
    assert claim.config["runtimeConfig"]["portMappings"][0]["hostPort"] == att.ports[0].host_port
    wait_for_spares(mgr, 1)  # the next spare is made in the background
    assert mgr.attachment("c1") == att

    env.plugins.calls.clear()
    mgr.detach("c1")
    dels = [(c.plugin, c.env["CNI_CONTAINERID"]) for c in env.plugins.calls]
    assert dels == [("firewall", spare_id), ("portmap", spare_id), ("bridge", spare_id)]
    assert not env.netns_path(spare_id).exists()


def test_cleanup_keeps_claimed_spares_of_live_containers(env: Env) -> None:
    mgr = spare_manager(env)
    att = mgr.attach("c1", "bridge", [])
    wait_for_spares(mgr, 1)
    mgr.destroy(shared_chains=False)  # tears down the unclaimed spare and c1
    assert not Path(att.netns_path or "").exists()

    other = spare_manager(env)
    live = other.attach("live", "bridge", [])
    wait_for_spares(other, 1)
    env.plugins.calls.clear()
    restarted = env.manager()
    restarted.cleanup_stale({"live"})
    torn = {c.env["CNI_CONTAINERID"] for c in env.plugins.calls}
    assert len(torn) == 1 and torn.pop().startswith("spare-")  # only the unclaimed spare
    assert restarted.attachment("live") == live and Path(live.netns_path or "").exists()


def test_cleanup_stale_waits_for_a_predecessors_plugins_before_it_dels(env: Env) -> None:
    # A killed daemon's ADD still running would otherwise finish after the DEL (see _cni.py).
    env.manager().attach("dead", "bridge", [])
    env.plugins.calls.clear()
    env.manager().cleanup_stale(set())
    assert env.plugins.strays_waited == [0]
    assert ("bridge", "DEL") in env.plugins.commands()


def test_a_claim_cut_short_by_a_crash_still_dels_under_the_spares_id(env: Env) -> None:
    # SIGKILL between the claim's rename of the spare's record and its save: DEL under the
    # container id would miss bridge's masquerade chain and host-local's lease (both keyed by
    # the spare's id) and leak them for good.
    mgr = spare_manager(env)
    [spare] = mgr._pool.close()
    mgr._records.rename(spare, "c1")  # the claim's first step, and then the daemon died
    env.plugins.calls.clear()
    env.manager().cleanup_stale(set())
    assert {c.env["CNI_CONTAINERID"] for c in env.plugins.calls} == {spare}
    assert ("bridge", "DEL") in env.plugins.commands()
    assert not env.netns_path(spare).exists() and spare not in env.plugins.leases


def test_records_without_a_cni_id_are_deleted_under_their_netns_name(env: Env) -> None:
    # What an older daemon's cut-short claim left: no cni_id, the spare's netns.
    mgr = spare_manager(env)
    [spare] = mgr._pool.close()
    record = mgr._records.load(spare)
    assert record is not None and record.cni_id == spare
    mgr._records.delete(spare)
    mgr._records.save("c1", replace(record, cni_id=""))
    env.plugins.calls.clear()
    env.manager().cleanup_stale(set())
    assert {c.env["CNI_CONTAINERID"] for c in env.plugins.calls} == {spare}
