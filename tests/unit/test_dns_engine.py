"""NetworkService wiring of the embedded DNS and the isolation rules (fake plugins, loopback sockets)."""

from __future__ import annotations

from berth.api.docker.create_requests import network_create_from_wire

from pathlib import Path

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.types.container import EndpointSettings
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.engine.containers._model import Container, ContainerRepository, ContainerState
from berth.engine.networks import NetworkService
from berth.network import BridgeConfig, EmbeddedDns, EndpointManager, NetworkIsolation, NetworkManager, NetworkRegistry
from berth.network._isolation import STAGE_2
from berth.network.testing import FakeNetns, FakePlugins
from berth.state import Database
from tests.unit.test_dns_isolation import FakeIptables
from tests.unit.test_dns_server import LoopbackSockets


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import berth.network._registry as registry_mod

    monkeypatch.setattr(registry_mod, "make_bridge", lambda net: None)
    monkeypatch.setattr(registry_mod, "host_routes", lambda: [])
    plugins = FakePlugins()
    bridge = BridgeConfig(network_name="t", bridge="t0", subnet="10.77.0.0/24", gateway="10.77.0.1")
    sockets, iptables = LoopbackSockets(), FakeIptables([])
    dns = EmbeddedDns(sockets=sockets)
    service = NetworkService(
        manager=NetworkManager(state_dir=tmp_path / "net", run_dir=tmp_path / "run", bridge=bridge,
                               executor=plugins, netns_ops=FakeNetns()),
        registry=NetworkRegistry(state_dir=tmp_path / "net"),
        endpoints=EndpointManager(state_dir=tmp_path / "net", ipam_dir=tmp_path / "ipam", executor=plugins),
        repo=ContainerRepository(Database(tmp_path / "state.db")), containers_dir=tmp_path / "containers",
        bridge=bridge, dns=dns, isolation=NetworkIsolation(runner=iptables))
    yield service, dns, sockets, iptables
    dns.shutdown()


def _start(service: NetworkService, tmp_path: Path, cid: str, name: str, network: str,
           aliases: tuple[str, ...] = ()) -> Container:
    c = Container(id=cid * 64, name=name, created="", image="busybox", image_id="x", config=typed_config({"Hostname": name}),
                  host_config=typed_hc({"NetworkMode": network}),
                  endpoints={network: EndpointSettings(aliases=tuple(aliases))},
                  state=ContainerState(status="running"))
    (tmp_path / "containers" / c.id).mkdir(parents=True)
    service._repo.add(c)
    c.network = service.attach_container(c, [], tmp_path / "containers" / c.id)
    service._repo.save(c)
    return c


def _names(dns: EmbeddedDns, cid: str) -> dict[str, list[str]]:
    table = dns.table(cid)
    assert table is not None
    found: dict[str, list[str]] = {}
    for entry in table.peers:
        for name in entry.names:
            found.setdefault(name, []).append(entry.ip)
    return found


def test_user_network_members_get_resolvers_and_tables(parts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, dns, sockets, _ = parts
    service.create_json(network_create_from_wire({"Name": "app"}))
    web = _start(service, tmp_path, "a", "web", "app", ("svc",))
    cli = _start(service, tmp_path, "b", "cli", "app", ("svc",))
    assert sockets.calls == [web.network["netns_path"], cli.network["netns_path"]]
    assert "nameserver 127.0.0.11\n" in (tmp_path / "containers" / cli.id / "resolv.conf").read_text()
    assert len(_names(dns, web.id)["svc"]) == 2  # web's table learnt that cli joined
    assert _names(dns, cli.id)["web"] == [web.network["ip_address"]]
    service.detach(cli.id)
    assert not dns.serves(cli.id) and "cli" not in _names(dns, web.id)


def test_default_bridge_has_no_resolver_and_restore_reopens(parts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service, dns, sockets, _ = parts
    plain = _start(service, tmp_path, "c", "plain", "bridge")
    assert not dns.serves(plain.id) and plain.network["dns"] is False
    assert "127.0.0.11" not in (tmp_path / "containers" / plain.id / "resolv.conf").read_text()
    service.create_json(network_create_from_wire({"Name": "app"}))
    web = _start(service, tmp_path, "a", "web", "app")
    dns.close(web.id)  # what a daemon restart does to the sockets
    service.adopt(web)
    assert dns.serves(web.id) and "web" in _names(dns, web.id)
    assert len(sockets.calls) == 2


def test_isolation_follows_networks(parts) -> None:  # type: ignore[no-untyped-def]
    service, _, _, iptables = parts
    service.ensure_isolation()
    assert f"-A {STAGE_2} -o t0 -j DROP" in iptables.batches[-1]
    net_id = service.create_json(network_create_from_wire({"Name": "app", "Internal": True}))["Id"]
    assert f"-o br-{net_id[:12]} -j DROP" in iptables.batches[-1] and "! -d" in iptables.batches[-1]
    iptables.rules = [line for line in iptables.batches[-1].splitlines() if line.startswith("-")]
    iptables.rules = [f"-N {c}" for c in ("BERTH-ISOLATION-1", "BERTH-ISOLATION-2")] + [
        r.replace("-I BERTH-ISOLATION-1 1 ", "-A BERTH-ISOLATION-1 ") for r in iptables.rules]
    service.remove("app")
    assert f"-D {STAGE_2} -o br-{net_id[:12]} -j DROP" in iptables.batches[-1]
