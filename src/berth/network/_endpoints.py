"""EndpointManager: a container's interfaces on user networks, in a netns someone else owns.

The container's network namespace comes from NetworkManager (mode "bridge" for the default
network, mode "none" when the first network is a user network); each user network then adds
one interface (`eth0`, `eth1`, ...) by CNI ADD of that network's list.

    <state_dir>/endpoints/<network id>/<container id>.json   Endpoint (with the ADD result)

Order rules: `remove`/`remove_all` (CNI DEL) must run before the netns is removed, so the engine
calls them before NetworkManager.detach. The members of a network are the records in its
directory; they drive the managed /etc/hosts files and the resolvers' tables.

The records are read from disk once per manager and then kept in memory beside the files (only
this manager writes them): every container joining a network refreshes the hosts file and name
table of every member, so reading N records from disk per member made `--scale 50` quadratic in
file reads.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from berth.errors import BerthError, Conflict
from berth.network._cni import PLUGINS_LOCK, CniRunner, PluginExecutor, PluginProcesses, WaitsForStrays
from berth.network._iptrules import ContainerRules, Runner
from berth.network._iptrules import run as run_iptables
from berth.network._cniconfig import runtime_config
from berth.network._cniresult import container_address
from berth.network._mac import parse_mac, set_mac
from berth.network._ports import PortReservations
from berth.network._types import PortMapping
from berth.network._usernet import UserNetwork, user_conflist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    container_id: str
    network_id: str
    network_name: str
    ifname: str
    netns: str
    name: str = ""  # container name
    aliases: tuple[str, ...] = ()
    ip_address: str = ""
    prefix_len: int = 0
    gateway: str = ""
    mac_address: str = ""
    ports: tuple[PortMapping, ...] = ()
    conflist: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    requested_ip: str = ""  # "ip/prefix" for --ip
    # "batch": the list is bridge alone and _iptrules.py wrote the masquerade (unless
    # `masquerade` is off: --internal), firewall and port rules in one iptables-restore;
    # "plugins": bridge(ipMasq) → portmap → firewall wrote them (records of older daemons)
    rules: str = "plugins"
    masquerade: bool = True


def _rt_config(endpoint: Endpoint) -> dict[str, Any]:
    """runtimeConfig of ADD and DEL: published ports, and the fixed address if one was asked."""
    config = runtime_config(endpoint.ports)
    if endpoint.requested_ip:
        config["ips"] = [endpoint.requested_ip]
    return config


def _with_ifname(executor: PluginExecutor, ifname: str) -> PluginExecutor:
    """The CNI runner always says eth0; this executor names the interface we want."""
    def run(path: str, env: Mapping[str, str], stdin: bytes) -> bytes:
        return executor(path, {**env, "CNI_IFNAME": ifname}, stdin)
    return run


class EndpointManager:
    """Add and remove a container's user-network interfaces (blocking, thread-safe).

    Lifecycle of one endpoint:
        add(cid, netns, net, "eth0", ...) -> Endpoint   ports reserved, CNI ADD, record saved
        remove(cid, net.id)                             CNI DEL, ports released, record deleted
    """

    def __init__(self, *, state_dir: Path, ipam_dir: Path, executor: PluginExecutor | None = None,
                 cni_path: str = "/usr/lib/cni", iptables_rules: str = "plugins",
                 iptables: Runner = run_iptables) -> None:
        """The default executor is `PluginProcesses` on `<state_dir>/plugins.lock` (_cni.py).
        `iptables_rules` as NetworkManager's: "batch" runs bridge alone and writes the other
        rules in one iptables-restore (a container start on a user network otherwise costs a
        dozen iptables executions, which `--scale 50` pays 50 times over on 2 CPUs)."""
        self._dir = Path(state_dir) / "endpoints"
        self._ipam_dir = ipam_dir
        self._executor = executor if executor is not None else PluginProcesses(Path(state_dir) / PLUGINS_LOCK)
        self._cni_path = cni_path
        self._batch = iptables_rules == "batch"
        self._iptables = iptables
        self._ports = PortReservations()
        self._lock = threading.Lock()
        # One lock per (container, network) being removed: `network rm` and a container's
        # background teardown may DEL the same endpoint at once, and a second DEL racing the
        # first fails in the bridge plugin ("failed to delete eth0: no such device").
        self._removing: dict[tuple[str, str], tuple[threading.Lock, list[int]]] = {}  # lock, [users]
        self._records: dict[str, dict[str, Endpoint]] | None = None  # network id -> container id -> record
        self._records_lock = threading.Lock()

    # --- add / remove ----------------------------------------------------------------------------
    def add(self, container_id: str, netns: str, net: UserNetwork, ifname: str, *, name: str = "",
            aliases: tuple[str, ...] = (), ports: tuple[PortMapping, ...] = (),
            primary: bool = True, ip: str = "", mac: str = "") -> Endpoint:
        """`ip`: a fixed address (--ip) instead of the next free one; `mac`: the interface's
        MAC address instead of the plugin's random one.

        Raises Conflict (already on the network, or a port taken) or Unavailable (plugin)."""
        if self.get(container_id, net.id) is not None:
            raise Conflict(f"endpoint with name {name or container_id} already exists in network {net.name}")
        ports = self._ports.reserve(container_id + "/" + net.id, name or container_id, ports) if ports else ()
        conflist = user_conflist(net, self._ipam_dir, primary=primary, with_ports=bool(ports),
                                 batch_rules=self._batch)
        endpoint = Endpoint(container_id, net.id, net.name, ifname, netns, name, tuple(aliases),
                            ports=tuple(ports), conflist=conflist,
                            requested_ip=f"{ip}/{net.subnet.split('/')[1]}" if ip else "",
                            rules="batch" if self._batch else "plugins", masquerade=not net.internal)
        runner = CniRunner(_with_ifname(self._executor, ifname), self._cni_path)
        try:
            self._save(endpoint)  # before ADD: a crash mid-ADD still leaves enough to DEL
            result = runner.add(conflist, container_id, netns, _rt_config(endpoint))
            address = container_address(result, ifname)
            endpoint = replace(endpoint, result=result, ip_address=address.ip,
                               prefix_len=address.prefix_len, gateway=address.gateway,
                               mac_address=address.mac)
            self._save(endpoint)  # with the result: DEL needs it even if the MAC change fails
            self._add_rules(endpoint)
            if mac:
                set_mac(netns, ifname, mac)
                endpoint = replace(endpoint, mac_address=parse_mac(mac))
                self._save(endpoint)
        except BaseException:
            if endpoint.result is not None:  # added, then failed: undo the ADD (lease, veth)
                try:  # a failed restore added nothing (it is atomic), a later failure all of it
                    self._remove_rules(endpoint)
                except BerthError as err:
                    log.warning("rules of %s on %s after a failed add: %s", container_id[:12], net.name, err)
                try:
                    runner.delete(conflist, container_id, netns, _rt_config(endpoint), endpoint.result)
                except BerthError as err:
                    log.warning("CNI DEL of %s on %s after a failed add: %s", container_id[:12], net.name, err)
            self._delete_record(endpoint)
            self._ports.release(container_id + "/" + net.id)
            raise
        return endpoint

    def remove(self, container_id: str, network_id: str) -> Endpoint | None:
        """CNI DEL of one endpoint; idempotent, and concurrent calls for one endpoint run one
        after the other (the later finds it gone). Returns what this call removed."""
        key = (container_id, network_id)
        with self._lock:
            lock, users = self._removing.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                return self._remove(container_id, network_id)
        finally:
            with self._lock:
                users[0] -= 1
                if users[0] == 0:
                    del self._removing[key]

    def _remove(self, container_id: str, network_id: str) -> Endpoint | None:
        endpoint = self.get(container_id, network_id)
        if endpoint is None:
            return None
        if endpoint.conflist:
            runner = CniRunner(_with_ifname(self._executor, endpoint.ifname), self._cni_path)
            netns = endpoint.netns if os.path.exists(endpoint.netns) else ""
            try:
                self._remove_rules(endpoint)
                runner.delete(endpoint.conflist, container_id, netns, _rt_config(endpoint), endpoint.result)
            except BerthError as err:
                # Keep the record (and the ports): it is what a later retry or cleanup_stale
                # needs to DEL again; dropping it would leak the lease and the plugin's rules.
                log.warning("CNI DEL of %s on %s: %s", container_id[:12], endpoint.network_name, err)
                raise
        self._ports.release(container_id + "/" + network_id)
        self._delete_record(endpoint)
        return endpoint

    def remove_all(self, container_id: str) -> list[Endpoint]:
        return [e for e in (self.remove(container_id, ep.network_id) for ep in self.of_container(container_id))
                if e is not None]

    # --- batched iptables rules ------------------------------------------------------------------
    def _rules_of(self, endpoint: Endpoint) -> tuple[ContainerRules, str] | None:
        """The rule writer and address of a "batch" endpoint that has an address."""
        if endpoint.rules != "batch" or endpoint.result is None or not endpoint.ip_address:
            return None
        bridge = str(endpoint.conflist["plugins"][0]["bridge"])
        rules = ContainerRules(str(endpoint.conflist["name"]), bridge, runner=self._iptables)
        return rules, f"{endpoint.ip_address}/{endpoint.prefix_len}"

    def _published(self, endpoint: Endpoint) -> tuple[PortMapping, ...]:
        # portmap is never in an --internal network's list: its ports get no rules either
        return endpoint.ports if endpoint.masquerade else ()

    def _add_rules(self, endpoint: Endpoint) -> None:
        found = self._rules_of(endpoint)
        if found is not None:
            found[0].add(endpoint.container_id, found[1], self._published(endpoint),
                         masquerade=endpoint.masquerade)

    def _remove_rules(self, endpoint: Endpoint) -> None:
        """Before the bridge DEL, as the plugins' DEL order has it (idempotent)."""
        found = self._rules_of(endpoint)
        if found is not None:
            found[0].remove(endpoint.container_id, found[1], self._published(endpoint),
                            masquerade=endpoint.masquerade)

    # --- queries ---------------------------------------------------------------------------------
    def get(self, container_id: str, network_id: str) -> Endpoint | None:
        with self._records_lock:
            return self._loaded().get(network_id, {}).get(container_id)

    def of_container(self, container_id: str) -> list[Endpoint]:
        with self._records_lock:
            found = [e for net in self._loaded().values() if (e := net.get(container_id)) is not None]
        return sorted(found, key=lambda e: e.ifname)

    def members(self, network_id: str) -> list[Endpoint]:
        """The network's endpoints in container-id order."""
        with self._records_lock:
            net = self._loaded().get(network_id, {})
            return [net[cid] for cid in sorted(net)]

    # --- restart ---------------------------------------------------------------------------------
    def reserve_ports(self, container_id: str) -> None:
        """Hold a running container's published ports again after a daemon restart."""
        for endpoint in self.of_container(container_id):
            owner = container_id + "/" + endpoint.network_id
            if endpoint.ports and not self._ports.held_by(owner):
                try:
                    self._ports.reserve(owner, endpoint.name or container_id, endpoint.ports)
                except BerthError as err:
                    log.warning("cannot re-reserve ports of %s: %s", container_id[:12], err)

    def cleanup_stale(self, live_ids: set[str]) -> None:
        """DEL every endpoint of a container not in `live_ids` (call before the netns goes),
        once the CNI plugins a killed predecessor left running have exited (_cni.py)."""
        if not self._dir.exists():
            return
        if isinstance(self._executor, WaitsForStrays):
            self._executor.wait_for_strays()
        with self._records_lock:
            stale = [(cid, nid) for nid, net in self._loaded().items() for cid in net if cid not in live_ids]
        for container_id, network_id in stale:
            self.remove(container_id, network_id)

    def forget_network(self, network_id: str) -> None:
        with self._records_lock:
            shutil.rmtree(self._dir / network_id, ignore_errors=True)
            self._loaded().pop(network_id, None)

    def release_all(self) -> None:
        self._ports.release_all()

    # --- files -----------------------------------------------------------------------------------
    def _loaded(self) -> dict[str, dict[str, Endpoint]]:
        """The records, read from disk at the first use (caller holds the records lock)."""
        if self._records is None:
            records: dict[str, dict[str, Endpoint]] = {}
            for path in sorted(self._dir.glob("*/*.json")) if self._dir.exists() else ():
                endpoint = _load(path)
                if endpoint is not None:
                    records.setdefault(path.parent.name, {})[path.stem] = endpoint
            self._records = records
        return self._records

    def _save(self, endpoint: Endpoint) -> None:
        directory = self._dir / endpoint.network_id
        with self._records_lock:
            records = self._loaded()
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(endpoint), f)
            os.replace(tmp, directory / f"{endpoint.container_id}.json")
            records.setdefault(endpoint.network_id, {})[endpoint.container_id] = endpoint

    def _delete_record(self, endpoint: Endpoint) -> None:
        with self._records_lock:
            (self._dir / endpoint.network_id / f"{endpoint.container_id}.json").unlink(missing_ok=True)
            records = self._loaded()
            net = records.get(endpoint.network_id)
            if net is not None:
                net.pop(endpoint.container_id, None)
                if not net:
                    del records[endpoint.network_id]


def _load(path: Path) -> Endpoint | None:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    raw["aliases"] = tuple(raw.get("aliases") or ())
    raw["ports"] = tuple(PortMapping(**p) for p in raw.get("ports") or ())
    return Endpoint(**raw)
