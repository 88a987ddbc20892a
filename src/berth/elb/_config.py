"""Records → PlaneConfig: the one pure function between the ELB records and the data plane."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from berth.elb import _model as m
from berth.elb._plane import (
    Action, Backend, Condition, Frontend, HealthCheck, PlaneConfig, Rule, Target,
)


def certificate_path(arn: str) -> str:
    """A listener certificate's file: berth's CertificateArn is `file:///absolute/path.pem`."""
    return arn.removeprefix("file://")


def backend_name(tg: m.TargetGroup) -> str:
    return f"tg-{tg.id}"


def frontend_name(listener: m.Listener) -> str:
    return f"ln-{listener.id}"


def live_targets(targets: m.Targets | None, now: float) -> tuple[m.Registration, ...]:
    """Registrations still present at `now` (a drained one is gone once its delay passed)."""
    if targets is None:
        return ()
    return tuple(t for t in targets.targets if t.draining_until is None or t.draining_until > now)


def groups_in_use(listeners: Iterable[m.Listener], rules: Iterable[m.Rule]) -> set[str]:
    used: set[str] = set()
    for listener in listeners:
        for action in listener.default_actions:
            used.update(action.group_arns())
    for rule in rules:
        for action in rule.actions:
            used.update(action.group_arns())
    return used


def build_config(lbs: Mapping[str, m.LoadBalancer], listeners: Mapping[str, m.Listener],
                 rules: Mapping[str, m.Rule], tgs: Mapping[str, m.TargetGroup],
                 targets: Mapping[str, m.Targets], *, bind: str, now: float) -> PlaneConfig:
    """What the proxy must serve for these records at time `now`. Listeners of missing load
    balancers and rules of missing listeners are ignored; only target groups some listener or
    rule forwards to become backends."""
    serving = {arn: ln for arn, ln in listeners.items() if ln.load_balancer_arn in lbs}
    live_rules = [r for r in rules.values() if r.listener_arn in serving]
    used = groups_in_use(serving.values(), live_rules)
    names = {arn: backend_name(tg) for arn, tg in tgs.items()}
    backends = [_backend(tgs[arn], targets.get(arn), now) for arn in used if arn in tgs]
    frontends = []
    for listener in serving.values():
        own = sorted((r for r in live_rules if r.listener_arn == listener.arn), key=lambda r: r.priority)
        frontends.append(Frontend(
            name=frontend_name(listener), bind=bind, port=listener.port, protocol=listener.protocol,
            rules=tuple(Rule(r.priority, tuple(_condition(c) for c in r.conditions), _action(r.actions, names))
                        for r in own),
            default=_action(listener.default_actions, names),
            certificate=certificate_path(listener.certificates[0]) if listener.certificates else ""))
    return PlaneConfig(frontends=tuple(sorted(frontends, key=lambda f: (f.port, f.name))),
                       backends=tuple(sorted(backends, key=lambda b: b.name)))


def _backend(tg: m.TargetGroup, targets: m.Targets | None, now: float) -> Backend:
    attrs = tg.attributes
    sticky = attrs.get("stickiness.enabled") == "true" and attrs.get("stickiness.type", "lb_cookie") == "lb_cookie"
    h = tg.health
    return Backend(
        name=backend_name(tg), protocol=tg.protocol,
        targets=tuple(Target(id=t.id, address=t.address, port=t.port, draining=t.draining_until is not None)
                      for t in live_targets(targets, now)),
        health=HealthCheck(protocol=h.protocol, port=h.port, path=h.path, interval=h.interval, timeout=h.timeout,
                           healthy_threshold=h.healthy_threshold, unhealthy_threshold=h.unhealthy_threshold,
                           matcher=h.matcher, enabled=h.enabled),
        algorithm=attrs.get("load_balancing.algorithm.type", "round_robin"),
        slow_start=int(attrs.get("slow_start.duration_seconds", "0")),
        stickiness_seconds=int(attrs.get("stickiness.lb_cookie.duration_seconds", "86400")) if sticky else 0)


def _condition(c: m.ConditionSpec) -> Condition:
    return Condition(field=c.field, values=c.values, header_name=c.header_name, query_pairs=c.pairs)


def _action(actions: tuple[m.ActionSpec, ...], names: Mapping[str, str]) -> Action:
    a = sorted(actions, key=lambda x: x.order)[-1]   # the terminal action
    if a.type == "forward":
        return Action(type="forward",
                      forward=tuple((names[g.target_group_arn], g.weight) for g in a.groups if g.target_group_arn in names),
                      stickiness_seconds=a.stickiness_seconds if a.stickiness_enabled else 0)
    if a.type == "fixed-response":
        return Action(type="fixed-response", status_code=a.status_code, content_type=a.content_type, body=a.body or "")
    return Action(type="redirect", status_code=a.status_code, redirect=dict(a.redirect))
