""".dockerignore patterns (pure), with moby/patternmatcher's semantics.

    # comment            ignored
    *.log                excluded; `*` and `?` never cross `/`, `**` crosses any number of dirs
    !keep.log            exception: re-includes what an earlier pattern excluded
    /build               leading `/` is dropped; patterns are cleaned (`a/../b` -> `b`)

A pattern also matches everything below a directory it matches (`build` excludes
`build/x/y`). The last pattern that matches a path decides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool
    depth: int  # number of path components the pattern spans


class DockerIgnore:
    def __init__(self, text: str = "") -> None:
        self.patterns = [p for p in (_compile(line) for line in text.splitlines()) if p is not None]

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether `path` (relative to the context root, `/`-separated) is left out."""
        path = posixpath.normpath(path).lstrip("/")
        parts = path.split("/")
        matched = False
        for pattern in self.patterns:
            hit = pattern.regex.fullmatch(path) is not None
            if not hit and len(parts) > 1 and pattern.depth < len(parts):
                hit = pattern.regex.fullmatch("/".join(parts[:pattern.depth])) is not None
            if hit:
                matched = not pattern.exclusion
        return matched


def _compile(line: str) -> _Pattern | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    exclusion = text.startswith("!")
    if exclusion:
        text = text[1:].strip()
    text = posixpath.normpath(text)
    if text.startswith("/") and len(text) > 1:
        text = text.lstrip("/")
    if text in (".", "/"):
        return None
    return _Pattern(re.compile(_regex(text)), exclusion, len(text.split("/")))


def _regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # `**/` also matches zero directories
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
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
