"""Which user network creates dockerd accepts: names, user-given subnets, ranges and gateways."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.errors import AlreadyExists, Conflict, InvalidArgument
from berth.network import NetworkRegistry
from berth.network import _registry as registry_mod
from berth.network._usernet import check_subnet


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NetworkRegistry:
    monkeypatch.setattr(registry_mod, "make_bridge", lambda net: None)
    # The host routes every subnet below: a user-given subnet must not care, the automatic choice must.
    monkeypatch.setattr(registry_mod, "host_routes", lambda: ["172.18.0.0/16", "10.0.0.0/8", "192.168.0.0/16"])
    return NetworkRegistry(state_dir=tmp_path, reserved=("10.88.0.0/16",))


def test_a_user_given_subnet_ignores_host_routes(registry: NetworkRegistry) -> None:
    net = registry.create("a", subnet="172.18.0.0/16")
    assert (net.subnet, net.gateway, net.ipam_config_given) == ("172.18.0.0/16", "172.18.0.1", True)
    assert registry.create("b", subnet="10.9.0.0/24", gateway="10.9.0.254").gateway == "10.9.0.254"


def test_the_automatic_choice_avoids_host_routes_and_own_pools(registry: NetworkRegistry) -> None:
    registry.create("a", subnet="172.19.0.0/16")
    assert registry.create("auto").subnet == "172.20.0.0/16"  # 172.18 is routed, 172.19 is ours


def test_a_user_given_subnet_may_not_overlap_this_daemons_pools(registry: NetworkRegistry) -> None:
    registry.create("a", subnet="172.18.0.0/16")
    overlap = "invalid pool request: Pool overlaps with other one on this address space"
    with pytest.raises(Conflict) as info:
        registry.create("b", subnet="172.18.5.0/24")
    assert str(info.value) == overlap
    with pytest.raises(Conflict, match="Pool overlaps"):
        registry.create("c", subnet="10.0.0.0/8")  # contains the default bridge's 10.88.0.0/16
    assert [n.name for n in registry.list()] == ["a"]


def test_names_are_anything_but_blank(registry: NetworkRegistry) -> None:
    for name in ("my net", "with/slash", "ünï", "a"):
        created = registry.create(name)
        assert registry.get(name) == created and created.name == name
    with pytest.raises(InvalidArgument) as info:
        registry.create("   ")
    assert str(info.value) == "invalid name:    "
    with pytest.raises(AlreadyExists, match="network with name my net already exists"):
        registry.create("my net")
    with pytest.raises(InvalidArgument, match="pre-defined network"):
        registry.create("bridge")


@pytest.mark.parametrize(("subnet", "gateway", "ip_range", "message"), [
    ("10.1.2.5/24", "", "", "invalid subnet 10.1.2.5/24: it should be 10.1.2.0/24"),
    ("10.1.2.0", "", "", "invalid subnet 10.1.2.0: invalid CIDR block notation"),
    ("bogus/8", "", "", "invalid subnet bogus/8: invalid CIDR block notation"),
    ("10.1.2.0/24", "10.1.3.1", "", "invalid gateway 10.1.3.1: parent subnet 10.1.2.0/24 doesn't contain this address"),
    ("10.1.2.0/24", "nope", "", "invalid gateway nope: invalid address"),
    ("10.1.2.0/24", "", "10.1.3.0/25", "invalid ip-range 10.1.3.0/25: parent subnet 10.1.2.0/24 doesn't contain ip-range"),
    ("10.1.2.0/24", "", "10.1.3.0/23",
     "* invalid ip-range 10.1.3.0/23: CIDR block is bigger than its parent subnet 10.1.2.0/24\n"
     "* invalid ip-range 10.1.3.0/23: it should be 10.1.2.0/23"),
    ("10.1.2.0/24", "", "10.1.2.130/25", "invalid ip-range 10.1.2.130/25: it should be 10.1.2.128/25"),
    ("10.1.2.0/24", "", "x", "invalid ip-range x: invalid CIDR block notation"),
    ("10.1.2.1/24", "10.9.9.9", "",
     "* invalid subnet 10.1.2.1/24: it should be 10.1.2.0/24\n"
     "* invalid gateway 10.9.9.9: parent subnet 10.1.2.0/24 doesn't contain this address"),
])
def test_malformed_ipam_config_in_dockerds_words(subnet: str, gateway: str, ip_range: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_subnet(subnet, gateway, ip_range, [])
    assert str(info.value) == "invalid network config:\n" + message


def test_valid_ipam_configs() -> None:
    assert check_subnet("10.1.2.0/24", "", "10.1.2.128/25", []) == ("10.1.2.0/24", "10.1.2.1")
    assert check_subnet("192.168.7.0/30", "192.168.7.2", "", ["10.0.0.0/8"]) == ("192.168.7.0/30", "192.168.7.2")
    with pytest.raises(InvalidArgument, match="IPv4"):
        check_subnet("fd00::/64", "", "", [])
