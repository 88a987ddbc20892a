"""ELBv2: load balancers, listeners, rules, target groups and target health (aws-apis.md §3).

Public surface: `ElbService(store, plane, clock=time.time, resolve_instance=..., bind=...)` (the
ELBv2 operations over the control-plane store; every serving change goes to the data plane as one
`PlaneConfig`, and a refused apply writes nothing), `Scope` (region + account of a request),
`Page` (one page of a Describe call), `build_config` (records → PlaneConfig, pure), the records in
`berth.elb.model`, the data-plane interface (`DataPlane`, `PlaneConfig`, `TargetHealth`, ...) and
the error kinds (each with ELBv2's wire code as `aws_code`). `berth.elb.testing.MemoryPlane` is the
in-memory data plane for tests.
"""

from berth.elb import _errors as errors
from berth.elb import _model as model
from berth.elb._config import backend_name, build_config, frontend_name
from berth.elb._plane import (
    Action, Backend, Condition, DataPlane, Frontend, HealthCheck, PlaneConfig, Rule, Target, TargetHealth,
)
from berth.elb._service import LB_ATTRIBUTES, LIMITS, ElbService, Page, Scope, default_rule_arn

__all__ = [
    "LB_ATTRIBUTES", "LIMITS", "Action", "Backend", "Condition", "DataPlane", "ElbService", "Frontend",
    "HealthCheck", "Page", "PlaneConfig", "Rule", "Scope", "Target", "TargetHealth", "backend_name",
    "build_config", "default_rule_arn", "errors", "frontend_name", "model",
]
