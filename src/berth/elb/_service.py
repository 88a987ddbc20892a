"""ElbService: the ELBv2 operations over the control-plane store, driving a DataPlane.

Each public method is one ELBv2 operation: it validates the request members (nested dicts with
text leaves, as the Query layer parses them, or native ints/bools), changes records and returns
records; the API layer shapes them for the wire. Every change that affects serving builds the
new PlaneConfig from the changed records *before* writing them and hands it to `plane.apply`:
when the plane refuses, nothing is written (nothing half configured).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import os
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from berth.elb import _errors as e
from berth.elb import _model as m
from berth.elb import _params as p
from berth.state.codec import decode, encode
from berth.elb._config import backend_name, build_config, groups_in_use, live_targets
from berth.elb._plane import DataPlane, PlaneConfig
from berth.state import Delete, ObjectStore, Put

Params = Mapping[str, Any]
R = TypeVar("R")

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
_INSTANCE_RE = re.compile(r"^i-[0-9a-zA-Z]{1,32}$")
_STATUS_RE = re.compile(r"^[245]\d\d$")
_MATCHER_RE = re.compile(r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$")
_METHOD_RE = re.compile(r"^[A-Z_-]{1,40}$")
_CONTENT_TYPES = ("text/plain", "text/css", "text/html", "application/javascript", "application/json")
_MAX_TAGS = 50
_MAX_TARGETS = 1000
_MAX_RULE_VALUES = 5
# where ip targets may be (ELB: RFC 1918 and RFC 6598 ranges, never publicly routable ones; berth adds
# loopback, where the host's own services and published container ports are)
_TARGET_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "fc00::/7", "::1/128"))

LIMITS: dict[str, str] = {
    "application-load-balancers": "50", "network-load-balancers": "50", "target-groups": "3000",
    "listeners-per-application-load-balancer": "50", "listeners-per-network-load-balancer": "50",
    "rules-per-application-load-balancer": "100", "targets-per-target-group": str(_MAX_TARGETS),
    "targets-per-application-load-balancer": "1000", "targets-per-network-load-balancer": "3000",
    "target-groups-per-action-on-application-load-balancer": "5",
    "target-groups-per-application-load-balancer": "100", "condition-values-per-alb-rule": "5",
    "condition-wildcards-per-alb-rule": "5",
}

LB_ATTRIBUTES: dict[str, dict[str, str]] = {
    "application": {
        "deletion_protection.enabled": "false", "idle_timeout.timeout_seconds": "60",
        "routing.http2.enabled": "true", "access_logs.s3.enabled": "false", "access_logs.s3.bucket": "",
        "access_logs.s3.prefix": "", "routing.http.drop_invalid_header_fields.enabled": "false",
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
        "routing.http.xff_client_port.enabled": "false", "routing.http.xff_header_processing.mode": "append",
        "routing.http.preserve_host_header.enabled": "false", "load_balancing.cross_zone.enabled": "true",
        "waf.fail_open.enabled": "false", "routing.http.desync_mitigation_mode": "defensive",
    },
    "network": {
        "deletion_protection.enabled": "false", "load_balancing.cross_zone.enabled": "false",
        "access_logs.s3.enabled": "false", "access_logs.s3.bucket": "", "access_logs.s3.prefix": "",
        "dns_record.client_routing_policy": "any_availability_zone",
    },
}


@dataclass(frozen=True)
class Scope:
    """Region and account of a request: ARNs are `arn:aws:elasticloadbalancing:<region>:<account>:…`."""

    region: str = "us-east-1"
    account: str = "123456789012"

    @property
    def prefix(self) -> str:
        return f"arn:aws:elasticloadbalancing:{self.region}:{self.account}:"

    def arn(self, resource: str) -> str:
        return self.prefix + resource


@dataclass(frozen=True)
class Page:
    items: tuple[Any, ...]
    next_marker: str | None = None


@dataclass
class _State:
    """Every ELB record, loaded under the service lock; changes are staged as store ops."""

    lbs: dict[str, m.LoadBalancer]
    tgs: dict[str, m.TargetGroup]
    targets: dict[str, m.Targets]
    listeners: dict[str, m.Listener]
    rules: dict[str, m.Rule]
    ops: list[Put | Delete] = field(default_factory=list)

    def put(self, kind: str, table: dict[str, Any], key: str, record: Any) -> None:
        table[key] = record
        self.ops.append(Put(kind, key, encode(record)))

    def delete(self, kind: str, table: dict[str, Any], key: str) -> None:
        if table.pop(key, None) is not None:
            self.ops.append(Delete(kind, key))


class ElbService:
    def __init__(self, store: ObjectStore, plane: DataPlane, clock: Callable[[], float] = time.time,
                 resolve_instance: Callable[[str], str | None] | None = None, bind: str = "127.0.0.1",
                 new_id: Callable[[], str] = lambda: secrets.token_hex(8),
                 check_certificate: Callable[[str], None] | None = None) -> None:
        """`resolve_instance` maps an instance target's Id to the address the proxy connects to
        (None: not an instance berth knows); by default every `i-…` id is this host.
        `check_certificate` refuses a listener CertificateArn berth cannot serve (by default: one
        that is not a readable `file:///…pem` with certificate and key)."""
        self.store = store
        self.plane = plane
        self.clock = clock
        self.resolve_instance = resolve_instance or (lambda _id: "127.0.0.1")
        self.bind = bind
        self.new_id = new_id
        self.check_certificate = check_certificate or check_certificate_file
        self._lock = threading.RLock()
        self._applied: PlaneConfig | None = None

    # ==== plumbing ===========================================================================

    def _load(self) -> _State:
        def load(kind: str, cls: type[R]) -> dict[str, R]:
            return {r.key: decode(cls, r.value) for r in self.store.list(kind)}
        return _State(load(m.LB, m.LoadBalancer), load(m.TG, m.TargetGroup), load(m.TARGETS, m.Targets),
                      load(m.LISTENER, m.Listener), load(m.RULE, m.Rule))

    def config(self, state: _State | None = None) -> PlaneConfig:
        st = state or self._load()
        return build_config(st.lbs, st.listeners, st.rules, st.tgs, st.targets, bind=self.bind, now=self.clock())

    def _change(self, fn: Callable[[_State], R]) -> R:
        with self._lock:
            st = self._load()
            result = fn(st)
            if st.ops:
                self._commit(st)
            return result

    def _commit(self, st: _State) -> None:
        config = self.config(st)
        if config != self._applied:
            self.plane.apply(config)          # raises: nothing is written
        try:
            self.store.apply(st.ops)
        except Exception:
            if self._applied is not None and config != self._applied:
                self.plane.apply(self._applied)
            raise
        self._applied = config

    def sync(self) -> PlaneConfig:
        """Drop targets whose draining ended and make the plane serve the stored records (at
        start-up, and periodically: the lead's loop calls `tick`)."""
        with self._lock:
            st = self._load()
            self._expire(st)
            config = self.config(st)
            self.plane.apply(config)
            if st.ops:
                self.store.apply(st.ops)
            self._applied = config
            return config

    def tick(self) -> None:
        """Forget targets whose deregistration delay ended (and tell the plane)."""
        def run(st: _State) -> None:
            self._expire(st)
        self._change(run)

    def _expire(self, st: _State) -> None:
        now = self.clock()
        for arn, group in list(st.targets.items()):
            kept = live_targets(group, now)
            if len(kept) != len(group.targets):
                st.put(m.TARGETS, st.targets, arn, replace(group, targets=kept))

    # ==== lookups ============================================================================

    def _lb(self, st: _State, scope: Scope, arn: str) -> m.LoadBalancer:
        lb = st.lbs.get(arn) if arn.startswith(scope.prefix) else None
        if lb is None:
            raise e.LoadBalancerNotFound(f"Load balancer '{arn}' not found")
        return lb

    def _tg(self, st: _State, scope: Scope, arn: str) -> m.TargetGroup:
        tg = st.tgs.get(arn) if arn.startswith(scope.prefix) else None
        if tg is None:
            raise e.TargetGroupNotFound(f"Target groups '{arn}' not found")
        return tg

    def _listener(self, st: _State, scope: Scope, arn: str) -> m.Listener:
        ln = st.listeners.get(arn) if arn.startswith(scope.prefix) else None
        if ln is None:
            raise e.ListenerNotFound(f"Listener '{arn}' not found")
        return ln

    def _rule(self, st: _State, scope: Scope, arn: str) -> m.Rule | m.DefaultRule:
        if arn.startswith(scope.prefix):
            rule = st.rules.get(arn)
            if rule is not None:
                return rule
            for ln in st.listeners.values():
                if default_rule_arn(ln) == arn:
                    return m.DefaultRule(arn, ln.arn, ln.default_actions)
        raise e.RuleNotFound(f"Rule '{arn}' not found")

    def _in_scope(self, table: Mapping[str, R], scope: Scope) -> list[R]:
        return [v for k, v in sorted(table.items()) if k.startswith(scope.prefix)]

    # ==== load balancers =====================================================================

    def create_load_balancer(self, scope: Scope, params: Params) -> m.LoadBalancer:
        name = _name(p.req_str(params, "Name"), "Load balancer")
        if name.startswith("internal-"):
            raise e.ValidationError("Load balancer name cannot start with 'internal-'")
        lb_type = p.one_of(p.opt_str(params, "Type"), "Type", ("application", "network", "gateway")) or "application"
        if lb_type == "gateway":
            raise e.ValidationError("berth supports load balancers of type application and network")
        scheme = p.opt_str(params, "Scheme") or "internet-facing"
        if scheme not in ("internet-facing", "internal"):
            raise e.InvalidScheme(f"Scheme '{scheme}' is not valid: use internet-facing or internal")
        ip_type = p.one_of(p.opt_str(params, "IpAddressType"), "IpAddressType",
                           ("ipv4", "dualstack", "dualstack-without-public-ipv4")) or "ipv4"
        subnets = _subnets(params)
        groups = tuple(p.str_list(params, "SecurityGroups") or ())
        tags = _tags(params)

        def run(st: _State) -> m.LoadBalancer:
            for lb in self._in_scope(st.lbs, scope):
                if lb.name == name:
                    if (lb.type, lb.scheme, lb.subnets, lb.security_groups) == (lb_type, scheme, subnets, groups):
                        return lb  # AWS: creating the same load balancer again succeeds
                    raise e.DuplicateLoadBalancerName(f"A load balancer with the name '{name}' already exists")
            if len(self._in_scope(st.lbs, scope)) >= 50:
                raise e.TooManyLoadBalancers("The maximum number of load balancers (50) has been reached")
            ident = self.new_id()
            kind = "app" if lb_type == "application" else "net"
            lb = m.LoadBalancer(
                arn=scope.arn(f"loadbalancer/{kind}/{name}/{ident}"), name=name, id=ident, type=lb_type,
                scheme=scheme, dns_name=f"{name}-{ident}.{scope.region}.elb.localhost".lower(),
                created=self.clock(), subnets=subnets, security_groups=groups, ip_address_type=ip_type,
                vpc_id="vpc-berth" if subnets else "", attributes=dict(LB_ATTRIBUTES[lb_type]), tags=tags)
            st.put(m.LB, st.lbs, lb.arn, lb)
            return lb
        return self._change(run)

    def describe_load_balancers(self, scope: Scope, params: Params) -> Page:
        arns = p.str_list(params, "LoadBalancerArns", 20)
        names = p.str_list(params, "Names", 20)
        if arns and names:
            raise e.ValidationError("LoadBalancerArns and Names cannot be specified together")
        st = self._load()
        lbs = self._in_scope(st.lbs, scope)
        if arns:
            lbs = [self._lb(st, scope, a) for a in dict.fromkeys(arns)]
        elif names:
            by_name = {lb.name: lb for lb in lbs}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise e.LoadBalancerNotFound(f"Load balancers '[{', '.join(missing)}]' not found")
            lbs = [by_name[n] for n in dict.fromkeys(names)]
        return _page(lbs, params)

    def delete_load_balancer(self, scope: Scope, params: Params) -> None:
        arn = p.req_str(params, "LoadBalancerArn")

        def run(st: _State) -> None:
            lb = st.lbs.get(arn) if arn.startswith(scope.prefix) else None
            if lb is None:
                if not arn.startswith(scope.prefix) or ":loadbalancer/" not in arn:
                    raise e.ValidationError(f"'{arn}' is not a valid load balancer ARN")
                return  # AWS: deleting a load balancer that is gone succeeds
            if lb.attributes.get("deletion_protection.enabled") == "true":
                raise e.OperationNotPermitted(
                    f"Load balancer '{arn}' cannot be deleted because deletion protection is enabled")
            for ln in [ln for ln in st.listeners.values() if ln.load_balancer_arn == arn]:
                self._drop_listener(st, ln)
            st.delete(m.LB, st.lbs, arn)
        self._change(run)

    def describe_load_balancer_attributes(self, scope: Scope, params: Params) -> dict[str, str]:
        return dict(self._lb(self._load(), scope, p.req_str(params, "LoadBalancerArn")).attributes)

    def modify_load_balancer_attributes(self, scope: Scope, params: Params) -> dict[str, str]:
        arn = p.req_str(params, "LoadBalancerArn")
        changes = _attributes(params)

        def run(st: _State) -> dict[str, str]:
            lb = self._lb(st, scope, arn)
            attrs = dict(lb.attributes)
            for key, value in changes.items():
                if key not in LB_ATTRIBUTES[lb.type]:
                    raise e.InvalidConfigurationRequest(f"Load balancer attribute key '{key}' is not recognized")
                if key.endswith(".enabled") and value not in ("true", "false"):
                    raise e.InvalidConfigurationRequest(f"Load balancer attribute '{key}' must be true or false")
                if key == "idle_timeout.timeout_seconds" and not (value.isdigit() and 1 <= int(value) <= 4000):
                    raise e.InvalidConfigurationRequest(
                        "Load balancer attribute 'idle_timeout.timeout_seconds' must be between 1 and 4000")
                if key == "access_logs.s3.enabled" and value == "true":
                    raise e.InvalidConfigurationRequest("berth does not write access logs to S3")
                attrs[key] = value
            st.put(m.LB, st.lbs, arn, replace(lb, attributes=attrs))
            return attrs
        return self._change(run)

    def set_security_groups(self, scope: Scope, params: Params) -> tuple[str, ...]:
        arn = p.req_str(params, "LoadBalancerArn")
        groups = tuple(p.str_list(params, "SecurityGroups") or ())

        def run(st: _State) -> tuple[str, ...]:
            lb = self._lb(st, scope, arn)
            st.put(m.LB, st.lbs, arn, replace(lb, security_groups=groups))
            return groups
        return self._change(run)

    def set_subnets(self, scope: Scope, params: Params) -> m.LoadBalancer:
        arn = p.req_str(params, "LoadBalancerArn")
        subnets = _subnets(params)
        if not subnets:
            raise e.ValidationError("Subnets or SubnetMappings must be specified")

        def run(st: _State) -> m.LoadBalancer:
            lb = replace(self._lb(st, scope, arn), subnets=subnets)
            st.put(m.LB, st.lbs, arn, lb)
            return lb
        return self._change(run)

    # ==== target groups ======================================================================

    def create_target_group(self, scope: Scope, params: Params) -> m.TargetGroup:
        name = _name(p.req_str(params, "Name"), "Target group")
        target_type = p.opt_str(params, "TargetType") or "instance"
        if target_type not in ("instance", "ip"):
            raise e.ValidationError(f"Target type '{target_type}' is not supported by berth: use instance or ip")
        protocol = _protocol(p.opt_str(params, "Protocol"), "Protocol")
        if protocol is None:
            raise e.ValidationError("A protocol must be specified for target groups of type instance or ip")
        port = p.opt_int(params, "Port", 1, 65535)
        if port is None:
            raise e.ValidationError("A port must be specified for target groups of type instance or ip")
        version = p.opt_str(params, "ProtocolVersion")
        if protocol == "HTTP":
            version = p.one_of(version or "HTTP1", "ProtocolVersion", ("HTTP1", "HTTP2", "GRPC"))
        elif version:
            raise e.ValidationError("A protocol version can only be specified for HTTP target groups")
        health = _health(params, _default_health(protocol), protocol)
        ip_type = p.one_of(p.opt_str(params, "IpAddressType"), "IpAddressType", ("ipv4", "ipv6")) or "ipv4"
        vpc = p.opt_str(params, "VpcId") or ""
        tags = _tags(params)

        def run(st: _State) -> m.TargetGroup:
            for tg in self._in_scope(st.tgs, scope):
                if tg.name == name:
                    if (tg.protocol, tg.port, tg.target_type, tg.health, tg.vpc_id) == (
                            protocol, port, target_type, health, vpc):
                        return tg  # AWS: creating the same target group again succeeds
                    raise e.DuplicateTargetGroupName(f"A target group with the same name '{name}' exists, "
                                                     "but with different settings")
            ident = self.new_id()
            tg = m.TargetGroup(
                arn=scope.arn(f"targetgroup/{name}/{ident}"), name=name, id=ident, target_type=target_type,
                protocol=protocol, port=port, vpc_id=vpc, health=health, created=self.clock(),
                protocol_version=version or "", ip_address_type=ip_type,
                attributes=_default_tg_attributes(protocol), tags=tags)
            st.put(m.TG, st.tgs, tg.arn, tg)
            st.put(m.TARGETS, st.targets, tg.arn, m.Targets(tg.arn))
            return tg
        return self._change(run)

    def describe_target_groups(self, scope: Scope, params: Params) -> Page:
        lb_arn = p.opt_str(params, "LoadBalancerArn")
        arns = p.str_list(params, "TargetGroupArns")
        names = p.str_list(params, "Names")
        if sum(x is not None and x != [] for x in (lb_arn, arns, names)) > 1:
            raise e.ValidationError("Only one of LoadBalancerArn, TargetGroupArns and Names can be specified")
        st = self._load()
        tgs = self._in_scope(st.tgs, scope)
        if lb_arn:
            self._lb(st, scope, lb_arn)
            tgs = [tg for tg in tgs if lb_arn in self.load_balancers_of(st, tg.arn)]
        elif arns:
            tgs = [self._tg(st, scope, a) for a in dict.fromkeys(arns)]
        elif names:
            by_name = {tg.name: tg for tg in tgs}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise e.TargetGroupNotFound(f"Target groups '[{', '.join(missing)}]' not found")
            tgs = [by_name[n] for n in dict.fromkeys(names)]
        return _page(tgs, params)

    def load_balancers_of(self, st: _State | None, tg_arn: str) -> tuple[str, ...]:
        """The load balancers whose listeners or rules forward to the target group."""
        st = st or self._load()
        lbs: list[str] = []
        for ln in st.listeners.values():
            rules = [r for r in st.rules.values() if r.listener_arn == ln.arn]
            if tg_arn in groups_in_use([ln], rules) and ln.load_balancer_arn not in lbs:
                lbs.append(ln.load_balancer_arn)
        return tuple(lbs)

    def modify_target_group(self, scope: Scope, params: Params) -> m.TargetGroup:
        arn = p.req_str(params, "TargetGroupArn")

        def run(st: _State) -> m.TargetGroup:
            tg = self._tg(st, scope, arn)
            tg = replace(tg, health=_health(params, tg.health, tg.protocol))
            st.put(m.TG, st.tgs, arn, tg)
            return tg
        return self._change(run)

    def delete_target_group(self, scope: Scope, params: Params) -> None:
        arn = p.req_str(params, "TargetGroupArn")

        def run(st: _State) -> None:
            if arn not in st.tgs or not arn.startswith(scope.prefix):
                if ":targetgroup/" not in arn or not arn.startswith(scope.prefix):
                    raise e.ValidationError(f"'{arn}' is not a valid target group ARN")
                return  # gone already: deleting succeeds
            if self.load_balancers_of(st, arn):
                raise e.ResourceInUse(f"Target group '{arn}' is currently in use by a listener or a rule")
            st.delete(m.TG, st.tgs, arn)
            st.delete(m.TARGETS, st.targets, arn)
        self._change(run)

    def describe_target_group_attributes(self, scope: Scope, params: Params) -> dict[str, str]:
        return dict(self._tg(self._load(), scope, p.req_str(params, "TargetGroupArn")).attributes)

    def modify_target_group_attributes(self, scope: Scope, params: Params) -> dict[str, str]:
        arn = p.req_str(params, "TargetGroupArn")
        changes = _attributes(params)

        def run(st: _State) -> dict[str, str]:
            tg = self._tg(st, scope, arn)
            attrs = dict(tg.attributes)
            for key, value in changes.items():
                _check_tg_attribute(tg, key, value)
                attrs[key] = value
            st.put(m.TG, st.tgs, arn, replace(tg, attributes=attrs))
            return attrs
        return self._change(run)

    # ==== targets ============================================================================

    def register_targets(self, scope: Scope, params: Params) -> None:
        arn = p.req_str(params, "TargetGroupArn")
        wanted = _target_list(params)

        def run(st: _State) -> None:
            tg = self._tg(st, scope, arn)
            now = self.clock()
            current = list(live_targets(st.targets.get(arn), now))
            for tid, port in wanted:
                port = port or tg.port
                address = self._address(tg, tid)
                found = [i for i, t in enumerate(current) if (t.id, t.port) == (tid, port)]
                if found:
                    t = current[found[0]]
                    if t.draining_until is not None:
                        current[found[0]] = replace(t, draining_until=None, address=address, registered_at=now)
                    continue
                current.append(m.Registration(id=tid, port=port, address=address, registered_at=now))
            if len(current) > _MAX_TARGETS:
                raise e.TooManyTargets(f"You've reached the limit on the number of targets per target group "
                                       f"({_MAX_TARGETS})")
            st.put(m.TARGETS, st.targets, arn, m.Targets(arn, tuple(current)))
        self._change(run)

    def _address(self, tg: m.TargetGroup, tid: str) -> str:
        if tg.target_type == "instance":
            if not _INSTANCE_RE.match(tid):
                raise e.InvalidTarget(f"The following targets are not valid instances: '{tid}' "
                                      f"(target group '{tg.name}' has target type instance)")
            address = self.resolve_instance(tid)
            if address is None:
                raise e.InvalidTarget(f"The following targets are not in a running state and cannot be "
                                      f"registered: '{tid}'")
            return address
        try:
            ip = ipaddress.ip_address(tid)
        except ValueError:
            raise e.InvalidTarget(f"The IP address '{tid}' is not a valid IPv4 address "
                                  f"(target group '{tg.name}' has target type ip)") from None
        if ip.version == 6 and tg.ip_address_type != "ipv6" or ip.version == 4 and tg.ip_address_type == "ipv6":
            raise e.InvalidTarget(f"The IP address '{tid}' does not match the target group's IP address type")
        if not any(ip in net for net in _TARGET_NETWORKS if net.version == ip.version):
            raise e.InvalidTarget(f"The IP address '{tid}' is not in an allowed range: ip targets must be in a "
                                  "private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, "
                                  "fc00::/7) or loopback, not publicly routable")
        return str(ip)

    def deregister_targets(self, scope: Scope, params: Params) -> None:
        arn = p.req_str(params, "TargetGroupArn")
        wanted = _target_list(params)

        def run(st: _State) -> None:
            tg = self._tg(st, scope, arn)
            now = self.clock()
            current = list(live_targets(st.targets.get(arn), now))
            delay = int(tg.attributes.get("deregistration_delay.timeout_seconds", "300"))
            unknown = []
            for tid, port in wanted:
                port = port or tg.port
                idx = [i for i, t in enumerate(current) if (t.id, t.port) == (tid, port)]
                if not idx:
                    unknown.append(f"Id={tid},Port={port}")
                    continue
                t = current[idx[0]]
                if t.draining_until is None:
                    current[idx[0]] = replace(t, draining_until=now + delay)
            if unknown:
                raise e.InvalidTarget(f"The following targets are not registered in target group "
                                      f"'{arn}': {', '.join(unknown)}")
            kept = tuple(t for t in current if t.draining_until is None or t.draining_until > now)
            st.put(m.TARGETS, st.targets, arn, m.Targets(arn, kept))
        self._change(run)

    def describe_target_health(self, scope: Scope, params: Params) -> list[m.TargetHealthInfo]:
        arn = p.req_str(params, "TargetGroupArn")
        asked = _target_list(params, required=False)
        st = self._load()
        tg = self._tg(st, scope, arn)
        now = self.clock()
        regs = list(live_targets(st.targets.get(arn), now))
        if asked:
            chosen = []
            for tid, port in asked:
                hits = [r for r in regs if r.id == tid and (port is None or r.port == port)]
                if not hits:
                    raise e.InvalidTarget(f"The following targets are not registered in target group "
                                          f"'{arn}': Id={tid}" + (f",Port={port}" if port else ""))
                chosen.extend(hits)
            regs = chosen
        in_use = bool(self.load_balancers_of(st, arn))
        seen = self.plane.health() if regs and in_use else {}
        name = backend_name(tg)
        out = []
        for r in regs:
            hc_port = str(r.port) if tg.health.port == "traffic-port" else tg.health.port
            state, reason, desc = _health_state(tg, r, in_use, seen.get((name, r.id, r.port)))
            out.append(m.TargetHealthInfo(r.id, r.port, state, reason, desc, hc_port, r.availability_zone))
        return out

    # ==== listeners ==========================================================================

    def create_listener(self, scope: Scope, params: Params) -> m.Listener:
        lb_arn = p.req_str(params, "LoadBalancerArn")
        port = p.opt_int(params, "Port", 1, 65535)
        if port is None:
            raise e.ValidationError("A listener port must be specified")
        raw_protocol = p.opt_str(params, "Protocol")
        certs = _certificates(params)
        policy = p.opt_str(params, "SslPolicy")
        tags = _tags(params)

        def run(st: _State) -> m.Listener:
            lb = self._lb(st, scope, lb_arn)
            protocol = _listener_protocol(lb, raw_protocol)
            chosen, ssl_policy = self._tls(protocol, certs, policy, None)
            for ln in st.listeners.values():
                if ln.load_balancer_arn == lb_arn and ln.port == port:
                    raise e.DuplicateListener(f"A listener already exists on port {port} of load balancer "
                                              f"'{lb.name}'")
            if sum(ln.load_balancer_arn == lb_arn for ln in st.listeners.values()) >= 50:
                raise e.TooManyListeners("You've reached the limit on the number of listeners per load balancer")
            self._check_port(st, port, None)
            actions = self._actions(st, scope, lb, params, "DefaultActions")
            ident = self.new_id()
            kind = "app" if lb.type == "application" else "net"
            ln = m.Listener(arn=scope.arn(f"listener/{kind}/{lb.name}/{lb.id}/{ident}"), id=ident,
                            load_balancer_arn=lb_arn, port=port, protocol=protocol, default_actions=actions,
                            tags=tags, certificates=chosen, ssl_policy=ssl_policy)
            st.put(m.LISTENER, st.listeners, ln.arn, ln)
            return ln
        return self._change(run)

    def _check_port(self, st: _State, port: int, own: m.Listener | None) -> None:
        for ln in st.listeners.values():
            if ln.port == port and (own is None or ln.arn != own.arn):
                lb = st.lbs.get(ln.load_balancer_arn)
                raise e.InvalidConfigurationRequest(
                    f"Port {port} is already used by a listener of load balancer "
                    f"'{lb.name if lb else ln.load_balancer_arn}': berth binds every listener on "
                    f"{self.bind}, so two load balancers cannot listen on the same port")
        if not self.plane.port_free(self.bind, port):
            raise e.InvalidConfigurationRequest(
                f"Port {port} is already in use on this host ({self.bind}:{port}) by another process")

    def _tls(self, protocol: str, certs: list[str] | None, policy: str | None,
             old: m.Listener | None) -> tuple[tuple[str, ...], str]:
        """(certificates, SSL policy) of a listener speaking `protocol`: HTTPS and TLS need exactly
        one certificate (given now, or kept from `old`); HTTP and TCP take none."""
        if protocol not in ("HTTPS", "TLS"):
            if certs:
                raise e.ValidationError(f"Certificates cannot be specified for {protocol} listeners: "
                                        "only for HTTPS and TLS ones")
            if policy:
                raise e.ValidationError(f"An SSL policy cannot be specified for {protocol} listeners: "
                                        "only for HTTPS and TLS ones")
            return (), ""
        if policy is not None and not policy.startswith("ELBSecurityPolicy-"):
            raise e.SSLPolicyNotFound(f"SSL policy '{policy}' not found")
        ssl_policy = policy or (old.ssl_policy if old is not None and old.ssl_policy else _SSL_POLICY)
        if certs is None:
            kept = old.certificates if old is not None else ()
            if not kept:
                raise e.ValidationError(f"A certificate must be specified for {protocol} listeners")
            return kept, ssl_policy
        if len(certs) != 1:
            raise e.ValidationError(f"{protocol} listeners take exactly one (default) certificate, not {len(certs)}")
        self.check_certificate(certs[0])
        return (certs[0],), ssl_policy

    def describe_listeners(self, scope: Scope, params: Params) -> Page:
        lb_arn = p.opt_str(params, "LoadBalancerArn")
        arns = p.str_list(params, "ListenerArns")
        if not lb_arn and not arns:
            raise e.ValidationError("You must specify either listener ARNs or a load balancer ARN")
        if lb_arn and arns:
            raise e.ValidationError("Listener ARNs and a load balancer ARN cannot be specified at the same time")
        st = self._load()
        if lb_arn:
            self._lb(st, scope, lb_arn)
            found = sorted((ln for ln in st.listeners.values() if ln.load_balancer_arn == lb_arn),
                           key=lambda ln: (ln.port, ln.arn))
        else:
            found = [self._listener(st, scope, a) for a in dict.fromkeys(arns or [])]
        return _page(found, params)

    def modify_listener(self, scope: Scope, params: Params) -> m.Listener:
        arn = p.req_str(params, "ListenerArn")
        port = p.opt_int(params, "Port", 1, 65535)
        raw_protocol = p.opt_str(params, "Protocol")
        certs = _certificates(params)
        policy = p.opt_str(params, "SslPolicy")

        def run(st: _State) -> m.Listener:
            ln = self._listener(st, scope, arn)
            lb = self._lb(st, scope, ln.load_balancer_arn)
            protocol = _listener_protocol(lb, raw_protocol) if raw_protocol else ln.protocol
            chosen, ssl_policy = self._tls(protocol, certs, policy, ln)
            if port is not None and port != ln.port:
                for other in st.listeners.values():
                    if other.load_balancer_arn == lb.arn and other.port == port:
                        raise e.DuplicateListener(f"A listener already exists on port {port} of load balancer "
                                                  f"'{lb.name}'")
                self._check_port(st, port, ln)
            actions = self._actions(st, scope, lb, params, "DefaultActions") if params.get("DefaultActions") \
                else ln.default_actions
            ln = replace(ln, port=port or ln.port, protocol=protocol, default_actions=actions, certificates=chosen,
                         ssl_policy=ssl_policy)
            st.put(m.LISTENER, st.listeners, arn, ln)
            return ln
        return self._change(run)

    def delete_listener(self, scope: Scope, params: Params) -> None:
        arn = p.req_str(params, "ListenerArn")

        def run(st: _State) -> None:
            self._drop_listener(st, self._listener(st, scope, arn))
        self._change(run)

    def _drop_listener(self, st: _State, ln: m.Listener) -> None:
        for rule in [r for r in st.rules.values() if r.listener_arn == ln.arn]:
            st.delete(m.RULE, st.rules, rule.arn)
        st.delete(m.LISTENER, st.listeners, ln.arn)

    # ==== rules ==============================================================================

    def create_rule(self, scope: Scope, params: Params) -> m.Rule:
        ln_arn = p.req_str(params, "ListenerArn")
        priority = p.opt_int(params, "Priority", 1, 50000)
        if priority is None:
            raise e.ValidationError("A rule priority must be specified")
        conditions = _conditions(params)
        tags = _tags(params)

        def run(st: _State) -> m.Rule:
            ln = self._listener(st, scope, ln_arn)
            lb = self._lb(st, scope, ln.load_balancer_arn)
            if lb.type != "application":
                raise e.InvalidConfigurationRequest("Rules can only be added to listeners of application "
                                                    "load balancers")
            own = [r for r in st.rules.values() if r.listener_arn == ln_arn]
            if any(r.priority == priority for r in own):
                raise e.PriorityInUse(f"Priority '{priority}' is currently in use")
            if len(own) >= 100:
                raise e.TooManyRules("You've reached the limit on the number of rules per load balancer")
            actions = self._actions(st, scope, lb, params, "Actions")
            ident = self.new_id()
            rule = m.Rule(arn=scope.arn(f"listener-rule/app/{lb.name}/{lb.id}/{ln.id}/{ident}"), id=ident,
                          listener_arn=ln_arn, priority=priority, conditions=conditions, actions=actions,
                          tags=tags)
            st.put(m.RULE, st.rules, rule.arn, rule)
            return rule
        return self._change(run)

    def describe_rules(self, scope: Scope, params: Params) -> Page:
        ln_arn = p.opt_str(params, "ListenerArn")
        arns = p.str_list(params, "RuleArns")
        if not ln_arn and not arns:
            raise e.ValidationError("You must specify either listener rule ARNs or a listener ARN")
        if ln_arn and arns:
            raise e.ValidationError("Listener rule ARNs and a listener ARN cannot be specified at the same time")
        st = self._load()
        found: list[m.Rule | m.DefaultRule]
        if ln_arn:
            ln = self._listener(st, scope, ln_arn)
            found = [*sorted((r for r in st.rules.values() if r.listener_arn == ln_arn), key=lambda r: r.priority),
                     m.DefaultRule(default_rule_arn(ln), ln.arn, ln.default_actions)]
        else:
            found = [self._rule(st, scope, a) for a in dict.fromkeys(arns or [])]
        return _page(found, params)

    def modify_rule(self, scope: Scope, params: Params) -> m.Rule | m.DefaultRule:
        arn = p.req_str(params, "RuleArn")
        conditions = _conditions(params) if params.get("Conditions") else None

        def run(st: _State) -> m.Rule | m.DefaultRule:
            rule = self._rule(st, scope, arn)
            ln = self._listener(st, scope, rule.listener_arn)
            lb = self._lb(st, scope, ln.load_balancer_arn)
            actions = self._actions(st, scope, lb, params, "Actions") if params.get("Actions") else rule.actions
            if isinstance(rule, m.DefaultRule):
                if conditions is not None:
                    raise e.OperationNotPermitted("Conditions cannot be specified for a default rule")
                st.put(m.LISTENER, st.listeners, ln.arn, replace(ln, default_actions=actions))
                return replace(rule, actions=actions)
            new = replace(rule, actions=actions, conditions=conditions if conditions is not None else rule.conditions)
            st.put(m.RULE, st.rules, arn, new)
            return new
        return self._change(run)

    def delete_rule(self, scope: Scope, params: Params) -> None:
        arn = p.req_str(params, "RuleArn")

        def run(st: _State) -> None:
            rule = self._rule(st, scope, arn)
            if isinstance(rule, m.DefaultRule):
                raise e.OperationNotPermitted("Default rule cannot be deleted")
            st.delete(m.RULE, st.rules, arn)
        self._change(run)

    def set_rule_priorities(self, scope: Scope, params: Params) -> list[m.Rule]:
        wanted = []
        for item in p.obj_list(params, "RulePriorities"):
            wanted.append((p.req_str(item, "RuleArn"), p.opt_int(item, "Priority", 1, 50000)))
        if not wanted:
            raise e.ValidationError("RulePriorities must not be empty")

        def run(st: _State) -> list[m.Rule]:
            changed: dict[str, m.Rule] = {}
            for arn, priority in wanted:
                rule = self._rule(st, scope, arn)
                if isinstance(rule, m.DefaultRule):
                    raise e.OperationNotPermitted("The priority of a default rule cannot be changed")
                if priority is None:
                    raise e.ValidationError(f"A priority must be specified for rule '{arn}'")
                changed[arn] = replace(rule, priority=priority)
            final = {**st.rules, **changed}
            seen: set[tuple[str, int]] = set()
            for rule in final.values():
                key = (rule.listener_arn, rule.priority)
                if key in seen:
                    raise e.PriorityInUse(f"Priority '{rule.priority}' is currently in use")
                seen.add(key)
            for arn, rule in changed.items():
                st.put(m.RULE, st.rules, arn, rule)
            return list(changed.values())
        return self._change(run)

    # ==== actions ============================================================================

    def _actions(self, st: _State, scope: Scope, lb: m.LoadBalancer, params: Params,
                 key: str) -> tuple[m.ActionSpec, ...]:
        raw = p.obj_list(params, key)
        if not raw:
            raise e.ValidationError(f"{key} must contain one action")
        if len(raw) > 1:
            raise e.TooManyActions("berth supports exactly one action (forward, fixed-response or redirect) "
                                   "per rule or listener")
        item = raw[0]
        kind = p.req_str(item, "Type")
        order = p.opt_int(item, "Order", 1, 50000) or 1
        if kind.startswith("authenticate-"):
            raise e.InvalidLoadBalancerAction(f"Action type '{kind}' is not supported by berth")
        if kind not in ("forward", "fixed-response", "redirect"):
            raise e.ValidationError(f"Action type '{kind}' must be one of forward, fixed-response, redirect")
        if kind != "forward" and lb.type != "application":
            raise e.InvalidLoadBalancerAction(f"Action type '{kind}' is only supported by application load balancers")
        if kind == "forward":
            return (self._forward(st, scope, lb, item, order),)
        if kind == "fixed-response":
            conf = p.obj(item, "FixedResponseConfig")
            if conf is None:
                raise e.ValidationError("A fixed-response action needs a FixedResponseConfig")
            status = p.req_str(conf, "StatusCode")
            if not _STATUS_RE.match(status):
                raise e.ValidationError(f"Status code '{status}' must be 2XX, 4XX or 5XX")
            content_type = p.one_of(p.opt_str(conf, "ContentType"), "ContentType", _CONTENT_TYPES) or ""
            body = p.opt_str(conf, "MessageBody")
            if body is not None and len(body) > 1024:
                raise e.ValidationError("MessageBody must be at most 1024 characters")
            return (m.ActionSpec(type=kind, order=order, status_code=status, content_type=content_type, body=body),)
        conf = p.obj(item, "RedirectConfig")
        if conf is None:
            raise e.ValidationError("A redirect action needs a RedirectConfig")
        status = p.one_of(p.req_str(conf, "StatusCode"), "StatusCode", ("HTTP_301", "HTTP_302")) or ""
        redirect = {"Protocol": p.opt_str(conf, "Protocol") or "#{protocol}", "Port": p.opt_str(conf, "Port") or "#{port}",
                    "Host": p.opt_str(conf, "Host") or "#{host}", "Path": p.opt_str(conf, "Path") or "/#{path}",
                    "Query": p.opt_str(conf, "Query") or "#{query}"}
        if redirect["Protocol"] not in ("HTTP", "HTTPS", "#{protocol}"):
            raise e.ValidationError("Redirect protocol must be HTTP, HTTPS or #{protocol}")
        port_text = redirect["Port"]
        if port_text != "#{port}" and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
            raise e.ValidationError(f"Redirect port '{port_text}' must be #{{port}} or between 1 and 65535")
        if not redirect["Path"].startswith("/"):
            raise e.ValidationError("Redirect path must start with '/'")
        if redirect["Query"].startswith("?"):
            raise e.ValidationError("Redirect query must not start with '?'")
        for key in ("Host", "Path", "Query"):
            if len(redirect[key]) > 128:
                raise e.ValidationError(f"Redirect {key.lower()} must be at most 128 characters")
        if redirect == {"Protocol": "#{protocol}", "Port": "#{port}", "Host": "#{host}", "Path": "/#{path}",
                        "Query": "#{query}"}:
            raise e.InvalidLoadBalancerAction("The redirect would redirect to itself: change at least one of "
                                              "Protocol, Port, Host, Path, Query")
        return (m.ActionSpec(type=kind, order=order, status_code=status, redirect=redirect),)

    def _forward(self, st: _State, scope: Scope, lb: m.LoadBalancer, item: Params, order: int) -> m.ActionSpec:
        single = p.opt_str(item, "TargetGroupArn")
        conf = p.obj(item, "ForwardConfig")
        groups: list[m.WeightedGroup] = []
        sticky, seconds = False, 0
        if conf is not None:
            for raw in p.obj_list(conf, "TargetGroups"):
                weight = p.opt_int(raw, "Weight", 0, 999)
                groups.append(m.WeightedGroup(p.req_str(raw, "TargetGroupArn"), 1 if weight is None else weight))
            stick = p.obj(conf, "TargetGroupStickinessConfig")
            if stick is not None:
                sticky = bool(p.opt_bool(stick, "Enabled"))
                seconds = p.opt_int(stick, "DurationSeconds", 1, 604800) or 0
                if sticky and not seconds:
                    raise e.ValidationError("A stickiness duration must be specified when stickiness is enabled")
        if single:
            if groups and (len(groups) != 1 or groups[0].target_group_arn != single):
                raise e.ValidationError("TargetGroupArn and ForwardConfig name different target groups")
            groups = groups or [m.WeightedGroup(single, 1)]
        if not groups:
            raise e.ValidationError("A forward action needs a TargetGroupArn or ForwardConfig.TargetGroups")
        if len({g.target_group_arn for g in groups}) != len(groups):
            raise e.ValidationError("A target group can be named only once in a forward action")
        limit = 5 if lb.type == "application" else 1
        if len(groups) > limit:
            raise e.ValidationError(f"A forward action of a {lb.type} load balancer takes at most {limit} "
                                    "target group(s)")
        for g in groups:
            tg = self._tg(st, scope, g.target_group_arn)
            want = "HTTP" if lb.type == "application" else "TCP"
            if tg.protocol != want:
                raise e.IncompatibleProtocols(
                    f"Target group '{tg.name}' uses protocol {tg.protocol}; a {lb.type} load balancer forwards "
                    f"to {want} target groups")
            other = [a for a in self.load_balancers_of(st, tg.arn) if a != lb.arn]
            if other:
                raise e.TargetGroupAssociationLimit(
                    f"The following target groups cannot be associated with more than one load balancer: "
                    f"'{tg.arn}'")
        return m.ActionSpec(type="forward", order=order, target_group_arn=groups[0].target_group_arn
                            if len(groups) == 1 else "", groups=tuple(groups), stickiness_enabled=sticky,
                            stickiness_seconds=seconds)

    # ==== tags and limits ====================================================================

    def add_tags(self, scope: Scope, params: Params) -> None:
        arns = p.str_list(params, "ResourceArns", 20) or []
        new = _tags(params, required=True)

        def run(st: _State) -> None:
            for arn in arns:
                kind, table, record = self._tagged(st, scope, arn)
                tags = {**record.tags, **new}
                if len(tags) > _MAX_TAGS:
                    raise e.TooManyTags(f"The quota for the number of tags per resource ({_MAX_TAGS}) is exceeded")
                st.put(kind, table, arn, replace(record, tags=tags))
        self._change(run)

    def remove_tags(self, scope: Scope, params: Params) -> None:
        arns = p.str_list(params, "ResourceArns", 20) or []
        keys = p.str_list(params, "TagKeys") or []

        def run(st: _State) -> None:
            for arn in arns:
                kind, table, record = self._tagged(st, scope, arn)
                st.put(kind, table, arn, replace(record, tags={k: v for k, v in record.tags.items() if k not in keys}))
        self._change(run)

    def describe_tags(self, scope: Scope, params: Params) -> list[tuple[str, dict[str, str]]]:
        arns = p.str_list(params, "ResourceArns", 20)
        if not arns:
            raise e.ValidationError("ResourceArns must not be empty")
        st = self._load()
        return [(arn, dict(self._tagged(st, scope, arn)[2].tags)) for arn in arns]

    def _tagged(self, st: _State, scope: Scope, arn: str) -> tuple[str, dict[str, Any], Any]:
        if ":loadbalancer/" in arn:
            return m.LB, st.lbs, self._lb(st, scope, arn)
        if ":targetgroup/" in arn:
            return m.TG, st.tgs, self._tg(st, scope, arn)
        if ":listener/" in arn:
            return m.LISTENER, st.listeners, self._listener(st, scope, arn)
        if ":listener-rule/" in arn:
            rule = self._rule(st, scope, arn)
            if isinstance(rule, m.DefaultRule):
                raise e.OperationNotPermitted("berth keeps no tags on a listener's default rule")
            return m.RULE, st.rules, rule
        raise e.ValidationError(f"'{arn}' is not a valid load balancer, target group, listener or rule ARN")

    def describe_account_limits(self, scope: Scope, params: Params) -> Page:
        return _page(sorted(LIMITS.items()), params)


# ==== helpers ================================================================================


def default_rule_arn(ln: m.Listener) -> str:
    """A listener's default rule: a stable ARN derived from the listener's."""
    head, _, rest = ln.arn.partition(":listener/")
    digest = hashlib.sha256(ln.arn.encode()).hexdigest()[:16]
    return f"{head}:listener-rule/{rest}/{digest}"


def _health_state(tg: m.TargetGroup, r: m.Registration, in_use: bool, seen: Any) -> tuple[str, str, str]:
    if r.draining_until is not None:
        return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
    if not in_use:
        return "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
    if not tg.health.enabled:
        return "unavailable", "Target.HealthCheckDisabled", "Health checks are disabled"
    if seen is None:
        return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
    state = seen.state
    if state == "healthy":
        return "healthy", "", ""
    if state == "initial":
        return "initial", seen.reason or "Elb.InitialHealthChecking", seen.description or "Initial health checks in progress"
    if state == "draining":
        return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
    if state == "unused":
        return "unused", seen.reason or "Target.NotInUse", seen.description or "Target is not in use"
    return "unhealthy", seen.reason or "Target.FailedHealthChecks", seen.description or "Health checks failed"


def _name(name: str, what: str) -> str:
    if not _NAME_RE.match(name):
        raise e.ValidationError(f"{what} name '{name}' must have 1-32 characters: letters, digits and hyphens, "
                                "not beginning or ending with a hyphen")
    return name


def _subnets(params: Params) -> tuple[str, ...]:
    subnets = list(p.str_list(params, "Subnets") or [])
    for mapping in p.obj_list(params, "SubnetMappings"):
        subnets.append(p.req_str(mapping, "SubnetId"))
    return tuple(dict.fromkeys(subnets))


def _tags(params: Params, required: bool = False) -> dict[str, str]:
    tags: dict[str, str] = {}
    items = p.obj_list(params, "Tags")
    if required and not items:
        raise e.ValidationError("Tags must not be empty")
    for t in items:
        key = p.req_str(t, "Key")
        if key in tags:
            raise e.DuplicateTagKeys(f"Tag key '{key}' is duplicated")
        if len(key) > 128 or key.startswith("aws:"):
            raise e.ValidationError(f"Tag key '{key}' is not valid")
        value = p.opt_str(t, "Value") or ""
        if len(value) > 256:
            raise e.ValidationError(f"The value of tag '{key}' must be at most 256 characters")
        tags[key] = value
    if len(tags) > _MAX_TAGS:
        raise e.TooManyTags(f"The quota for the number of tags per resource ({_MAX_TAGS}) is exceeded")
    return tags


def _attributes(params: Params) -> dict[str, str]:
    items = p.obj_list(params, "Attributes")
    if not items:
        raise e.ValidationError("Attributes must not be empty")
    out: dict[str, str] = {}
    for a in items:
        out[p.req_str(a, "Key")] = p.opt_str(a, "Value") or ""
    return out


def _protocol(value: str | None, key: str) -> str | None:
    """A target group's (or health check's) protocol: berth speaks HTTP or TCP to targets."""
    if value is None:
        return None
    if value in ("HTTPS", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC"):
        raise e.UnsupportedProtocol(f"Protocol '{value}' is not supported by berth for targets: use HTTP or TCP "
                                    "(HTTPS and TLS listeners terminate TLS and forward to HTTP or TCP targets)")
    if value not in ("HTTP", "TCP"):
        raise e.ValidationError(f"{key} '{value}' must be one of HTTP, TCP")
    return value


def _listener_protocol(lb: m.LoadBalancer, value: str | None) -> str:
    allowed = ("HTTP", "HTTPS") if lb.type == "application" else ("TCP", "TLS")
    protocol = value or allowed[0]
    if protocol in ("UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC"):
        raise e.UnsupportedProtocol(f"Protocol '{protocol}' is not supported by berth: use one of "
                                    f"{', '.join(allowed)}")
    if protocol not in ("HTTP", "HTTPS", "TCP", "TLS"):
        raise e.ValidationError(f"Protocol '{protocol}' must be one of HTTP, HTTPS, TCP, TLS")
    if protocol not in allowed:
        raise e.IncompatibleProtocols(f"Listener protocol '{protocol}' is not supported by {lb.type} load "
                                      f"balancers: use {' or '.join(allowed)}")
    return protocol


def _certificates(params: Params) -> list[str] | None:
    """The CertificateArn values of `Certificates` (None when the member is absent)."""
    if params.get("Certificates") is None:
        return None
    return [p.req_str(c, "CertificateArn") for c in p.obj_list(params, "Certificates")]


def check_certificate_file(arn: str) -> None:
    """berth's certificates are local files: CertificateArn `file:///absolute/path.pem`, one PEM
    holding the certificate (and its chain) and the private key. Raises CertificateNotFound for
    anything else (ACM and IAM ARNs included) and ValidationError for a file that is not that."""
    if arn.startswith(("arn:aws:acm:", "arn:aws:iam:")):
        raise e.CertificateNotFound(f"Certificate '{arn}' not found: berth has no ACM or IAM certificate store; "
                                    "give a local PEM file (certificate and private key) as "
                                    "file:///absolute/path.pem")
    path = arn.removeprefix("file://")
    if not arn.startswith("file:///") or ".." in path.split("/"):
        raise e.CertificateNotFound(f"Certificate '{arn}' not found: berth reads certificates from local files, "
                                    "named file:///absolute/path.pem")
    if not os.path.isfile(path):
        raise e.CertificateNotFound(f"Certificate '{arn}' not found: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(path)
    except (ssl.SSLError, OSError) as err:
        raise e.ValidationError(f"Certificate '{arn}' must be a PEM file with the certificate and its private "
                                f"key: {err}") from None


_SSL_POLICY = "ELBSecurityPolicy-2016-08"


def _default_health(protocol: str) -> m.HealthSettings:
    if protocol == "TCP":
        return m.HealthSettings(protocol="TCP", path="", interval=30, timeout=10, healthy_threshold=5,
                                unhealthy_threshold=2, matcher="")
    return m.HealthSettings()


def _health(params: Params, base: m.HealthSettings, protocol: str) -> m.HealthSettings:
    hc_protocol = _protocol(p.opt_str(params, "HealthCheckProtocol"), "HealthCheckProtocol") or base.protocol
    port = p.opt_str(params, "HealthCheckPort")
    if port is not None and port != "traffic-port" and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise e.ValidationError(f"Health check port '{port}' must be traffic-port or between 1 and 65535")
    path = p.opt_str(params, "HealthCheckPath")
    if path is not None and (not path.startswith("/") or len(path) > 1024):
        raise e.ValidationError("Health check path must begin with '/' and be at most 1024 characters")
    interval = p.opt_int(params, "HealthCheckIntervalSeconds", 5, 300)
    timeout = p.opt_int(params, "HealthCheckTimeoutSeconds", 2, 120)
    healthy = p.opt_int(params, "HealthyThresholdCount", 2, 10)
    unhealthy = p.opt_int(params, "UnhealthyThresholdCount", 2, 10)
    enabled = p.opt_bool(params, "HealthCheckEnabled")
    matcher_conf = p.obj(params, "Matcher")
    matcher = p.opt_str(matcher_conf, "HttpCode") if matcher_conf is not None else None
    if matcher_conf is not None and p.opt_str(matcher_conf, "GrpcCode"):
        raise e.ValidationError("gRPC matchers are not supported by berth")
    if matcher is not None:
        if hc_protocol != "HTTP":
            raise e.ValidationError("A matcher can only be specified for HTTP health checks")
        if not _MATCHER_RE.match(matcher) or any(not 200 <= int(c) <= 499 for c in re.findall(r"\d{3}", matcher)) \
                or any(int(lo) > int(hi) for lo, hi in re.findall(r"(\d{3})-(\d{3})", matcher)):
            raise e.ValidationError(f"Health check matcher HttpCode '{matcher}' must be codes between 200 and 499, "
                                    "as '200', '200,202' or '200-299'")
    if hc_protocol == "TCP" and path is not None:
        raise e.ValidationError("A health check path cannot be specified for TCP health checks")
    if hc_protocol == "HTTP" and protocol == "TCP" and base.protocol == "TCP":
        base = replace(base, path="/", matcher="200-399")
    if hc_protocol == "TCP" and base.protocol == "HTTP":
        base = replace(base, path="", matcher="")
    new = replace(base, protocol=hc_protocol, port=port or base.port, path=path if path is not None else base.path,
                  interval=interval or base.interval, timeout=timeout or base.timeout,
                  healthy_threshold=healthy or base.healthy_threshold,
                  unhealthy_threshold=unhealthy or base.unhealthy_threshold,
                  enabled=base.enabled if enabled is None else enabled,
                  matcher=matcher if matcher is not None else base.matcher)
    if new.timeout >= new.interval:
        raise e.ValidationError(f"Health check timeout '{new.timeout}' must be smaller than the interval "
                                f"'{new.interval}'")
    return new


def _default_tg_attributes(protocol: str) -> dict[str, str]:
    attrs = {"deregistration_delay.timeout_seconds": "300", "stickiness.enabled": "false",
             "load_balancing.cross_zone.enabled": "use_load_balancer_configuration"}
    if protocol == "HTTP":
        attrs.update({"stickiness.type": "lb_cookie", "stickiness.lb_cookie.duration_seconds": "86400",
                      "slow_start.duration_seconds": "0", "load_balancing.algorithm.type": "round_robin"})
    else:
        attrs.update({"stickiness.type": "source_ip", "proxy_protocol_v2.enabled": "false",
                      "preserve_client_ip.enabled": "true", "deregistration_delay.connection_termination.enabled":
                      "false"})
    return attrs


def _check_tg_attribute(tg: m.TargetGroup, key: str, value: str) -> None:
    def bad(why: str) -> e.InvalidConfigurationRequest:
        return e.InvalidConfigurationRequest(f"Target group attribute '{key}' {why}")

    def number(lo: int, hi: int) -> int:
        if not value.isdigit() or not lo <= int(value) <= hi:
            raise bad(f"must be an integer between {lo} and {hi}, not '{value}'")
        return int(value)

    if key not in _default_tg_attributes(tg.protocol):
        raise e.ValidationError(f"Target group attribute key '{key}' is not recognized")
    if key == "deregistration_delay.timeout_seconds":
        number(0, 3600)
    elif key == "slow_start.duration_seconds":
        if number(0, 900) and int(value) < 30:
            raise bad("must be 0 (off) or between 30 and 900")
    elif key == "stickiness.lb_cookie.duration_seconds":
        number(1, 604800)
    elif key == "load_balancing.algorithm.type":
        if value not in ("round_robin", "least_outstanding_requests"):
            raise bad("must be round_robin or least_outstanding_requests")
    elif key == "stickiness.type":
        if value != ("lb_cookie" if tg.protocol == "HTTP" else "source_ip"):
            raise bad(f"'{value}' is not supported for {tg.protocol} target groups")
    elif key.endswith(".enabled"):
        if value not in ("true", "false"):
            raise bad("must be true or false")
        if key == "proxy_protocol_v2.enabled" and value == "true":
            raise bad("'true' is not supported by berth")


def _target_list(params: Params, required: bool = True) -> list[tuple[str, int | None]]:
    items = p.obj_list(params, "Targets")
    if required and not items:
        raise e.ValidationError("Targets must not be empty")
    return [(p.req_str(t, "Id"), p.opt_int(t, "Port", 1, 65535)) for t in items]


def _conditions(params: Params) -> tuple[m.ConditionSpec, ...]:
    items = p.obj_list(params, "Conditions")
    if not items:
        raise e.ValidationError("A rule must have at least one condition")
    out: list[m.ConditionSpec] = []
    total = 0
    for c in items:
        fld = p.req_str(c, "Field")
        values = p.str_list(c, "Values")
        if fld in ("path-pattern", "host-header"):
            conf = p.obj(c, "PathPatternConfig" if fld == "path-pattern" else "HostHeaderConfig")
            conf_values = p.str_list(conf, "Values") if conf is not None else None
            if values and conf_values and values != conf_values:
                raise e.ValidationError(f"Values and the {fld} config of a condition differ")
            vals = tuple(conf_values or values or ())
            if any(len(v) > 128 for v in vals):
                raise e.ValidationError(f"A {fld} value can have at most 128 characters")
            spec = m.ConditionSpec(fld, vals)
        elif fld == "http-header":
            conf = p.obj(c, "HttpHeaderConfig") or {}
            name = p.req_str(conf, "HttpHeaderName")
            if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$", name):
                raise e.ValidationError(f"HTTP header name '{name}' is not valid")
            spec = m.ConditionSpec(fld, tuple(p.str_list(conf, "Values") or ()), header_name=name)
        elif fld == "http-request-method":
            conf = p.obj(c, "HttpRequestMethodConfig") or {}
            vals = tuple(p.str_list(conf, "Values") or ())
            if any(not _METHOD_RE.match(v) for v in vals):
                raise e.ValidationError("HTTP request methods are upper-case letters, '-' and '_'")
            spec = m.ConditionSpec(fld, vals)
        elif fld == "query-string":
            conf = p.obj(c, "QueryStringConfig") or {}
            pairs = []
            for kv in p.obj_list(conf, "Values"):
                pairs.append((p.opt_str(kv, "Key") or "", p.req_str(kv, "Value")))
            spec = m.ConditionSpec(fld, pairs=tuple(pairs))
        elif fld == "source-ip":
            conf = p.obj(c, "SourceIpConfig") or {}
            vals = tuple(p.str_list(conf, "Values") or ())
            for v in vals:
                try:
                    ipaddress.ip_network(v, strict=False)
                except ValueError:
                    raise e.ValidationError(f"Source IP '{v}' is not a valid CIDR block") from None
            spec = m.ConditionSpec(fld, vals)
        else:
            raise e.ValidationError(f"Condition field '{fld}' must be one of path-pattern, host-header, "
                                    "http-header, http-request-method, query-string, source-ip")
        count = len(spec.values) + len(spec.pairs)
        if count == 0:
            raise e.ValidationError(f"A {fld} condition needs at least one value")
        if fld in ("path-pattern", "host-header", "http-request-method", "source-ip") and \
                any(o.field == fld for o in out):
            raise e.ValidationError(f"A rule can have only one {fld} condition")
        total += count
        out.append(spec)
    if total > _MAX_RULE_VALUES:
        raise e.ValidationError(f"A rule can have at most {_MAX_RULE_VALUES} condition values in all")
    return tuple(out)


def _page(items: list[Any], params: Params) -> Page:
    size = p.opt_int(params, "PageSize", 1, 400) or 400
    marker = p.opt_str(params, "Marker")
    start = 0
    if marker:
        try:
            start = int(base64.urlsafe_b64decode(marker.encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise e.ValidationError(f"Marker '{marker}' is not valid") from None
        if start < 0:
            raise e.ValidationError(f"Marker '{marker}' is not valid")
    chunk = tuple(items[start:start + size])
    more = start + size < len(items)
    return Page(chunk, base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else None)
