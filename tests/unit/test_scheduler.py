"""The placement engine: each filter and its reason, their order, the strategies, and validation."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from berth.errors import InvalidArgument
from berth.scheduler import (
    NO_INSTANCES_MESSAGE, REASON_AGENT, REASON_ATTRIBUTE, REASON_CPU, REASON_DISTINCT_INSTANCE, REASON_INACTIVE,
    REASON_MEMORY, REASON_NO_INSTANCES, REASON_PORTS, REASON_PORTS_UDP, RESERVED_TCP_PORTS, ClusterSnapshot,
    Constraint, ExpressionError, InstanceSnapshot, Placement, PlacementFailure, Plan, Strategy, TaskRequest, place,
    validate_constraints, validate_strategies,
)


def instance(name: str, **changes: object) -> InstanceSnapshot:
    base = InstanceSnapshot(
        arn=f"arn:aws:ecs:local:000000000000:container-instance/default/{name}",
        instance_id=f"i-{name}", status="ACTIVE", agent_connected=True, cpu=2048, memory=4096,
        cpu_used=0, memory_used=0, ports_used=RESERVED_TCP_PORTS,
        attributes={"ecs.availability-zone": "local-1a", "ecs.os-type": "linux"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def request(**changes: object) -> TaskRequest:
    return replace(TaskRequest(cpu=256, memory=512, ports=(), group="family:app"), **changes)  # type: ignore[arg-type]


def run(instances: list[InstanceSnapshot], req: TaskRequest, seed: int = 7) -> Plan:
    return place(ClusterSnapshot(tuple(instances)), req, random.Random(seed))


def names(plan: Plan) -> list[str]:
    return [p.instance_arn.rsplit("/", 1)[1] for p in plan.placements]


def reasons(plan: Plan) -> dict[str, str]:
    return {f.arn.rsplit("/", 1)[1]: f.reason for f in plan.failures}


# --- feasibility: one test per filter ------------------------------------------------------

def test_a_fitting_instance_is_chosen() -> None:
    plan = run([instance("a")], request())
    assert plan == Plan((Placement(instance("a").arn),), ())


@pytest.mark.parametrize("status", ["DRAINING", "REGISTERING", "DEREGISTERING", "INACTIVE", "REGISTRATION_FAILED"])
def test_only_active_instances_are_candidates(status: str) -> None:
    plan = run([instance("a", status=status)], request())
    assert plan.placements == ()
    assert plan.failures == (PlacementFailure(instance("a").arn, REASON_INACTIVE, f"the container instance is {status}"),)


def test_draining_instance_is_skipped_for_an_active_one() -> None:
    plan = run([instance("a", status="DRAINING"), instance("b")], request(count=3))
    assert names(plan) == ["b", "b", "b"]


def test_disconnected_agent_refuses() -> None:
    plan = run([instance("a", agent_connected=False)], request())
    assert reasons(plan) == {"a": REASON_AGENT}


@pytest.mark.parametrize("required", [
    (("ecs.capability.secrets", None),),  # must exist
    (("ecs.os-type", "windows"),),  # must equal
    (("ecs.os-type", "linux"), ("custom", "x")),  # every one must hold
])
def test_required_attributes_refuse(required: tuple[tuple[str, str | None], ...]) -> None:
    plan = run([instance("a")], request(required_attributes=required))
    assert reasons(plan) == {"a": REASON_ATTRIBUTE}


def test_required_attributes_accept_a_valueless_attribute_for_exists() -> None:
    a = instance("a", attributes={"ecs.capability.secrets": None})
    assert names(run([a], request(required_attributes=(("ecs.capability.secrets", None),)))) == ["a"]


def test_member_of_refuses_with_attribute_reason() -> None:
    small = instance("small", attributes={"ecs.instance-type": "t2.small"})
    large = instance("large", attributes={"ecs.instance-type": "m5.large"})
    req = request(constraints=(Constraint("memberOf", "attribute:ecs.instance-type =~ t2.*"),), count=2)
    assert names(run([small, large], req)) == ["small", "small"]
    only_large = run([large], req)
    assert reasons(only_large) == {"large": REASON_ATTRIBUTE}
    assert "attribute:ecs.instance-type =~ t2.*" in only_large.failures[0].detail


def test_member_of_sees_tasks_placed_earlier_in_the_request() -> None:
    # Anti-affinity with itself: at most one task of the group per instance, like distinctInstance.
    req = request(group="service:web", count=3,
                  constraints=(Constraint("memberOf", "not(task:group == service:web)"),))
    plan = run([instance("a"), instance("b")], req)
    assert sorted(names(plan)) == ["a", "b"]
    assert reasons(plan) == {"a": REASON_ATTRIBUTE, "b": REASON_ATTRIBUTE}


def test_member_of_affinity_to_another_group() -> None:
    req = request(constraints=(Constraint("memberOf", "task:group == service:db"),), count=2)
    plan = run([instance("a"), instance("b", task_groups=("service:db",))], req)
    assert names(plan) == ["b", "b"]


def test_distinct_instance_places_two_of_three_on_two_instances() -> None:
    req = request(group="service:web", count=3, constraints=(Constraint("distinctInstance"),))
    plan = run([instance("a"), instance("b")], req)
    assert sorted(names(plan)) == ["a", "b"]
    assert reasons(plan) == {"a": REASON_DISTINCT_INSTANCE, "b": REASON_DISTINCT_INSTANCE}
    assert REASON_DISTINCT_INSTANCE == "CONSTRAINT:distinctInstance"


def test_distinct_instance_counts_existing_tasks_of_the_group_only() -> None:
    req = request(group="service:web", constraints=(Constraint("distinctInstance"),), count=2)
    a = instance("a", task_groups=("service:web",))
    b = instance("b", task_groups=("service:other", "family:app"))
    plan = run([a, b], req)
    assert names(plan) == ["b"]
    assert reasons(plan) == {"a": REASON_DISTINCT_INSTANCE, "b": REASON_DISTINCT_INSTANCE}


def test_cpu_refuses_and_zero_cpu_always_fits() -> None:
    full = instance("a", cpu_used=1900)
    assert reasons(run([full], request(cpu=256))) == {"a": REASON_CPU}
    assert run([full], request(cpu=256)).failures[0].detail == "needs 256 CPU units, 148 available"
    assert names(run([instance("a", cpu_used=2048)], request(cpu=0))) == ["a"]


def test_cpu_exact_fit_is_feasible() -> None:
    assert names(run([instance("a", cpu_used=1792)], request(cpu=256))) == ["a"]


def test_more_memory_than_any_instance_fails_on_each() -> None:
    plan = run([instance("a"), instance("b", memory=8192), instance("c", memory=1024)], request(memory=16384, count=2))
    assert plan.placements == ()
    assert reasons(plan) == {"a": REASON_MEMORY, "b": REASON_MEMORY, "c": REASON_MEMORY}
    assert [f.arn for f in plan.failures] == [instance(n).arn for n in "abc"]  # snapshot order


def test_memory_consumed_by_earlier_placements() -> None:
    plan = run([instance("a", memory=1024)], request(memory=512, count=3))
    assert names(plan) == ["a", "a"]
    assert reasons(plan) == {"a": REASON_MEMORY}
    assert plan.failures[0].detail == "needs 512 MiB of memory, 0 available"


def test_fixed_tcp_port_is_taken_by_the_first_task() -> None:
    plan = run([instance("a"), instance("b")], request(ports=((80, "tcp"),), count=3))
    assert sorted(names(plan)) == ["a", "b"]
    assert reasons(plan) == {"a": REASON_PORTS, "b": REASON_PORTS}


def test_fixed_udp_port_reports_ports_udp() -> None:
    a = instance("a", ports_used=RESERVED_TCP_PORTS | {(53, "udp")})
    plan = run([a], request(ports=((53, "udp"),)))
    assert reasons(plan) == {"a": REASON_PORTS_UDP}
    assert plan.failures[0].detail == "host udp port 53 is already in use"


def test_tcp_and_udp_ports_are_independent() -> None:
    a = instance("a", ports_used=RESERVED_TCP_PORTS | {(53, "udp")})
    assert names(run([a], request(ports=((53, "tcp"),)))) == ["a"]
    plan = run([instance("a")], request(ports=((53, "tcp"), (53, "udp")), count=2))
    assert names(plan) == ["a"]
    assert reasons(plan) == {"a": REASON_PORTS}  # tcp is checked before udp


@pytest.mark.parametrize("port", sorted(p for p, _ in RESERVED_TCP_PORTS))
def test_reserved_ports_are_never_given_out(port: int) -> None:
    assert reasons(run([instance("a")], request(ports=((port, "tcp"),)))) == {"a": REASON_PORTS}


def test_reserved_ports_are_tcp_only() -> None:
    assert names(run([instance("a")], request(ports=((22, "udp"),)))) == ["a"]


def test_no_instances() -> None:
    plan = run([], request())
    assert plan == Plan((), (PlacementFailure("", REASON_NO_INSTANCES, NO_INSTANCES_MESSAGE),))
    assert NO_INSTANCES_MESSAGE == "No Container Instances were found in your cluster."


def test_count_zero_places_nothing() -> None:
    assert run([instance("a")], request(count=0)) == Plan((), ())


# --- the order of reasons --------------------------------------------------------------------

_EVERYTHING_WRONG = dict(
    status="DRAINING", agent_connected=False, attributes={"ecs.instance-type": "m5.large"},
    task_groups=("service:web",), cpu_used=2048, memory_used=4096, ports_used=frozenset({(80, "tcp"), (53, "udp")}),
)
_FIXES = [  # fix one problem after another; the reported reason moves down the filter order
    ("status", "ACTIVE", REASON_AGENT),
    ("agent_connected", True, REASON_ATTRIBUTE),
    ("attributes", {"ecs.instance-type": "m5.large", "ecs.os-type": "linux"}, REASON_ATTRIBUTE),
    ("attributes", {"ecs.instance-type": "t2.small", "ecs.os-type": "linux"}, REASON_DISTINCT_INSTANCE),
    ("task_groups", (), REASON_CPU),
    ("cpu_used", 0, REASON_MEMORY),
    ("memory_used", 0, REASON_PORTS),
    ("ports_used", frozenset({(53, "udp")}), REASON_PORTS_UDP),
    ("ports_used", frozenset(), None),
]


def test_reasons_are_reported_in_filter_order() -> None:
    req = request(
        group="service:web", ports=((80, "tcp"), (53, "udp")),
        required_attributes=(("ecs.os-type", "linux"),),
        constraints=(Constraint("memberOf", "attribute:ecs.instance-type =~ t2.*"), Constraint("distinctInstance")),
    )
    current = instance("a", **_EVERYTHING_WRONG)
    assert reasons(run([current], req)) == {"a": REASON_INACTIVE}
    for field, value, expected in _FIXES:
        current = replace(current, **{field: value})
        plan = run([current], req)
        if expected is None:
            assert names(plan) == ["a"]
        else:
            assert reasons(plan) == {"a": expected}, field


def test_each_instance_reports_its_own_reason() -> None:
    instances = [
        instance("drain", status="DRAINING"), instance("agent", agent_connected=False),
        instance("cpu", cpu=128), instance("mem", memory=256), instance("port", ports_used=frozenset({(80, "tcp")})),
    ]
    plan = run(instances, request(ports=((80, "tcp"),)))
    assert reasons(plan) == {"drain": REASON_INACTIVE, "agent": REASON_AGENT, "cpu": REASON_CPU,
                             "mem": REASON_MEMORY, "port": REASON_PORTS}


def test_partial_placement_keeps_the_successes() -> None:
    plan = run([instance("a", cpu=1024)], request(cpu=512, count=5))
    assert names(plan) == ["a", "a"]
    assert reasons(plan) == {"a": REASON_CPU}


# --- strategies ------------------------------------------------------------------------------

def test_binpack_memory_fills_the_fullest_instance_first() -> None:
    instances = [instance("a", memory_used=1024), instance("b", memory_used=3072), instance("c")]
    plan = run(instances, request(memory=512, count=3, strategies=(Strategy("binpack", "memory"),)))
    # b has 1024 MiB left: two tasks fill it, then a (3072 left) beats c (4096 left).
    assert names(plan) == ["b", "b", "a"]


def test_binpack_cpu_fills_the_fullest_instance_first() -> None:
    instances = [instance("a", cpu=4096), instance("b", cpu=1024), instance("c", cpu=2048)]
    plan = run(instances, request(cpu=512, count=4, strategies=(Strategy("binpack", "cpu"),)))
    assert names(plan) == ["b", "b", "c", "c"]


def test_binpack_ignores_the_other_resource() -> None:
    instances = [instance("a", cpu_used=2000), instance("b", memory_used=3000)]
    req = request(cpu=0, memory=100, strategies=(Strategy("binpack", "memory"),))
    assert names(run(instances, req)) == ["b"]
    req = request(cpu=10, memory=100, strategies=(Strategy("binpack", "cpu"),))
    assert names(run(instances, req)) == ["a"]


def test_spread_instance_id_balances_six_tasks_on_three_instances() -> None:
    for field in ("instanceId", "host"):
        for seed in range(5):
            plan = run([instance("a"), instance("b"), instance("c")],
                       request(count=6, strategies=(Strategy("spread", field),)), seed)
            assert Counter(names(plan)) == {"a": 2, "b": 2, "c": 2}


def test_spread_instance_id_counts_existing_tasks_of_the_group() -> None:
    a = instance("a", task_groups=("family:app", "family:app"))
    b = instance("b", task_groups=("service:other",) * 5)
    plan = run([a, b], request(count=2, strategies=(Strategy("spread", "instanceId"),)))
    assert names(plan) == ["b", "b"]


def test_spread_by_availability_zone() -> None:
    zone = "ecs.availability-zone"
    instances = [
        instance("a1", attributes={zone: "local-1a"}), instance("a2", attributes={zone: "local-1a"}),
        instance("b1", attributes={zone: "local-1b"}), instance("none", attributes={}),
    ]
    plan = run(instances, request(count=6, strategies=(Strategy("spread", f"attribute:{zone}"),)))
    by_zone = Counter({"a1": "local-1a", "a2": "local-1a", "b1": "local-1b", "none": ""}[n] for n in names(plan))
    assert by_zone == {"local-1a": 2, "local-1b": 2, "": 2}  # no attribute = its own bucket ""


def test_spread_zone_then_instance_is_the_service_default() -> None:
    zone = "ecs.availability-zone"
    instances = [instance("a1", attributes={zone: "local-1a"}), instance("a2", attributes={zone: "local-1a"}),
                 instance("b1", attributes={zone: "local-1b"})]
    strategies = (Strategy("spread", f"attribute:{zone}"), Strategy("spread", "instanceId"))
    for seed in range(5):
        plan = run(instances, request(count=4, strategies=strategies), seed)
        # two per zone, and the two in local-1a on different instances
        assert Counter(names(plan)) == {"a1": 1, "a2": 1, "b1": 2}


def test_spread_zone_counts_tasks_on_instances_that_cannot_take_more() -> None:
    zone = "ecs.availability-zone"
    full_a = instance("full", attributes={zone: "local-1a"}, cpu_used=2048, task_groups=("family:app",) * 3)
    free_a = instance("a", attributes={zone: "local-1a"})
    free_b = instance("b", attributes={zone: "local-1b"})
    plan = run([full_a, free_a, free_b], request(count=3, strategies=(Strategy("spread", f"attribute:{zone}"),)))
    assert names(plan) == ["b", "b", "b"]


def test_random_is_seeded_and_roughly_uniform() -> None:
    instances = [instance("a"), instance("b"), instance("c")]
    req = request(cpu=0, memory=0, count=300, strategies=(Strategy("random"),))
    first = run(instances, req, seed=42)
    assert first == run(instances, req, seed=42)
    assert first != run(instances, req, seed=43)
    assert all(70 < n < 130 for n in Counter(names(first)).values())


def test_no_strategy_picks_among_feasible_with_the_rng() -> None:
    instances = [instance("a"), instance("b", status="DRAINING"), instance("c")]
    req = request(cpu=0, memory=0, count=50)
    plan = run(instances, req, seed=1)
    assert set(names(plan)) == {"a", "c"}
    assert plan == run(instances, req, seed=1)


def test_strategies_are_successive_tie_breakers() -> None:
    # spread first: a and b tie on zero tasks, then binpack memory prefers the fuller b.
    instances = [instance("a"), instance("b", memory_used=2048), instance("c", task_groups=("family:app",))]
    req = request(strategies=(Strategy("spread", "instanceId"), Strategy("binpack", "memory")))
    assert names(run(instances, req)) == ["b"]
    # binpack first: b has the least memory left, so binpack alone decides.
    req = request(strategies=(Strategy("binpack", "memory"), Strategy("spread", "instanceId")))
    assert names(run(instances, req)) == ["b"]


def test_random_first_ends_the_ranking() -> None:
    instances = [instance("a"), instance("b", memory_used=2048)]
    req = request(count=40, cpu=0, memory=0, strategies=(Strategy("random"), Strategy("binpack", "memory")))
    assert set(names(run(instances, req))) == {"a", "b"}


def test_place_is_pure() -> None:
    snapshot = ClusterSnapshot((instance("a"), instance("b")))
    before = snapshot
    place(snapshot, request(count=3, ports=((80, "tcp"),)), random.Random(0))
    assert snapshot == before
    assert snapshot.instances[0].ports_used == RESERVED_TCP_PORTS


def test_place_refuses_invalid_constraints() -> None:
    with pytest.raises(ExpressionError):
        run([instance("a")], request(constraints=(Constraint("memberOf", "attribute:x =="),)))
    with pytest.raises(InvalidArgument):
        run([instance("a")], request(strategies=(Strategy("binpack", "disk"),)))


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("constraints, allow_distinct, message", [
    ((Constraint("sameInstance"),), True, "constraint.type 'sameInstance' is not supported."),
    ((Constraint("distinctInstance"),), False, "constraint.type 'distinctInstance' is not supported."),
    ((Constraint("distinctInstance", ""),), True, "distinctInstance expression should not be specified."),
    ((Constraint("distinctInstance", "task:group == x"),), True, "distinctInstance expression should not be specified."),
    ((Constraint("memberOf"),), True, "memberOf expression should be specified."),
    ((Constraint("memberOf", ""),), False, "memberOf expression should be specified."),
    ((Constraint("memberOf", "attribute:a == " + "x" * 2000),), True, "maximum length of 2000"),
    ((Constraint("memberOf", "runningTasksCount == 1"),) * 11, True, "Too many placement constraints: 11"),
    ((Constraint("memberOf", "bogus == 1"),), True, "unknown subject 'bogus' at position 0"),
])
def test_validate_constraints_refuses(constraints: tuple[Constraint, ...], allow_distinct: bool, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_constraints(constraints, allow_distinct=allow_distinct)
    assert message in str(caught.value)


def test_validate_constraints_accepts() -> None:
    validate_constraints([Constraint("distinctInstance"), Constraint("memberOf", "attribute:ecs.os-type == linux")],
                         allow_distinct=True)
    validate_constraints([Constraint("memberOf", "task:group != service:db")] * 10, allow_distinct=False)
    validate_constraints([], allow_distinct=False)


@pytest.mark.parametrize("strategies, message", [
    ((Strategy("binpack", "disk"),), "Invalid binpack field 'disk'"),
    ((Strategy("binpack"),), "Invalid binpack field 'None'"),
    ((Strategy("spread"),), "The spread placement strategy requires a field."),
    ((Strategy("spread", "zone"),), "Invalid spread field 'zone'"),
    ((Strategy("spread", "attribute:"),), "Invalid spread field 'attribute:'"),
    ((Strategy("random", "cpu"),), "A field should not be specified for the random placement strategy."),
    ((Strategy("pack", "cpu"),), "strategy.type 'pack' is not supported."),
    ((Strategy("random"),) * 6, "Too many placement strategies: 6"),
])
def test_validate_strategies_refuses(strategies: tuple[Strategy, ...], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_strategies(strategies)
    assert message in str(caught.value)


def test_validate_strategies_accepts() -> None:
    validate_strategies([
        Strategy("spread", "attribute:ecs.availability-zone"), Strategy("spread", "instanceId"),
        Strategy("spread", "host"), Strategy("binpack", "cpu"), Strategy("binpack", "MEMORY"),
    ])
    validate_strategies([Strategy("random")])
    validate_strategies([])
