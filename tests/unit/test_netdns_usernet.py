"""User networks: subnet choice, CNI lists, endpoints (FakePlugins), and the service's hosts files."""

from __future__ import annotations

from berth.api.docker.create_requests import network_create_from_wire

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.types.container import EndpointSettings
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.engine.containers._model import Container, ContainerRepository, ContainerState
from berth.engine.networks import NetworkService, _split_link
from berth.errors import AlreadyExists, BerthError, Conflict, InvalidArgument, NotFound
from berth.network import BridgeConfig, EndpointManager, NetworkManager, NetworkRegistry, PortMapping, UserNetwork
from berth.network._usernet import check_subnet, pick_subnet, user_conflist
from berth.network.testing import FakeNetns, FakePlugins
from berth.state import Database


def _net(**kw: object) -> UserNetwork:
    base = dict(id="ab" * 32, name="n", subnet="172.18.0.0/16", gateway="172.18.0.1", created="")
    base.update(kw)
    return UserNetwork(**base)  # type: ignore[arg-type]


def test_pick_subnet_skips_taken_and_host_routes() -> None:
    assert pick_subnet([]) == "172.18.0.0/16"
    assert pick_subnet(["172.18.0.0/16", "172.19.5.0/24"]) == "172.20.0.0/16"
    assert pick_subnet([f"172.{n}.0.0/16" for n in range(18, 32)]) == "192.168.0.0/20"


def test_check_subnet() -> None:
    assert check_subnet("10.1.2.0/24", "", "", []) == ("10.1.2.0/24", "10.1.2.1")
    with pytest.raises(Conflict, match="Pool overlaps"):
        check_subnet("10.1.0.0/16", "", "", ["10.1.2.0/24"])
    with pytest.raises(InvalidArgument, match="invalid gateway 10.9.9.9: parent subnet"):
        check_subnet("10.1.2.0/24", "10.9.9.9", "", [])


def test_conflists() -> None:
    primary = user_conflist(_net(), Path("/ipam"), primary=True, with_ports=True)
    assert [p["type"] for p in primary["plugins"]] == ["bridge", "portmap", "firewall"]
    assert primary["plugins"][0]["bridge"] == "br-" + "ab" * 6
    assert primary["plugins"][0]["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]
    secondary = user_conflist(_net(internal=True), Path("/ipam"), primary=False, with_ports=True)
    assert [p["type"] for p in secondary["plugins"]] == ["bridge", "firewall"]
    assert secondary["plugins"][0]["ipam"]["routes"] == [] and not secondary["plugins"][0]["ipMasq"]


def test_endpoint_manager_names_the_interface(tmp_path: Path) -> None:
    plugins = FakePlugins()
    mgr = EndpointManager(state_dir=tmp_path, ipam_dir=tmp_path / "ipam", executor=plugins)
    ep = mgr.add("c1", "/ns/c1", _net(), "eth1", name="web", aliases=("web", "api"), primary=False)
    assert ep.ip_address.startswith("172.18.") and ep.ifname == "eth1"
    assert {c.env["CNI_IFNAME"] for c in plugins.calls} == {"eth1"}
    assert [e.container_id for e in mgr.members(_net().id)] == ["c1"]
    with pytest.raises(Conflict, match="already exists in network n"):
        mgr.add("c1", "/ns/c1", _net(), "eth2", name="web")
    mgr.cleanup_stale({"other"})
    assert mgr.of_container("c1") == [] and plugins.commands()[-1] == ("bridge", "DEL")


class _Iptables:
    """A recording iptables runner: every batch succeeds."""

    def __init__(self) -> None:
        self.batches: list[str] = []

    def __call__(self, argv: Sequence[str], stdin: str) -> subprocess.CompletedProcess[str]:
        self.batches.append(stdin)
        return subprocess.CompletedProcess(list(argv), 0, "", "")


def test_batch_endpoint_runs_bridge_alone_and_writes_the_rules_in_one_restore(tmp_path: Path) -> None:
    plugins, iptables = FakePlugins(), _Iptables()
    mgr = EndpointManager(state_dir=tmp_path, ipam_dir=tmp_path / "ipam", executor=plugins,
                          iptables_rules="batch", iptables=iptables)
    ports = (PortMapping(container_port=80, host_port=0, protocol="tcp"),)  # 0: the kernel picks one
    ep = mgr.add("c1", "/ns/c1", _net(), "eth0", name="web", ports=ports)
    assert plugins.commands() == [("bridge", "ADD")] and plugins.calls[0].config["ipMasq"] is False
    assert len(iptables.batches) == 1 and ep.rules == "batch"
    added = iptables.batches[0]
    assert f"-A POSTROUTING -s {ep.ip_address}/32" in added  # bridge's ipMasq
    assert f"-A CNI-FORWARD -s {ep.ip_address}/32 -j ACCEPT" in added  # firewall
    assert f"--to-destination {ep.ip_address}:80" in added and f"--dports {ep.ports[0].host_port}" in added
    # a new manager (a restarted daemon) DELs from the record: rules first, then bridge
    again = EndpointManager(state_dir=tmp_path, ipam_dir=tmp_path / "ipam", executor=plugins,
                            iptables_rules="batch", iptables=iptables)
    assert again.remove("c1", _net().id) is not None
    assert iptables.batches[1].count("-D ") == 4 and plugins.commands()[-1] == ("bridge", "DEL")


def test_batch_endpoint_on_an_internal_network_has_no_masquerade_and_no_ports(tmp_path: Path) -> None:
    plugins, iptables = FakePlugins(), _Iptables()
    mgr = EndpointManager(state_dir=tmp_path, ipam_dir=tmp_path / "ipam", executor=plugins,
                          iptables_rules="batch", iptables=iptables)
    ep = mgr.add("c1", "/ns/c1", _net(internal=True), "eth0", ports=(PortMapping(container_port=80, host_port=0, protocol="tcp"),))
    added = iptables.batches[0]
    assert "POSTROUTING" not in added and "DNAT" not in added and "MASQUERADE" not in added
    assert f"-A CNI-FORWARD -d {ep.ip_address}/32" in added
    mgr.remove("c1", _net().id)
    assert "POSTROUTING" not in iptables.batches[1] and "-X" not in iptables.batches[1]


def test_a_failed_rule_restore_undoes_the_add(tmp_path: Path) -> None:
    plugins = FakePlugins()

    def refuse(argv: Sequence[str], stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(argv), 1, "", "iptables: no chain")
    mgr = EndpointManager(state_dir=tmp_path, ipam_dir=tmp_path / "ipam", executor=plugins,
                          iptables_rules="batch", iptables=refuse)
    with pytest.raises(BerthError, match="iptables"):
        mgr.add("c1", "/ns/c1", _net(), "eth0")
    assert plugins.commands()[-1] == ("bridge", "DEL") and mgr.members(_net().id) == []
    assert not list((tmp_path / "endpoints").rglob("*.json"))


def test_split_link() -> None:
    assert _split_link("db:alias") == ("db", "alias")
    assert _split_link("/db:/me/alias") == ("db", "alias")
    assert _split_link("db") == ("db", "db")


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NetworkService:
    import berth.network._registry as registry_mod

    monkeypatch.setattr(registry_mod, "make_bridge", lambda net: None)
    monkeypatch.setattr(registry_mod, "host_routes", lambda: [])
    plugins = FakePlugins()
    repo = ContainerRepository(Database(tmp_path / "state.db"))
    bridge = BridgeConfig(network_name="t", bridge="t0", subnet="10.77.0.0/24", gateway="10.77.0.1")
    manager = NetworkManager(state_dir=tmp_path / "net", run_dir=tmp_path / "run", bridge=bridge,
                             executor=plugins, netns_ops=FakeNetns())
    return NetworkService(manager=manager, registry=NetworkRegistry(state_dir=tmp_path / "net"),
                          endpoints=EndpointManager(state_dir=tmp_path / "net", ipam_dir=tmp_path / "ipam",
                                                    executor=plugins),
                          repo=repo, containers_dir=tmp_path / "containers", bridge=bridge)


def _container(cid: str, name: str, network: str, aliases: list[str] | None = None) -> Container:
    return Container(id=cid * 64, name=name, created="", image="busybox", image_id="x",
                     config=typed_config({"Hostname": name}), host_config=typed_hc({"NetworkMode": network}),
                     endpoints={network: EndpointSettings(aliases=tuple(aliases or ()))},
                     state=ContainerState(status="running"))


def test_members_find_each_other_and_forget_leavers(service: NetworkService, tmp_path: Path) -> None:
    service.create_json(network_create_from_wire({"Name": "app"}))
    with pytest.raises(AlreadyExists):
        service.create_json(network_create_from_wire({"Name": "app"}))
    web, client = _container("a", "web", "app", ["frontend"]), _container("b", "client", "app")
    dirs = {}
    for c in (web, client):
        dirs[c.id] = tmp_path / "containers" / c.id
        dirs[c.id].mkdir(parents=True)
        service._repo.add(c)
        c.network = service.attach_container(c, [], dirs[c.id])
        service._repo.save(c)
    hosts = (dirs[client.id] / "hosts").read_text()
    assert "\tweb frontend " in hosts
    assert "\tclient " in (dirs[web.id] / "hosts").read_text()  # rewritten when client joined
    info = service.inspect_json("app")
    assert {m["Name"] for m in info["Containers"].values()} == {"web", "client"}
    with pytest.raises(Conflict, match="active endpoints"):
        service.remove("app")
    service.detach(client.id)
    assert "client" not in (dirs[web.id] / "hosts").read_text()
    with pytest.raises(InvalidArgument, match="network nosuch not found"):
        service.validate_create(typed_hc({"NetworkMode": "nosuch"}), {})
    with pytest.raises(NotFound, match="network nosuch not found"):
        service.inspect_json("nosuch")
    names = [n["Name"] for n in service.list_json({"type": ["custom"]})]
    assert names == ["app"]


def test_concurrent_removals_of_one_endpoint_run_one_del(tmp_path: Path) -> None:
    """`network rm` and a container's background teardown may remove one endpoint at once; a
    second DEL racing the first fails in the real bridge plugin, so they must not overlap."""
    import threading
    import time

    from berth.errors import Unavailable

    plugins = FakePlugins()
    busy = threading.Lock()

    def executor(path: str, env, stdin: bytes) -> bytes:  # type: ignore[no-untyped-def]
        if env["CNI_COMMAND"] == "DEL" and path.endswith("bridge"):
            if not busy.acquire(blocking=False):
                raise Unavailable('CNI plugin bridge: failed to delete "eth0": no such device')
            try:
                time.sleep(0.2)
                return plugins(path, env, stdin)
            finally:
                busy.release()
        return plugins(path, env, stdin)

    mgr = EndpointManager(state_dir=tmp_path, ipam_dir=tmp_path / "ipam", executor=executor)
    mgr.add("c1", "/ns/c1", _net(), "eth0", name="web")
    results: list[object] = []

    def remove() -> None:
        try:
            results.append(mgr.remove("c1", _net().id))
        except Exception as err:  # noqa: BLE001 - the test reports it
            results.append(err)

    threads = [threading.Thread(target=remove) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(type(r).__name__ for r in results) == ["Endpoint", "NoneType"]
    assert plugins.commands().count(("bridge", "DEL")) == 1
