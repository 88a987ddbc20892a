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

from berth.types.pathmatch import pattern_regex


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
    return _Pattern(re.compile(pattern_regex(text, double_star=True)), exclusion, len(text.split("/")))
