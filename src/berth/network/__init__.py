"""Container networking through CNI plugins (bridge + host-local, portmap, firewall).

`NetworkManager` wires a container's namespace to the default bridge; `NetworkRegistry` keeps
the user-defined networks (one bridge and subnet each) and `EndpointManager` adds a container's
interfaces on them; `parse_port_spec` reads docker's `-p` syntax. See README.md for the flow and the files kept on disk.
"""

from berth.network._endpoints import Endpoint, EndpointManager
from berth.network._hostnet import remove_shared_chains
from berth.network._manager import NetworkManager
from berth.network._portspec import parse_port_spec
from berth.network._registry import BUILTIN, NetworkRegistry
from berth.network._types import Attachment, BridgeConfig, PortMapping
from berth.network._usernet import UserNetwork

__all__ = [
    "BUILTIN",
    "Attachment",
    "BridgeConfig",
    "Endpoint",
    "EndpointManager",
    "NetworkManager",
    "NetworkRegistry",
    "PortMapping",
    "UserNetwork",
    "parse_port_spec",
    "remove_shared_chains",
]
