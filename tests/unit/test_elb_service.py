"""ElbService on MemoryStore + MemoryPlane: operations, error paths, PlaneConfig, health mapping."""

from __future__ import annotations

from typing import Any

import pytest

from berth.elb import ElbService, PlaneConfig, Scope, build_config, errors as e, model as m
from berth.elb.testing import MemoryPlane
from berth.state.memory_store import MemoryStore

S = Scope("us-east-1", "123456789012")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def env() -> tuple[ElbService, MemoryPlane, Clock]:
    plane, clock = MemoryPlane(), Clock()
    known = {"i-0aaa": "127.0.0.1"}
    return ElbService(MemoryStore(), plane, clock=clock, resolve_instance=known.get), plane, clock


def _basic(svc: ElbService, target_type: str = "instance") -> tuple[m.LoadBalancer, m.TargetGroup, m.Listener]:
    lb = svc.create_load_balancer(S, {"Name": "web"})
    tg = svc.create_target_group(S, {"Name": "app", "Protocol": "HTTP", "Port": "8080", "TargetType": target_type})
    ln = svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": "18080", "DefaultActions": [
        {"Type": "forward", "TargetGroupArn": tg.arn}]})
    return lb, tg, ln


def test_create_is_idempotent_and_duplicates_differ(env: Any) -> None:
    svc, _, _ = env
    lb = svc.create_load_balancer(S, {"Name": "web"})
    assert svc.create_load_balancer(S, {"Name": "web"}) == lb
    assert lb.dns_name == f"web-{lb.id}.us-east-1.elb.localhost" and ":loadbalancer/app/web/" in lb.arn
    with pytest.raises(e.DuplicateLoadBalancerName):
        svc.create_load_balancer(S, {"Name": "web", "Scheme": "internal"})
    other = Scope("eu-west-1", "123456789012")
    assert svc.create_load_balancer(other, {"Name": "web"}).arn != lb.arn   # regions are separate
    assert [x.name for x in svc.describe_load_balancers(other, {}).items] == ["web"]


def test_plane_config_and_instance_resolution(env: Any) -> None:
    svc, plane, _ = env
    _, tg, ln = _basic(svc)
    svc.register_targets(S, {"TargetGroupArn": tg.arn, "Targets": [{"Id": "i-0aaa", "Port": 31000}]})
    cfg = plane.config
    assert cfg is not None and cfg.frontends[0].name == f"ln-{ln.id}" and cfg.frontends[0].bind == "127.0.0.1"
    assert cfg.frontends[0].default.forward == ((f"tg-{tg.id}", 1),)
    (backend,) = cfg.backends
    assert backend.targets[0].address == "127.0.0.1" and backend.targets[0].port == 31000
    assert backend.health.interval == 30 and backend.health.healthy_threshold == 5
    with pytest.raises(e.InvalidTarget):
        svc.register_targets(S, {"TargetGroupArn": tg.arn, "Targets": [{"Id": "i-0zzz"}]})   # not resolvable
    with pytest.raises(e.InvalidTarget):
        svc.register_targets(S, {"TargetGroupArn": tg.arn, "Targets": [{"Id": "10.0.0.1"}]})  # ip in instance TG
    assert plane.config == cfg
    assert svc.config() == cfg   # pure rebuild from the store gives the same thing


def test_health_states(env: Any) -> None:
    svc, plane, clock = env
    tg = svc.create_target_group(S, {"Name": "lonely", "Protocol": "HTTP", "Port": 80, "TargetType": "ip"})
    svc.register_targets(S, {"TargetGroupArn": tg.arn, "Targets": [{"Id": "10.0.0.1"}, {"Id": "10.0.0.2"}]})
    assert {h.state for h in svc.describe_target_health(S, {"TargetGroupArn": tg.arn})} == {"unused"}
    lb = svc.create_load_balancer(S, {"Name": "web"})
    svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 80, "DefaultActions": [
        {"Type": "forward", "TargetGroupArn": tg.arn}]})
    rows = svc.describe_target_health(S, {"TargetGroupArn": tg.arn})
    assert [(h.state, h.reason) for h in rows] == [("initial", "Elb.RegistrationInProgress")] * 2
    plane.set_health(f"tg-{tg.id}", "10.0.0.1", 80, "healthy")
    plane.set_health(f"tg-{tg.id}", "10.0.0.2", 80, "unhealthy", "Target.ResponseCodeMismatch")
    rows = svc.describe_target_health(S, {"TargetGroupArn": tg.arn})
    assert [(h.state, h.reason) for h in rows] == [("healthy", ""), ("unhealthy", "Target.ResponseCodeMismatch")]
    svc.modify_target_group_attributes(S, {"TargetGroupArn": tg.arn, "Attributes": [
        {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]})
    svc.deregister_targets(S, {"TargetGroupArn": tg.arn, "Targets": [{"Id": "10.0.0.2"}]})
    rows = svc.describe_target_health(S, {"TargetGroupArn": tg.arn, "Targets": [{"Id": "10.0.0.2"}]})
    assert (rows[0].state, rows[0].reason) == ("draining", "Target.DeregistrationInProgress")
    assert [t.draining for t in plane.config.backends[0].targets] == [False, True]
    clock.now += 31
    svc.tick()
    assert [t.id for t in plane.config.backends[0].targets] == ["10.0.0.1"]
    with pytest.raises(e.InvalidTarget):
        svc.describe_target_health(S, {"TargetGroupArn": tg.arn, "Targets": [{"Id": "10.0.0.2"}]})
    svc.modify_target_group(S, {"TargetGroupArn": tg.arn, "HealthCheckEnabled": "false"})
    assert svc.describe_target_health(S, {"TargetGroupArn": tg.arn})[0].state == "unavailable"


def test_rollback_when_plane_refuses(env: Any) -> None:
    svc, plane, _ = env
    lb, tg, _ = _basic(svc)
    before = plane.config
    plane.fail()
    with pytest.raises(Exception, match="refused"):
        svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 9999, "DefaultActions": [
            {"Type": "forward", "TargetGroupArn": tg.arn}]})
    assert plane.config == before
    assert [ln.port for ln in svc.describe_listeners(S, {"LoadBalancerArn": lb.arn}).items] == [18080]


def test_listener_and_rule_errors(env: Any) -> None:
    svc, plane, _ = env
    lb, tg, ln = _basic(svc)
    fwd = [{"Type": "forward", "TargetGroupArn": tg.arn}]
    other = svc.create_load_balancer(S, {"Name": "other"})
    with pytest.raises(e.InvalidConfigurationRequest, match="already used"):
        svc.create_listener(S, {"LoadBalancerArn": other.arn, "Port": 18080, "DefaultActions": fwd})
    with pytest.raises(e.TargetGroupAssociationLimit):
        svc.create_listener(S, {"LoadBalancerArn": other.arn, "Port": 18090, "DefaultActions": fwd})
    with pytest.raises(e.ValidationError, match="A certificate must be specified for HTTPS listeners"):
        svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 443, "Protocol": "HTTPS", "DefaultActions": fwd})
    with pytest.raises(e.UnsupportedProtocol):
        svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 443, "Protocol": "UDP", "DefaultActions": fwd})
    with pytest.raises(e.InvalidLoadBalancerAction):
        svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 81, "DefaultActions": [
            {"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301"}}]})
    cond = [{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}},
            {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "1"}]}},
            {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET"]}}]
    r1 = svc.create_rule(S, {"ListenerArn": ln.arn, "Priority": 1, "Conditions": cond, "Actions": fwd})
    r2 = svc.create_rule(S, {"ListenerArn": ln.arn, "Priority": 2, "Conditions": cond[:1], "Actions": fwd})
    assert plane.config.frontends[0].rules[0].conditions[1].query_pairs == (("v", "1"),)
    with pytest.raises(e.PriorityInUse):
        svc.set_rule_priorities(S, {"RulePriorities": [{"RuleArn": r1.arn, "Priority": 2}]})
    svc.set_rule_priorities(S, {"RulePriorities": [{"RuleArn": r1.arn, "Priority": 2},
                                                   {"RuleArn": r2.arn, "Priority": 1}]})
    assert [r.priority for r in plane.config.frontends[0].rules] == [1, 2]
    with pytest.raises(e.ValidationError):
        svc.create_rule(S, {"ListenerArn": ln.arn, "Priority": 3, "Conditions": [
            {"Field": "source-ip", "SourceIpConfig": {"Values": ["nope"]}}], "Actions": fwd})
    with pytest.raises(e.ValidationError):
        svc.create_rule(S, {"ListenerArn": ln.arn, "Priority": 50001, "Conditions": cond, "Actions": fwd})
    default = svc.describe_rules(S, {"ListenerArn": ln.arn}).items[-1]
    assert isinstance(default, m.DefaultRule)
    with pytest.raises(e.OperationNotPermitted):
        svc.delete_rule(S, {"RuleArn": default.arn})
    svc.modify_rule(S, {"RuleArn": default.arn, "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {
        "StatusCode": "404"}}]})
    assert plane.config.frontends[0].default.type == "fixed-response"
    net = svc.create_load_balancer(S, {"Name": "net", "Type": "network"})
    tcp = svc.create_target_group(S, {"Name": "tcp", "Protocol": "TCP", "Port": 80})
    nl = svc.create_listener(S, {"LoadBalancerArn": net.arn, "Port": 19000, "DefaultActions": [
        {"Type": "forward", "TargetGroupArn": tcp.arn}]})
    assert nl.protocol == "TCP"
    with pytest.raises(e.InvalidConfigurationRequest):
        svc.create_rule(S, {"ListenerArn": nl.arn, "Priority": 1, "Conditions": cond[:1], "Actions": fwd})


def test_delete_load_balancer_cascades_and_protection(env: Any) -> None:
    svc, plane, _ = env
    lb, tg, ln = _basic(svc)
    svc.create_rule(S, {"ListenerArn": ln.arn, "Priority": 1, "Conditions": [
        {"Field": "path-pattern", "Values": ["/a"]}], "Actions": [{"Type": "forward", "TargetGroupArn": tg.arn}]})
    svc.modify_load_balancer_attributes(S, {"LoadBalancerArn": lb.arn, "Attributes": [
        {"Key": "deletion_protection.enabled", "Value": "true"}]})
    with pytest.raises(e.OperationNotPermitted):
        svc.delete_load_balancer(S, {"LoadBalancerArn": lb.arn})
    with pytest.raises(e.InvalidConfigurationRequest):
        svc.modify_load_balancer_attributes(S, {"LoadBalancerArn": lb.arn, "Attributes": [
            {"Key": "nope", "Value": "1"}]})
    svc.modify_load_balancer_attributes(S, {"LoadBalancerArn": lb.arn, "Attributes": [
        {"Key": "deletion_protection.enabled", "Value": "false"}]})
    svc.delete_load_balancer(S, {"LoadBalancerArn": lb.arn})
    svc.delete_load_balancer(S, {"LoadBalancerArn": lb.arn})   # gone already: succeeds
    assert plane.config == PlaneConfig()
    assert svc.store.list(m.RULE) == [] and svc.store.list(m.LISTENER) == []
    svc.delete_target_group(S, {"TargetGroupArn": tg.arn})


@pytest.mark.parametrize(("key", "value"), [
    ("deregistration_delay.timeout_seconds", "3601"), ("slow_start.duration_seconds", "10"),
    ("load_balancing.algorithm.type", "random"), ("stickiness.lb_cookie.duration_seconds", "0"),
    ("stickiness.enabled", "yes"),
])
def test_target_group_attribute_ranges(env: Any, key: str, value: str) -> None:
    svc, _, _ = env
    tg = svc.create_target_group(S, {"Name": "app", "Protocol": "HTTP", "Port": 80})
    with pytest.raises(e.InvalidConfigurationRequest):
        svc.modify_target_group_attributes(S, {"TargetGroupArn": tg.arn, "Attributes": [{"Key": key, "Value": value}]})


def test_build_config_ignores_orphans() -> None:
    hs = m.HealthSettings()
    tg = m.TargetGroup("tgarn", "t", "1", "ip", "HTTP", 80, "", hs, 0.0,
                       attributes={"stickiness.enabled": "true", "stickiness.type": "lb_cookie",
                                   "stickiness.lb_cookie.duration_seconds": "60"})
    ln = m.Listener("lnarn", "2", "gone-lb", 80, "HTTP", (m.ActionSpec("forward", groups=(m.WeightedGroup("tgarn"),)),))
    assert build_config({}, {"lnarn": ln}, {}, {"tgarn": tg}, {}, bind="127.0.0.1", now=0) == PlaneConfig()
    lb = m.LoadBalancer("gone-lb", "w", "3", "application", "internet-facing", "d", 0.0)
    targets = m.Targets("tgarn", (m.Registration("10.0.0.1", 80, "10.0.0.1", 0.0, draining_until=5.0),))
    cfg = build_config({"gone-lb": lb}, {"lnarn": ln}, {}, {"tgarn": tg}, {"tgarn": targets}, bind="0.0.0.0", now=1)
    assert cfg.backends[0].stickiness_seconds == 60 and cfg.backends[0].targets[0].draining
    later = build_config({"gone-lb": lb}, {"lnarn": ln}, {}, {"tgarn": tg}, {"tgarn": targets}, bind="0.0.0.0", now=9)
    assert later.backends[0].targets == ()


# --- HTTPS / TLS listeners: certificates are local PEM files (file:///path.pem) ---------------------

def _pem(tmp_path: Any, key: bool = True) -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(private, hashes.SHA256()))
    path = tmp_path / ("both.pem" if key else "cert.pem")
    text = cert.public_bytes(serialization.Encoding.PEM)
    if key:
        text += private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    path.write_bytes(text)
    return f"file://{path}"


def test_https_and_tls_listeners_take_one_local_certificate(env: Any, tmp_path: Any) -> None:
    svc, plane, _ = env
    lb, tg, ln = _basic(svc)
    fwd = [{"Type": "forward", "TargetGroupArn": tg.arn}]
    good = _pem(tmp_path)
    https = svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 8443, "Protocol": "HTTPS",
                                    "Certificates": [{"CertificateArn": good}], "DefaultActions": fwd})
    assert https.certificates == (good,) and https.ssl_policy == "ELBSecurityPolicy-2016-08"
    front = next(f for f in plane.config.frontends if f.port == 8443)
    assert (front.protocol, front.certificate) == ("HTTPS", good.removeprefix("file://"))
    before = plane.config
    bad: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (e.CertificateNotFound, "no ACM or IAM certificate store",
         {"Certificates": [{"CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}]}),
        (e.CertificateNotFound, "no such file", {"Certificates": [{"CertificateArn": "file:///nope/x.pem"}]}),
        (e.CertificateNotFound, "file:///absolute/path.pem", {"Certificates": [{"CertificateArn": "x.pem"}]}),
        (e.ValidationError, "private key", {"Certificates": [{"CertificateArn": _pem(tmp_path, key=False)}]}),
        (e.ValidationError, "exactly one", {"Certificates": [{"CertificateArn": good}, {"CertificateArn": good}]}),
        (e.SSLPolicyNotFound, "'Modern'", {"Certificates": [{"CertificateArn": good}], "SslPolicy": "Modern"}),
    ]
    for kind, words, extra in bad:
        with pytest.raises(kind, match=words):
            svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 8444, "Protocol": "HTTPS",
                                    "DefaultActions": fwd, **extra})
    with pytest.raises(e.ValidationError, match="cannot be specified for HTTP listeners"):
        svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 8444, "Protocol": "HTTP", "DefaultActions": fwd,
                                "Certificates": [{"CertificateArn": good}]})
    with pytest.raises(e.IncompatibleProtocols):
        svc.create_listener(S, {"LoadBalancerArn": lb.arn, "Port": 8444, "Protocol": "TLS", "DefaultActions": fwd,
                                "Certificates": [{"CertificateArn": good}]})
    assert plane.config == before
    # HTTP → HTTPS keeps nothing it had not; HTTPS → HTTP drops the certificate
    moved = svc.modify_listener(S, {"ListenerArn": ln.arn, "Protocol": "HTTPS", "Certificates": [
        {"CertificateArn": good}]})
    assert moved.certificates == (good,)
    assert svc.modify_listener(S, {"ListenerArn": ln.arn, "Port": 18081}).certificates == (good,)
    plain = svc.modify_listener(S, {"ListenerArn": ln.arn, "Protocol": "HTTP"})
    assert (plain.certificates, plain.ssl_policy) == ((), "")
    # a network load balancer: TLS to a TCP target group
    nlb = svc.create_load_balancer(S, {"Name": "net", "Type": "network"})
    tcp = svc.create_target_group(S, {"Name": "tcp", "Protocol": "TCP", "Port": 80})
    tls = svc.create_listener(S, {"LoadBalancerArn": nlb.arn, "Port": 9443, "Protocol": "TLS", "Certificates": [
        {"CertificateArn": good}], "DefaultActions": [{"Type": "forward", "TargetGroupArn": tcp.arn}]})
    assert next(f for f in plane.config.frontends if f.port == 9443).protocol == "TLS" and tls.certificates
