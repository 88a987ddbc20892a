"""Container networking through CNI plugins (bridge + host-local, portmap, firewall).

`NetworkManager` is the one entry point the engine uses; `parse_port_spec` reads docker's `-p`
syntax. See README.md for the flow and the files kept on disk.
"""

from berth.network._hostnet import remove_shared_chains
from berth.network._manager import NetworkManager
from berth.network._portspec import parse_port_spec
from berth.network._types import Attachment, BridgeConfig, PortMapping

__all__ = [
    "Attachment",
    "BridgeConfig",
    "NetworkManager",
    "PortMapping",
    "parse_port_spec",
    "remove_shared_chains",
]
