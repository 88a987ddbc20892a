"""CloudWatch Logs filter patterns: parse once, then match messages (pure).

    p = parse_pattern('{ $.level = "error" && $.latency > 5 }')
    p.matches('{"level": "error", "latency": 7}')   # True
    p.needles                                       # (b'error', b'\\\\u'): a line matching holds one

Three syntaxes, chosen by the first character (AWS's FilterAndPatternSyntax):

- Terms: `ERROR`, `ERROR Exception` (all must occur), `"Failed to process"` (a phrase),
  `ERROR -Exiting` (excludes), `?ERROR ?WARN` (alternatives; each `?` starts an alternative
  holding the terms up to the next `?`), `%Err[0-9]+%` (a regular expression). Terms are
  case-sensitive substrings of the message. An empty pattern matches everything.
- JSON, in braces: `{ $.level = "error" }`, `{ $.x > 5 }`, `{ $.a[0].b != "x*" }` (`*` is a
  wildcard in string values), `{ $.x IS NULL }`, `{ $.x IS TRUE }`, `{ $.x IS FALSE }`,
  `{ $.x EXISTS }`, `{ $.x NOT EXISTS }`, `{ $.x = %re% }`, combined with `&&`, `||` and
  parentheses. A message that is not a JSON object or array matches nothing. `=` and `!=`
  need the field to exist; a number compares numerically with a JSON number.
- Space-delimited, in brackets: `[ip, user, ..., status = 5*, size > 1000]`: the message splits
  at spaces into fields (text in "" or [] is one field, without them); names bind fields in
  order, one `...` stands for any number of fields; conditions (`=`, `!=`, `<`, `<=`, `>`, `>=`,
  `&&`, `||`, parentheses) may name any field of the pattern.

Anything else raises InvalidFilterPattern ("Invalid filter pattern", as AWS answers).

`needles` serves the store's byte-level prefilter: None, or byte strings of which every matching
event's stored line contains at least one (escaped as the segment files store messages).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from berth.logs._errors import InvalidFilterPattern, InvalidParameter
from berth.logs._segments import escape

MAX_LENGTH = 1024
Needles = tuple[bytes, ...] | None
# A line holding a \u escape may spell any character of a JSON string that way (the store writes
# a message's backslash as two).
_JSON_ESCAPE = b"\\\\u"
_PLAIN_JSON = re.compile(r"[ !#-.0-\[\]-~]+")  # printable ASCII JSON encoders write as is or as \uXXXX


@dataclass(frozen=True)
class Pattern:
    text: str
    test: Callable[[str], bool]
    needles: Needles
    # A check of the stored line (escaped message bytes) before any parsing: False only when the
    # event cannot match (JSON number and IS comparisons look at the text after `"key":`).
    quick: Callable[[bytes], bool] | None = None

    def matches(self, message: str) -> bool:
        return self.test(message)


def parse_pattern(text: object) -> Pattern:
    """Raises: InvalidFilterPattern; InvalidParameter for one over 1024 characters."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InvalidFilterPattern("not a string")
    if len(text) > MAX_LENGTH:
        raise InvalidParameter("1 validation error detected: Value at 'filterPattern' failed to satisfy "
                               f"constraint: Member must have length less than or equal to {MAX_LENGTH}")
    body = text.strip()
    if not body:
        return Pattern(text, lambda _m: True, None)
    if body.startswith("{"):
        if not body.endswith("}"):
            raise InvalidFilterPattern("a JSON pattern must end with }")
        test, needles, quick = _JsonParser(_lex(body[1:-1])).parse()
        return Pattern(text, test, needles, quick)
    if body.startswith("["):
        if not body.endswith("]"):
            raise InvalidFilterPattern("a space-delimited pattern must end with ]")
        test, needles = _parse_delimited(body[1:-1])
        return Pattern(text, test, needles)
    test, needles = _parse_terms(body)
    return Pattern(text, test, needles)


# --- shared pieces ---------------------------------------------------------------------------


def _and_needles(parts: Sequence[Needles]) -> Needles:
    """Any one part's needles will do for a conjunction: take the most selective."""
    known = [p for p in parts if p is not None]
    if not known:
        return None
    return max(known, key=lambda n: (min(len(x) for x in n), -len(n)))


def _or_needles(parts: Sequence[Needles]) -> Needles:
    if not parts or any(p is None for p in parts):
        return None
    merged: list[bytes] = []
    for p in parts:
        merged += [x for x in p or () if x not in merged]
    return tuple(merged)


def _literal(value: str) -> str:
    """The longest run of a wildcard value without `*`."""
    return max(value.split("*"), key=len)


def _glob(value: str) -> Callable[[str], bool]:
    if "*" not in value:
        return lambda s: s == value
    rx = re.compile(".*".join(re.escape(p) for p in value.split("*")), re.DOTALL)
    return lambda s: rx.fullmatch(s) is not None


def _regex(body: str) -> re.Pattern[str]:
    try:
        return re.compile(body)
    except re.error as err:
        raise InvalidFilterPattern(f"bad regular expression: {err}") from err


# --- terms -----------------------------------------------------------------------------------

_TERM = re.compile(r'\s*(?:(?P<flag>\?-|[?-]|)(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|%(?P<regex>[^%]+)%|(?P<word>[^\s"]+)))')


@dataclass(frozen=True)
class _Term:
    negate: bool
    text: str = ""
    regex: re.Pattern[str] | None = None

    def found(self, message: str) -> bool:
        return (self.regex.search(message) is not None) if self.regex is not None else self.text in message


def _parse_terms(body: str) -> tuple[Callable[[str], bool], Needles]:
    groups: list[list[_Term]] = [[]]
    pos = 0
    while pos < len(body):
        m = _TERM.match(body, pos)
        if m is None or m.end() == pos:
            raise InvalidFilterPattern(f"unexpected {body[pos:pos + 10]!r}")
        pos = m.end()
        if pos < len(body) and not body[pos].isspace():
            raise InvalidFilterPattern("terms must be separated by spaces")
        flag = m["flag"]
        if flag.startswith("?") and groups[-1]:
            groups.append([])  # each ? starts an alternative
        term = _term(m, negate=flag.endswith("-"))
        groups[-1].append(term)
    groups = [g for g in groups if g]
    return _terms_test(groups), _or_needles([_and_needles([(escape(t.text.encode()),)
                                                             for t in g if not t.negate and t.regex is None and t.text])
                                               for g in groups])


def _term(m: re.Match[str], *, negate: bool) -> _Term:
    if m["quoted"] is not None:
        text = re.sub(r"\\(.)", r"\1", m["quoted"])
        if not text:
            raise InvalidFilterPattern("empty quoted term")
        return _Term(negate, text)
    if m["regex"] is not None:
        return _Term(negate, regex=_regex(m["regex"]))
    word = m["word"]
    if word in ("?", "-") or word.startswith(("?", "-")) and m["flag"]:
        raise InvalidFilterPattern(f"bad term {word!r}")
    if any(c in word for c in "{}[]"):
        raise InvalidFilterPattern(f"quote terms holding brackets: {word!r}")
    return _Term(negate, word)


def _terms_test(groups: list[list[_Term]]) -> Callable[[str], bool]:
    def group_ok(group: list[_Term], message: str) -> bool:
        return all(t.found(message) != t.negate for t in group)

    if len(groups) == 1:
        only = groups[0]
        return lambda message: group_ok(only, message)
    return lambda message: any(group_ok(g, message) for g in groups)


# --- lexer for JSON and space-delimited patterns -----------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<regex>%[^%]+%)
  | (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\)|,)
  | (?P<word>[^\s"%&|!=<>(),]+)
)""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str  # string | regex | op | word
    text: str


def _lex(body: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while True:
        while pos < len(body) and body[pos].isspace():
            pos += 1
        if pos >= len(body):
            return out
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise InvalidFilterPattern(f"unexpected {body[pos:pos + 10]!r}")
        kind = m.lastgroup or "word"
        text = m[kind]
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        elif kind == "regex":
            text = text[1:-1]
        out.append(_Tok(kind, text))
        pos = m.end()


class _Cursor:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise InvalidFilterPattern("the pattern ends early")
        self.i += 1
        return tok

    def take(self, kind: str, text: str | None = None) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == kind and (text is None or tok.text.upper() == text):
            self.i += 1
            return True
        return False

    def done(self) -> bool:
        return self.i >= len(self.tokens)


# A parsed condition: its test (of a JSON document or of a dict of fields), the needles one of
# which a matching line holds, and a quick check of the stored line (None: none known).
Test = Callable[[Any], bool]
Quick = Callable[[bytes], bool] | None
Node = tuple[Test, Needles, Quick]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


class _Expr:
    """`or := and ('||' and)*; and := unary ('&&' unary)*; unary := '(' or ')' | comparison`,
    over a subclass's comparison."""

    def __init__(self, cur: _Cursor) -> None:
        self.cur = cur

    def expr(self) -> Node:
        parts = [self.conj()]
        while self.cur.take("op", "||"):
            parts.append(self.conj())
        if len(parts) == 1:
            return parts[0]
        tests = [t for t, _, _ in parts]
        quicks = [q for _, _, q in parts]
        any_quick: Quick = None
        if all(q is not None for q in quicks):
            any_quick = lambda raw: any(q(raw) for q in quicks if q is not None)  # noqa: E731
        return (lambda v: any(t(v) for t in tests)), _or_needles([n for _, n, _ in parts]), any_quick

    def conj(self) -> Node:
        parts = [self.unary()]
        while self.cur.take("op", "&&"):
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        tests = [t for t, _, _ in parts]
        quicks = [q for _, _, q in parts if q is not None]
        all_quick: Quick = (lambda raw: all(q(raw) for q in quicks)) if quicks else None
        return (lambda v: all(t(v) for t in tests)), _and_needles([n for _, n, _ in parts]), all_quick

    def unary(self) -> Node:
        if self.cur.take("op", "("):
            node = self.expr()
            if not self.cur.take("op", ")"):
                raise InvalidFilterPattern("missing )")
            return node
        return self.comparison()

    def comparison(self) -> Node:
        raise NotImplementedError

    # how a field value reads as a number: JSON takes JSON numbers only, fields of text parse
    as_number: Callable[[Any], float | None]

    def value_test(self, op: str, tok: _Tok, plain: Callable[[str], bool]) -> tuple[Callable[[Any], bool], str]:
        """A test of a field value (str, number, bool, None) against `tok`, and the literal a
        matching message must contain ("" when none is known). `plain(literal)` says whether
        the literal appears in the stored line as written."""
        if tok.kind == "regex":
            if op not in ("=", "!="):
                raise InvalidFilterPattern("a regular expression needs = or !=")
            rx = _regex(tok.text)
            found: Callable[[Any], bool] = lambda v: isinstance(v, str) and rx.search(v) is not None  # noqa: E731
            return (found if op == "=" else lambda v: not found(v)), ""
        if tok.kind not in ("string", "word"):
            raise InvalidFilterPattern(f"expected a value, got {tok.text!r}")
        number = _number(tok.text) if tok.kind == "word" else None
        if op not in ("=", "!="):
            if number is None:
                raise InvalidFilterPattern(f"{op} needs a number, got {tok.text!r}")
            compare = _NUMERIC[op]
            as_number = self.as_number
            return (lambda v: (n := as_number(v)) is not None and compare(n, number)), ""
        equal = self._equality(tok.text, number, self.as_number)
        literal = _literal(tok.text)
        # a number may be written 5, 5.0 or 5e0: only text is sure to appear as written
        keep = literal if op == "=" and number is None and literal and plain(literal) else ""
        return (equal if op == "=" else lambda v: not equal(v)), keep

    @staticmethod
    def _equality(text: str, number: float | None, as_number: Callable[[Any], float | None]) -> Callable[[Any], bool]:
        glob = _glob(text)

        def equal(value: Any) -> bool:
            if number is not None and (n := as_number(value)) is not None:
                return n == number
            return glob(_text_of(value))
        return equal


def _json_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text_number(value: Any) -> float | None:
    return _number(value) if isinstance(value, str) else None


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return json.dumps(value)


# --- JSON patterns -----------------------------------------------------------------------------

_SELECTOR = re.compile(r"\$((?:\.[A-Za-z0-9_\-@$]+|\[\d+\]|\[\*\]|\.\*)*)")
_STEP = re.compile(r"\.([A-Za-z0-9_\-@$]+)|\[(\d+)\]|(\[\*\]|\.\*)")


def _select(doc: Any, steps: Sequence[str | int | None]) -> list[Any]:
    """Every value the selector reaches (`None` steps are wildcards over a list or object)."""
    current = [doc]
    for step in steps:
        following: list[Any] = []
        for node in current:
            if step is None:
                if isinstance(node, list):
                    following += node
                elif isinstance(node, dict):
                    following += list(node.values())
            elif isinstance(step, int):
                if isinstance(node, list) and step < len(node):
                    following.append(node[step])
            elif isinstance(node, dict) and step in node:
                following.append(node[step])
        current = following
    return current


def _steps(selector: str) -> tuple[list[str | int | None], str]:
    """The steps of `$.a[0].b`, and the last key name (for the prefilter)."""
    m = _SELECTOR.fullmatch(selector)
    if m is None or not m[1]:
        raise InvalidFilterPattern(f"bad selector {selector!r}")
    steps: list[str | int | None] = []
    last = ""
    for s in _STEP.finditer(m[1]):
        if s[1] is not None:
            steps.append(s[1])
            last = s[1]
        elif s[2] is not None:
            steps.append(int(s[2]))
        else:
            steps.append(None)
    return steps, last


def _plain_json(text: str) -> bool:
    return _PLAIN_JSON.fullmatch(text) is not None


def _json_needles(text: str, *, quoted: bool = False) -> Needles:
    """A string of a JSON document as its text must appear (quoted: a key, with its quotes),
    or else spelt with \\u escapes; None when JSON may write it another way."""
    if not text or not _plain_json(text):
        return None
    return ((f'"{text}"' if quoted else text).encode(), _JSON_ESCAPE)


class _JsonParser(_Expr):
    as_number = staticmethod(_json_number)

    def __init__(self, tokens: list[_Tok]) -> None:
        super().__init__(_Cursor(tokens))

    def parse(self) -> tuple[Callable[[str], bool], Needles, Quick]:
        if self.cur.done():
            raise InvalidFilterPattern("an empty JSON pattern")
        test, needles, quick = self.expr()
        if not self.cur.done():
            raise InvalidFilterPattern(f"unexpected {self.cur.next().text!r}")

        def matches(message: str) -> bool:
            if not message.lstrip().startswith(("{", "[")):
                return False
            try:
                doc = json.loads(message)
            except ValueError:
                return False
            return test(doc)
        return matches, needles, quick

    def comparison(self) -> Node:
        tok = self.cur.next()
        if tok.kind != "word" or not tok.text.startswith("$"):
            raise InvalidFilterPattern(f"expected a selector, got {tok.text!r}")
        steps, key = _steps(tok.text)
        key_needle = _json_needles(key, quoted=True)
        nxt = self.cur.next()
        if nxt.kind == "word":
            return self._postfix(nxt.text.upper(), steps, key_needle)
        if nxt.kind != "op" or nxt.text not in _NUMERIC:
            raise InvalidFilterPattern(f"expected an operator, got {nxt.text!r}")
        value_tok = self.cur.next()
        value_test, literal = self.value_test(nxt.text, value_tok, _plain_json)

        def test(doc: Any) -> bool:
            return any(value_test(v) for v in _select(doc, steps))
        quick: Quick = None
        if key_needle and nxt.text != "!=" and value_tok.kind == "word" and _number(value_tok.text) is not None:
            quick = _quick_number(key, _NUMERIC[nxt.text], float(value_tok.text))
        return test, _json_needles(literal) or key_needle, quick

    def _postfix(self, word: str, steps: list[str | int | None], key_needle: Needles) -> Node:
        key = steps[-1] if steps and isinstance(steps[-1], str) and key_needle else ""
        if word == "IS":
            what = self.cur.next().text.upper()
            expected: dict[str, Callable[[Any], bool]] = {
                "NULL": lambda v: v is None, "TRUE": lambda v: v is True, "FALSE": lambda v: v is False}
            check = expected.get(what)
            if check is None:
                raise InvalidFilterPattern(f"IS {what}?")
            quick = _quick_literal(key, what.lower()) if key else None
            return (lambda doc: any(check(v) for v in _select(doc, steps))), key_needle, quick
        if word == "EXISTS":
            return (lambda doc: bool(_select(doc, steps))), key_needle, None
        if word == "NOT" and self.cur.take("word", "EXISTS"):
            return (lambda doc: not _select(doc, steps)), None, None
        raise InvalidFilterPattern(f"unexpected {word!r}")


# JSON whitespace as the store keeps it: a newline is written as the two bytes \n
_WS = rb"(?:[ \t\r]|\\n)*"
_JSON_NUMBER = rb"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"


def _quick_number(key: str, compare: Callable[[float, float], bool], number: float) -> Quick:
    """Whether some `"key": <number>` in the stored line satisfies the comparison: a JSON
    document whose field `key` holds such a number has that text (a \\u escape anywhere: maybe)."""
    rx = re.compile(b'"' + re.escape(key.encode()) + b'"' + _WS + b":" + _WS + _JSON_NUMBER)

    def quick(raw: bytes) -> bool:
        if _JSON_ESCAPE in raw:
            return True
        return any(compare(float(m[1]), number) for m in rx.finditer(raw))
    return quick


def _quick_literal(key: str, literal: str) -> Quick:
    """Whether the stored line holds `"key": null` (true, false)."""
    rx = re.compile(b'"' + re.escape(key.encode()) + b'"' + _WS + b":" + _WS + literal.encode()
                    + rb"(?![A-Za-z0-9])")
    return lambda raw: _JSON_ESCAPE in raw or rx.search(raw) is not None


# --- space-delimited patterns -------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[A-Za-z0-9_\-]+")


def _split_fields(message: str) -> list[str]:
    """Fields separated by spaces; "..." and [...] each make one field, without the enclosure."""
    fields: list[str] = []
    i, n = 0, len(message)
    while i < n:
        c = message[i]
        if c.isspace():
            i += 1
            continue
        close = {'"': '"', "[": "]"}.get(c)
        if close is not None:
            end = message.find(close, i + 1)
            if end >= 0:
                fields.append(message[i + 1:end])
                i = end + 1
                continue
        j = i
        while j < n and not message[j].isspace():
            j += 1
        fields.append(message[i:j])
        i = j
    return fields


class _DelimitedParser(_Expr):
    """The conditions of one field slot (`status = 5* || status = 4*`); they may name any field."""

    as_number = staticmethod(_text_number)

    def __init__(self, tokens: list[_Tok], names: set[str]) -> None:
        super().__init__(_Cursor(tokens))
        self.names = names

    def comparison(self) -> Node:
        tok = self.cur.next()
        if tok.kind != "word" or tok.text not in self.names:
            raise InvalidFilterPattern(f"unknown field {tok.text!r}")
        name = tok.text
        op = self.cur.next()
        if op.kind != "op" or op.text not in _NUMERIC:
            raise InvalidFilterPattern(f"expected an operator after {name!r}")
        value_test, literal = self.value_test(op.text, self.cur.next(), lambda _s: True)
        needles: Needles = (escape(literal.encode()),) if literal else None
        return (lambda fields: name in fields and value_test(fields[name])), needles, None


def _parse_delimited(body: str) -> tuple[Callable[[str], bool], Needles]:
    slots = _split_slots(body)
    names: list[str | None] = []
    for slot in slots:
        first = _lex(slot)
        if not first:
            raise InvalidFilterPattern("an empty field")
        if len(first) == 1 and first[0].text == "...":
            names.append(None)
            continue
        head = first[0]
        if head.kind != "word" or not _FIELD_NAME.fullmatch(head.text):
            raise InvalidFilterPattern(f"bad field name {head.text!r}")
        names.append(head.text)
    if names.count(None) > 1:
        raise InvalidFilterPattern("at most one ... in a space-delimited pattern")
    known = {n for n in names if n is not None}
    if len(known) != len([n for n in names if n is not None]):
        raise InvalidFilterPattern("a field name appears twice")
    conditions: list[Node] = []
    for slot, name in zip(slots, names):
        tokens = _lex(slot)
        if name is None or len(tokens) == 1:
            continue
        parser = _DelimitedParser(tokens, known)
        node = parser.expr()
        if not parser.cur.done():
            raise InvalidFilterPattern(f"unexpected {parser.cur.next().text!r}")
        conditions.append(node)
    bind = _binder(names)
    tests = [t for t, _, _ in conditions]

    def matches(message: str) -> bool:
        fields = bind(_split_fields(message))
        return fields is not None and all(t(fields) for t in tests)
    return matches, _and_needles([n for _, n, _ in conditions])


def _split_slots(body: str) -> list[str]:
    """The comma-separated slots of `[a, b = "x,y", ...]` (commas in quotes or %regex% kept)."""
    slots, current, quote = [], [], ""
    for c in body:
        if quote:
            current.append(c)
            if c == quote and (c == "%" or current[-2:-1] != ["\\"]):
                quote = ""
        elif c in "\"%":
            quote = c
            current.append(c)
        elif c == ",":
            slots.append("".join(current))
            current = []
        else:
            current.append(c)
    if quote:
        raise InvalidFilterPattern("an unclosed quote")
    slots.append("".join(current))
    return slots


def _binder(names: list[str | None]) -> Callable[[list[str]], dict[str, str] | None]:
    if None not in names:
        def exact(fields: list[str]) -> dict[str, str] | None:
            if len(fields) != len(names):
                return None
            return {n: f for n, f in zip(names, fields) if n is not None}
        return exact
    cut = names.index(None)
    before, after = names[:cut], names[cut + 1:]

    def around(fields: list[str]) -> dict[str, str] | None:
        if len(fields) < len(before) + len(after):
            return None
        bound = {n: f for n, f in zip(before, fields) if n is not None}
        tail = fields[len(fields) - len(after):] if after else []
        bound.update({n: f for n, f in zip(after, tail) if n is not None})
        return bound
    return around
