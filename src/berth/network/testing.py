"""Test kit: fakes at the network package's side-effect boundaries.

    plugins = FakePlugins()
    mgr = NetworkManager(state_dir=..., run_dir=..., executor=plugins, netns_ops=FakeNetns())
    mgr.attach("c1", "bridge", [])
    assert [c.plugin for c in plugins.calls] == ["bridge", "portmap", "firewall"]

No root, no plugins, no namespaces; port reservations still bind real sockets, so tests should
publish on 127.0.0.1 with host port 0 or a port they know to be free.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.errors import Unavailable


@dataclass(frozen=True)
class PluginCall:
    plugin: str  # binary name, e.g. "bridge"
    command: str  # ADD | DEL | CHECK
    env: dict[str, str]
    config: dict[str, Any]  # the parsed stdin


@dataclass
class FakePlugins:
    """A PluginExecutor that records every call and answers like bridge/portmap/firewall.

    `fail[(plugin, command)] = msg` makes that call raise Unavailable with the plugin's msg.
    `strays_waited` holds len(calls) at each wait_for_strays (a restarted daemon's first step).
    """

    calls: list[PluginCall] = field(default_factory=list)
    fail: dict[tuple[str, str], str] = field(default_factory=dict)
    leases: dict[str, str] = field(default_factory=dict)  # container id -> ip
    strays_waited: list[int] = field(default_factory=list)
    _next_host: int = 2

    def wait_for_strays(self, timeout: float = 0.0) -> bool:
        self.strays_waited.append(len(self.calls))
        return True

    def __call__(self, path: str, env: Mapping[str, str], stdin: bytes) -> bytes:
        plugin, command = os.path.basename(path), env["CNI_COMMAND"]
        config = json.loads(stdin)
        self.calls.append(PluginCall(plugin, command, dict(env), config))
        if (plugin, command) in self.fail:
            raise Unavailable(f"CNI plugin {plugin}: {self.fail[plugin, command]}")
        if command == "DEL":
            if plugin == "bridge":
                self.leases.pop(env["CNI_CONTAINERID"], None)
            return b""
        if plugin == "bridge":
            return json.dumps(self._bridge_result(env, config)).encode()
        return json.dumps(config["prevResult"]).encode()

    def commands(self) -> list[tuple[str, str]]:
        """(plugin, command) of every call so far, in order."""
        return [(c.plugin, c.command) for c in self.calls]

    def _bridge_result(self, env: Mapping[str, str], config: dict[str, Any]) -> dict[str, Any]:
        span = config["ipam"]["ranges"][0][0]
        network = ipaddress.ip_network(span["subnet"])
        ip = str(network[self._next_host])
        self._next_host += 1
        self.leases[env["CNI_CONTAINERID"]] = ip
        return {
            "cniVersion": config["cniVersion"],
            "interfaces": [
                {"name": config["bridge"], "mac": "02:00:00:00:00:01"},
                {"name": "veth0", "mac": "02:00:00:00:00:02"},
                {
                    "name": env["CNI_IFNAME"],
                    "mac": "02:00:00:00:00:03",
                    "sandbox": env["CNI_NETNS"],
                },
            ],
            "ips": [
                {"interface": 2, "address": f"{ip}/{network.prefixlen}", "gateway": span["gateway"]}
            ],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {},
        }


@dataclass
class FakeNetns:
    """NetnsOps with plain files: `live` holds the paths that count as mounted namespaces."""

    live: set[Path] = field(default_factory=set)

    def create(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=False)
        self.live.add(path)

    def remove(self, path: Path) -> None:
        self.live.discard(path)
        path.unlink(missing_ok=True)

    def is_mounted(self, path: Path) -> bool:
        return path in self.live


@dataclass
class FakeIptables:
    """A `_iptrules.Runner` that records iptables-restore batches and answers iptables-save.

    `fail_restores` > 0 makes that many next restores fail (as when a shared chain is missing);
    `saved` is what `iptables-save -t nat` prints.
    """

    calls: list[tuple[list[str], str]] = field(default_factory=list)
    fail_restores: int = 0
    saved: str = ""

    def __call__(self, argv: Sequence[str], stdin: str) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), stdin))
        if argv[0] == "iptables-restore" and self.fail_restores > 0:
            self.fail_restores -= 1
            return subprocess.CompletedProcess(list(argv), 2, "", "Chain 'X' does not exist")
        if argv[0] == "iptables-restore":
            self._apply_deletions(stdin)
        out = self.saved if argv[0] == "iptables-save" else ""
        return subprocess.CompletedProcess(list(argv), 0, out, "")

    def _apply_deletions(self, batch: str) -> None:
        """What a successful restore does to `saved`: one copy of each `-D` rule and every
        `-X` chain disappear (additions are not modelled)."""
        lines = self.saved.splitlines()
        for line in batch.splitlines():
            if line.startswith("-D ") and ("-A " + line[3:]) in lines:
                lines.remove("-A " + line[3:])
            elif line.startswith("-X "):
                lines = [x for x in lines if not x.startswith(f":{line[3:]} ")]
        self.saved = "\n".join(lines) + ("\n" if lines else "")

    def batches(self) -> list[str]:
        return [stdin for argv, stdin in self.calls if argv[0] == "iptables-restore"]
