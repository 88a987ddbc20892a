"""ECS service tasks as ELBv2 targets: the adapter the daemon hands the service controller.

`ElbTargets(elb)` implements `berth.controllers.targets.TargetRegistry` (structurally: this
package imports nothing of the controllers) over `ElbService`'s operations, as ECS itself calls
RegisterTargets, DeregisterTargets and DescribeTargetHealth on a service's target groups. The
scope (region, account) of each call is the target group ARN's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from berth.elb import _errors as e
from berth.elb._service import ElbService, Scope


def scope_of(target_group_arn: str) -> Scope:
    """`arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>` → its Scope."""
    parts = target_group_arn.split(":", 5)
    if len(parts) < 6 or parts[2] != "elasticloadbalancing" or not parts[5].startswith("targetgroup/"):
        raise e.ValidationError(f"'{target_group_arn}' is not a valid target group ARN")
    return Scope(parts[3], parts[4])


class ElbTargets:
    def __init__(self, elb: ElbService) -> None:
        self.elb = elb

    def register(self, target_group_arn: str, targets: Sequence[tuple[str, int]]) -> None:
        if not targets:
            return
        self.elb.register_targets(scope_of(target_group_arn), {
            "TargetGroupArn": target_group_arn, "Targets": [{"Id": tid, "Port": port} for tid, port in targets]})

    def deregister(self, target_group_arn: str, targets: Sequence[tuple[str, int]]) -> int:
        live = {key for key, (state, _) in self.health(target_group_arn).items() if state != "draining"}
        chosen = [t for t in dict.fromkeys(targets) if t in live]
        if not chosen:
            return 0
        try:
            self.elb.deregister_targets(scope_of(target_group_arn), {
                "TargetGroupArn": target_group_arn, "Targets": [{"Id": tid, "Port": port} for tid, port in chosen]})
        except (e.TargetGroupNotFound, e.InvalidTarget):
            return 0   # gone meanwhile: nothing left to drain
        return len(chosen)

    def health(self, target_group_arn: str) -> Mapping[tuple[str, int], tuple[str, str]]:
        try:
            rows = self.elb.describe_target_health(scope_of(target_group_arn), {"TargetGroupArn": target_group_arn})
        except (e.TargetGroupNotFound, e.ValidationError):
            return {}
        return {(r.id, r.port): (r.state, r.reason) for r in rows}

    def deregistration_delay(self, target_group_arn: str) -> float:
        try:
            attrs = self.elb.describe_target_group_attributes(scope_of(target_group_arn),
                                                              {"TargetGroupArn": target_group_arn})
        except (e.TargetGroupNotFound, e.ValidationError):
            return 0.0
        try:
            return float(attrs.get("deregistration_delay.timeout_seconds", "300"))
        except ValueError:
            return 300.0
