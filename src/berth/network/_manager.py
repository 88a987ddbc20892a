"""NetworkManager: wires containers to the default bridge through CNI plugins.

Files (all paths are parameters, so several daemons can share a host):

    <state_dir>/attachments/<id>.json     what ADD used and returned (see _store.py)
    <state_dir>/plugins.lock              held by every running CNI plugin (see _cni.py)
    <state_dir>/ipam/<network name>/      host-local leases
    <run_dir>/netns/<cni id>              the network namespace (see _netns.py); the cni id is
                                          the container id, or the id of the spare it claimed
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from berth.errors import BerthError, Conflict, InvalidArgument
from berth.network import _hostnet
from berth.network._cni import PLUGINS_LOCK, CniRunner, PluginExecutor, PluginProcesses, WaitsForStrays
from berth.network._cniconfig import JSON, bridge_conflist, runtime_config
from berth.network._cniresult import container_address
from berth.network._ipam import lease_owners
from berth.network._netns import BindMountedNetns, NetnsOps, list_netns
from berth.network._pool import SparePool, run_at_low_priority
from berth.network._iptrules import ContainerRules, Runner
from berth.network._iptrules import run as run_iptables
from berth.network._ports import PortConflict, PortReservations
from berth.network._store import Record, RecordStore
from berth.network._types import Attachment, BridgeConfig, PortMapping

log = logging.getLogger(__name__)

MODES = ("bridge", "none", "host")
IPTABLES_RULES = ("plugins", "batch")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# How long an attach waits for a background detach that still holds a port it wants.
DETACH_WAIT_SECONDS = 30.0


class NetworkManager:
    """Attach containers to networks and detach them again.

    Lifecycle of one container:

        attach(id, mode, ports) -> Attachment   ports reserved, netns created, CNI ADD cached
        ... the runtime starts the container in attachment.netns_path ...
        detach(id)                              CNI DEL, netns removed, ports + lease released

    `detach` is idempotent and may run in the background after the container is gone (DEL costs
    100-200 ms of iptables calls): the container's port reservations and IP lease stay held until
    DEL has finished, and an attach that wants one of those ports waits for that detach.

    After a daemon restart `attachment(id)` still answers from the cached records,
    `reserve_ports(id)` re-holds a running container's ports, and `cleanup_stale(live_ids)`
    tears down everything left by containers that no longer exist (and starts the spare pool,
    so the daemon should call it once at start-up).

    Example:
        mgr = NetworkManager(state_dir=root / "network", run_dir=run / "network")
        att = mgr.attach(cid, "bridge", parse_port_spec("8080:80"), name="web")
        ...  # crun joins att.netns_path
        mgr.detach(cid)
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        run_dir: Path,
        bridge: BridgeConfig = BridgeConfig(),  # noqa: B008 (frozen, safe to share)
        executor: PluginExecutor | None = None,
        netns_ops: NetnsOps | None = None,
        spares: int = 0,
        iptables_rules: str = "plugins",
        iptables: Runner = run_iptables,
    ) -> None:
        """`spares` > 0 keeps that many bridge namespaces attached ahead of time (see _pool.py);
        `iptables_rules` = "batch" runs only the bridge plugin and writes the masquerade,
        firewall and published-port rules itself in one iptables-restore per ADD and DEL
        (_iptrules.py), and frees a detaching container's host ports as soon as its rules are
        gone; "plugins" leaves them to bridge's ipMasq, firewall and portmap. `executor`,
        `netns_ops` and `iptables` are seams for tests (berth.network.testing); the default
        executor runs the plugins as `PluginProcesses` (_cni.py) on `<state_dir>/plugins.lock`."""
        if iptables_rules not in IPTABLES_RULES:
            raise InvalidArgument(f"iptables_rules must be one of {IPTABLES_RULES}, not {iptables_rules!r}")
        self._rules_mode = iptables_rules
        self._rules = ContainerRules(bridge.network_name, bridge.bridge, runner=iptables)
        self._cfg = bridge
        self._ipam_dir = Path(state_dir) / "ipam"
        self._records = RecordStore(Path(state_dir) / "attachments")
        self._netns_dir = Path(run_dir) / "netns"
        self._netns = netns_ops or BindMountedNetns()
        if executor is None:
            executor = PluginProcesses(Path(state_dir) / PLUGINS_LOCK)
        self._executor = executor
        self._cni = CniRunner(executor, bridge.cni_path)
        self._ports = PortReservations()
        self._lock = threading.Lock()  # guards _detaching
        self._detaching: dict[str, threading.Event] = {}
        # The first ADD creates the shared iptables chains; concurrent first ADDs race on
        # "chain already exists", so they are serialised until one has succeeded.
        self._warm = threading.Event()
        self._warm_lock = threading.Lock()
        self._pool = SparePool(spares, self._make_spare)

    # -- attach ---------------------------------------------------------------------------------

    def attach(
        self, container_id: str, mode: str, ports: list[PortMapping], name: str = ""
    ) -> Attachment:
        """Create the container's network; leaves nothing behind on failure.

        Published ports are ignored for "none" and "host" (as Docker does).

        Raises:
            Conflict: a host port is already allocated, or the container is already attached.
            Unavailable: a CNI plugin failed (its message included).
            InvalidArgument: bad id, mode or port mapping.
        """
        _check_id(container_id)
        if mode not in MODES:
            raise InvalidArgument(f"network mode {mode!r} is not supported (bridge, none, host)")
        self._check_not_attached(container_id)
        if mode == "host":
            return self._save_plain(container_id, Record(mode="host", name=name))
        wanted = [_check_mapping(p) for p in ports] if mode == "bridge" else []
        resolved = self._reserve(container_id, name, wanted)
        try:
            spare = self._pool.take() if mode == "bridge" else None
            if spare is not None:
                return self._claim(spare, container_id, name, resolved)
            return self._attach_netns(container_id, mode, name, resolved)
        except BaseException:
            self._ports.release(container_id)
            raise
        finally:
            if mode == "bridge":
                self._pool.refill()

    def _check_not_attached(self, container_id: str) -> None:
        with self._lock:
            detaching = container_id in self._detaching
        if detaching or self._records.load(container_id) is not None:
            raise Conflict(f"container {container_id} is already attached to a network")

    def _attach_netns(
        self, container_id: str, mode: str, name: str, ports: tuple[PortMapping, ...]
    ) -> Attachment:
        netns = self._netns_dir / container_id
        self._netns.create(netns)
        try:
            if mode == "none":
                return self._save_plain(container_id, Record("none", name, str(netns)))
            return self._cni_add(container_id, name, netns, ports)
        except BaseException:
            self._records.delete(container_id)
            self._netns.remove(netns)
            raise

    def _save_plain(self, container_id: str, record: Record) -> Attachment:
        self._records.save(container_id, record)
        return _attachment(record)

    def _cni_add(
        self, container_id: str, name: str, netns: Path, ports: tuple[PortMapping, ...]
    ) -> Attachment:
        conflist = self._conflist()
        # cni_id from the start: a spare's record keeps it when a claim renames it (DEL and the
        # lease, chain names derive from it), even if the daemon dies before the claim's save.
        record = Record(
            "bridge", name, str(netns), ports, conflist, cni_id=container_id, rules=self._rules_mode
        )
        # Written before ADD (not fsynced) so a crash mid-ADD still leaves enough to DEL.
        self._records.save(container_id, record, durable=False)
        rt_config = runtime_config(ports)
        result = self._add(conflist, container_id, str(netns), rt_config)
        try:
            record = replace(record, result=result)
            attachment = _attachment(record)
            self._records.save(container_id, record)  # before the rules: DEL finds them by it
            self._add_rules(container_id, record)
        except BaseException:
            self._cni.delete(conflist, container_id, str(netns), rt_config, result)
            raise
        return attachment

    def _claim(
        self, spare: str, container_id: str, name: str, ports: tuple[PortMapping, ...]
    ) -> Attachment:
        """Turn spare `spare` into the container's attachment, adding its port mappings."""
        self._records.rename(spare, container_id)  # atomic: one owner at every instant
        spare_record = self._records.load(container_id)
        assert spare_record is not None and spare_record.conflist and spare_record.netns
        conflist, netns = spare_record.conflist, spare_record.netns
        record = replace(spare_record, name=name, ports=ports, cni_id=spare)
        try:
            self._records.save(container_id, record)  # before ADD: DEL must see the ports
            if ports and record.rules == "batch":
                self._add_rules(spare, record, ports_only=True)
            elif ports:
                index = _plugin_index(conflist, "portmap")
                rt_config = runtime_config(ports)
                self._cni.add_one(conflist, index, spare, netns, record.result, rt_config)
        except BaseException:
            self._teardown(container_id, record)
            raise
        return _attachment(record)

    def _conflist(self) -> JSON:
        return bridge_conflist(self._cfg, self._ipam_dir, batch_rules=self._rules_mode == "batch")

    def _add_rules(self, cni_id: str, record: Record, *, ports_only: bool = False) -> None:
        if record.rules != "batch" or record.result is None:
            return
        address = container_address(record.result)
        ip_cidr = f"{address.ip}/{address.prefix_len}"
        self._rules.add(cni_id, ip_cidr, record.ports, ports_only=ports_only)

    def _make_spare(self, cni_id: str) -> None:
        self._attach_netns(cni_id, "bridge", "", ())

    def _add(self, conflist: JSON, container_id: str, netns: str, rt_config: JSON) -> JSON:
        if self._warm.is_set():
            return self._cni.add(conflist, container_id, netns, rt_config)
        with self._warm_lock:
            result = self._cni.add(conflist, container_id, netns, rt_config)
            self._warm.set()
            return result

    def _reserve(
        self, container_id: str, name: str, ports: list[PortMapping]
    ) -> tuple[PortMapping, ...]:
        """Reserve host ports, waiting for background detaches that still hold one of them."""
        deadline = time.monotonic() + DETACH_WAIT_SECONDS
        retried = False
        while True:
            try:
                return self._ports.reserve(container_id, name or container_id, ports)
            except PortConflict as err:
                holders = self._ports.holders(err.mapping)
                pending = self._pending_detaches(holders)
                if holders and pending is None:
                    raise  # a live container holds it
                if not holders and retried:
                    raise  # another process holds it
                retried = not holders
                for event in pending or []:
                    event.wait(max(0.0, deadline - time.monotonic()))
                if time.monotonic() >= deadline:
                    raise

    def _pending_detaches(self, holders: set[str]) -> list[threading.Event] | None:
        """Events of the holders' running detaches; None if any holder is not detaching."""
        with self._lock:
            events = [self._detaching.get(holder) for holder in holders]
        if any(event is None for event in events):
            return None
        return [event for event in events if event is not None]

    # -- detach ---------------------------------------------------------------------------------

    def detach(self, container_id: str) -> None:
        """CNI DEL, remove the netns, release ports and lease; idempotent, safe in a thread.

        A concurrent second call waits for the first.

        Raises:
            Unavailable: a plugin's DEL failed; the state is kept so a later call can retry.
        """
        _check_id(container_id)
        self._detach(container_id, self._records.load)

    def _detach(self, container_id: str, load: Callable[[str], Record | None]) -> None:
        with self._lock:
            running = self._detaching.get(container_id)
            if running is None:
                done = self._detaching[container_id] = threading.Event()
        if running is not None:
            running.wait()
            return
        try:
            self._teardown(container_id, load(container_id))
        finally:
            with self._lock:
                del self._detaching[container_id]
            done.set()

    def _teardown(self, container_id: str, record: Record | None) -> None:
        netns = self._netns_dir / container_id
        if record is not None and record.netns:
            netns = Path(record.netns)
        if record is not None and record.mode == "bridge" and record.conflist is not None:
            # DEL before the netns goes: without it bridge cannot find the address and leaks
            # its ipMasq chain (host-notes §6.4). An unmounted placeholder (after a reboot)
            # is passed as "no netns".
            path = str(netns) if self._netns.is_mounted(netns) else ""
            rt_config = runtime_config(record.ports)
            cni_id = _cni_id(container_id, record)
            if record.rules == "batch" and record.result is not None:
                # Our rules go first, and with their DNAT the reason to hold the host ports:
                # a new container may publish them while the slower plugin DEL still runs.
                address = container_address(record.result)
                self._rules.remove(cni_id, f"{address.ip}/{address.prefix_len}", record.ports)
                self._ports.release(container_id)
            # DEL is clean-up (≈ 100 ms of iptables calls, mostly after the container is gone):
            # at low priority, so it does not slow down containers starting meanwhile.
            conflist, result = record.conflist, record.result
            run_at_low_priority(
                lambda: self._cni.delete(conflist, cni_id, path, rt_config, result)
            )
        self._netns.remove(netns)
        self._ports.release(container_id)
        self._records.delete(container_id)

    # -- after a restart ------------------------------------------------------------------------

    def attachment(self, container_id: str) -> Attachment | None:
        """The container's attachment from the cached record, or None if it has none."""
        _check_id(container_id)
        record = self._records.load(container_id)
        if record is None or (record.mode == "bridge" and record.result is None):
            return None
        return _attachment(record)

    def reserve_ports(self, container_id: str) -> None:
        """Hold a running container's published ports again (after a daemon restart).

        Ports another process took meanwhile are logged and skipped: the DNAT rules still
        deliver the traffic, only the reservation is missing.
        """
        _check_id(container_id)
        record = self._records.load(container_id)
        if record is None or self._ports.held_by(container_id):
            return
        for mapping in record.ports:
            try:
                self._ports.reserve(container_id, record.name or container_id, [mapping])
            except BerthError as err:
                log.warning("cannot re-reserve port for %s: %s", container_id, err)

    def cleanup_stale(self, live_ids: set[str]) -> None:
        """Tear down namespaces, records, leases and chains of containers not in `live_ids`
        (unclaimed spares included), then start making spares again.

        First waits for CNI plugins a killed predecessor left running: an ADD finishing after
        its DEL would leave its chains and lease behind for good (_cni.py)."""
        if isinstance(self._executor, WaitsForStrays):
            self._executor.wait_for_strays()
        records = {cid: self._records.load(cid) for cid in self._records.ids()}
        owned = {_cni_id(cid, r) for cid, r in records.items() if r is not None}
        leases = lease_owners(self._ipam_dir / self._cfg.network_name)
        orphans = (set(list_netns(self._netns_dir)) | set(leases)) - owned
        for container_id in sorted((set(records) | orphans) - set(live_ids)):
            if not _ID.fullmatch(container_id):
                continue
            try:
                self._detach(container_id, self._stale_record)
            except BerthError as err:
                log.warning("cleanup of stale network state of %s failed: %s", container_id, err)
        self._pool.refill()

    def _stale_record(self, container_id: str) -> Record | None:
        """The cached record, or (a lease without one) a record to DEL with today's list."""
        record = self._records.load(container_id)
        if record is not None:
            return record
        leases = lease_owners(self._ipam_dir / self._cfg.network_name)
        if container_id not in leases:
            return None
        return Record("bridge", conflist=self._conflist(), rules=self._rules_mode)

    # -- whole network --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop making spares and tear down the unclaimed ones (daemon shutdown); attached
        containers keep their networks."""
        for spare in self._pool.close():
            try:
                self._detach(spare, self._records.load)
            except BerthError as err:
                log.warning("teardown of spare network namespace %s failed: %s", spare, err)

    def destroy(self, *, shared_chains: bool = True) -> None:
        """Detach everything still attached, remove the bridge and the leases; with
        `shared_chains`, also the shared CNI chains once no network on the host uses them.
        For tests and uninstall."""
        self._pool.close()
        self.cleanup_stale(set())
        self._ports.release_all()
        _hostnet.delete_link(self._cfg.bridge)
        shutil.rmtree(self._ipam_dir / self._cfg.network_name, ignore_errors=True)
        if shared_chains:
            _hostnet.remove_shared_chains()
        for directory in (self._netns_dir, self._ipam_dir):
            _rmdir(directory)


def _attachment(record: Record) -> Attachment:
    if record.mode != "bridge" or record.result is None:
        return Attachment(netns_path=record.netns, mode=record.mode)
    address = container_address(record.result)
    return Attachment(
        netns_path=record.netns,
        mode="bridge",
        ip_address=address.ip,
        prefix_len=address.prefix_len,
        gateway=address.gateway,
        mac_address=address.mac,
        ports=record.ports,
    )


def _cni_id(container_id: str, record: Record) -> str:
    """The CNI_CONTAINERID the record's ADD used. Records of older daemons may lack it (a claim
    they did not finish saving): the netns file is named by it as well."""
    if record.cni_id:
        return record.cni_id
    return Path(record.netns).name if record.netns else container_id


def _plugin_index(conflist: JSON, plugin_type: str) -> int:
    types = [plugin["type"] for plugin in conflist["plugins"]]
    return types.index(plugin_type)


def _check_id(container_id: str) -> None:
    if not _ID.fullmatch(container_id):
        raise InvalidArgument(f"invalid container id {container_id!r}")


def _check_mapping(mapping: PortMapping) -> PortMapping:
    if mapping.protocol not in ("tcp", "udp"):
        raise InvalidArgument(f"Invalid proto: {mapping.protocol}")
    if not 1 <= mapping.container_port <= 65535 or not 0 <= mapping.host_port <= 65535:
        raise InvalidArgument(f"invalid port mapping {mapping}")
    if mapping.host_ip == "0.0.0.0":
        return replace(mapping, host_ip="")
    return mapping


def _rmdir(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass
