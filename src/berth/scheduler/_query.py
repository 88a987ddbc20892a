"""The ECS cluster query language (memberOf expressions), compiled to a small typed tree.

Grammar (a recursive-descent parser over a tokenizer; nothing is ever eval'd)::

    expression := or
    or         := and  (("||" | "or")  and)*
    and        := unary (("&&" | "and") unary)*
    unary      := ("!" | "not") unary | "(" expression ")" | comparison
    comparison := SUBJECT OPERATOR [argument]
    argument   := value | list                      (a list only after in / !in)
    list       := "[" value ("," value)* "]"        ("(" ... ")" is accepted too)
    value      := bare-word | 'quoted' | "quoted"

Subjects: agentConnected, agentVersion, attribute:<name>, ec2InstanceId, registeredAt,
runningTasksCount, task:group. Operators (symbol or word form): == equals, != not_equals,
> greater_than, >= greater_than_equal, < less_than, <= less_than_equal, exists, !exists
not_exists, in, !in not_in, =~ matches, !~ not_matches. Each subject accepts the operators the
ECS developer guide lists for it; attributes accept all of them.

A bare word runs until whitespace or one of ``()[],'"=!<>&|~``, so ``t2.*``, ``service:web`` and
``2026-01-01T00:00:00Z`` need no quotes; a regex using ``|`` or brackets must be quoted. Inside
quotes, a backslash escapes only the quote character or a backslash (so ``'\\d+'`` stays a regex).

Evaluation against an `InstanceSnapshot`: a missing subject matches no positive operator, and
every negative operator is exactly the negation of its positive twin (``!=`` is ``!(==)``), so
``task:group != service:db`` means "no task of service:db runs there". ``task:group`` is
set-valued: ``==`` holds when any task on the instance is in that group. Values compare as
numbers when both sides are numbers, agent versions compare part by part (1.10 > 1.9),
``registeredAt`` compares instants (ISO dates, date-times or epoch seconds), and regexes match
the whole value (Java's ``matches()``, Python's ``re.fullmatch``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from berth.errors import InvalidArgument
from berth.scheduler._model import InstanceSnapshot


class ExpressionError(InvalidArgument):
    """A memberOf expression that does not parse; `position` is the 0-based offset of the fault."""

    def __init__(self, text: str, problem: str, position: int) -> None:
        super().__init__(f"Invalid placement constraint expression {text!r}: {problem} at position {position}.")
        self.position = position


# --- the tree ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    """`subject operator [values]`; `operator` is always the symbol form ("!in", not "not_in")."""

    subject: str
    operator: str
    values: tuple[str, ...] = ()
    # Compiled once at parse time; left out of equality so parsed trees compare by their text.
    patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)

    def matches(self, instance: InstanceSnapshot) -> bool:
        positive = _NEGATED.get(self.operator)
        if positive is not None:
            return not self._holds(positive, instance)
        return self._holds(self.operator, instance)

    def _holds(self, operator: str, instance: InstanceSnapshot) -> bool:
        present, actual = _subject_values(self.subject, instance)
        if operator == "exists":
            return present
        if operator == "=~":
            return any(p.fullmatch(a) for a in actual for p in self.patterns)
        wanted = [_key(self.subject, v) for v in self.values]
        if operator in ("==", "in"):
            return any(_key(self.subject, a) == w for a in actual for w in wanted)
        relation = _RELATIONS[operator]
        return any(relation(_key(self.subject, a), wanted[0]) for a in actual)

    def __str__(self) -> str:
        if not self.values:
            return f"{self.subject} {self.operator}"
        if self.operator in ("in", "!in"):
            return f"{self.subject} {self.operator} [{', '.join(_render(v) for v in self.values)}]"
        return f"{self.subject} {self.operator} {_render(self.values[0])}"


@dataclass(frozen=True)
class Not:
    operand: Expression

    def matches(self, instance: InstanceSnapshot) -> bool:
        return not self.operand.matches(instance)

    def __str__(self) -> str:
        return f"!({self.operand})"


@dataclass(frozen=True)
class And:
    left: Expression
    right: Expression

    def matches(self, instance: InstanceSnapshot) -> bool:
        return self.left.matches(instance) and self.right.matches(instance)

    def __str__(self) -> str:
        return f"({self.left} && {self.right})"


@dataclass(frozen=True)
class Or:
    left: Expression
    right: Expression

    def matches(self, instance: InstanceSnapshot) -> bool:
        return self.left.matches(instance) or self.right.matches(instance)

    def __str__(self) -> str:
        return f"({self.left} || {self.right})"


Expression = Comparison | Not | And | Or


# --- evaluation helpers --------------------------------------------------------------------

_NEGATED = {"!=": "==", "!exists": "exists", "!in": "in", "!~": "=~"}
_Key = tuple[int, float | str | tuple[int, ...]]
_RELATIONS: dict[str, Callable[[_Key, _Key], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")


def _subject_values(subject: str, instance: InstanceSnapshot) -> tuple[bool, tuple[str, ...]]:
    """(does the subject exist on the instance, its values as text)."""
    if subject.startswith("attribute:"):
        name = subject.removeprefix("attribute:")
        if name not in instance.attributes:
            return False, ()
        value = instance.attributes[name]
        return True, () if value is None else (value,)
    if subject == "agentConnected":
        return True, ("true" if instance.agent_connected else "false",)
    if subject == "agentVersion":
        return _optional(instance.agent_version)
    if subject == "ec2InstanceId":
        return _optional(instance.instance_id)
    if subject == "registeredAt":
        return True, (repr(instance.registered_at),)
    if subject == "runningTasksCount":
        return True, (str(len(instance.task_groups)),)
    return bool(instance.task_groups), instance.task_groups  # task:group


def _optional(value: str) -> tuple[bool, tuple[str, ...]]:
    return (True, (value,)) if value else (False, ())


def _key(subject: str, text: str) -> _Key:
    """An ordering key: numbers before words, so mixed comparisons stay total and deterministic."""
    if subject == "registeredAt":
        return 0, _parse_time(text)
    if subject == "agentVersion" and (version := _VERSION.fullmatch(text)):
        return 0, tuple(int(part) for part in version.group(1).split("."))
    if subject == "agentConnected":
        return 1, text.lower()
    if _NUMBER.fullmatch(text):
        return 0, float(text)
    return 1, text


def _parse_time(text: str) -> float:
    """Epoch seconds from an ISO date / date-time (naive means UTC) or a number of seconds."""
    if _NUMBER.fullmatch(text):
        return float(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# --- tokens --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # word | string | op | ( | ) | [ | ] | , | end
    text: str
    position: int


_SYMBOLS = ("==", "!=", ">=", "<=", "=~", "!~", "&&", "||", ">", "<", "!")  # longest first
_PUNCTUATION = "()[],"
_STOP = set(" \t\r\n()[],'\"=!<>&|~")


def tokenize(text: str) -> tuple[Token, ...]:
    """Split an expression into tokens, ending with an `end` token at len(text)."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in _PUNCTUATION:
            tokens.append(Token(char, char, i))
            i += 1
        elif char in "'\"":
            token, i = _quoted(text, i)
            tokens.append(token)
        elif symbol := next((s for s in _SYMBOLS if text.startswith(s, i)), None):
            tokens.append(Token("op", symbol, i))
            i += len(symbol)
        elif char in _STOP:
            raise ExpressionError(text, f"unexpected character {char!r}", i)
        else:
            end = i
            while end < len(text) and text[end] not in _STOP and not text[end].isspace():
                end += 1
            tokens.append(Token("word", text[i:end], i))
            i = end
    tokens.append(Token("end", "", len(text)))
    return tuple(tokens)


def _quoted(text: str, start: int) -> tuple[Token, int]:
    quote, chars, i = text[start], [], start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            chars.append(text[i + 1])
            i += 2
        elif char == quote:
            return Token("string", "".join(chars), start), i + 1
        else:
            chars.append(char)
            i += 1
    raise ExpressionError(text, "unterminated quoted value", start)


def _render(value: str) -> str:
    """A value as the tokenizer reads it back: bare when it is one word, else single-quoted."""
    if value and not any(c in _STOP or c.isspace() for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- parser --------------------------------------------------------------------------------

_OPERATOR_WORDS = {
    "equals": "==", "not_equals": "!=", "greater_than": ">", "greater_than_equal": ">=",
    "less_than": "<", "less_than_equal": "<=", "exists": "exists", "not_exists": "!exists",
    "in": "in", "not_in": "!in", "matches": "=~", "not_matches": "!~",
}
_COMPARATORS = {"==", "!=", ">", ">=", "<", "<=", "=~", "!~"}
_EQUALITY = frozenset({"==", "!=", "in", "!in", "=~", "!~"})
_ORDERING = frozenset({"==", "!=", ">", ">=", "<", "<="})
# The operators the ECS developer guide lists per subject; attributes take every operator.
_SUBJECT_OPERATORS: dict[str, frozenset[str]] = {
    "agentConnected": _EQUALITY,
    "agentVersion": _ORDERING,
    "ec2InstanceId": _EQUALITY,
    "registeredAt": _ORDERING,
    "runningTasksCount": _ORDERING,
    "task:group": _EQUALITY,
}
_ALL_OPERATORS = _EQUALITY | _ORDERING | {"exists", "!exists"}


def parse_expression(text: str) -> Expression:
    """Compile a memberOf expression; raises `ExpressionError` (an InvalidArgument) naming the position."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = tokenize(text)
        self._i = 0

    def parse(self) -> Expression:
        if self._peek().kind == "end":
            raise self._error("empty expression", self._peek())
        expression = self._or()
        if self._peek().kind != "end":
            raise self._error(f"unexpected {self._describe(self._peek())}", self._peek())
        return expression

    def _or(self) -> Expression:
        left = self._and()
        while self._accept_connective("||", "or"):
            left = Or(left, self._and())
        return left

    def _and(self) -> Expression:
        left = self._unary()
        while self._accept_connective("&&", "and"):
            left = And(left, self._unary())
        return left

    def _unary(self) -> Expression:
        if self._accept_connective("!", "not"):
            return Not(self._unary())
        if self._peek().kind == "(":
            self._advance()
            inner = self._or()
            self._expect(")", "')'")
            return inner
        return self._comparison()

    def _comparison(self) -> Expression:
        token = self._advance()
        if token.kind != "word" or not _is_subject(token.text):
            problem = f"unknown subject {token.text!r}" if token.kind == "word" else "expected a subject"
            raise self._error(problem, token)
        operator_token = self._peek()
        operator = self._operator()
        if operator not in _SUBJECT_OPERATORS.get(token.text, _ALL_OPERATORS):
            raise self._error(f"operator {operator!r} is not valid for {token.text}", operator_token)
        values = self._arguments(operator)
        return _compile(self, token.text, operator, values)

    def _operator(self) -> str:
        token = self._advance()
        if token.kind == "op" and token.text in _COMPARATORS:
            return token.text
        if token.kind == "op" and token.text == "!" and self._peek().text.lower() in ("exists", "in"):
            return "!" + self._advance().text.lower()
        if token.kind == "word" and token.text.lower() in _OPERATOR_WORDS:
            return _OPERATOR_WORDS[token.text.lower()]
        raise self._error("expected an operator", token)

    def _arguments(self, operator: str) -> tuple[Token, ...]:
        if operator in ("exists", "!exists"):
            return ()
        if operator in ("in", "!in"):
            return self._list()
        return (self._value(),)

    def _list(self) -> tuple[Token, ...]:
        opening = self._advance()
        if opening.kind not in ("[", "("):
            raise self._error("expected an argument list like [a, b]", opening)
        closing = "]" if opening.kind == "[" else ")"
        values = [self._value()]
        while self._peek().kind == ",":
            self._advance()
            values.append(self._value())
        self._expect(closing, repr(closing))
        return tuple(values)

    def _value(self) -> Token:
        token = self._advance()
        if token.kind not in ("word", "string"):
            raise self._error("expected a value", token)
        return token

    # -- token plumbing

    def _peek(self) -> Token:
        return self._tokens[self._i]

    def _advance(self) -> Token:
        token = self._tokens[self._i]
        if token.kind != "end":
            self._i += 1
        return token

    def _accept_connective(self, symbol: str, word: str) -> bool:
        token = self._peek()
        if (token.kind == "op" and token.text == symbol) or (token.kind == "word" and token.text.lower() == word):
            self._advance()
            return True
        return False

    def _expect(self, kind: str, label: str) -> None:
        token = self._advance()
        if token.kind != kind:
            raise self._error(f"expected {label}", token)

    def _describe(self, token: Token) -> str:
        return "end of expression" if token.kind == "end" else repr(token.text)

    def _error(self, problem: str, token: Token) -> ExpressionError:
        if token.kind == "end" and not problem.startswith("empty"):
            problem = f"{problem}, found end of expression"
        return ExpressionError(self._text, problem, token.position)


def _is_subject(word: str) -> bool:
    return word in _SUBJECT_OPERATORS or (word.startswith("attribute:") and len(word) > len("attribute:"))


def _compile(parser: _Parser, subject: str, operator: str, values: tuple[Token, ...]) -> Comparison:
    """Check the values against the subject now, so a bad date or regex fails at parse time."""
    for token in values:
        problem = _value_problem(subject, operator, token.text)
        if problem:
            raise parser._error(problem, token)
    patterns = tuple(re.compile(t.text) for t in values) if operator in ("=~", "!~") else ()
    return Comparison(subject, operator, tuple(t.text for t in values), patterns)


def _value_problem(subject: str, operator: str, value: str) -> str | None:
    if operator in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as err:
            return f"invalid regular expression {value!r} ({err.msg})"
    elif subject == "registeredAt":
        try:
            _parse_time(value)
        except ValueError:
            return f"invalid date {value!r} (use 2026-01-31 or 2026-01-31T12:00:00Z)"
    elif subject == "runningTasksCount" and not value.isdigit():
        return f"runningTasksCount needs a whole number, not {value!r}"
    return None
