"""The cluster query language: tokenizer, parser (precedence, lists, errors) and evaluation."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from berth.errors import InvalidArgument
from berth.scheduler import And, Comparison, ExpressionError, InstanceSnapshot, Not, Or, parse_expression
from berth.scheduler._query import Token, tokenize

WEB = InstanceSnapshot(
    arn="arn:aws:ecs:local:000000000000:container-instance/default/web", instance_id="i-0abc",
    status="ACTIVE", agent_connected=True, cpu=2048, memory=4096, cpu_used=0, memory_used=0,
    ports_used=frozenset(),
    attributes={
        "ecs.availability-zone": "local-1a", "ecs.instance-type": "t2.small", "ecs.os-type": "linux",
        "ecs.capability.secrets": None, "stack": "prod", "slots": "12",
    },
    agent_version="1.10.2", registered_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp(),
    task_groups=("service:web", "service:web", "family:batch"),
)


def holds(text: str, instance: InstanceSnapshot = WEB) -> bool:
    return parse_expression(text).matches(instance)


# --- tokenizer -------------------------------------------------------------------------------

def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(text)]


def test_tokenizer_splits_words_operators_and_punctuation() -> None:
    assert kinds("attribute:ecs.instance-type =~ t2.*") == [
        ("word", "attribute:ecs.instance-type"), ("op", "=~"), ("word", "t2.*"), ("end", ""),
    ]
    assert kinds("a in [x,'y z']&&!(b!=c)") == [
        ("word", "a"), ("word", "in"), ("[", "["), ("word", "x"), (",", ","), ("string", "y z"), ("]", "]"),
        ("op", "&&"), ("op", "!"), ("(", "("), ("word", "b"), ("op", "!="), ("word", "c"), (")", ")"), ("end", ""),
    ]


@pytest.mark.parametrize("symbol", ["==", "!=", ">=", "<=", ">", "<", "=~", "!~", "&&", "||", "!"])
def test_tokenizer_reads_every_symbol(symbol: str) -> None:
    assert kinds(f"a{symbol}b") == [("word", "a"), ("op", symbol), ("word", "b"), ("end", "")]


def test_tokenizer_keeps_dates_and_group_names_as_one_word() -> None:
    assert kinds("2026-01-01T10:00:00+02:00 service:web i-0abc v1.2") == [
        ("word", "2026-01-01T10:00:00+02:00"), ("word", "service:web"), ("word", "i-0abc"), ("word", "v1.2"),
        ("end", ""),
    ]


def test_tokenizer_positions() -> None:
    assert tokenize("  ab == 'c'") == (
        Token("word", "ab", 2), Token("op", "==", 5), Token("string", "c", 8), Token("end", "", 11),
    )


@pytest.mark.parametrize("source, value", [
    ("'it\\'s'", "it's"), ('"say \\"hi\\""', 'say "hi"'), ("'a\\\\b'", "a\\b"), ("'\\d+'", "\\d+"), ("''", ""),
    ("\"single ' inside\"", "single ' inside"),
])
def test_tokenizer_quoted_values(source: str, value: str) -> None:
    assert tokenize(source)[0] == Token("string", value, 0)


@pytest.mark.parametrize("text, position, problem", [
    ("a = b", 2, "unexpected character '='"),
    ("a & b", 2, "unexpected character '&'"),
    ("a | b", 2, "unexpected character '|'"),
    ("a ~ b", 2, "unexpected character '~'"),
    ("x == 'open", 5, "unterminated quoted value"),
])
def test_tokenizer_errors_name_the_position(text: str, position: int, problem: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        tokenize(text)
    assert caught.value.position == position
    assert str(caught.value) == f"Invalid placement constraint expression {text!r}: {problem} at position {position}."


# --- parser ----------------------------------------------------------------------------------

A = Comparison("attribute:a", "==", ("1",))
B = Comparison("attribute:b", "==", ("2",))
C = Comparison("attribute:c", "==", ("3",))


@pytest.mark.parametrize("text, tree", [
    ("attribute:a == 1", A),
    ("attribute:a == 1 && attribute:b == 2", And(A, B)),
    ("attribute:a == 1 and attribute:b == 2", And(A, B)),
    ("attribute:a == 1 || attribute:b == 2", Or(A, B)),
    ("attribute:a == 1 or attribute:b == 2", Or(A, B)),
    ("attribute:a == 1 OR attribute:b == 2", Or(A, B)),
    ("!attribute:a == 1", Not(A)),
    ("not attribute:a == 1", Not(A)),
    ("not(attribute:a == 1)", Not(A)),
    ("!!attribute:a == 1", Not(Not(A))),
    # && binds tighter than ||, on either side
    ("attribute:a == 1 || attribute:b == 2 && attribute:c == 3", Or(A, And(B, C))),
    ("attribute:a == 1 && attribute:b == 2 || attribute:c == 3", Or(And(A, B), C)),
    # ! binds tighter than &&
    ("!attribute:a == 1 && attribute:b == 2", And(Not(A), B)),
    ("attribute:a == 1 and not attribute:b == 2 or attribute:c == 3", Or(And(A, Not(B)), C)),
    # parentheses override, and connectives associate to the left
    ("(attribute:a == 1 || attribute:b == 2) && attribute:c == 3", And(Or(A, B), C)),
    ("attribute:a == 1 || attribute:b == 2 || attribute:c == 3", Or(Or(A, B), C)),
    ("((attribute:a == 1))", A),
    ("!(attribute:a == 1 && attribute:b == 2)", Not(And(A, B))),
])
def test_parse_structure_and_precedence(text: str, tree: object) -> None:
    assert parse_expression(text) == tree


@pytest.mark.parametrize("operator, canonical", [
    ("==", "=="), ("equals", "=="), ("!=", "!="), ("not_equals", "!="), (">", ">"), ("greater_than", ">"),
    (">=", ">="), ("greater_than_equal", ">="), ("<", "<"), ("less_than", "<"), ("<=", "<="),
    ("less_than_equal", "<="), ("=~", "=~"), ("matches", "=~"), ("!~", "!~"), ("not_matches", "!~"),
])
def test_every_binary_operator_and_its_word_form(operator: str, canonical: str) -> None:
    assert parse_expression(f"attribute:slots {operator} 5") == Comparison("attribute:slots", canonical, ("5",))


@pytest.mark.parametrize("text, canonical", [
    ("attribute:a exists", "exists"), ("attribute:a !exists", "!exists"), ("attribute:a ! exists", "!exists"),
    ("attribute:a not_exists", "!exists"),
])
def test_exists_takes_no_argument(text: str, canonical: str) -> None:
    assert parse_expression(text) == Comparison("attribute:a", canonical, ())


@pytest.mark.parametrize("text, canonical, values", [
    ("attribute:a in [x, y]", "in", ("x", "y")),
    ("attribute:a in (x, y)", "in", ("x", "y")),
    ("attribute:a in [x]", "in", ("x",)),
    ("attribute:a !in ['x y', \"z\"]", "!in", ("x y", "z")),
    ("attribute:a not_in [x,y,z]", "!in", ("x", "y", "z")),
    ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", "in", ("i-abcd1234", "i-wxyx7890")),
])
def test_in_lists(text: str, canonical: str, values: tuple[str, ...]) -> None:
    parsed = parse_expression(text)
    assert isinstance(parsed, Comparison)
    assert (parsed.operator, parsed.values) == (canonical, values)


@pytest.mark.parametrize("text", [
    "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
    "not(task:group == database)",
    "attribute:a in [x, 'y z', \"it's\"] || !(agentVersion >= 1.2.3 && runningTasksCount < 4)",
    "registeredAt > 2026-01-01T00:00:00Z",
    "attribute:a =~ '^t2\\\\.(small|medium)$'",
    "attribute:a == ''",
    "attribute:a !exists or agentConnected == true",
])
def test_str_renders_an_equivalent_expression(text: str) -> None:
    parsed = parse_expression(text)
    assert parse_expression(str(parsed)) == parsed


def _random_expression(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([
            "attribute:a == 1", "task:group != service:web", "attribute:b exists", "ec2InstanceId in [i-1, 'i 2']",
            "runningTasksCount >= 3", "attribute:c =~ 'x|y'", "agentVersion < 1.2",
        ])
    left, right = _random_expression(rng, depth - 1), _random_expression(rng, depth - 1)
    return rng.choice([f"{left} && {right}", f"{left} or {right}", f"!({left})", f"not {left}", f"({left})"])


def test_rendering_round_trips_random_expressions() -> None:
    rng = random.Random(2026)
    for _ in range(300):
        parsed = parse_expression(_random_expression(rng, 4))
        assert parse_expression(str(parsed)) == parsed


@pytest.mark.parametrize("text, position, problem", [
    ("", 0, "empty expression"),
    ("   ", 3, "empty expression"),
    ("bogus == 1", 0, "unknown subject 'bogus'"),
    ("attribute: == 1", 0, "unknown subject 'attribute:'"),
    ("'attribute:a' == 1", 0, "expected a subject"),
    ("attribute:a", 11, "expected an operator, found end of expression"),
    ("attribute:a is 1", 12, "expected an operator"),
    ("attribute:a == ", 15, "expected a value, found end of expression"),
    ("attribute:a == (", 15, "expected a value"),
    ("attribute:a in x", 15, "expected an argument list like [a, b]"),
    ("attribute:a in [x, ]", 19, "expected a value"),
    ("attribute:a in [x, y", 20, "expected ']', found end of expression"),
    ("attribute:a in [x, y)", 20, "expected ']'"),
    ("(attribute:a == 1", 17, "expected ')', found end of expression"),
    ("attribute:a == 1)", 16, "unexpected ')'"),
    ("attribute:a == 1 attribute:b == 2", 17, "unexpected 'attribute:b'"),
    ("attribute:a == 1 &&", 19, "expected a subject, found end of expression"),
    ("&& attribute:a == 1", 0, "expected a subject"),
    ("attribute:a =~ '('", 15, "invalid regular expression '(' (missing ), unterminated subpattern)"),
    ("registeredAt > yesterday", 15, "invalid date 'yesterday' (use 2026-01-31 or 2026-01-31T12:00:00Z)"),
    ("runningTasksCount > many", 20, "runningTasksCount needs a whole number, not 'many'"),
    ("agentVersion exists", 13, "operator 'exists' is not valid for agentVersion"),
    ("task:group > 3", 11, "operator '>' is not valid for task:group"),
    ("registeredAt =~ 2026", 13, "operator '=~' is not valid for registeredAt"),
    ("agentConnected >= true", 15, "operator '>=' is not valid for agentConnected"),
    ("runningTasksCount in [1, 2]", 18, "operator 'in' is not valid for runningTasksCount"),
])
def test_syntax_errors_name_the_position(text: str, position: int, problem: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.position == position
    assert str(caught.value) == f"Invalid placement constraint expression {text!r}: {problem} at position {position}."


# --- evaluation ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    # attributes: equality, existence, lists
    ("attribute:ecs.instance-type == t2.small", True),
    ("attribute:ecs.instance-type equals 't2.small'", True),
    ("attribute:ecs.instance-type != t2.small", False),
    ("attribute:ecs.instance-type == t2.micro", False),
    ("attribute:missing == x", False),
    ("attribute:missing != x", True),  # negations are the exact complement
    ("attribute:ecs.capability.secrets exists", True),  # present without a value
    ("attribute:ecs.capability.secrets == ''", False),
    ("attribute:missing exists", False),
    ("attribute:missing !exists", True),
    ("attribute:stack !exists", False),
    ("attribute:ecs.availability-zone in [local-1a, local-1b]", True),
    ("attribute:ecs.availability-zone in [local-1b]", False),
    ("attribute:ecs.availability-zone !in [local-1b, local-1c]", True),
    ("attribute:missing in [x]", False),
    # numbers compare as numbers when both sides are numbers, else as text
    ("attribute:slots > 9", True),
    ("attribute:slots > 100", False),
    ("attribute:slots == 12.0", True),
    ("attribute:slots >= 12", True),
    ("attribute:slots < 12", False),
    ("attribute:slots <= 12", True),
    ("attribute:stack > alpha", True),
    ("attribute:stack < alpha", False),
    ("attribute:missing < 5", False),
    # regexes match the whole value
    ("attribute:ecs.instance-type =~ t2.*", True),
    ("attribute:ecs.instance-type =~ t2", False),
    ("attribute:ecs.instance-type matches '^t2\\.(small|medium)$'", True),
    ("attribute:ecs.instance-type !~ m5.*", True),
    ("attribute:ecs.instance-type not_matches 't2.*'", False),
    ("attribute:missing !~ x", True),
    # the other subjects
    ("agentConnected == true", True),
    ("agentConnected == TRUE", True),
    ("agentConnected != true", False),
    ("agentConnected in [false]", False),
    ("agentVersion > 1.9.0", True),  # 1.10.2 is newer than 1.9.0 (part by part, not as text)
    ("agentVersion < 1.10.10", True),
    ("agentVersion == 1.10.2", True),
    ("agentVersion >= 2", False),
    ("ec2InstanceId == i-0abc", True),
    ("ec2InstanceId in [i-1, i-0abc]", True),
    ("ec2InstanceId =~ 'i-0.*'", True),
    ("registeredAt > 2026-01-01", True),
    ("registeredAt < 2026-03-01", False),  # midnight, before noon
    ("registeredAt >= 2026-03-01T12:00:00Z", True),
    ("registeredAt == 2026-03-01T14:00:00+02:00", True),
    ("registeredAt <= 2026-03-01T11:59:59", False),
    ("runningTasksCount == 3", True),
    ("runningTasksCount > 2", True),
    ("runningTasksCount < 3", False),
    # task:group is true when any task on the instance is in the group
    ("task:group == service:web", True),
    ("task:group == family:batch", True),
    ("task:group == service:db", False),
    ("task:group != service:db", True),
    ("task:group != service:web", False),  # not "some task is in another group"
    ("not(task:group == service:web)", False),
    ("task:group in [service:db, family:batch]", True),
    ("task:group !in [service:db]", True),
    ("task:group =~ 'service:.*'", True),
    ("task:group !~ 'family:.*'", False),
    # combinations
    ("attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d", True),
    ("attribute:stack == dev || attribute:stack == prod", True),
    ("attribute:stack == dev || attribute:stack == prod && agentConnected == false", False),
    ("(attribute:stack == dev || attribute:stack == prod) && !agentConnected == false", True),
])
def test_evaluation(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_evaluation_on_an_instance_without_tasks_or_agent_version() -> None:
    bare = replace(WEB, task_groups=(), agent_version="", instance_id="")
    assert holds("runningTasksCount == 0", bare)
    assert not holds("task:group == service:web", bare)
    assert holds("task:group != service:web", bare)
    assert holds("task:group !in [service:web]", bare)
    assert not holds("agentVersion > 0", bare)
    assert not holds("ec2InstanceId =~ '.*'", bare)


def test_registered_at_accepts_epoch_seconds() -> None:
    assert holds(f"registeredAt == {WEB.registered_at}")
    assert holds(f"registeredAt > {int(WEB.registered_at) - 1}")
