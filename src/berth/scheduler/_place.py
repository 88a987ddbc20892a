"""`place`: feasibility filters, then strategies as successive tie-breakers, one task at a time.

The pipeline follows Nomad's stack: every instance runs through an ordered list of filters and
the first that refuses names the reason; the survivors are narrowed by each strategy in turn
(keep only the best-scoring ones) and the seeded rng breaks the final tie. After each placement
the chosen instance is replaced by a copy carrying the task, so the next task of the same
request sees it (binpack fills it further, spread and distinctInstance avoid it).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from berth.scheduler._model import (
    REASON_AGENT, REASON_ATTRIBUTE, REASON_CPU, REASON_DISTINCT_INSTANCE, REASON_INACTIVE, REASON_MEMORY,
    REASON_NO_INSTANCES, REASON_PORTS, REASON_PORTS_UDP, ClusterSnapshot, InstanceSnapshot, Placement,
    PlacementFailure, Plan, Strategy, TaskRequest,
)
from berth.scheduler._query import Expression, parse_expression
from berth.scheduler._validate import validate_constraints, validate_strategies

NO_INSTANCES_MESSAGE = "No Container Instances were found in your cluster."


def place(snapshot: ClusterSnapshot, request: TaskRequest, rng: random.Random) -> Plan:
    """Place `request.count` tasks on the snapshot's instances; deterministic for a given rng state.

    Returns the placements that fit. When a task does not fit anywhere, placing stops and
    `failures` holds one entry per instance with the first reason it refused that task (in
    snapshot order); an empty cluster gives one failure with arn "" and reason NO_INSTANCES.

    Raises InvalidArgument for constraints or strategies `validate_*` would refuse.
    """
    if request.count <= 0:
        return Plan((), ())
    if not snapshot.instances:
        return Plan((), (PlacementFailure("", REASON_NO_INSTANCES, NO_INSTANCES_MESSAGE),))
    rules = _Rules.of(request)
    instances = list(snapshot.instances)
    placements: list[Placement] = []
    for _ in range(request.count):
        verdicts = [_first_failure(instance, rules) for instance in instances]
        feasible = [i for i, verdict in enumerate(verdicts) if verdict is None]
        if not feasible:
            return Plan(tuple(placements), tuple(v for v in verdicts if v is not None))
        chosen = _choose(instances, feasible, request, rng)
        placements.append(Placement(instances[chosen].arn))
        instances[chosen] = _with_task(instances[chosen], request)
    return Plan(tuple(placements), ())


@dataclass(frozen=True)
class _Rules:
    """The request with its constraints compiled once, for the filters."""

    request: TaskRequest
    member_of: tuple[tuple[str, Expression], ...]  # (source text, compiled)
    distinct: bool

    @staticmethod
    def of(request: TaskRequest) -> _Rules:
        validate_constraints(request.constraints, allow_distinct=True)
        validate_strategies(request.strategies)
        member_of = tuple(
            (c.expression, parse_expression(c.expression))
            for c in request.constraints if c.type == "memberOf" and c.expression
        )
        distinct = any(c.type == "distinctInstance" for c in request.constraints)
        return _Rules(request, member_of, distinct)


# --- feasibility ---------------------------------------------------------------------------

_Refusal = tuple[str, str]  # (reason, detail)
_Filter = Callable[[InstanceSnapshot, _Rules], _Refusal | None]


def _active(instance: InstanceSnapshot, rules: _Rules) -> _Refusal | None:
    if instance.status != "ACTIVE":
        return REASON_INACTIVE, f"the container instance is {instance.status}"
    return None


def _agent(instance: InstanceSnapshot, rules: _Rules) -> _Refusal | None:
    if not instance.agent_connected:
        return REASON_AGENT, "the container agent is not connected"
    return None


def _attributes(instance: InstanceSnapshot, rules: _Rules) -> _Refusal | None:
    for name, value in rules.request.required_attributes:
        if name not in instance.attributes:
            return REASON_ATTRIBUTE, f"missing attribute {name}"
        if value is not None and instance.attributes[name] != value:
            return REASON_ATTRIBUTE, f"attribute {name} is {instance.attributes[name]!r}, not {value!r}"
    return None


def _member_of(instance: InstanceSnapshot, rules: _Rules) -> _Refusal | None:
    for text, expression in rules.member_of:
        if not expression.matches(instance):
            return REASON_ATTRIBUTE, f"does not match the memberOf expression {text!r}"
    return None


def _distinct_instance(instance: InstanceSnapshot, rules: _Rules) -> _Refusal | None:
    if rules.distinct and rules.request.group in instance.task_groups:
        return REASON_DISTINCT_INSTANCE, f"already runs a task of {rules.request.group}"
    return None


def _cpu(instance: InstanceSnapshot, rules: _Rules) -> _Refusal | None:
    if rules.request.cpu > instance.cpu_remaining:
        return REASON_CPU, f"needs {rules.request.cpu} CPU units, {instance.cpu_remaining} available"
    return None


def _memory(instance: InstanceSnapshot, rules: _Rules) -> _Refusal | None:
    if rules.request.memory > instance.memory_remaining:
        return REASON_MEMORY, f"needs {rules.request.memory} MiB of memory, {instance.memory_remaining} available"
    return None


def _ports(instance: InstanceSnapshot, rules: _Rules) -> _Refusal | None:
    # TCP before UDP, the order of ECS's remainingResources (PORTS, then PORTS_UDP).
    for protocol, reason in (("tcp", REASON_PORTS), ("udp", REASON_PORTS_UDP)):
        wanted = {port for port, proto in _normalized(rules.request.ports) if proto == protocol}
        taken = sorted(port for port in wanted if (port, protocol) in instance.ports_used)
        if taken:
            return reason, f"host {protocol} port {taken[0]} is already in use"
    return None


# The order matters: the first refusal is the one reported for the instance.
FILTERS: tuple[_Filter, ...] = (_active, _agent, _attributes, _member_of, _distinct_instance, _cpu, _memory, _ports)


def _first_failure(instance: InstanceSnapshot, rules: _Rules) -> PlacementFailure | None:
    for check in FILTERS:
        refusal = check(instance, rules)
        if refusal is not None:
            return PlacementFailure(instance.arn, *refusal)
    return None


def _normalized(ports: Sequence[tuple[int, str]]) -> frozenset[tuple[int, str]]:
    return frozenset((port, protocol.lower()) for port, protocol in ports)


def _with_task(instance: InstanceSnapshot, request: TaskRequest) -> InstanceSnapshot:
    return replace(
        instance,
        cpu_used=instance.cpu_used + request.cpu,
        memory_used=instance.memory_used + request.memory,
        ports_used=instance.ports_used | _normalized(request.ports),
        task_groups=(*instance.task_groups, request.group),
    )


# --- ranking -------------------------------------------------------------------------------

def _choose(instances: Sequence[InstanceSnapshot], feasible: list[int], request: TaskRequest,
            rng: random.Random) -> int:
    """Narrow the feasible indexes strategy by strategy; the rng settles what is still tied."""
    candidates = feasible
    for strategy in request.strategies:
        if len(candidates) == 1:
            break
        candidates = _narrow(strategy, instances, candidates, request, rng)
    return candidates[0] if len(candidates) == 1 else rng.choice(candidates)


def _narrow(strategy: Strategy, instances: Sequence[InstanceSnapshot], candidates: list[int],
            request: TaskRequest, rng: random.Random) -> list[int]:
    if strategy.type == "random":
        return [rng.choice(candidates)]
    score = _binpack_score(strategy, request) if strategy.type == "binpack" else _spread_score(
        strategy, instances, request)
    best = min(score(instances[i]) for i in candidates)
    return [i for i in candidates if score(instances[i]) == best]


def _binpack_score(strategy: Strategy, request: TaskRequest) -> Callable[[InstanceSnapshot], int]:
    """Least of the resource left after placing wins, so tasks fill one instance before the next."""
    if (strategy.field or "").lower() == "cpu":
        return lambda instance: instance.cpu_remaining - request.cpu
    return lambda instance: instance.memory_remaining - request.memory


def _spread_score(strategy: Strategy, instances: Sequence[InstanceSnapshot],
                  request: TaskRequest) -> Callable[[InstanceSnapshot], int]:
    """Fewest tasks of the request's group on the instance, or in its attribute-value bucket.

    Buckets count every instance of the snapshot (also full or draining ones: their tasks are
    still in that zone); an instance without the attribute is in the bucket "".
    """
    field = strategy.field or ""
    if not field.startswith("attribute:"):  # instanceId / host
        return lambda instance: instance.task_groups.count(request.group)
    name = field.removeprefix("attribute:")

    def bucket(instance: InstanceSnapshot) -> str:
        return instance.attributes.get(name) or ""

    per_bucket = Counter[str]()
    for instance in instances:
        per_bucket[bucket(instance)] += instance.task_groups.count(request.group)
    return lambda instance: per_bucket[bucket(instance)]
