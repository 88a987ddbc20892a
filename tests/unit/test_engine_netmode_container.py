"""`NetworkMode: container:<ref>`: create-time conflicts (moby's wording) and the NetworkService
side of a start: whose namespace, hostname and /etc files the joiner gets, and what it refuses."""

from __future__ import annotations

from berth.api.docker.create_requests import network_create_from_wire

from pathlib import Path
from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.api.docker.container_spec import config_from_wire, endpoints_from_wire
from berth.engine.containers import _config as cfg
from berth.engine.containers._launch import Launcher
from berth.api.docker.container_json import inspect
from berth.engine.containers import network_entries, snapshot_of
from berth.engine.containers._model import Container, ContainerRepository, ContainerState
from berth.engine.networks import NetworkService
from berth.errors import Conflict, InvalidArgument, NotFound
from berth.network import BridgeConfig, EndpointManager, NetworkManager, NetworkRegistry
from berth.network.testing import FakeNetns, FakePlugins
from berth.state import Database

MODE = "container:web"


def _check(request: dict[str, Any] | None = None, networking: dict[str, Any] | None = None,
           **host_config: Any) -> None:
    cfg.check_container_mode(config_from_wire(request or {}), typed_hc({"NetworkMode": MODE, **host_config}),
                             endpoints_from_wire(networking))


@pytest.mark.parametrize(("request_body", "host_config", "message"), [
    ({"Hostname": "h"}, {}, "conflicting options: hostname and the network mode"),
    ({}, {"Links": ["db:db"]}, "container type network can't be used with links"),
    ({}, {"Dns": ["1.1.1.1"]}, "conflicting options: dns and the network mode"),
    ({}, {"ExtraHosts": ["a:1.2.3.4"]}, "conflicting options: custom host-to-IP mapping and the network mode"),
    ({"MacAddress": "02:42:ac:11:00:02"}, {}, "conflicting options: mac-address and the network mode"),
    ({}, {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}},
     "conflicting options: port publishing and the container type network mode"),
    ({}, {"PublishAllPorts": True}, "conflicting options: port publishing and the container type network mode"),
    ({"ExposedPorts": {"80/tcp": {}}}, {}, "conflicting options: port exposing and the container type network mode"),
])
def test_conflicting_options_are_refused(request_body: dict[str, Any], host_config: dict[str, Any],
                                         message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _check(request_body, **host_config)
    assert message in str(err.value)


def test_port_publishing_wins_over_exposing() -> None:
    """`docker run -p` sends both; moby reports the publishing conflict."""
    with pytest.raises(InvalidArgument, match="port publishing"):
        _check({"ExposedPorts": {"80/tcp": {}}}, PortBindings={"80/tcp": [{"HostPort": "80"}]})


def test_what_the_cli_sends_by_default_is_accepted() -> None:
    # CLI 28: zero values sent explicitly, and an empty endpoint named after the mode
    _check({"Hostname": "", "MacAddress": "", "ExposedPorts": {}},
           {"EndpointsConfig": {MODE: {"IPAMConfig": None, "Aliases": None, "MacAddress": ""}}},
           Dns=[], DnsOptions=[], DnsSearch=[], ExtraHosts=None, Links=None, PortBindings={},
           PublishAllPorts=False)
    _check(networking={"EndpointsConfig": {"default": {}}})
    cfg.check_container_mode(config_from_wire({"Hostname": "h"}),
                             typed_hc({"NetworkMode": "bridge", "Dns": ["1.1.1.1"]}), {})


def test_endpoints_of_other_networks_are_refused() -> None:
    shared = "cannot be connected to any other network"
    with pytest.raises(InvalidArgument, match=shared):
        _check(networking={"EndpointsConfig": {"mynet": {}}})
    with pytest.raises(InvalidArgument, match=shared):
        _check(networking={"EndpointsConfig": {MODE: {"IPAMConfig": {"IPv4Address": "10.0.0.5"}}}})
    with pytest.raises(InvalidArgument, match="mac-address"):
        _check(networking={"EndpointsConfig": {MODE: {"MacAddress": "02:42:ac:11:00:02"}}})


def test_joined_container_ref() -> None:
    assert cfg.joined_container("container:abc") == "abc"
    assert cfg.joined_container("bridge") == "" and cfg.joined_container("mynet") == ""


# --- NetworkService ------------------------------------------------------------------------------

@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NetworkService:
    import berth.network._registry as registry_mod

    monkeypatch.setattr(registry_mod, "make_bridge", lambda net: None)
    monkeypatch.setattr(registry_mod, "host_routes", lambda: [])
    plugins = FakePlugins()
    bridge = BridgeConfig(network_name="t", bridge="t0", subnet="10.77.0.0/24", gateway="10.77.0.1")
    manager = NetworkManager(state_dir=tmp_path / "net", run_dir=tmp_path / "run", bridge=bridge,
                             executor=plugins, netns_ops=FakeNetns())
    return NetworkService(manager=manager, registry=NetworkRegistry(state_dir=tmp_path / "net"),
                          endpoints=EndpointManager(state_dir=tmp_path / "net", ipam_dir=tmp_path / "ipam",
                                                    executor=plugins),
                          repo=ContainerRepository(Database(tmp_path / "state.db")),
                          containers_dir=tmp_path / "containers", bridge=bridge)


def _add(service: NetworkService, tmp_path: Path, cid: str, name: str, mode: str,
         status: str = "created") -> Container:
    c = Container(id=cid * 64, name=name, created="", image="busybox", image_id="x",
                  config=typed_config({"Hostname": cid * 12}), host_config=typed_hc({"NetworkMode": mode}),
                  state=ContainerState(status=status))
    (tmp_path / "containers" / c.id).mkdir(parents=True)
    service._repo.add(c)
    return c


def _start(service: NetworkService, tmp_path: Path, c: Container) -> dict[str, Any]:
    c.network = service.attach_container(c, [], tmp_path / "containers" / c.id)
    c.state = ContainerState(status="running", pid=1)
    service._repo.save(c)
    return c.network


def test_joiner_shares_the_bridge_containers_netns_and_files(service: NetworkService, tmp_path: Path) -> None:
    web = _add(service, tmp_path, "a", "web", "bridge")
    web_net = _start(service, tmp_path, web)
    assert web_net["netns_path"] and web_net["ip_address"]
    side = _add(service, tmp_path, "b", "side", MODE)
    net = _start(service, tmp_path, side)
    assert net["mode"] == "container" and net["container_id"] == web.id
    assert net["netns_path"] == web_net["netns_path"]
    assert net["etc_dir"] == str(tmp_path / "containers" / web.id)
    assert net["hostname"] == "a" * 12 and net["ports"] == [] and "ip_address" not in net
    assert not list((tmp_path / "containers" / side.id).iterdir())  # no /etc files of its own
    # a joiner of the joiner ends up in the same place (moby goes through /proc/<pid>/ns/net)
    third = _add(service, tmp_path, "c", "third", "container:side")
    assert _start(service, tmp_path, third)["netns_path"] == web_net["netns_path"]
    assert _start(service, tmp_path, third)["etc_dir"] == net["etc_dir"]
    # the joiner's detach undoes nothing of the joined container's network
    service.detach(side.id)
    assert Path(web_net["netns_path"]).exists()
    assert service.manager.attachment(web.id) is not None
    service.detach(web.id)
    assert not Path(web_net["netns_path"]).exists()


def test_joiner_of_a_host_network_container_uses_the_host_netns(service: NetworkService, tmp_path: Path) -> None:
    host = _add(service, tmp_path, "a", "hostc", "host")
    _start(service, tmp_path, host)
    side = _add(service, tmp_path, "b", "side", "container:hostc")
    net = _start(service, tmp_path, side)
    assert net["netns_path"] is None and net["mode"] == "container"
    service.detach(side.id)
    service.detach(host.id)


def test_joiner_of_a_none_container_gets_its_netns(service: NetworkService, tmp_path: Path) -> None:
    lone = _add(service, tmp_path, "a", "lone", "none")
    lone_net = _start(service, tmp_path, lone)
    side = _add(service, tmp_path, "b", "side", "container:" + lone.id[:10])  # an id prefix
    assert _start(service, tmp_path, side)["netns_path"] == lone_net["netns_path"]
    service.detach(side.id)
    service.detach(lone.id)


def test_start_refusals(service: NetworkService, tmp_path: Path) -> None:
    web = _add(service, tmp_path, "a", "web", "bridge")
    side = _add(service, tmp_path, "b", "side", MODE)
    with pytest.raises(Conflict, match="cannot join network of a non running container: web"):
        service.attach_container(side, [], tmp_path / "containers" / side.id)
    web.state = ContainerState(status="restarting")
    service._repo.save(web)
    with pytest.raises(Conflict, match="Container web is restarting"):
        service.attach_container(side, [], tmp_path / "containers" / side.id)
    me = _add(service, tmp_path, "c", "me", "container:me")
    with pytest.raises(InvalidArgument, match="cannot join own network"):
        service.attach_container(me, [], tmp_path / "containers" / me.id)
    gone = _add(service, tmp_path, "d", "gone", "container:nosuch")
    with pytest.raises(NotFound, match="No such container: nosuch"):
        service.attach_container(gone, [], tmp_path / "containers" / gone.id)


def test_create_checks_the_joined_container_exists(service: NetworkService, tmp_path: Path) -> None:
    _add(service, tmp_path, "a", "web", "bridge")
    endpoints: dict[str, Any] = {"EndpointsConfig": {MODE: {}}}
    service.validate_create(typed_hc({"NetworkMode": MODE}), endpoints)  # the mode's own endpoint is no network
    # a 400, not a 404: the CLI answers a 404 from create by pulling the image
    with pytest.raises(InvalidArgument, match="No such container: nosuch"):
        service.validate_create(typed_hc({"NetworkMode": "container:nosuch"}), {})


def test_joiner_cannot_connect_to_networks(service: NetworkService, tmp_path: Path) -> None:
    service.create_json(network_create_from_wire({"Name": "app"}))
    web = _add(service, tmp_path, "a", "web", "bridge")
    _start(service, tmp_path, web)
    side = _add(service, tmp_path, "b", "side", MODE)
    with pytest.raises(InvalidArgument, match="cannot be connected to any other network"):
        service.connect("app", side.id, {})
    service.detach(web.id)


def test_inspect_shows_no_network_of_its_own(tmp_path: Path) -> None:
    side = Container(id="b" * 64, name="side", created="", image="busybox", image_id="x",
                     config=typed_config({"Hostname": "a" * 12}), host_config=typed_hc({"NetworkMode": MODE}),
                     state=ContainerState(status="running", pid=5),
                     network={"mode": "container", "container_id": "a" * 64, "netns_path": "/run/x/netns/a",
                              "etc_dir": "/var/lib/x/containers/" + "a" * 64, "hostname": "a" * 12,
                              "ports": [], "endpoints": {}})
    snapshot = snapshot_of(side, dir="/var/lib/x/containers/" + "b" * 64, log_path="/l", default_runtime="")
    data = inspect(snapshot)
    settings = data["NetworkSettings"]
    assert settings["Networks"] == {} and settings["IPAddress"] == "" and settings["SandboxKey"] == ""
    assert data["HostConfig"]["NetworkMode"] == MODE
    assert data["HostsPath"] == "/var/lib/x/containers/" + "a" * 64 + "/hosts"
    assert snapshot.networks == {} and network_entries(side, None) == {}


def _joiner(network: dict[str, Any]) -> Container:
    return Container(id="b" * 64, name="side", created="", image="busybox", image_id="x",
                     config=typed_config({"Hostname": "a" * 12, "Cmd": ["sleep", "1"]}), host_config=typed_hc({"NetworkMode": MODE}),
                     network=network)


def test_spec_uses_the_joined_namespace_and_files(tmp_path: Path) -> None:
    launcher = Launcher(containers_dir=tmp_path, images=None, runtime=None, network=None,  # type: ignore[arg-type]
                        volumes=None)
    joined_dir = tmp_path / ("a" * 64)
    spec = launcher._spec(_joiner({}), {"mode": "container", "netns_path": "/run/netns/a",
                                        "etc_dir": str(joined_dir), "hostname": "a" * 12})
    assert spec.netns_path == "/run/netns/a" and spec.hostname == "a" * 12
    assert {m.destination: m.source for m in spec.mounts} == {
        f"/etc/{f}": str(joined_dir / f) for f in ("hosts", "hostname", "resolv.conf")}
    host = launcher._spec(_joiner({}), {"mode": "container", "netns_path": None, "etc_dir": str(joined_dir)})
    assert host.netns_path is None  # the host's network namespace: no namespace entry at all

