"""CloudWatch Logs filter patterns (berth.logs._pattern): every operator, the prefilter needles
(never a false negative) and every refusal."""

from __future__ import annotations

import json

import pytest

from berth.logs import BAD_PATTERN, InvalidFilterPattern, InvalidParameter, parse_pattern
from berth.logs._segments import encode_events

APACHE = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'


def line_of(message: str) -> bytes:
    """The message as the segment files store it (what the needles are searched in)."""
    return encode_events([(1, message)], 2)[0]


@pytest.mark.parametrize("pattern, message, expected", [
    # terms
    ("", "anything at all", True),
    ("   ", "anything at all", True),
    ("ERROR", "[ERROR] 400 BAD REQUEST", True),
    ("ERROR", "[error] 400 bad request", False),  # case-sensitive
    ("ERROR", "ERRORS everywhere", True),  # a substring
    ("ERROR Exception", "ERROR: Exception raised", True),
    ("ERROR Exception", "ERROR: all fine", False),
    ('"Failed to process"', "job 7: Failed to process the request", True),
    ('"Failed to process"', "Failed to  process", False),
    ('"say \\"hi\\""', 'they say "hi" twice', True),
    ("?ERROR ?WARN", "WARN disk at 91%", True),
    ("?ERROR ?WARN", "ERROR disk full", True),
    ("?ERROR ?WARN", "INFO all fine", False),
    ('?"ERROR" "MainThread" ?"WARN" "Deadlock"', "WARN Deadlock in pool", True),  # CDK's term groups
    ('?"ERROR" "MainThread" ?"WARN" "Deadlock"', "WARN MainThread", False),
    ("ERROR -Exiting", "ERROR Exiting now", False),
    ("ERROR -Exiting", "ERROR retrying", True),
    ("-DEBUG", "INFO started", True),
    ("-DEBUG", "DEBUG x=1", False),
    ("%ERR[0-9]{3}%", "code ERR404 seen", True),
    ("%ERR[0-9]{3}%", "code ERR4 seen", False),
    ("héllo", "say héllo", True),
    # JSON
    ('{ $.level = "error" }', '{"level": "error", "msg": "x"}', True),
    ('{ $.level = "error" }', '{"level": "info", "msg": "error"}', False),
    ('{ $.level = "error" }', 'level=error', False),  # not JSON
    ('{ $.level = "error" }', '{"level": "err\\u006fr"}', True),  # a \u escape in the message
    ("{ $.level = error }", '{"level": "error"}', True),  # an unquoted value
    ('{ $.level != "error" }', '{"level": "info"}', True),
    ('{ $.level != "error" }', '{"other": 1}', False),  # != needs the field
    ('{ $.user.name = "adm*" }', '{"user": {"name": "admin"}}', True),
    ('{ $.user.name = "*min" }', '{"user": {"name": "admin"}}', True),
    ('{ $.user.name = "a*n" }', '{"user": {"name": "admin"}}', True),
    ('{ $.user.name = "adm*" }', '{"user": {"name": "root"}}', False),
    ("{ $.latency > 5 }", '{"latency": 7.5}', True),
    ("{ $.latency > 5 }", '{"latency": 5}', False),
    ("{ $.latency >= 5 }", '{"latency": 5}', True),
    ("{ $.latency < 5 }", '{"latency": 4}', True),
    ("{ $.latency <= 5 }", '{"latency": 6}', False),
    ("{ $.latency = 5 }", '{"latency": 5.0}', True),
    ("{ $.latency = 5 }", '{"latency": 5e0}', True),
    ("{ $.latency != 5 }", '{"latency": 6}', True),
    ("{ $.latency > 5 }", '{"latency": "fast"}', False),
    ("{ $.latency > 5 }", '{"latency": "7"}', False),  # a JSON number comparison needs a number
    ('{ $.latency = "7" }', '{"latency": "7"}', True),
    ("{ $.latency > -1.5 }", '{"latency": -1}', True),
    ('{ $.a[1].b = "y" }', '{"a": [{"b": "x"}, {"b": "y"}]}', True),
    ('{ $.a[5].b = "y" }', '{"a": [{"b": "x"}]}', False),
    ('{ $.a[*].b = "y" }', '{"a": [{"b": "x"}, {"b": "y"}]}', True),
    ("{ $.x IS NULL }", '{"x": null}', True),
    ("{ $.x IS NULL }", '{"x": 0}', False),
    ("{ $.x IS TRUE }", '{"x": true}', True),
    ("{ $.x IS FALSE }", '{"x": true}', False),
    ("{ $.x IS FALSE }", '{"x": false}', True),
    ("{ $.x EXISTS }", '{"x": null}', True),
    ("{ $.x EXISTS }", '{"y": 1}', False),
    ("{ $.x NOT EXISTS }", '{"y": 1}', True),
    ("{ $.x NOT EXISTS }", '{"x": 1}', False),
    ('{ $.level = "error" && $.code > 500 }', '{"level": "error", "code": 503}', True),
    ('{ $.level = "error" && $.code > 500 }', '{"level": "error", "code": 404}', False),
    ('{ $.level = "error" || $.code > 500 }', '{"level": "info", "code": 503}', True),
    ('{ $.level = "error" || $.code > 500 }', '{"level": "info", "code": 200}', False),
    ('{ ($.a = 1 || $.b = 2) && $.c = 3 }', '{"b": 2, "c": 3}', True),
    ('{ ($.a = 1 || $.b = 2) && $.c = 3 }', '{"b": 2, "c": 4}', False),
    ('{ $.msg = %time+out% }', '{"msg": "a timeout"}', True),
    ('{ $.msg != %time+out% }', '{"msg": "a timeout"}', False),
    ('{ $.flag = "true" }', '{"flag": true}', True),
    # space-delimited
    ("[ip, user, username, timestamp, request, status, bytes]", APACHE, True),
    ("[ip, user, username, timestamp, request, status, bytes]", APACHE + " extra", False),
    ("[ip, user, ..., status = 404, bytes]", APACHE, True),
    ("[ip, user, ..., status = 4*, bytes > 1000]", APACHE, True),
    ("[ip, user, ..., status = 4*, bytes > 2000]", APACHE, False),
    ("[ip, user, ..., status != 404, bytes]", APACHE, False),
    ('[ip, user, username, timestamp, request = "GET /index*", ...]', APACHE, True),
    ("[ip, ..., status = 4* || status = 5*, bytes]", APACHE, True),
    ("[ip, ..., status = 2* || status = 3*, bytes]", APACHE, False),
    ("[ip, ..., status = 4* && bytes < 2000, bytes]", APACHE, True),
    ("[ip = %127\\.0\\.0\\.[0-9]%, ...]", APACHE, True),
    ("[ip = %^10\\.%, ...]", APACHE, False),
    ("[..., bytes]", "just-one", True),
    ("[a, ..., b]", "just-one", False),
    ('[w1, w2 = "two words"]', 'one "two words"', True),
    ("[w1, w2 = WARN]", "x WARN", True),
    ("[w1 = ERROR, ...]", "INFO x", False),
])
def test_matches(pattern: str, message: str, expected: bool) -> None:
    p = parse_pattern(pattern)
    assert p.matches(message) is expected
    raw = line_of(message).split(b"\t", 2)[2][:-1]  # the stored message
    if expected and p.needles is not None:  # the prefilter never drops a match
        assert any(n in raw for n in p.needles), (p.needles, raw)
    if expected and p.quick is not None:  # nor does the quick check
        assert p.quick(raw), raw


@pytest.mark.parametrize("pattern, needles", [
    ("", None),
    ("ERROR", (b"ERROR",)),
    ("ERROR Exception", (b"Exception",)),  # the longest of the required terms
    ("?ERROR ?WARN", (b"ERROR", b"WARN")),
    ("?ERROR ?-WARN", None),  # an alternative without a required term
    ("-DEBUG", None),
    ('"a\\\\b"', (b"a\\\\b",)),  # a backslash is stored doubled
    ('{ $.level = "error" }', (b"error", b"\\\\u")),
    ("{ $.latency > 5 }", (b'"latency"', b"\\\\u")),  # numbers: the key must appear
    ('{ $.x NOT EXISTS }', None),
    ('{ $.path = "/a/b" }', (b'"path"', b"\\\\u")),  # '/' may be written \/
    ("[ip, ..., status = 404, bytes]", None),  # a number may be written many ways
    ('[ip, ..., request = "GET*", bytes]', (b"GET",)),
])
def test_needles(pattern: str, needles: tuple[bytes, ...] | None) -> None:
    assert parse_pattern(pattern).needles == needles


@pytest.mark.parametrize("pattern", [
    '"unclosed',
    '{ $.level = "error"',
    "{ }",
    "{ level = 1 }",
    "{ $ = 1 }",
    "{ $.a..b = 1 }",
    "{ $.a = }",
    "{ $.a > }",
    '{ $.a > "text" }',
    "{ $.a = %unclosed }",
    "{ $.a = %(% }",
    "{ $.a IS BLUE }",
    "{ $.a NOT THERE }",
    "{ $.a = 1 && }",
    "{ ($.a = 1 }",
    "{ $.a = 1 $.b = 2 }",
    "{ $.a ! 1 }",
    "[a, b",
    "[]",
    "[a, , b]",
    "[a, ..., ...]",
    "[a, a]",
    "[a, b = ]",
    "[a, b = 1 && c = 2]",  # a condition on a field the pattern does not name
    "[a b]",
    "[a, b = %(%]",
    '[a, b = "x]',
    "?",
    "-",
    "??x",
    "ab\"c",
    "x [y]",
    "%(%",
])
def test_refused(pattern: str) -> None:
    with pytest.raises(InvalidFilterPattern) as err:
        parse_pattern(pattern)
    assert str(err.value) == BAD_PATTERN
    assert err.value.aws_code == "InvalidParameterException"


def test_too_long_is_a_validation_error() -> None:
    with pytest.raises(InvalidParameter, match="length less than or equal to 1024"):
        parse_pattern("x" * 1025)
    assert parse_pattern("x" * 1024).matches("x" * 1024)


def test_not_a_string() -> None:
    with pytest.raises(InvalidFilterPattern):
        parse_pattern(5)
    assert parse_pattern(None).matches("anything")


@pytest.mark.parametrize("pattern, message", [
    ("{ $.latency > 5 }", '{"latency": 3, "other": {"latency": "9"}}'),
    ("{ $.latency > 5 }", '{"latency_ms": 9}'),
    ("{ $.a.latency >= 10 && $.b = 1 }", '{"a": {"latency": 2}, "b": 1}'),
    ("{ $.x IS NULL }", '{"x": "null"}'),
    ("{ $.x IS TRUE }", '{"x": trueish}'),
])
def test_quick_check_rejects_without_parsing(pattern: str, message: str) -> None:
    p = parse_pattern(pattern)
    assert p.quick is not None and not p.quick(line_of(message).split(b"\t", 2)[2][:-1])
    assert not p.matches(message)


@pytest.mark.parametrize("pattern, message", [
    ("{ $.n > 1 }", '{"n":\n  2}'),  # JSON whitespace holding a newline
    ("{ $.n > 1 }", '{"\\u006e": 2}'),  # a \u escape: no verdict
    ("{ $.n < 0 }", '{"n": -1.5e0}'),
    ("{ $.x IS FALSE || $.n = 3 }", '{"x": false}'),
])
def test_quick_check_keeps_matches(pattern: str, message: str) -> None:
    p = parse_pattern(pattern)
    assert p.matches(message)
    assert p.quick is None or p.quick(line_of(message).split(b"\t", 2)[2][:-1])


def test_json_needles_hold_for_generated_json() -> None:
    """Whatever a JSON encoder writes for a matching document, its stored line holds a needle."""
    p = parse_pattern('{ $.level = "error" && $.n > 1 }')
    doc = {"level": "error", "n": 2, "note": "ünïcode \"quoted\" \\ back/slash <&>"}
    for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False), json.dumps(doc, indent=2)):
        assert p.matches(text)
        assert any(n in line_of(text) for n in p.needles or ())
