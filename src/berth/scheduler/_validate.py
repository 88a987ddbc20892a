"""Up-front checks of placement constraints and strategies, so the API refuses a bad request
before it creates anything (ECS answers these with InvalidParameterException / ClientException).
"""

from __future__ import annotations

from collections.abc import Iterable

from berth.errors import InvalidArgument
from berth.scheduler._model import Constraint, Strategy
from berth.scheduler._query import parse_expression

MAX_CONSTRAINTS = 10  # per task, task-definition and request constraints together
MAX_STRATEGIES = 5
MAX_EXPRESSION_LENGTH = 2000
BINPACK_FIELDS = ("cpu", "memory")
SPREAD_FIELDS = ("instanceId", "host")  # or attribute:<name>


def validate_constraints(constraints: Iterable[Constraint], *, allow_distinct: bool) -> None:
    """Raise InvalidArgument for an unknown type, a misplaced or malformed expression, or too many.

    `allow_distinct` is False for task definitions: distinctInstance only makes sense for a
    service or a RunTask request, and RegisterTaskDefinition refuses it.
    """
    constraints = tuple(constraints)
    if len(constraints) > MAX_CONSTRAINTS:
        raise InvalidArgument(f"Too many placement constraints: {len(constraints)} (the limit is {MAX_CONSTRAINTS}).")
    for constraint in constraints:
        _validate_constraint(constraint, allow_distinct=allow_distinct)


def _validate_constraint(constraint: Constraint, *, allow_distinct: bool) -> None:
    if constraint.type == "distinctInstance" and allow_distinct:
        if constraint.expression is not None:
            raise InvalidArgument("distinctInstance expression should not be specified.")
    elif constraint.type == "memberOf":
        if not constraint.expression:
            raise InvalidArgument("memberOf expression should be specified.")
        if len(constraint.expression) > MAX_EXPRESSION_LENGTH:
            raise InvalidArgument(
                f"The placement constraint expression exceeds the maximum length of {MAX_EXPRESSION_LENGTH} characters."
            )
        parse_expression(constraint.expression)
    else:
        raise InvalidArgument(f"constraint.type '{constraint.type}' is not supported.")


def validate_strategies(strategies: Iterable[Strategy]) -> None:
    """Raise InvalidArgument unless each strategy is random, binpack cpu|memory or spread <field>."""
    strategies = tuple(strategies)
    if len(strategies) > MAX_STRATEGIES:
        raise InvalidArgument(f"Too many placement strategies: {len(strategies)} (the limit is {MAX_STRATEGIES}).")
    for strategy in strategies:
        _validate_strategy(strategy)


def _validate_strategy(strategy: Strategy) -> None:
    if strategy.type == "random":
        if strategy.field is not None:
            raise InvalidArgument("A field should not be specified for the random placement strategy.")
    elif strategy.type == "binpack":
        if strategy.field is None or strategy.field.lower() not in BINPACK_FIELDS:
            raise InvalidArgument(
                f"Invalid binpack field '{strategy.field}': the binpack strategy takes the field cpu or memory."
            )
    elif strategy.type == "spread":
        if not strategy.field:
            raise InvalidArgument("The spread placement strategy requires a field.")
        if not is_spread_field(strategy.field):
            raise InvalidArgument(
                f"Invalid spread field '{strategy.field}': use instanceId, host or attribute:<name>."
            )
    else:
        raise InvalidArgument(f"strategy.type '{strategy.type}' is not supported.")


def is_spread_field(field: str) -> bool:
    return field in SPREAD_FIELDS or (field.startswith("attribute:") and len(field) > len("attribute:"))
