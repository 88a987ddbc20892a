from pathlib import Path

import pytest

from berth.errors import Unavailable
from berth.network import BridgeConfig, PortMapping
from berth.network._cni import plugin_error_message
from berth.network._cniconfig import (
    bridge_conflist,
    chain_name,
    plugin_env,
    plugin_stdin,
    runtime_config,
)
from berth.network._cniresult import container_address

CFG = BridgeConfig(network_name="t1", bridge="bt-x", subnet="10.123.4.0/24", gateway="10.123.4.1")


def test_conflist_is_bridge_portmap_firewall_with_private_lease_dir() -> None:
    conf = bridge_conflist(CFG, Path("/state/ipam"))
    assert conf["name"] == "t1"
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap", "firewall"]
    bridge = conf["plugins"][0]
    assert bridge["bridge"] == "bt-x" and bridge["ipMasq"] and bridge["isGateway"]
    assert bridge["ipam"]["dataDir"] == "/state/ipam"
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.123.4.0/24", "gateway": "10.123.4.1"}]]
    assert conf["plugins"][1] == {
        "type": "portmap",
        "capabilities": {"portMappings": True},
        "snat": True,
    }
    assert conf["plugins"][2]["backend"] == "iptables"


def test_runtime_config_only_reaches_plugins_declaring_the_capability() -> None:
    conf = bridge_conflist(CFG, Path("/ipam"))
    rt = runtime_config(
        [PortMapping(80, "tcp", "", 18080), PortMapping(53, "udp", "127.0.0.1", 5353)]
    )
    prev = {"cniVersion": "1.0.0", "ips": []}
    bridge = plugin_stdin(conf, 0, None, rt)
    portmap = plugin_stdin(conf, 1, prev, rt)
    assert "runtimeConfig" not in bridge and "prevResult" not in bridge
    assert bridge["name"] == "t1" and bridge["cniVersion"] == "1.0.0"
    assert portmap["prevResult"] == prev
    assert portmap["runtimeConfig"] == {
        "portMappings": [
            {"hostPort": 18080, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
        ]
    }
    assert "runtimeConfig" not in plugin_stdin(conf, 2, prev, rt)


def test_env_pins_path_and_names_the_interface() -> None:
    env = plugin_env("ADD", "c1", "/run/x/netns/c1", "/usr/lib/cni")
    assert env["CNI_COMMAND"] == "ADD" and env["CNI_IFNAME"] == "eth0"
    assert env["CNI_NETNS"] == "/run/x/netns/c1" and env["CNI_CONTAINERID"] == "c1"
    assert env["PATH"].split(":")[0] == "/usr/local/sbin"


def test_chain_names_match_the_plugins() -> None:
    # Observed on this host: network "bexp", container "c1exp".
    assert chain_name("CNI-", "bexp", "c1exp") == "CNI-42e1ce4386739a741ce9ea7a"
    assert chain_name("CNI-DN-", "bexp", "c1exp") == "CNI-DN-42e1ce4386739a741ce9e"


def test_container_address_reads_the_sandbox_interface() -> None:
    result = {
        "interfaces": [
            {"name": "bt-x", "mac": "aa:00:00:00:00:01"},
            {"name": "veth1", "mac": "aa:00:00:00:00:02"},
            {"name": "eth0", "mac": "aa:00:00:00:00:03", "sandbox": "/ns"},
        ],
        "ips": [{"interface": 2, "address": "10.123.4.2/24", "gateway": "10.123.4.1"}],
    }
    address = container_address(result)
    assert (address.ip, address.prefix_len, address.gateway, address.mac) == (
        "10.123.4.2",
        24,
        "10.123.4.1",
        "aa:00:00:00:00:03",
    )


def test_container_address_without_ipv4_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        container_address({"interfaces": [], "ips": [{"address": "fd00::2/64"}]})


def test_plugin_error_message_uses_cni_error_object() -> None:
    out = b'{"code":7,"msg":"failed to allocate","details":"range full"}'
    assert plugin_error_message("/usr/lib/cni/bridge", out, b"") == (
        "CNI plugin bridge: failed to allocate: range full"
    )
    assert plugin_error_message("/x/portmap", b"", b"boom\n") == "CNI plugin portmap: boom"
