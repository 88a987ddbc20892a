"""Container networking through CNI plugins (bridge + host-local, portmap, firewall).

`NetworkManager` wires a container's namespace to the default bridge; `NetworkRegistry` keeps
the user-defined networks (one bridge and subnet each) and `EndpointManager` adds a container's
interfaces on them; `EmbeddedDns` answers 127.0.0.11 inside containers on user networks from a
`NameTable` of `NameEntry`s; `NetworkIsolation` keeps bridges (`IsolatedBridge`) apart;
`parse_port_spec` reads docker's `-p` syntax, `parse_mac`/`set_mac` a
`--mac-address`. See README.md for the flow and the files kept on disk.
"""

from berth.network._dns import EmbeddedDns
from berth.network._dnsnames import NameEntry, NameTable
from berth.network._endpoints import Endpoint, EndpointManager
from berth.network._hostnet import remove_shared_chains
from berth.network._isolation import IsolatedBridge, NetworkIsolation
from berth.network._mac import parse_mac, set_mac
from berth.network._manager import NetworkManager
from berth.network._portspec import parse_port_spec
from berth.network._registry import BUILTIN, NetworkRegistry
from berth.network._types import Attachment, BridgeConfig, PortMapping
from berth.network._usernet import UserNetwork

__all__ = [
    "BUILTIN",
    "Attachment",
    "BridgeConfig",
    "EmbeddedDns",
    "Endpoint",
    "EndpointManager",
    "IsolatedBridge",
    "NameEntry",
    "NameTable",
    "NetworkIsolation",
    "NetworkManager",
    "NetworkRegistry",
    "PortMapping",
    "UserNetwork",
    "parse_mac",
    "parse_port_spec",
    "remove_shared_chains",
    "set_mac",
]
