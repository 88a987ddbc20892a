"""A container interface's MAC address as the user asked for it (`--mac-address`).

The CNI plugins give each veth a random MAC; `MacAddress` (Config.MacAddress before API 1.44,
EndpointsConfig.<network>.MacAddress since) replaces it once the interface exists, on the
default bridge (whose namespace may be a spare made ahead of time) and on user networks alike.
A veth takes a new address while up, so routes and addresses stay as the plugin made them.
"""

from __future__ import annotations

import re
import subprocess

from berth.errors import InvalidArgument, Unavailable

_HEX = r"[0-9a-fA-F]{2}"
_COLON = re.compile(rf"^{_HEX}(:{_HEX}){{5}}$")
_DASH = re.compile(rf"^{_HEX}(-{_HEX}){{5}}$")
_DOTTED = re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$")


def parse_mac(text: str) -> str:
    """The 48-bit MAC in Go's net.ParseMAC notations, as `aa:bb:cc:dd:ee:ff`.

    Raises:
        InvalidArgument: not a 48-bit MAC (dockerd's wording).
    """
    if _COLON.match(text) or _DASH.match(text):
        digits = re.sub(r"[:-]", "", text)
    elif _DOTTED.match(text):
        digits = text.replace(".", "")
    else:
        raise InvalidArgument(f"invalid MAC address {text}")
    digits = digits.lower()
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def set_mac(netns_path: str, ifname: str, mac: str) -> None:
    """Give `ifname` inside the namespace pinned at `netns_path` the address `mac`.

    Raises:
        Unavailable: `ip` refused (its message included).
    """
    argv = ["nsenter", f"--net={netns_path}", "ip", "link", "set", "dev", ifname, "address", parse_mac(mac)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Unavailable(f"cannot set the MAC address of {ifname} to {mac}: {proc.stderr.strip()}")
