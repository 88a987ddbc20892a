"""The ECS placement engine: a pure function from a frozen cluster snapshot and a task request
to a placement plan.

    plan = place(ClusterSnapshot(instances), TaskRequest(cpu=256, memory=512, ports=((80, "tcp"),),
                 group="service:web", strategies=(Strategy("spread", "instanceId"),), count=3),
                 random.Random(seed))

`place` runs every instance through ordered feasibility filters (status ACTIVE, agent connected,
required attributes, memberOf expressions, distinctInstance, CPU, memory, fixed host ports) and
records the first reason one refuses (the `REASON_*` constants); the strategies then narrow the
feasible instances in order (binpack cpu|memory, spread instanceId|host|attribute:<name>, random)
and the rng breaks the last tie. Tasks of one request are placed one at a time, each seeing the
ones before it. The scheduler reads no store and writes nothing: the caller applies the `Plan`.

`validate_constraints` / `validate_strategies` let the API refuse bad input up front, and
`parse_expression` compiles the cluster query language (also usable for ListContainerInstances
filters: `parse_expression(text).matches(instance)`). Errors are `berth.errors.InvalidArgument`;
syntax errors are its subclass `ExpressionError`, which carries the `position`.
"""

from berth.scheduler._model import (
    REASON_AGENT, REASON_ATTRIBUTE, REASON_CPU, REASON_DISTINCT_INSTANCE, REASON_INACTIVE, REASON_MEMORY,
    REASON_NO_INSTANCES, REASON_PORTS, REASON_PORTS_UDP, RESERVED_TCP_PORTS, ClusterSnapshot, Constraint,
    InstanceSnapshot, Placement, PlacementFailure, Plan, Strategy, TaskRequest,
)
from berth.scheduler._place import NO_INSTANCES_MESSAGE, place
from berth.scheduler._query import And, Comparison, Expression, ExpressionError, Not, Or, parse_expression
from berth.scheduler._validate import (
    MAX_CONSTRAINTS, MAX_EXPRESSION_LENGTH, MAX_STRATEGIES, validate_constraints, validate_strategies,
)

__all__ = [
    "MAX_CONSTRAINTS", "MAX_EXPRESSION_LENGTH", "MAX_STRATEGIES", "NO_INSTANCES_MESSAGE", "REASON_AGENT",
    "REASON_ATTRIBUTE", "REASON_CPU", "REASON_DISTINCT_INSTANCE", "REASON_INACTIVE", "REASON_MEMORY",
    "REASON_NO_INSTANCES", "REASON_PORTS", "REASON_PORTS_UDP", "RESERVED_TCP_PORTS", "And", "ClusterSnapshot",
    "Comparison", "Constraint", "Expression", "ExpressionError", "InstanceSnapshot", "Not", "Or", "Placement",
    "PlacementFailure", "Plan", "Strategy", "TaskRequest", "parse_expression", "place", "validate_constraints",
    "validate_strategies",
]
