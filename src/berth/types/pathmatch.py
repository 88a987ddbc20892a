"""Go-style path patterns (`path.Match`, and moby's patternmatcher for .dockerignore), as regexes.

`*` and `?` never match `/`; `[...]` is a class (`[^...]` negates) in which `\\` escapes, as
elsewhere. With `double_star`, `**` matches any run of characters including `/`, and `**/` also
matches no directory at all (moby's .dockerignore rules).
"""

from __future__ import annotations

import re

from berth.errors import InvalidArgument


def pattern_regex(pattern: str, *, double_star: bool = False) -> str:
    """The regex (for `re.fullmatch`) equivalent to `pattern`.

    Raises:
        InvalidArgument: an unterminated `[` class (Go's ErrBadPattern).
    """
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if double_star and pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = _class_end(pattern, i)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match.

    Raises:
        InvalidArgument: a malformed pattern.
    """
    return re.fullmatch(pattern_regex(pattern), name) is not None


def _class_end(pattern: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start` (a first `]` is a member; `\\` escapes)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i
        i += 1
    raise InvalidArgument("syntax error in pattern")
