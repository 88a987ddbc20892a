"""NetworkService: Docker's network semantics over NetworkManager, NetworkRegistry, EndpointManager.

A container's networks:

    NetworkMode bridge|host|none      NetworkManager alone (as before user networks existed)
    NetworkMode <user network>        NetworkManager makes a "none" netns (lo only), then
                                      EndpointManager adds eth0 on the user network (+ ports)
    EndpointsConfig / network connect further user networks: eth1, eth2, ...
    NetworkMode container:<ref>       nothing of its own: the running container's netns (or
                                      the host's), hostname and /etc files; `network` records
                                      them (mode "container") and detach has nothing to undo

Name resolution: containers on a user network find each other by container name, network alias
(compose's service name), short id, and their own --link aliases, two ways:

    hosts files       engine/etc_files.py; every join (start, connect) and leave (exit,
                      disconnect, rm) rewrites the hosts file of each member of the networks
                      involved. Works for programs that never ask DNS, and while no daemon runs.
    embedded DNS      berth.network.EmbeddedDns on 127.0.0.11 inside containers started on a
                      user network (their resolv.conf names it, like Docker's); the same joins
                      and leaves replace each member's NameTable. Answers a shared alias with
                      every member's address, round robin; forwards nothing.

The default bridge has no name resolution except --link, and keeps the host's resolv.conf, as
in Docker. Isolation: each bridge gets BERTH-ISOLATION rules (berth.network.NetworkIsolation) at
daemon start (`ensure_isolation`) or network create, removed with the network.

Container records are read and saved through the repository; the ContainerService calls
`attach_container`/`detach` around the container's life. Blocking; run in threads.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from berth.engine import etc_files
from berth.engine import filters as filters_mod
from berth.engine import legacy_links
from berth.engine.containers import (
    CONFLICT_MAC, CONFLICT_SHARED, Container, ContainerRepository, EndpointSettings, joined_container,
)
from berth.engine.network_json import builtin_json, endpoint_record, member_json, network_json
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from berth.network import (
    BUILTIN, Attachment, BridgeConfig, EmbeddedDns, Endpoint, EndpointManager, IsolatedBridge, NameEntry,
    NameTable, NetworkIsolation, NetworkManager, NetworkRegistry, PortMapping, UserNetwork, parse_mac, set_mac,
)
from berth.types.create_requests import IpamPool, NetworkCreate
from berth.types.host_config import HostConfig

log = logging.getLogger(__name__)

_BUILTIN_NAMES = (*BUILTIN, "default")  # the CLI names the default network "default" in EndpointsConfig


def builtin_id(name: str, bridge: BridgeConfig) -> str:
    """Stable ids for the predefined networks (a daemon on another bridge gets other ids)."""
    return hashlib.sha256(f"berth/{bridge.network_name}/{name}".encode()).hexdigest()


def _mode(container: Container) -> str:
    mode = container.host_config.network_mode or "bridge"
    return "bridge" if mode == "default" else mode


class NetworkService:
    def __init__(self, *, manager: NetworkManager, registry: NetworkRegistry, endpoints: EndpointManager,
                 repo: ContainerRepository, containers_dir: Path, bridge: BridgeConfig,
                 created: str = "0001-01-01T00:00:00Z", dns: EmbeddedDns | None = None,
                 isolation: NetworkIsolation | None = None) -> None:
        """`dns`: the embedded resolver for containers on user networks (None: hosts files and
        the host's resolv.conf only); `isolation`: the bridges' isolation rules (None: none)."""
        self.manager = manager
        self.registry = registry
        self.endpoints = endpoints
        self._repo = repo
        self._containers_dir = containers_dir
        self._bridge = bridge
        self._created = created
        self._hosts_lock = threading.Lock()  # one hosts (and DNS table) rewrite pass at a time
        # networks whose members' files and tables wait for a refresh pass (see _refresh)
        self._stale: set[str] = set()
        self._stale_lock = threading.Lock()
        # connect/disconnect: picking an interface name, checking and adding an endpoint must
        # not interleave (two concurrent connects would both take eth1).
        self._membership_lock = threading.RLock()
        self._dns = dns
        self._isolation = isolation

    # === the container's life ======================================================================
    def validate_create(self, host_config: HostConfig, endpoints: dict[str, EndpointSettings],
                        mac_address: str = "") -> str:
        """InvalidArgument `network X not found` for any network the container names that does not exist.

        Returns the NetworkMode to record: a network id or id prefix is replaced by the network's
        name, as are the keys of `endpoints` (in place), so the records name each network one way. Since API 1.44 the container may name
        several networks in EndpointsConfig at create: it joins all of them. `mac_address` is the
        container-wide Config.MacAddress of older clients: like dockerd, it becomes the
        MacAddress of the endpoint on the container's main network.
        """
        mode = host_config.network_mode or "bridge"
        joined = joined_container(mode)
        if joined:
            # The endpoints it may name are its own mode (container_config checked them).
            self._find_container_for_create(joined)
            return mode
        if mode not in ("default", *BUILTIN):
            mode = self._find_for_create(mode).name
        configs = endpoints
        for name in list(configs):
            if name not in _BUILTIN_NAMES:
                canonical = self._find_for_create(name).name
                configs[canonical] = configs.pop(name)
            elif _fixed_ip_asked(configs[name]):
                raise InvalidArgument("user specified IP address is supported on user defined networks only")
        if mac_address:
            if mode == "host":
                raise InvalidArgument(CONFLICT_MAC)
            if mode != "none":
                key = _main_endpoint_key(mode, configs)
                conf = configs.get(key) or EndpointSettings()
                if conf.mac_address and parse_mac(conf.mac_address) != parse_mac(mac_address):
                    raise InvalidArgument("the container-wide MAC address must match the endpoint-specific "
                                          "MAC address for the main network, or be left empty")
                configs[key] = replace(conf, mac_address=mac_address)
        for conf in configs.values():
            if conf.mac_address:
                parse_mac(conf.mac_address)
        for entry in host_config.extra_hosts or ():
            etc_files.parse_extra_host(entry)
        return mode

    def _find_for_create(self, ref: str) -> UserNetwork:
        """Docker's message, but as a 400: the CLI answers any 404 from create by pulling the
        image and retrying, which would reach out to a registry for a typo in --network."""
        try:
            return self.registry.get(ref)
        except NotFound as err:
            raise InvalidArgument(str(err)) from err

    def _find_container_for_create(self, ref: str) -> None:
        """`container:<ref>` must name an existing container. Docker's words, as a 400 for
        the same reason as `_find_for_create` (dockerd itself checks only at start)."""
        try:
            self._repo.get(ref)
        except NotFound as err:
            raise InvalidArgument(str(err)) from err

    def attach_container(self, container: Container, ports: list[PortMapping], cdir: Path) -> dict[str, Any]:
        """Wire every network of the container and write its /etc files; returns what the
        container record keeps as `network`. Leaves nothing behind on failure."""
        mode = _mode(container)
        if joined_container(mode):
            return self._join_container(container, joined_container(mode))
        user_nets = self._user_networks(container, mode)
        base_mode = mode if mode in BUILTIN else "none"
        ports = [_normalise(p) for p in ports]
        attachment = self.manager.attach(container.id, base_mode, ports if base_mode == "bridge" else [],
                                         name=container.name)
        try:
            mac = _builtin_mac(container) if base_mode == "bridge" else ""
            if mac and attachment.netns_path:
                set_mac(attachment.netns_path, "eth0", mac)
                attachment = replace(attachment, mac_address=parse_mac(mac))
            endpoints = self._add_endpoints(container, attachment, user_nets, ports, base_mode)
            data = self._attachment_data(attachment, endpoints, mode)
            data["dns"] = bool(endpoints) and self._dns is not None
            links = self._write_files(container, cdir, data, mode)
            if data["dns"]:
                data["dns_links"] = [list(link) for link in links]  # kept for restore
                data["dns_port"] = self._open_dns(container.id, data)
        except BaseException:
            self._close_dns(container.id)
            self.endpoints.remove_all(container.id)
            self.manager.detach(container.id)
            raise
        self._refresh({e.network_id for e in endpoints})
        return data

    def _join_container(self, container: Container, ref: str) -> dict[str, Any]:
        """`container:<ref>`: share the running container's network namespace, hostname and
        /etc files (moby's getNetworkedContainer + initializeNetworking). Nothing is attached:
        no CNI, no address, no ports, so `detach` of this container has nothing to undo.

        The namespace is the joined container's pinned netns file (None when it uses the
        host's network), not /proc/<pid>/ns/net: a pid reused after an exit not yet recorded
        would put this container in some other process's namespace; a stale file fails instead.
        A container that joins a joiner gets the root's namespace and files, recorded here.
        """
        try:
            joined = self._repo.get(ref)
        except NotFound as err:
            raise NotFound(f"No such container: {ref}") from err
        if joined.id == container.id:
            raise InvalidArgument("cannot join own network")
        if joined.state.status == "restarting":
            raise Conflict(f"Container {ref} is restarting, wait until the container is running")
        net = joined.network
        netns = net.get("netns_path") or None
        if not joined.state.running or "mode" not in net or (netns is not None and not Path(netns).exists()):
            raise Conflict(f"cannot join network of a non running container: {ref}")
        return {
            "mode": "container", "container_id": joined.id, "netns_path": netns,
            "etc_dir": net.get("etc_dir") or str(self._containers_dir / joined.id),
            "hostname": joined.config.hostname or joined.id[:12],
            "domainname": joined.config.domainname,
            "ports": [], "endpoints": {},
        }

    def _user_networks(self, container: Container, mode: str) -> list[tuple[UserNetwork, EndpointSettings]]:
        configs = container.endpoints
        found: list[tuple[UserNetwork, EndpointSettings]] = []
        if mode not in BUILTIN:
            net = self.registry.get(mode)
            found.append((net, _config_for(configs, net)))
        if mode in ("host", "none"):
            return found
        for name in configs:
            if name in _BUILTIN_NAMES:
                continue
            net = self.registry.get(name)
            if all(net.id != n.id for n, _ in found):
                found.append((net, _config_for(configs, net)))
        return found

    def _add_endpoints(self, container: Container, attachment: Attachment,
                       user_nets: list[tuple[UserNetwork, EndpointSettings]], ports: list[PortMapping],
                       base_mode: str) -> list[Endpoint]:
        endpoints: list[Endpoint] = []
        offset = 0 if base_mode == "none" else 1
        for index, (net, conf) in enumerate(user_nets):
            primary = index == 0 and base_mode == "none"
            endpoints.append(self.endpoints.add(
                container.id, attachment.netns_path or "", net, f"eth{index + offset}",
                name=container.name, aliases=_aliases(container, conf), primary=primary,
                ports=tuple(ports) if primary else (), ip=_fixed_ip(net, conf), mac=conf.mac_address))
        return endpoints

    def _attachment_data(self, attachment: Attachment, endpoints: list[Endpoint], mode: str) -> dict[str, Any]:
        data = asdict(attachment)
        data["ports"] = [asdict(p) for p in attachment.ports]
        if mode not in BUILTIN and endpoints:
            first = endpoints[0]
            data.update(mode="bridge", ip_address=first.ip_address, prefix_len=first.prefix_len,
                        gateway=first.gateway, mac_address=first.mac_address,
                        ports=[asdict(p) for p in first.ports])
        data["endpoints"] = {e.network_name: endpoint_record(e) for e in endpoints}
        return data

    def detach(self, container_id: str) -> None:
        """Resolver closed, CNI DEL of every endpoint, then the netns; peers' hosts files and
        DNS tables forget the container."""
        self._close_dns(container_id)  # its sockets would keep the netns alive
        removed = self.endpoints.remove_all(container_id)
        self.manager.detach(container_id)
        self._refresh({e.network_id for e in removed})

    def reserve_ports(self, container_id: str) -> None:
        self.manager.reserve_ports(container_id)
        self.endpoints.reserve_ports(container_id)

    def adopt(self, container: Container) -> None:
        """A container that kept running while no daemon ran: hold its ports again and serve its
        resolver again (the old daemon's sockets died with it)."""
        self.reserve_ports(container.id)
        if container.network.get("dns") and self._dns is not None:
            try:
                port = self._open_dns(container.id, container.network)
            except BerthError as err:
                log.warning("embedded DNS of %s not restored: %s", container.id[:12], err)
                return
            if port != container.network.get("dns_port"):
                container.network["dns_port"] = port
                self._repo.save(container)

    # === embedded DNS ==============================================================================
    def _open_dns(self, container_id: str, data: Mapping[str, Any]) -> int:
        """The resolver's port (0 without one). Under the hosts lock, so a peer joining
        meanwhile is either in this table or updates it afterwards."""
        if self._dns is None:
            return 0
        links = tuple(NameEntry("", str(ip), tuple(str(names).split())) for ip, names in data.get("dns_links") or [])
        with self._hosts_lock:
            return self._dns.open(container_id, str(data.get("netns_path") or ""),
                                  self._name_table(container_id, links), again=int(data.get("dns_port") or 0))

    def close_dns(self) -> None:
        """Daemon shutdown: every resolver closed (running containers get theirs back at adopt)."""
        if self._dns is not None:
            self._dns.shutdown()

    def _close_dns(self, container_id: str) -> None:
        if self._dns is not None:
            self._dns.close(container_id)

    def _update_dns(self, container_id: str, members: Callable[[str], list[Endpoint]] | None = None) -> None:
        """New peers for a container with a resolver (caller holds the hosts lock)."""
        current = self._dns.table(container_id) if self._dns is not None else None
        if current is not None and self._dns is not None:
            self._dns.update(container_id, self._name_table(container_id, current.links, members))

    def _name_table(self, container_id: str, links: tuple[NameEntry, ...],
                    members: Callable[[str], list[Endpoint]] | None = None) -> NameTable:
        """Every member (itself included) of each of the container's networks, in interface order."""
        members = members or self.endpoints.members
        peers: list[NameEntry] = []
        subnets: list[str] = []
        for own in self.endpoints.of_container(container_id):
            subnets.append(str(ipaddress.ip_interface(f"{own.ip_address}/{own.prefix_len}").network))
            for member in members(own.network_id):
                names = (member.name, *member.aliases, member.container_id[:12])
                peers.append(NameEntry(own.network_name, member.ip_address, tuple(dict.fromkeys(names))))
        return NameTable(peers=tuple(peers), links=links, subnets=tuple(subnets))

    # === isolation =================================================================================
    def ensure_isolation(self) -> None:
        """Isolation rules for the default bridge and every user network (daemon start)."""
        if self._isolation is not None:
            self._isolation.ensure([self._default_isolated(), *map(_isolated, self.registry.list())])

    def _default_isolated(self) -> IsolatedBridge:
        return IsolatedBridge(self._bridge.bridge, self._bridge.subnet)

    def _forget_isolation(self, net: UserNetwork) -> None:
        if self._isolation is not None:
            try:
                self._isolation.remove([_isolated(net)])
            except BerthError as err:
                log.warning("isolation rules of %s not removed: %s", net.bridge, err)

    def cleanup_stale(self, live_ids: set[str]) -> None:
        self.endpoints.cleanup_stale(live_ids)  # DEL needs the netns, which the manager removes
        self.manager.cleanup_stale(live_ids)

    # === /etc files ================================================================================
    def _write_files(self, container: Container, cdir: Path, data: dict[str, Any],
                     mode: str) -> list[tuple[str, str]]:
        """Write hosts/hostname/resolv.conf; returns the --link lines (ip, names) it used."""
        hc = container.host_config
        hostname = container.config.hostname or container.id[:12]
        settings = etc_files.dns_settings(hc)
        host_resolv = etc_files.host_file("/etc/resolv.conf")
        if data.get("dns"):
            resolv = etc_files.embedded_resolv_conf(host_resolv, search=settings["search"],
                                                    options=settings["options"])
        else:
            resolv = etc_files.resolv_conf(host_resolv, host_network=mode == "host", **settings)
        links: list[tuple[str, str]] = []
        if mode == "host":
            base = etc_files.host_file("/etc/hosts") or "127.0.0.1\tlocalhost\n"
            extra = etc_files.hosts_base(hostname=hostname, domainname="", own_ip="",
                                         extra_hosts=hc.extra_hosts or (), links=[])
            base += extra.split("\n".join(etc_files.LOCALHOST) + "\n", 1)[-1]
        else:
            links = self._link_lines(container, data)
            base = etc_files.hosts_base(
                hostname=hostname, domainname=container.config.domainname, own_ip=data.get("ip_address", ""),
                extra_hosts=hc.extra_hosts or (), links=links, gateway=data.get("gateway", ""))
        etc_files.write_etc_files(cdir, hostname=hostname, base=base, peers=self._peer_text(container.id),
                                  resolv=resolv)
        return links

    def _link_lines(self, container: Container, data: dict[str, Any]) -> list[tuple[str, str]]:
        """`--link target:alias` → (target ip, "alias target_short_id target_name")."""
        lines = []
        env: list[str] = []
        shared = {ep["network_id"] for ep in (data.get("endpoints") or {}).values()}
        for link in container.host_config.links or ():
            target_ref, alias = _split_link(link)
            try:
                target = self._repo.get(target_ref)
            except NotFound as err:
                raise InvalidArgument(f"could not get container for {target_ref}") from err
            if not target.state.running:
                raise InvalidArgument(f"Cannot link to a non running container: /{target.name} AS "
                                      f"/{container.name}/{alias}")
            ip = self._ip_towards(target, shared)
            if ip:
                names = " ".join(dict.fromkeys([alias, target.id[:12], target.name]))
                lines.append((ip, names))
            if _mode(container) == "bridge" and _mode(target) == "bridge" and target.network.get("ip_address"):
                env += legacy_links.link_env(container.name, alias, str(target.network["ip_address"]),
                                             target.config.exposed_ports or (), list(target.config.env))
        lines = list(dict.fromkeys(lines + self._endpoint_link_lines(container, data)))  # the CLI sends both
        if env:
            data["link_env"] = env  # the process gets them (container_launch); its own Env wins
        return lines

    def _endpoint_link_lines(self, container: Container, data: dict[str, Any]) -> list[tuple[str, str]]:
        """Links given per user network (EndpointsConfig.<net>.Links, where the CLI puts --link
        on a user network): name aliases of a member of that network, no variables. A target
        that is not (yet) on the network is skipped, as dockerd's alias then resolves nothing."""
        lines = []
        configs = container.endpoints
        for net_name, ep in (data.get("endpoints") or {}).items():
            conf = configs.get(net_name)
            for link in (conf.links if conf is not None else None) or ():
                target_ref, alias = _split_link(link)
                try:
                    target = self._repo.get(target_ref)
                except NotFound:
                    continue
                endpoint = self.endpoints.get(target.id, ep["network_id"])
                if endpoint is not None and target.state.running:
                    lines.append((endpoint.ip_address, " ".join(dict.fromkeys([alias, target.id[:12], target.name]))))
        return lines

    def _ip_towards(self, target: Container, shared: set[str]) -> str:
        for network_id in shared:
            endpoint = self.endpoints.get(target.id, network_id)
            if endpoint is not None:
                return endpoint.ip_address
        return str(target.network.get("ip_address") or "")

    def _peer_text(self, container_id: str, members: Callable[[str], list[Endpoint]] | None = None) -> str:
        members = members or self.endpoints.members
        peers = []
        for network_id in {e.network_id for e in self.endpoints.of_container(container_id)}:
            for member in members(network_id):
                if member.container_id != container_id:
                    peers.append((member.ip_address, [member.name, *member.aliases, member.container_id[:12]]))
        return etc_files.peer_lines(sorted(peers))

    def _refresh(self, network_ids: set[str]) -> None:
        """Rewrite (in place) the hosts file and name table of every member of these networks.

        Passes combine: the networks are queued, and whoever holds the hosts lock next does
        every queued network at once, so a caller whose networks another pass took returns as
        soon as that pass is over (it ran under the lock this caller waited for). Fifty replicas
        joining one network then cost a few passes over the members, not fifty."""
        with self._stale_lock:
            self._stale |= network_ids
        with self._hosts_lock:
            with self._stale_lock:
                stale, self._stale = self._stale, set()
            if not stale:
                return
            # one snapshot of the members per pass (every member's text reads every network)
            snapshot: dict[str, list[Endpoint]] = {}

            def members(network_id: str) -> list[Endpoint]:
                if network_id not in snapshot:
                    snapshot[network_id] = self.endpoints.members(network_id)
                return snapshot[network_id]
            # the joining container too: a member that joined after it wrote its files is in
            # its hosts file only by this pass (this pass may be that member's)
            for container_id in sorted({m.container_id for n in stale for m in members(n)}):
                cdir = self._containers_dir / container_id
                base = etc_files.host_file(str(cdir / "hosts.base"))
                if base:
                    etc_files.rewrite_in_place(cdir / "hosts", base + self._peer_text(container_id, members))
                self._update_dns(container_id, members)

    # === Docker API ================================================================================
    def create_json(self, request: NetworkCreate) -> dict[str, Any]:
        if not request.name:
            raise InvalidArgument("network name is required")
        driver = request.driver or "bridge"
        if driver != "bridge":
            raise NotFound(f"could not find plugin {driver} in v1 plugin registry: plugin not found")
        if len(request.ipam_pools) > 1:
            raise InvalidArgument("only one IPv4 subnet per network is supported")
        pool = request.ipam_pools[0] if request.ipam_pools else IpamPool()
        net = self.registry.create(
            request.name, subnet=pool.subnet, gateway=pool.gateway, ip_range=pool.ip_range,
            internal=request.internal, attachable=request.attachable, labels=dict(request.labels),
            options=dict(request.options), ipam_options=dict(request.ipam_options))
        if self._isolation is not None:
            try:
                self._isolation.ensure([_isolated(net)])
            except BaseException:
                self.registry.remove(net)  # a network without its isolation must not be used
                raise
        return {"Id": net.id, "Warning": ""}

    def list_json(self, filters: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        items = [self._builtin(name) for name in BUILTIN] + [
            network_json(n, self.endpoints.members(n.id)) for n in self.registry.list()]
        return [i for i in items if _matches(i, filters)]

    def inspect_json(self, ref: str) -> dict[str, Any]:
        for name in BUILTIN:
            if ref == name or (len(ref) >= 1 and builtin_id(name, self._bridge).startswith(ref)):
                return self._builtin(name)
        net = self.registry.get(ref)
        return network_json(net, self.endpoints.members(net.id))

    def remove(self, ref: str) -> None:
        if ref in BUILTIN:
            raise InvalidArgument(f"{ref} is a pre-defined network and cannot be removed")
        net = self.registry.get(ref)
        members = self._active_members(net)
        if members:
            names = ", ".join(f'name:"{m.name}" id:"{m.container_id[:12]}"' for m in members)
            raise Conflict(f"error while removing network: network {net.name} has active endpoints ({names})")
        self.registry.remove(net)
        self.endpoints.forget_network(net.id)
        self._forget_isolation(net)

    def prune(self, filters: Mapping[str, list[str]]) -> dict[str, Any]:
        deleted = []
        for net in self.registry.list():
            if self._active_members(net) or not _matches(network_json(net, []), filters):
                continue
            self.registry.remove(net)
            self._forget_isolation(net)
            deleted.append(net.name)
        return {"NetworksDeleted": deleted or None}

    def connect(self, ref: str, container_ref: str, endpoint_config: EndpointSettings | None) -> None:
        with self._membership_lock:
            self._connect(ref, container_ref, endpoint_config)

    def _connect(self, ref: str, container_ref: str, endpoint_config: EndpointSettings | None) -> None:
        net = self._connectable(ref)
        container = self._repo.get(container_ref)
        mode = _mode(container)
        if joined_container(mode):
            raise InvalidArgument(CONFLICT_SHARED)
        if mode in ("host", "none"):
            raise InvalidArgument("container cannot be disconnected from host network or connected to "
                                  "host network" if mode == "host" else
                                  "container cannot be connected to multiple networks with one of the "
                                  "networks in private (none) mode")
        conf = endpoint_config or EndpointSettings()
        if conf.mac_address:
            parse_mac(conf.mac_address)
        configs = container.endpoints
        if container.state.running:
            if self.endpoints.get(container.id, net.id) is not None:
                raise Conflict(f"endpoint with name {container.name} already exists in network {net.name}")
            used = {e.ifname for e in self.endpoints.of_container(container.id)}
            if mode == "bridge":
                used.add("eth0")
            ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
            endpoint = self.endpoints.add(container.id, container.network.get("netns_path") or "", net, ifname,
                                          name=container.name, aliases=_aliases(container, conf), primary=False,
                                          ip=_fixed_ip(net, conf), mac=conf.mac_address)
            container.network.setdefault("endpoints", {})[net.name] = endpoint_record(endpoint)
        configs.pop(net.id, None)
        configs[net.name] = _overlay(configs.get(net.name), conf)
        self._repo.save(container)
        if container.state.running:
            self._refresh({net.id})

    def disconnect(self, ref: str, container_ref: str, force: bool = False) -> None:
        with self._membership_lock:
            self._disconnect(ref, container_ref, force)

    def _disconnect(self, ref: str, container_ref: str, force: bool = False) -> None:
        net = self._connectable(ref)
        container = self._repo.get(container_ref)
        configs = container.endpoints
        configured = net.name in configs or net.id in configs or _mode(container) in (net.name, net.id)
        endpoint = self.endpoints.get(container.id, net.id)
        if not configured and endpoint is None and not force:
            raise InvalidArgument(f"container {container.id} is not connected to network {net.name}")
        if endpoint is not None:
            self.endpoints.remove(container.id, net.id)
            (container.network.get("endpoints") or {}).pop(net.name, None)
        configs.pop(net.name, None)
        configs.pop(net.id, None)
        self._repo.save(container)
        self._refresh({net.id})
        if endpoint is not None:
            self._refresh_one(container.id)

    def remove_link(self, link_name: str) -> None:
        """`DELETE /containers/<parent>/<alias>?link=1` (`docker rm --link /parent/alias`): the
        parent forgets its link (moby's rmLink). The target container is untouched; a running
        parent keeps the hosts line until it starts again."""
        parent_ref, _, alias = link_name.strip("/").rpartition("/")
        if not parent_ref:
            raise Conflict("Conflict, cannot remove the default link name of the container")
        try:
            parent = self._repo.get(parent_ref)
        except NotFound as err:
            raise NotFound(f"Cannot get parent /{parent_ref} for link name {link_name}") from err
        with self._membership_lock:
            parent = self._repo.get(parent.id)
            links = parent.host_config.links or ()
            kept = tuple(link for link in links if _split_link(link)[1] != alias)
            if len(kept) == len(links):
                raise NotFound(f"No such container: {link_name}")
            parent.host_config = replace(parent.host_config, links=kept or None)
            self._repo.save(parent)

    def _refresh_one(self, container_id: str) -> None:
        with self._hosts_lock:
            cdir = self._containers_dir / container_id
            base = etc_files.host_file(str(cdir / "hosts.base"))
            if base:
                etc_files.rewrite_in_place(cdir / "hosts", base + self._peer_text(container_id))
            self._update_dns(container_id)

    def _active_members(self, net: UserNetwork) -> list[Endpoint]:
        """Endpoints of running containers. Those of exited or removed containers are only
        waiting for the background teardown (engine/containers/_exits.py); DEL them now."""
        active = []
        for member in self.endpoints.members(net.id):
            try:
                running = self._repo.get(member.container_id).state.running
            except NotFound:
                running = False
            if running:
                active.append(member)
            else:
                self.endpoints.remove(member.container_id, net.id)
        return active

    def _connectable(self, ref: str) -> UserNetwork:
        if ref in BUILTIN:
            raise InvalidArgument(f"connecting containers to or from the predefined network {ref} "
                                  "while they exist is not supported")
        return self.registry.get(ref)

    # === helpers ===================================================================================
    def _builtin(self, name: str) -> dict[str, Any]:
        members = {}
        if name == "bridge":
            for c in self._repo.all():
                if c.state.running and _mode(c) == "bridge" and c.network.get("ip_address"):
                    members[c.id] = member_json(c.name, c.id, c.network.get("mac_address", ""),
                                                c.network["ip_address"], c.network.get("prefix_len", 0))
            return builtin_json(name, builtin_id(name, self._bridge), self._created, subnet=self._bridge.subnet,
                                gateway=self._bridge.gateway, bridge=self._bridge.bridge, members=members)
        return builtin_json(name, builtin_id(name, self._bridge), self._created)

    def destroy(self) -> None:
        """Remove every user network's bridge, records and isolation rules, and the default
        bridge's rules (tests, uninstall)."""
        self.endpoints.release_all()
        if self._isolation is not None:
            self._isolation.remove([self._default_isolated(), *map(_isolated, self.registry.list())])
        self.registry.destroy()


def _isolated(net: UserNetwork) -> IsolatedBridge:
    return IsolatedBridge(net.bridge, net.subnet, internal=net.internal)


def _config_for(configs: Mapping[str, EndpointSettings], net: UserNetwork) -> EndpointSettings:
    return configs.get(net.name) or configs.get(net.id) or EndpointSettings()


def _overlay(old: EndpointSettings | None, new: EndpointSettings) -> EndpointSettings:
    """`network connect` onto an endpoint configured before: the settings it gives win."""
    if old is None:
        return new
    given = {f.name: getattr(new, f.name) for f in fields(new)
             if getattr(new, f.name) not in (None, "")}
    return replace(old, **given)


def _aliases(container: Container, conf: EndpointSettings) -> tuple[str, ...]:
    """Names peers resolve for this container on a network: its name first, then aliases."""
    return tuple(dict.fromkeys([container.name, *(conf.aliases or ())]))


def _main_endpoint_key(mode: str, configs: Mapping[str, EndpointSettings]) -> str:
    """The EndpointsConfig key of the container's main network (the CLI says `default` for
    the default bridge, docker-py `bridge` or nothing)."""
    if mode in ("default", "bridge"):
        return next((k for k in ("default", "bridge") if k in configs), "bridge")
    return mode


def _builtin_mac(container: Container) -> str:
    """The MacAddress asked for on the default bridge (validated at create)."""
    for key in ("default", "bridge"):
        conf = container.endpoints.get(key)
        if conf is not None and conf.mac_address:
            return conf.mac_address
    return ""


def _fixed_ip_asked(conf: EndpointSettings) -> bool:
    return conf.ipam_config is not None and bool(conf.ipam_config.ipv4_address)


def _fixed_ip(net: UserNetwork, conf: EndpointSettings) -> str:
    """`--ip`: only on networks with a user-configured subnet (Docker's rule and wording)."""
    ip = conf.ipam_config.ipv4_address if conf.ipam_config is not None else ""
    if ip and not net.ipam_config_given:
        raise InvalidArgument("user specified IP address is supported only when connecting to networks "
                              "with user configured subnets")
    if ip and ipaddress.ip_address(ip) not in ipaddress.ip_network(net.subnet):
        raise InvalidArgument(f"no configured subnet contains IP address {ip}")
    return ip


def _split_link(link: str) -> tuple[str, str]:
    """`name:alias`, `/name:/me/alias` or `name` → (name, alias)."""
    target, _, alias = link.partition(":")
    target = target.lstrip("/")
    alias = alias.rsplit("/", 1)[-1] if alias else target
    if not target:
        raise InvalidArgument(f"invalid link: {link!r}")
    return target, alias


def _normalise(p: PortMapping) -> PortMapping:
    return replace(p, host_ip="") if p.host_ip == "0.0.0.0" else p


def _matches(item: Mapping[str, Any], filters: Mapping[str, list[str]]) -> bool:
    """`docker network ls -f`: name, id, driver, label, type (custom|builtin), scope."""
    def one(key: str, value: str) -> bool:
        if key == "name":
            return value in str(item["Name"])
        if key == "id":
            return str(item["Id"]).startswith(value)
        if key == "driver":
            return bool(item["Driver"] == value)
        if key == "label":
            return filters_mod.label_matches(item.get("Labels") or {}, value)
        if key == "type":
            return (item["Name"] in BUILTIN) == (value == "builtin")
        if key == "scope":
            return value == "local"
        if key in ("dangling", "until"):
            return True
        raise InvalidArgument(f"invalid filter '{key}'")
    return filters_mod.matches(filters, one)
