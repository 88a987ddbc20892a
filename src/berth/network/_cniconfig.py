"""Build the CNI network list and each plugin's stdin; pure functions, no I/O.

The list is `bridge (+ host-local IPAM) -> portmap -> firewall`, as in host-notes §6.2. Loopback
is not in it: lo is brought up when the namespace is created (see _netns.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from berth.network._types import BridgeConfig, PortMapping

CNI_VERSION = "1.0.0"
IFNAME = "eth0"

JSON = dict[str, Any]


def bridge_conflist(cfg: BridgeConfig, ipam_dir: Path, *, batch_rules: bool = False) -> JSON:
    """The network list for the default bridge; host-local keeps leases under `ipam_dir`.

    `batch_rules`: bridge alone, without its ipMasq rules: _iptrules.py writes those, the
    firewall's and portmap's in one iptables-restore instead."""
    conflist = _bridge_conflist(cfg, ipam_dir)
    if batch_rules:
        bridge = dict(conflist["plugins"][0], ipMasq=False)
        conflist["plugins"] = [bridge]
    return conflist


def _bridge_conflist(cfg: BridgeConfig, ipam_dir: Path) -> JSON:
    return {
        "cniVersion": CNI_VERSION,
        "name": cfg.network_name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": cfg.bridge,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": cfg.subnet, "gateway": cfg.gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            # snat makes 127.0.0.1:<hostPort> reach the container without a userland proxy.
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
            {"type": "firewall", "backend": "iptables"},
        ],
    }


def runtime_config(ports: list[PortMapping] | tuple[PortMapping, ...]) -> JSON:
    """The capability arguments this runtime supplies (only portMappings)."""
    return {"portMappings": [port_mapping_json(p) for p in ports]}


def port_mapping_json(p: PortMapping) -> JSON:
    entry: JSON = {
        "hostPort": p.host_port,
        "containerPort": p.container_port,
        "protocol": p.protocol,
    }
    if p.host_ip and p.host_ip != "0.0.0.0":
        entry["hostIP"] = p.host_ip
    return entry


def plugin_stdin(conflist: JSON, index: int, prev_result: JSON | None, rt_config: JSON) -> JSON:
    """The stdin object for plugin `index` of the list (CNI spec "network configuration").

    runtimeConfig carries only the capabilities the plugin declares; prevResult is omitted for
    the first plugin of an ADD.
    """
    plugin = dict(conflist["plugins"][index])
    plugin["name"] = conflist["name"]
    plugin["cniVersion"] = conflist["cniVersion"]
    declared = {k for k, on in plugin.get("capabilities", {}).items() if on}
    args = {k: v for k, v in rt_config.items() if k in declared}
    if args:
        plugin["runtimeConfig"] = args
    if prev_result is not None:
        plugin["prevResult"] = prev_result
    return plugin


def plugin_env(command: str, container_id: str, netns: str, cni_path: str) -> dict[str, str]:
    """The CNI_* environment; PATH is pinned so plugins run the distribution's default iptables."""
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": IFNAME,
        "CNI_PATH": cni_path,
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }


def chain_name(prefix: str, network: str, container_id: str) -> str:
    """The per-container iptables chain name the CNI plugins derive (libcni utils.FormatChainName).

    bridge's ipMasq chain uses prefix "CNI-", portmap's DNAT chain "CNI-DN-".
    """
    digest = hashlib.sha512((network + container_id).encode()).hexdigest()
    return prefix + digest[: 28 - len(prefix)]
